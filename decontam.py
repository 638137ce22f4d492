"""Decontamination: remove rows that overlap the user's evaluation questions (`--decontaminate FILE`, repeatable).

Eval files (one item per line; each item gets an id: its own `id` field, else `<file name>:<line number>`):
    JSONL  (.jsonl, .ndjson, .json, or any file whose first non-blank line is a JSON object): an object per line
           with a `question`, `prompt` or `input` string (the first present, in that order), or `messages`
           (the `content` of the turns whose role is `user`, joined by newlines). A `.json` file whose first
           character is `[` is read as one JSON array of such objects (item number instead of line number).
    text   (anything else): one question per line.
    Blank lines and empty items are counted and skipped with a reason; a line that is not valid JSON, an object
    without any of the fields, or undecodable bytes stop the run with one line naming the file and line.

Rules, checked against every row of every split, strongest first (a row is removed once, for the first rule
that hits; `similarity` says how strongly):
    exact      normalize_text(item) equals normalize_text of the row's question, title, or title + question.
               similarity 1.0.
    ngram      the 13-gram rule of the GPT-3 paper / datatrove, over normalised words (NFKC, case-folded,
               punctuation removed) of the row's title + question + ANSWER (an eval question quoted inside one
               of our answers is in the training text too). similarity = the fraction of the item's distinct
               n-grams found in the row; the row is contaminated when that fraction is >= --decontam-ngram-overlap
               (default 0.5; 0 = any shared n-gram, the papers' strict rule). Why not "any": on the generated
               corpus the templated sentences make 820 of 1,119 questions share a 13-gram with an unrelated row
               (the best unrelated overlap fraction is 0.39), while lightly edited copies keep >= 0.59 of their
               13-grams. Items shorter than n words but with >= --decontam-min-words (8) words count as one n-gram
               of their own length (fraction 0 or 1); shorter items are checked by the exact and embedding
               rules only (counted as `short_items`).
    embedding  cosine between the item and the row's QUESTION (not title, not answer) >= the leak threshold of
               the dedup model in use (DedupConfig.leak_cos: 0.95 MiniLM, 0.98 static; --decontam-cosine
               overrides). Measured on the generated corpus, eval = a question: against the row's question
               paraphrases reach the threshold in 65% (MiniLM) / 76% (static) of cases and no unrelated row
               does (max 0.90 / 0.97); against title + question or the whole row, 0-50% do. Uses dedup's
               Embedder and cache directory; skipped when semantic dedup is off or with --decontam-no-embedding.

Removed rows have the columns of dedup's removed.jsonl (id, kind="decontaminated", duplicate_of=<eval item id>,
similarity) plus `rule` (exact | ngram | embedding). N-gram matching hashes (xxh64) every n-gram of the eval
items into one sorted array; each partition hashes its rows' windows with numpy and looks them up, so only ids,
hits and question-text hashes reach the driver (texts only for embeddings the cache lacks).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from dedup import DedupConfig, Embedder, doc_text, normalize_text
from dedup.text import word_hashes, words_of
from docbuilder import InputError
from partitions import compute, is_partitioned
from records import drop_ids, visible

RULES = ("exact", "ngram", "embedding")
KIND = "decontaminated"
REMOVED_COLUMNS = ["id", "kind", "duplicate_of", "similarity", "rule"]
TEXT_FIELDS = ("question", "prompt", "input")
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}

_MULT = np.uint64(0x9E3779B97F4A7C15)
_BITMAP_MASK = (1 << 22) - 1  # a 4 MiB membership bitmap over the low 22 bits of the eval n-gram hashes


class EvalFileError(InputError):
    """An eval file cannot be read; the message is one line naming the file (and line)."""


# --------------------------------------------------------------------------------------------- config
@dataclass
class DecontamConfig:
    files: tuple[str, ...] = ()
    ngram: int = 13
    min_words: int = 8  # items with min_words..ngram-1 words are one n-gram of their own length
    ngram_overlap: float = 0.5  # fraction of an item's n-grams a row must contain; 0 = any one
    cosine: float | None = None  # None: the dedup model's leak threshold (DedupConfig.leak_cos)
    embedding: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.files)

    def cosine_for(self, dedup_cfg: DedupConfig) -> float:
        return self.cosine if self.cosine is not None else dedup_cfg.leak_cos


def add_decontam_arguments(group: argparse._ActionsContainer) -> None:
    """Add the decontamination flags to an argparse parser or argument group."""
    d = DecontamConfig
    group.add_argument("--decontaminate", action="append", default=None, metavar="FILE",
                       help="eval questions to keep out of every split (repeatable): JSONL with a "
                            "question/prompt/input field or messages, or plain text, one per line")
    group.add_argument("--decontam-ngram", type=int, default=d.ngram,
                       help="words per n-gram for the overlap rule")
    group.add_argument("--decontam-min-words", type=int, default=d.min_words,
                       help="eval items with fewer words than the n-gram but at least this many are matched "
                            "whole; shorter ones only exactly or by embedding")
    group.add_argument("--decontam-ngram-overlap", type=float, default=d.ngram_overlap,
                       help="a row is contaminated when it holds at least this fraction of an eval item's "
                            "n-grams (0: any one n-gram)")
    group.add_argument("--decontam-cosine", type=float, default=d.cosine,
                       help="embedding cosine threshold (default: the model's leak cosine)")
    group.add_argument("--decontam-no-embedding", action="store_true",
                       help="skip the embedding rule (it is also skipped when semantic dedup is off)")


def decontam_config_from_args(args: argparse.Namespace) -> DecontamConfig:
    """The validated config; raises ValueError("--flag: why") on a bad value."""
    files = tuple(dict.fromkeys(args.decontaminate or ()))  # a file given twice is read once
    for f in files:
        p = Path(f)
        if not p.exists():
            raise ValueError(f"--decontaminate: {f}: no such file")
        if not p.is_file():
            raise ValueError(f"--decontaminate: {f}: not a file")
        if not os.access(p, os.R_OK):
            raise ValueError(f"--decontaminate: {f}: not readable")
    if args.decontam_ngram < 2:
        raise ValueError(f"--decontam-ngram: must be at least 2 (got {args.decontam_ngram})")
    if not 1 <= args.decontam_min_words <= args.decontam_ngram:
        raise ValueError(f"--decontam-min-words: must be between 1 and --decontam-ngram "
                         f"({args.decontam_ngram}), got {args.decontam_min_words}")
    if not 0.0 <= args.decontam_ngram_overlap <= 1.0:
        raise ValueError(f"--decontam-ngram-overlap: must be in [0, 1] (got {args.decontam_ngram_overlap})")
    if args.decontam_cosine is not None and not 0.0 < args.decontam_cosine <= 1.0:
        raise ValueError(f"--decontam-cosine: must be in (0, 1] (got {args.decontam_cosine})")
    return DecontamConfig(files=files, ngram=args.decontam_ngram, min_words=args.decontam_min_words,
                          ngram_overlap=args.decontam_ngram_overlap, cosine=args.decontam_cosine,
                          embedding=not args.decontam_no_embedding)


# -------------------------------------------------------------------------------------------- loading
@dataclass
class EvalItem:
    id: str
    text: str
    file: str


def _item_text(obj: Any, where: str) -> str:
    """The question text of one JSON object ('' when empty); raises EvalFileError on a wrong shape."""
    if not isinstance(obj, dict):
        raise EvalFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in TEXT_FIELDS:
        if key in obj and obj[key] is not None:
            if not isinstance(obj[key], str):
                raise EvalFileError(f"{where}: field '{key}' is not a string")
            return obj[key]
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
            raise EvalFileError(f"{where}: 'messages' is not a list of objects")
        turns = [m.get("content") for m in msgs if m.get("role") == "user"]
        if not all(isinstance(t, str) for t in turns):
            raise EvalFileError(f"{where}: a user turn's 'content' is not a string")
        return "\n".join(turns)
    raise EvalFileError(f"{where}: no question, prompt, input or messages field")


def _is_jsonl(path: Path, lines: list[str]) -> bool:
    if path.suffix.lower() in JSONL_SUFFIXES:
        return True
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not first.startswith("{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise EvalFileError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None


def load_eval_file(path: str | os.PathLike) -> tuple[list[EvalItem], dict]:
    """The items of one eval file and its stats (format, items, skipped by reason). See the module docstring."""
    name, path = str(path), Path(path)
    try:
        text = _decode(path)
    except OSError as e:
        raise EvalFileError(f"{path}: cannot read ({e.strerror or e})") from None
    # "\n" only (str.splitlines also breaks on U+2028 and friends, which JSON strings may hold raw)
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a blank one
    skipped: dict[str, int] = {}
    raw: list[tuple[int, Any]] = []  # (line or item number, parsed object or text)
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        fmt = "json array"
        try:
            arr = json.loads(text)
        except json.JSONDecodeError as e:
            raise EvalFileError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        raw = list(enumerate(arr, 1))
    elif _is_jsonl(path, lines):
        fmt = "jsonl"
        for no, ln in enumerate(lines, 1):
            if not ln.strip():
                skipped["blank line"] = skipped.get("blank line", 0) + 1
                continue
            try:
                raw.append((no, json.loads(ln)))
            except ValueError as e:
                raise EvalFileError(f"{path}:{no}: not valid JSON ({e.msg})") from None
    else:
        fmt = "text"
        for no, ln in enumerate(lines, 1):
            if not ln.strip():
                skipped["blank line"] = skipped.get("blank line", 0) + 1
                continue
            raw.append((no, ln))
    items = []
    for no, obj in raw:
        where = f"{path}:{no}"
        body = obj if fmt == "text" else _item_text(obj, where)
        if not body.strip():
            reason = "no user turn" if isinstance(obj, dict) and "messages" in obj and not any(
                m.get("role") == "user" for m in obj["messages"]) else "empty item"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        own = obj.get("id") if isinstance(obj, dict) else None
        item_id = str(own) if own is not None and str(own) != "" else f"{path.name}:{no}"
        items.append(EvalItem(id=item_id, text=body.strip(), file=name))
    if not items:
        raise EvalFileError(f"{path}: no eval items ({sum(skipped.values())} blank or empty skipped)")
    return items, {"format": fmt, "items": len(items), "skipped": dict(sorted(skipped.items()))}


def load_eval_sets(files) -> tuple[list[EvalItem], dict]:
    """All items of all files, in file then line order, and per-file stats keyed by the path as given."""
    items: list[EvalItem] = []
    stats: dict[str, dict] = {}
    for f in files:
        its, st = load_eval_file(f)
        items.extend(its)
        stats[str(f)] = st
    return items, stats


# -------------------------------------------------------------------------------------------- n-grams
def _finalize(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64, copy=True)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def window_hashes(wh: np.ndarray, offsets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every k-word window that lies inside one doc, and the doc of each window.
    A window's hash depends only on its words and k, so eval items and rows agree across partitions."""
    total = len(wh)
    n_docs = len(offsets) - 1
    if total < k or n_docs == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        acc = np.full(total - k + 1, np.uint64(k), dtype=np.uint64)
        for j in range(k):
            acc = acc * _MULT + wh[j: total - k + 1 + j]
    doc = np.repeat(np.arange(n_docs), np.diff(offsets))[: total - k + 1]
    valid = np.arange(total - k + 1) + k <= offsets[doc + 1]
    return _finalize(acc[valid]), doc[valid]


# ---------------------------------------------------------------------------------------------- index
def _norm_key(normalized: str) -> str:
    return xxhash.xxh3_128_hexdigest(normalized.encode("utf-8"))


def _exact_key(text: str) -> str:
    return _norm_key(normalize_text(text))


@dataclass
class EvalIndex:
    """What a partition needs to find contaminated rows: eval ids, exact keys and hashed n-grams."""
    ids: list[str]
    files: list[str]
    exact: dict[str, int]  # exact key -> first item with it
    gram_hash: np.ndarray  # sorted uint64, one entry per (n-gram, item) pair
    gram_item: np.ndarray  # int64, the item of each entry
    item_grams: np.ndarray  # int64, distinct n-grams per item (0: too short for the n-gram rule)
    lengths: tuple[int, ...]  # window lengths to hash rows with
    ngram_overlap: float
    short_items: int = 0
    whole_items: int = 0
    _bitmap: np.ndarray | None = field(default=None, repr=False)

    @property
    def bitmap(self) -> np.ndarray:
        """Which low-bit patterns occur among the n-gram hashes; built where it is used (never pickled)."""
        if self._bitmap is None:
            bm = np.zeros(_BITMAP_MASK + 1, bool)
            bm[(self.gram_hash & np.uint64(_BITMAP_MASK)).astype(np.int64)] = True
            self._bitmap = bm
        return self._bitmap

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_bitmap": None}

    def __len__(self) -> int:
        return len(self.ids)


def build_index(items: list[EvalItem], cfg: DecontamConfig) -> EvalIndex:
    """Hash the eval items: exact keys and n-grams (whole-item n-grams for short items, see module docstring)."""
    words = [words_of(it.text) for it in items]
    exact: dict[str, int] = {}
    for i, it in enumerate(items):
        exact.setdefault(_exact_key(it.text), i)
    hashes, owners = [], []
    short = whole = 0
    lengths = set()
    groups: dict[int, list[int]] = {}  # window length -> items using it
    for i, ws in enumerate(words):
        if len(ws) >= cfg.ngram:
            groups.setdefault(cfg.ngram, []).append(i)
        elif len(ws) >= cfg.min_words:
            groups.setdefault(len(ws), []).append(i)
            whole += 1
        else:
            short += 1
    for k, members in sorted(groups.items()):
        wh, off = word_hashes([words[i] for i in members])
        h, doc = window_hashes(wh, off, k)
        hashes.append(h)
        owners.append(np.asarray(members, dtype=np.int64)[doc])
        lengths.add(k)
    if hashes:
        pairs = pd.DataFrame({"h": np.concatenate(hashes), "i": np.concatenate(owners)}).drop_duplicates()
        pairs = pairs.sort_values(["h", "i"], kind="mergesort")
        gram_hash = pairs["h"].to_numpy(np.uint64)
        gram_item = pairs["i"].to_numpy(np.int64)
    else:
        gram_hash, gram_item = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    item_grams = np.bincount(gram_item, minlength=len(items)).astype(np.int64)
    return EvalIndex(ids=[it.id for it in items], files=[it.file for it in items], exact=exact,
                     gram_hash=gram_hash, gram_item=gram_item, item_grams=item_grams,
                     lengths=tuple(sorted(lengths)), ngram_overlap=cfg.ngram_overlap,
                     short_items=short, whole_items=whole)


# ------------------------------------------------------------------------------------ partition work
def _exact_hits(pdf: pd.DataFrame, index: EvalIndex) -> np.ndarray:
    """Per row: the eval item whose normalised text equals the row's question, title or title+question; -1."""
    out = np.full(len(pdf), -1, dtype=np.int64)
    if not index.exact:
        return out
    for r, (t, q) in enumerate(zip(pdf["title"], visible(pdf, "question"))):
        nt, nq = normalize_text(t), normalize_text(q)
        for norm in (nq, nt, f"{nt} {nq}".strip()):  # = normalize_text(title + "\n" + question)
            i = index.exact.get(_norm_key(norm))
            if i is not None and (out[r] < 0 or i < out[r]):
                out[r] = i
    return out


def _ngram_hits(pdf: pd.DataFrame, index: EvalIndex) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (best eval item or -1, its overlap fraction) over title + question + answer."""
    n = len(pdf)
    best = np.full(n, -1, dtype=np.int64)
    frac = np.zeros(n, dtype=np.float64)
    if n == 0 or len(index.gram_hash) == 0:
        return best, frac
    docs = [words_of(doc_text(t, q, a)) for t, q, a in zip(pdf["title"], visible(pdf, "question"), visible(pdf, "answer"))]
    wh, off = word_hashes(docs)
    found_h, found_doc = [], []
    for k in index.lengths:
        h, doc = window_hashes(wh, off, k)
        # the bitmap drops nearly every non-hit before the (slower) sorted lookup
        maybe = np.nonzero(index.bitmap[(h & np.uint64(_BITMAP_MASK)).astype(np.int64)])[0]
        h, doc = h[maybe], doc[maybe]
        pos = np.minimum(np.searchsorted(index.gram_hash, h), len(index.gram_hash) - 1)
        hit = index.gram_hash[pos] == h
        found_h.append(h[hit])
        found_doc.append(doc[hit])
    hits = pd.DataFrame({"doc": np.concatenate(found_doc), "h": np.concatenate(found_h)}).drop_duplicates()
    if hits.empty:
        return best, frac
    # each distinct (row, n-gram) -> every item holding that n-gram
    lo = np.searchsorted(index.gram_hash, hits["h"].to_numpy(np.uint64), side="left")
    hi = np.searchsorted(index.gram_hash, hits["h"].to_numpy(np.uint64), side="right")
    reps = hi - lo
    rows = np.repeat(hits["doc"].to_numpy(), reps)
    entry = np.repeat(lo - np.r_[0, np.cumsum(reps)[:-1]], reps) + np.arange(int(reps.sum()))
    pairs = pd.DataFrame({"doc": rows, "item": index.gram_item[entry]})
    counts = pairs.groupby(["doc", "item"], sort=True).size().reset_index(name="n")
    counts["frac"] = counts["n"] / index.item_grams[counts["item"].to_numpy()]
    counts = counts[counts["frac"] >= index.ngram_overlap]
    # best item per row: highest fraction, then the earliest item
    counts = counts.sort_values(["doc", "frac", "item"], ascending=[True, False, True], kind="mergesort")
    top = counts.drop_duplicates("doc")
    best[top["doc"].to_numpy()] = top["item"].to_numpy()
    frac[top["doc"].to_numpy()] = top["frac"].to_numpy()
    return best, frac


def partition_hits(pdf: pd.DataFrame, index: EvalIndex) -> pd.DataFrame:
    """The contaminated rows of one partition by the exact and n-gram rules: id, rule, item, similarity.
    Only ids and numbers leave the partition."""
    ex = _exact_hits(pdf, index)
    ng, frac = _ngram_hits(pdf, index)
    ids = pdf["id"].astype(str).to_numpy()
    is_ex = ex >= 0
    is_ng = ~is_ex & (ng >= 0)
    keep = is_ex | is_ng
    return pd.DataFrame({
        "id": ids[keep],
        "rule": np.where(is_ex, "exact", "ngram")[keep],
        "item": np.where(is_ex, ex, ng)[keep].astype(np.int64),
        "similarity": np.where(is_ex, 1.0, np.round(frac, 6))[keep],
    })


def _hits_meta() -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series(dtype=object), "rule": pd.Series(dtype=object),
                         "item": pd.Series(dtype=np.int64), "similarity": pd.Series(dtype=np.float64)})


def removed_frame(hits: pd.DataFrame, index: EvalIndex) -> pd.DataFrame:
    """Hits as removed.jsonl rows: id, kind, duplicate_of (eval item id), similarity, rule."""
    if hits.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "similarity" else object) for c in REMOVED_COLUMNS})
    return pd.DataFrame({"id": hits["id"].to_numpy(), "kind": KIND,
                         "duplicate_of": [index.ids[i] for i in hits["item"]],
                         "similarity": hits["similarity"].astype(float).to_numpy(),
                         "rule": hits["rule"].to_numpy()})[REMOVED_COLUMNS]


def decontaminate_partition(pdf: pd.DataFrame, index: EvalIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows, removed rows) of one pandas partition by the exact and n-gram rules (no embeddings; the
    driver-level `decontaminate` adds those)."""
    hits = partition_hits(pdf, index)
    return drop_ids(pdf, set(hits["id"])), removed_frame(hits, index)


# -------------------------------------------------------------------------------------------- embeddings
def _text_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))  # the key dedup's embedding cache uses


def _question_hashes(pdf: pd.DataFrame) -> pd.DataFrame:
    """Per partition: id and the hash of the question text (what the embedding rule embeds)."""
    return pd.DataFrame({"id": pdf["id"].astype(str).to_numpy(),
                         "qhash": [_text_hash(q or "") for q in visible(pdf, "question")]})


def _questions_for(pdf: pd.DataFrame, wanted: frozenset) -> pd.DataFrame:
    """Per partition: the question texts whose hash is in `wanted` (cache misses only)."""
    qs = [q or "" for q in visible(pdf, "question")]
    hs = [_text_hash(q) for q in qs]
    keep = [i for i, h in enumerate(hs) if h in wanted]
    return pd.DataFrame({"qhash": [hs[i] for i in keep], "text": [qs[i] for i in keep]})


def _row_question_embeddings(records, partitioned: bool, embedder: Embedder, client) -> tuple[pd.DataFrame, np.ndarray,
                                                                                          dict]:
    """(id + qhash per row, embeddings of the rows' questions, embed stats). A partitioned input moves only ids and
    hashes to the driver, plus the texts the cache lacks."""
    if not partitioned:
        keys = _question_hashes(records)
        texts = [q or "" for q in visible(records, "question")]
    else:
        meta = pd.DataFrame({"id": pd.Series(dtype=object), "qhash": pd.Series(dtype=object)})
        keys = compute(records.map_partitions(_question_hashes, meta=meta), client).reset_index(drop=True)
        pos, _ = embedder.cache.lookup(keys["qhash"].tolist())
        wanted = frozenset(keys["qhash"][pos < 0])
        by_hash: dict[str, str] = {}
        if wanted:
            tmeta = pd.DataFrame({"qhash": pd.Series(dtype=object), "text": pd.Series(dtype=object)})
            got = compute(records.map_partitions(_questions_for, wanted, meta=tmeta), client)
            by_hash = dict(zip(got["qhash"], got["text"]))
        texts = [by_hash.get(h, "") for h in keys["qhash"]]  # "" where cached: embed() reads only misses
    emb, st = embedder.embed(texts, keys["qhash"].tolist())
    return keys.reset_index(drop=True), emb, st


def embedding_hits(row_emb: np.ndarray, row_ids: np.ndarray, eval_emb: np.ndarray, threshold: float,
                   block: int = 4096) -> pd.DataFrame:
    """Rows whose best cosine to any eval item is >= threshold: id, rule, item, similarity (blocked matmul)."""
    out = []
    if len(row_emb) and len(eval_emb):
        for s in range(0, len(row_emb), block):
            sims = row_emb[s: s + block] @ eval_emb.T
            best = np.argmax(sims, axis=1)  # the first item among equals
            val = sims[np.arange(len(sims)), best]
            hit = np.nonzero(val >= threshold)[0]
            out.append(pd.DataFrame({"id": row_ids[s + hit], "rule": "embedding", "item": best[hit].astype(np.int64),
                                     "similarity": np.round(val[hit].astype(np.float64), 6)}))
    return pd.concat(out, ignore_index=True) if out else _hits_meta()


# ----------------------------------------------------------------------------------------------- driver
@dataclass
class DecontamResult:
    kept: Any  # same kind as the input (pandas, or partitions on the cluster: Partitions or Dask)
    removed: pd.DataFrame
    stats: dict = field(default_factory=dict)



class Decontaminator:
    """The eval sets, hashed once (and embedded once, on first use), checked against any frame of rows:
    `run` for the dataset (pandas or partitioned; all splits), `check_new_rows` for the SDG loop's new rows."""

    def __init__(self, items: list[EvalItem], file_stats: dict, cfg: DecontamConfig, dedup_cfg: DedupConfig):
        self.items, self.file_stats, self.cfg, self.dedup_cfg = items, file_stats, cfg, dedup_cfg
        self.index = build_index(items, cfg)
        self._eval_emb: np.ndarray | None = None
        self._embedder: Embedder | None = None
        self.synthetic = {"checked": 0, "removed": {**{r: 0 for r in RULES}, "total": 0}}
        self.synthetic_removed: list[pd.DataFrame] = []

    @classmethod
    def from_config(cls, cfg: DecontamConfig, dedup_cfg: DedupConfig) -> "Decontaminator":
        """Load cfg.files (raises EvalFileError, one line) and hash them."""
        items, file_stats = load_eval_sets(cfg.files)
        return cls(items, file_stats, cfg, dedup_cfg)

    @property
    def use_embeddings(self) -> bool:
        return self.cfg.embedding and self.dedup_cfg.semantic and len(self.index) > 0

    def _eval_embeddings(self) -> tuple[Embedder, np.ndarray]:
        if self._eval_emb is None:
            self._embedder = Embedder(self.dedup_cfg)
            self._eval_emb, _ = self._embedder.embed([it.text for it in self.items])
        return self._embedder, self._eval_emb

    def find_hits(self, records, client=None) -> tuple[pd.DataFrame, dict]:
        """Every contaminated row, once (exact, else n-gram, else embedding), sorted by id; embedding stats."""
        partitioned = is_partitioned(records)
        if partitioned:
            hits = compute(records.map_partitions(partition_hits, self.index, meta=_hits_meta()), client)
        else:
            hits = partition_hits(records, self.index)
        hits = hits.reset_index(drop=True)
        emb_stats: dict[str, Any] = {"ran": False}
        if self.use_embeddings:
            t = time.perf_counter()
            embedder, eval_emb = self._eval_embeddings()
            keys, row_emb, st = _row_question_embeddings(records, partitioned, embedder, client)
            not_hit = ~keys["id"].isin(set(hits["id"])).to_numpy()
            thr = self.cfg.cosine_for(self.dedup_cfg)
            eh = embedding_hits(row_emb[not_hit], keys["id"].to_numpy(dtype=object)[not_hit], eval_emb, thr)
            hits = pd.concat([hits, eh], ignore_index=True) if len(eh) else hits
            emb_stats = {"ran": True, "model": embedder.key, "cosine": thr, "cache_hits": st["cache_hits"],
                         "cache_misses": st["cache_misses"], "seconds": round(time.perf_counter() - t, 3)}
        # the same order whatever the partitioning
        return hits.sort_values("id", kind="mergesort").reset_index(drop=True), emb_stats

    def run(self, records, client=None) -> DecontamResult:
        """Remove the rows (all splits) that overlap an eval item. A partitioned input stays on the cluster:
        `kept` is a map_partitions over it; only ids, hits and hashes reach the driver."""
        t0 = time.perf_counter()
        hits, emb_stats = self.find_hits(records, client)
        removed = removed_frame(hits, self.index)
        gone = set(removed["id"])
        if is_partitioned(records):
            kept = records.map_partitions(drop_ids, gone, meta=records._meta)
            rows_in = int(compute(records.map_partitions(len), client).sum())  # cheap on persisted partitions
        else:
            kept = drop_ids(records, gone).reset_index(drop=True)
            rows_in = len(records)
        stats = _stats(hits, self.index, self.file_stats, rows_in)
        stats["config"] = {**{k: v for k, v in asdict(self.cfg).items() if k != "files"},
                           "files": list(self.cfg.files), "cosine": self.cfg.cosine_for(self.dedup_cfg),
                           "embedding": self.use_embeddings}
        stats["embedding"] = emb_stats
        stats["synthetic"] = self.synthetic  # filled in later by check_new_rows (the same dict)
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        return DecontamResult(kept=kept, removed=removed, stats=stats)

    def check_new_rows(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        """The SDG curate step: (rows that overlap no eval item, {"decontaminated": n dropped}). The removed
        rows are kept in `synthetic_removed` (for removed.jsonl) and counted in `synthetic`."""
        if len(rows) == 0 or len(self.index) == 0:
            return rows, {}
        hits, _ = self.find_hits(rows)
        self.synthetic["checked"] += int(len(rows))
        for r in RULES:
            self.synthetic["removed"][r] += int((hits["rule"] == r).sum())
        self.synthetic["removed"]["total"] += int(len(hits))
        if len(hits):
            self.synthetic_removed.append(removed_frame(hits, self.index))
        return drop_ids(rows, set(hits["id"])), ({KIND: int(len(hits))} if len(hits) else {})


def _stats(hits: pd.DataFrame, index: EvalIndex, file_stats: dict, rows_in: int) -> dict:
    by_rule = {r: int((hits["rule"] == r).sum()) for r in RULES}
    files: dict[str, dict] = {}
    item_file = np.asarray(index.files, dtype=object)
    hit_files = item_file[hits["item"].to_numpy(np.int64)] if len(hits) else np.zeros(0, dtype=object)
    for f, st in file_stats.items():
        mine = hits[hit_files == f] if len(hits) else hits
        files[f] = {**st, "removed": {**{r: int((mine["rule"] == r).sum()) for r in RULES}, "total": int(len(mine))},
                    "items_matched": int(mine["item"].nunique())}
    return {"rows_in": int(rows_in), "rows_out": int(rows_in - len(hits)),
            "removed": {**by_rule, "total": int(len(hits))}, "files": files,
            "items": len(index), "short_items": index.short_items, "whole_item_ngrams": index.whole_items}


# ------------------------------------------------------------------------------------------ card text
RULE_NAMES = {"exact": "exact", "ngram": "n-gram overlap", "embedding": "embedding"}


def decontam_summary(section: dict) -> list[str]:
    """Card lines for report.json's "decontamination" section: totals by rule, one line per eval file, the
    thresholds and what the SDG check dropped."""
    if not isinstance(section, dict) or "removed" not in section:
        return []
    rem, cfg = section["removed"], section.get("config") or {}
    rules = ", ".join(f"{RULE_NAMES[r]}: {rem.get(r, 0):,}" for r in RULES)
    out = [f"**{rem.get('total', 0):,}** rows removed because they overlap the evaluation questions ({rules}), "
           f"before the split, from {section.get('rows_in', 0):,} rows.", ""]
    out += ["| eval file | format | items | skipped | rows removed | exact | n-gram | embedding |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, f in (section.get("files") or {}).items():
        r = f.get("removed") or {}
        out.append(f"| `{Path(name).name}` | {f.get('format', '')} | {f.get('items', 0):,} | "
                   f"{sum((f.get('skipped') or {}).values()):,} | {r.get('total', 0):,} | {r.get('exact', 0):,} | "
                   f"{r.get('ngram', 0):,} | {r.get('embedding', 0):,} |")
    emb = (f"embedding cosine >= {cfg.get('cosine')} between an item and a row's question"
           if cfg.get("embedding") else "embedding rule off")
    out += ["", f"Rules: the normalised item equals a row's question, title or both; a row (title, question and "
                f"answer) holds >= {cfg.get('ngram_overlap')} of the item's {cfg.get('ngram')}-word n-grams (items of "
                f"{cfg.get('min_words')}-{int(cfg.get('ngram', 13)) - 1} words as one n-gram; "
                f"{section.get('short_items', 0):,} shorter items only exact or by embedding); {emb}."]
    syn = section.get("synthetic") or {}
    if syn.get("checked"):
        out.append(f"Synthetic rows checked the same way before acceptance: {syn['checked']:,}, dropped "
                   f"{(syn.get('removed') or {}).get('total', 0):,}.")
    return out
