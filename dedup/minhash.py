"""MinHash over word shingles, LSH banding and signature Jaccard (numpy, deterministic across partitions)."""
from __future__ import annotations

import numpy as np

from .text import fold, folded_words, word_hashes


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



_SHINGLE_MULT = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A strong 64-bit mix (splitmix64 finalizer), vectorized."""
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


def shingle_hashes(texts: list[str], k: int, folded: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Word k-shingle hashes (uint32) of each text, concatenated, and the per-text offsets (len n+1).
    Texts shorter than k words get one shingle of all their words; empty texts get none. `folded`: the texts'
    fold, if made already."""
    wh, starts = word_hashes(list(map(folded_words, folded if folded is not None else map(fold, texts))))
    lens = np.diff(starts)
    total = len(wh)
    if not total:
        return np.zeros(0, np.uint32), np.zeros(len(texts) + 1, np.int64)
    # polynomial combination of k consecutive word hashes at every position (uint64, wrapping); the window
    # runs past the last word as if zeros followed, which is what a short doc's one shingle needs
    padded = np.concatenate([wh, np.zeros(k - 1, np.uint64)])
    with np.errstate(over="ignore"):
        acc = padded[:total].copy()
        for j in range(1, k):
            acc *= _SHINGLE_MULT
            acc += padded[j: total + j]
    # valid shingle starts: position p of doc d with p + k <= len(d); short docs: one shingle at p = 0
    doc_of = np.repeat(np.arange(len(texts)), lens)
    pos = np.arange(total) - starts[doc_of]
    dl = lens[doc_of]
    valid = (pos + k <= dl) | ((dl < k) & (pos == 0))
    # a short doc's window ran into the next doc's words: recompute its hash from its own words
    for p in np.nonzero((dl < k) & (pos == 0))[0]:
        with np.errstate(over="ignore"):
            h = np.uint64(0)
            for j in range(k):
                h = h * _SHINGLE_MULT + (wh[p + j] if j < dl[p] else np.uint64(0))
        acc[p] = h
    sh = (_splitmix64(acc[valid]) >> np.uint64(32)).astype(np.uint32)
    counts = np.bincount(doc_of[valid], minlength=len(texts))
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    return sh, offsets


def minhash_signatures(texts: list[str], k: int = 5, num_perm: int = 128, seed: int = 0,
                       chunk: int = 1 << 16, folded: list[str] | None = None) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures, vectorised with numpy.
    h_i(x) = ((a_i * x + b_i) mod 2^64) >> 32 (multiply-add-shift, 2-universal for 32-bit x).
    One permutation at a time over a chunk of whole documents' shingles, with in-place ops on a reused
    buffer: ~20x faster than materialising the (shingles x num_perm) matrix. A chunk of 2^16 shingles keeps the
    buffer (512 KiB) in a core's cache across the permutations. `folded`: the texts' fold, if made already."""
    n = len(texts)
    sig = np.full((n, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    if n == 0:
        return sig
    sh, off = shingle_hashes(texts, k, folded)
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
                    # the shift is monotone, so it commutes with the minimum: shift the minima, not every value
                    sig[rows, j] = np.minimum.reduceat(buf, idx) >> shift
        doc = end
    return sig


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
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
    """Estimated Jaccard of each pair: the share of equal signature entries."""
    out = np.empty(len(pairs), dtype=np.float64)
    for s in range(0, len(pairs), chunk):
        p = pairs[s: s + chunk]
        out[s: s + chunk] = (sig[p[:, 0]] == sig[p[:, 1]]).mean(axis=1)
    return out



def candidate_pairs(sig: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, signature Jaccard) of the rows of `sig` with Jaccard >= threshold, found by LSH banding."""
    if len(sig) < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    bands, rows = lsh_bands_rows(threshold, sig.shape[1])
    cand = lsh_candidate_pairs(band_hashes(sig, bands, rows))
    js = signature_jaccard(sig, cand)
    keep = js >= threshold
    return cand[keep], js[keep]
