"""int8 MiniLM on CPUs without bf16: every nn.Linear becomes an fbgemm int8 linear whose activations are
quantized per row (per token) through fbgemm's per-tensor dynamic quantization.

Why: on an AVX2-only CPU torch fp32 is compute-bound (the Linear layers are ~2/3 of the time) and 2 cores cap
threading at 2x; int8 GEMMs are what is left. Plain dynamic quantization (torch.ao quantize_dynamic) is
inaccurate on MiniLM: it quantizes a whole batch's activations with one 7-bit scale (7 bits: reduce_range,
which AVX2's saturating int16 multiply-add needs), and BERT's outlier channels squash every other value to a
few levels -- measured min cosine vs fp32 0.89 (per-tensor weights) / 0.97 (per-channel) on 300 bench docs --
and a text's embedding then depends on which texts share its batch. Here each row x is mapped affinely onto
[0, 1] before fbgemm sees it, so each row gets its own 128-level grid (per-token quantization, which fbgemm's
dynamic linear lacks): min cosine 0.997, and the batch no longer matters (below).

This module imports torch at the top: dedup/embed.py imports it only when the int8 path is chosen.
"""
from __future__ import annotations

import platform
import warnings

import torch


def int8_supported() -> bool:
    """Whether fbgemm's int8 kernels run here: an x86-64 CPU with AVX2 or better (fbgemm has no other path)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return (torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
                and "fbgemm" in torch.backends.quantized.supported_engines)
    except Exception:
        return False


class RowInt8Linear(torch.nn.Module):
    """y = x W^T + b with W in int8 (symmetric, one scale per output channel) and x quantized per row.

    With lo, hi = each row's min and max and r = hi - lo, fbgemm gets xh = (x - lo) / r: every row spans
    exactly [0, 1] (the min row element maps to 0, the max to r / r = 1), so the tensor's range -- from which
    fbgemm's dynamic quantization picks its one scale -- is [0, 1] for every batch, and each row is in effect
    quantized on its own grid lo + r * k / 127. Then x Wq^T = r * (xh Wq^T) + lo * rowsum(Wq): the offset term
    uses the dequantized int8 weights' row sums so that it cancels exactly (the fp32 weights' sums would leave
    lo * sum(W - Wq), a systematic error: min cosine 0.955 instead of 0.997). The int8 product is integer-exact
    and the rest is row-wise, so a row's output does not depend on the other rows of the batch (up to fp32
    rounding in the epilogue's kernels, ~1e-7)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float().contiguous()
        scale = (w.abs().amax(1) / 127.0).clamp(min=1e-12).double()
        prev = torch.backends.quantized.engine
        with warnings.catch_warnings():
            # torch 2.13 marks quantized-tensor creation deprecated (moving to torchao); the ops are still there
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated", category=UserWarning)
            qw = torch.quantize_per_channel(w, scale, torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8)
            try:
                torch.backends.quantized.engine = "fbgemm"  # the packed weights decide the kernels: fbgemm's
                self._packed = torch.ops.quantized.linear_prepack(qw, None)
            finally:
                torch.backends.quantized.engine = prev
        bias = torch.zeros(self.out_features) if linear.bias is None else linear.bias.detach().float()
        # [rowsum(Wq); b]: the epilogue adds lo * rowsum(Wq) + b in one (M x 2) @ (2 x N) product
        self.register_buffer("offset_bias", torch.stack([qw.dequantize().sum(1), bias]).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        lo = x2.amin(1, keepdim=True)
        r = (x2.amax(1, keepdim=True) - lo).clamp_(min=1e-12)  # a constant row: xh = 0, y = lo * rowsum + b
        xh = (x2 - lo).div_(r)
        y = torch.ops.quantized.linear_dynamic(xh, self._packed, True)  # reduce_range: AVX2 saturates otherwise
        y.mul_(r).addmm_(torch.cat([lo, torch.ones_like(lo)], 1), self.offset_bias)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-row"


def quantize_linears(model: torch.nn.Module) -> int:
    """Replace every nn.Linear of `model` (in place) with a RowInt8Linear; returns how many."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, torch.nn.Linear)]
    for parent, name, child in swaps:
        setattr(parent, name, RowInt8Linear(child))
    return len(swaps)
