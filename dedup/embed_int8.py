"""int8 MiniLM on CPUs without bf16: every nn.Linear becomes an fbgemm int8 linear whose few outlier input
channels are computed in fp32 (the LLM.int8() decomposition).

Why: on an AVX2-only CPU torch fp32 is compute-bound (the Linear layers are ~2/3 of the time) and 2 cores cap
threading at 2x; int8 GEMMs are what is left. Plain dynamic quantization (torch.ao quantize_dynamic) is
inaccurate on MiniLM: its activations are quantized per tensor with 7 bits (reduce_range, which AVX2's
saturating int16 multiply-add needs), and a handful of channels with values far outside the rest (BERT's
outlier dimensions, the FFN output's input above all) squash every other channel to a few levels: measured
min cosine vs fp32 0.89 (per-tensor weights) / 0.97 (per-channel weights) on 300 bench documents. Taking the
channels whose values exceed OUTLIER_THRESHOLD out of the int8 product and adding them back in fp32 (on
average 9 of 384-1536 channels per call) gives min cosine 0.997 at most of int8's speed.

This module imports torch at the top: dedup/embed.py imports it only when the int8 path is chosen.
"""
from __future__ import annotations

import platform
import warnings

import torch

# |activation| above this marks an outlier channel, computed in fp32. Measured on the bench's 300 documents (2 Xeon
# cores pinned to AVX2, batches of 4): 6.0 (LLM.int8()'s) -> min cosine 0.9936, 1.8 outlier channels a call;
# 4.0 -> 0.9972, 9 a call, the same docs/s (1.31x fp32 on one thread); plain int8 (no outliers) 0.968, 1.49x.
OUTLIER_THRESHOLD = 4.0


def int8_supported() -> bool:
    """Whether fbgemm's int8 kernels run here: an x86-64 CPU with AVX2 or better (fbgemm has no other path)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return (torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
                and "fbgemm" in torch.backends.quantized.supported_engines)
    except Exception:
        return False


class OutlierInt8Linear(torch.nn.Module):
    """y = x W^T + b with W in int8 (symmetric, one scale per output channel) and x quantized per call (uint8,
    7 bits, one scale per call); x's columns with |value| > threshold are zeroed for the int8 product and
    added back with the fp32 weights."""

    def __init__(self, linear: torch.nn.Linear, threshold: float = OUTLIER_THRESHOLD):
        super().__init__()
        self.in_features, self.out_features, self.threshold = linear.in_features, linear.out_features, threshold
        w = linear.weight.detach().float().contiguous()
        bias = None if linear.bias is None else linear.bias.detach().float().contiguous()
        scale = (w.abs().amax(1) / 127.0).clamp(min=1e-12).double()
        prev = torch.backends.quantized.engine
        with warnings.catch_warnings():
            # torch 2.13 marks quantized-tensor creation deprecated (moving to torchao); the op is still there
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated", category=UserWarning)
            qw = torch.quantize_per_channel(w, scale, torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8)
            try:
                torch.backends.quantized.engine = "fbgemm"  # the packed weights decide the kernels: fbgemm's
                self._packed = torch.ops.quantized.linear_prepack(qw, bias)
            finally:
                torch.backends.quantized.engine = prev
        self.register_buffer("weight_fp32", w)  # the outlier columns' weights, gathered per call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        if not torch.is_inference_mode_enabled():
            x2 = x2.clone()  # the outlier columns are zeroed in place below: never on a tensor autograd may need
        # amin + amax: two vectorized passes, ~10x faster than aminmax(dim=0) or abs().amax(0) here
        outliers = ((x2.amax(0) > self.threshold) | (x2.amin(0) < -self.threshold)).nonzero().squeeze(1) \
            if x2.shape[0] else x2.new_zeros(0, dtype=torch.long)
        if outliers.numel() == 0:
            y = torch.ops.quantized.linear_dynamic(x2, self._packed, True)  # reduce_range: AVX2 saturates otherwise
        else:
            xo = x2.index_select(1, outliers)
            # zero in place and restore (a few columns) instead of copying the whole input: measured ~4% faster
            x2.index_fill_(1, outliers, 0.0)
            try:
                y = torch.ops.quantized.linear_dynamic(x2, self._packed, True)
            finally:
                x2.index_copy_(1, outliers, xo)
            y.addmm_(xo, self.weight_fp32.index_select(1, outliers).t())
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, threshold={self.threshold}"


def quantize_linears(model: torch.nn.Module, threshold: float = OUTLIER_THRESHOLD) -> int:
    """Replace every nn.Linear of `model` (in place) with an OutlierInt8Linear; returns how many."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, torch.nn.Linear)]
    for parent, name, child in swaps:
        setattr(parent, name, OutlierInt8Linear(child, threshold))
    return len(swaps)
