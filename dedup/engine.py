"""The dedup cascade: exact -> fuzzy -> semantic, one implementation behind the pipeline's `deduplicate`,
synthetic generation's `dedup_against` and the split's `cross_split_leaks`.

Each kind finds pairs among the rows still alive at or above a threshold (`Cascade.pairs`). A step of the
cascade (`Step`) may remove rows (its dedup threshold: connected components of the duplicate pairs, all but
the survivor removed) and may keep links (its leak threshold: the pairs that tie rows to one split family).

Survivor rule (one rule for all kinds, deterministic): within a duplicate group the survivor is the row that
sorts first by (synthetic rows last, higher answer_score, higher question_score, smaller id), ids in natural
order ("qa-9" < "qa-10"). Every removed row is reported with the id it duplicates (its group's survivor) and
its similarity to it (1.0 exact, signature Jaccard fuzzy, cosine semantic).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd


from .config import MODEL_DEFAULTS, REMOVED_COLUMNS, DedupConfig
from .embed import Embedder
from .families import components
from .features import TextSource, precomputed_embeddings, sig_matrix
from .minhash import candidate_pairs, signature_jaccard
from .search import semantic_pairs
from .text import natural_key

log = logging.getLogger("lawqa.dedup")
EMPTY_PAIRS = np.zeros((0, 2), np.int64)


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


def group_survivors(labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
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


@dataclass
class Pairs:
    """Row-index pairs (i < j, positions in the features) and their similarity."""
    idx: np.ndarray = field(default_factory=lambda: EMPTY_PAIRS)
    sims: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def where(self, mask: np.ndarray) -> "Pairs":
        return Pairs(self.idx[mask], self.sims[mask])

    def at_least(self, threshold: float) -> "Pairs":
        return self.where(self.sims >= threshold)


class Cascade:
    """Finds pairs of similar rows, one method per kind, over the driver-side features of all rows."""

    def __init__(self, feats: pd.DataFrame, cfg: DedupConfig, texts: TextSource, embedder: Embedder | None = None):
        self.feats, self.cfg, self.texts = feats, cfg, texts
        self.n = len(feats)
        self._sig: np.ndarray | None = None
        self._matrix: np.ndarray | None = None  # (n, dim) embeddings, valid where _have
        self._have = np.zeros(self.n, bool)
        # an earlier cascade's Embedder holds the embeddings it made in memory (the leak check reuses dedup's)
        self.embedder = (embedder or Embedder(cfg)) if cfg.semantic else None
        self.stats: dict[str, Any] = {}

    @property
    def sig(self) -> np.ndarray:
        if self._sig is None:
            self._sig = sig_matrix(self.feats["sig"], self.cfg.num_perm)
        return self._sig

    def pairs(self, kind: str, rows: np.ndarray, threshold: float, query: np.ndarray | None) -> Pairs:
        """Pairs among `rows` (indices) with similarity >= threshold; with `query` (a mask over all rows),
        only pairs with a queried endpoint."""
        found = getattr(self, "_" + kind)(rows, threshold, query)
        if query is not None and len(found.idx):
            found = found.where(query[found.idx[:, 0]] | query[found.idx[:, 1]])
        return found

    def similarity(self, kind: str, idx: np.ndarray) -> np.ndarray:
        """Similarity of each pair, as the kind measures it."""
        if kind == "exact" or len(idx) == 0:
            return np.ones(len(idx))
        if kind == "fuzzy":
            return signature_jaccard(self.sig, idx)
        emb = self.embeddings(np.unique(idx))
        return np.einsum("ij,ij->i", emb[idx[:, 0]], emb[idx[:, 1]]).astype(np.float64)

    def _exact(self, rows: np.ndarray, threshold: float, query) -> Pairs:
        codes = pd.factorize(self.feats["exact_hash"].to_numpy()[rows])[0]
        order = np.argsort(codes, kind="stable")
        same = np.nonzero(codes[order][1:] == codes[order][:-1])[0]
        idx = np.stack([rows[order[same]], rows[order[same + 1]]], axis=1) if len(same) else EMPTY_PAIRS
        return Pairs(np.sort(idx, axis=1), np.ones(len(idx)))

    def _fuzzy(self, rows: np.ndarray, threshold: float, query) -> Pairs:
        t = time.perf_counter()
        local, js = candidate_pairs(self.sig[rows], threshold)
        self.stats["lsh_seconds"] = self.stats.get("lsh_seconds", 0.0) + time.perf_counter() - t
        return Pairs(np.sort(rows[local], axis=1), js)

    def embeddings(self, rows: np.ndarray) -> np.ndarray:
        """A (n, dim) matrix whose given rows hold their embeddings (each row embedded once, cache first)."""
        todo = rows[~self._have[rows]] if self._matrix is not None else rows
        have, made = precomputed_embeddings(self.feats, todo)
        for part, pre in ((todo[have], made), (todo[~have], None)):  # made where the rows were cleaned; the rest
            if len(part):
                self._embed(part, pre)
        return self._matrix if self._matrix is not None else np.zeros((self.n, 1), np.float32)

    def _embed(self, rows: np.ndarray, precomputed: np.ndarray | None) -> None:
        t = time.perf_counter()
        hashes = self.feats["text_hash"].to_numpy()[rows].tolist()
        texts = [""] * len(rows) if precomputed is not None else self.texts.texts(rows, hashes, self.embedder.cache)
        emb, est = self.embedder.embed(texts, hashes, precomputed=precomputed)
        if self._matrix is None:
            self._matrix = np.zeros((self.n, emb.shape[1]), np.float32)
        self._matrix[rows] = emb
        self._have[rows] = True
        st = self.stats.setdefault("embed", {"seconds": 0.0, "cache_hits": 0, "cache_misses": 0})
        st["seconds"] += time.perf_counter() - t
        st["cache_hits"] += est["cache_hits"]
        st["cache_misses"] += est["cache_misses"]
        st.update(precision=est["precision"] or st.get("precision"), threads=est["threads"],
                  model_calls=self.embedder.calls)

    def _semantic(self, rows: np.ndarray, threshold: float, query) -> Pairs:
        emb = self.embeddings(rows)[rows]
        cfg = self.cfg
        # the corpus's typical nearest-neighbour similarity is measured on a fixed sample of the rows too
        # (with a query mask only the queried rows would be searched)
        searched = None if query is None else query[rows] | _sample_mask(len(rows), NEAREST_SAMPLE)
        local, sims, st = semantic_pairs(emb, threshold, cfg.semdedup_clusters, cfg.cluster_probe, cfg.seed,
                                         cfg.device, searched, cfg.max_neighbours)
        self.stats["search"] = {"cluster_seconds": st["cluster_s"], "search_seconds": st["search_s"],
                                "clusters": st["clusters"]}
        self.stats["nearest"] = (rows, st["nearest"])
        return Pairs(np.sort(rows[local], axis=1), sims)

    def corpus_floor(self) -> float | None:
        """Median nearest-neighbour cosine of the rows searched + the model's margin: in a corpus whose rows
        are all close to each other (a narrow vocabulary) the calibrated threshold would call most rows
        duplicates of each other; a default threshold is raised to this floor there."""
        rows, nearest = self.stats.get("nearest", (None, None))
        if nearest is None or np.isnan(nearest).all():
            return None
        median = float(np.nanmedian(nearest))
        floor = median + MODEL_DEFAULTS[self.cfg.model_family]["nn_margin"]
        self.stats["corpus_floor"] = {"median_nearest": round(median, 4), "floor": round(floor, 4)}
        return floor


NEAREST_SAMPLE = 2000


def _sample_mask(n: int, k: int) -> np.ndarray:
    """A fixed, evenly spaced sample of k of n positions."""
    mask = np.zeros(n, bool)
    mask[np.unique(np.linspace(0, n - 1, num=min(n, k)).astype(np.int64))] = True
    return mask


@dataclass
class Step:
    """One kind of the cascade: remove duplicates at `remove_at`, keep links at `link_at` (None: don't)."""
    kind: str
    remove_at: float | None
    link_at: float | None


@dataclass
class Outcome:
    """What a cascade run found: removals (row, survivor row, kind, similarity), links per kind, alive mask."""
    alive: np.ndarray
    removed: list = field(default_factory=list)  # (row, survivor, kind, similarity)
    links: dict = field(default_factory=dict)  # kind -> Pairs at or above its link threshold
    thresholds: dict = field(default_factory=dict)  # kind -> the thresholds used (after _adapt)
    seconds: dict = field(default_factory=dict)


def steps_for(cfg: DedupConfig, remove: bool = True) -> list[Step]:
    """The cascade of a config: exact and fuzzy always link (for families and leaks), semantic when enabled."""
    out = [Step("exact", 1.0 if remove and cfg.exact else None, 1.0),
           Step("fuzzy", cfg.fuzzy_jaccard if remove and cfg.fuzzy else None, cfg.leak_jaccard)]
    if cfg.semantic:
        out.append(Step("semantic", 1.0 - cfg.eps if remove else None, cfg.leak_cos))
    return out


def run_cascade(cascade: Cascade, steps: list[Step], rank: np.ndarray | None = None,
                query: np.ndarray | None = None, removable: np.ndarray | None = None,
                keep_pair: Callable[[np.ndarray], np.ndarray] | None = None) -> Outcome:
    """Run the steps in order, each on the rows the previous ones left. `query`: only pairs touching these
    rows; `removable`: only these rows may be removed; `keep_pair(idx) -> mask` drops pairs that must not
    count (the leak check keeps cross-split pairs only)."""
    out = Outcome(alive=np.ones(cascade.n, bool))
    removable = np.ones(cascade.n, bool) if removable is None else removable
    for step in steps:
        t = time.perf_counter()
        rows = np.nonzero(out.alive)[0]
        threshold = min(x for x in (step.remove_at, step.link_at) if x is not None)
        found = cascade.pairs(step.kind, rows, threshold, query) if len(rows) > 1 else Pairs()
        if keep_pair is not None and len(found.idx):
            found = found.where(keep_pair(found.idx))
        step = _adapt(step, cascade)
        out.thresholds[step.kind] = {"remove_at": step.remove_at, "link_at": step.link_at}
        if step.link_at is not None:
            out.links[step.kind] = found.at_least(step.link_at)
        if step.remove_at is not None:
            gone = duplicate_groups(found.at_least(step.remove_at), rank, removable)
            sims = cascade.similarity(step.kind, gone)
            out.removed += [(int(a), int(b), step.kind, float(s)) for (a, b), s in zip(gone, sims)]
            out.alive[gone[:, 0]] = False
        out.seconds[step.kind] = time.perf_counter() - t
    return out


def _adapt(step: Step, cascade: Cascade) -> Step:
    """A semantic step's default thresholds raised to the corpus floor (Cascade.corpus_floor); thresholds
    the user set (--semdedup-eps, --leak-cosine) are used as given."""
    cfg = cascade.cfg
    if step.kind != "semantic":
        return step
    floor = cascade.corpus_floor()
    if floor is None:
        return step

    def raise_(value, user_set):
        return value if value is None or user_set else min(1.0, max(value, floor))
    return Step(step.kind, raise_(step.remove_at, cfg.semdedup_eps is not None),
                raise_(step.link_at, cfg.leak_cosine is not None))


def duplicate_groups(dup: Pairs, rank: np.ndarray, removable: np.ndarray) -> np.ndarray:
    """(m, 2) array of (removed row, its survivor): all but the best-ranked row of each connected component
    of the duplicate pairs, where removable."""
    if len(dup.idx) == 0:
        return EMPTY_PAIRS
    nodes, local = np.unique(dup.idx, return_inverse=True)
    labels = components(len(nodes), local.reshape(-1, 2))
    surv = nodes[group_survivors(labels, rank[nodes])]
    gone = np.nonzero((surv != nodes) & removable[nodes])[0]
    return np.stack([nodes[gone], surv[gone]], axis=1)


def removed_frame(outcome: Outcome, ids: np.ndarray) -> pd.DataFrame:
    """The removed rows as REMOVED_COLUMNS, in removal order."""
    if not outcome.removed:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "similarity" else object) for c in REMOVED_COLUMNS})
    rows = [{"id": ids[a], "kind": k, "duplicate_of": ids[b], "similarity": round(s, 6)}
            for a, b, k, s in outcome.removed]
    return pd.DataFrame(rows, columns=REMOVED_COLUMNS)
