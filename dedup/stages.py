"""The three uses of the cascade: the pipeline's dedup stage (`deduplicate`), synthetic generation's
`dedup_against` and the leak check across splits (`cross_split_leaks`)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from partitions import is_partitioned
from records import drop_ids

from .config import NEAREST_NONDUPLICATE, REMOVAL_KINDS, THRESHOLD_NOTES, DedupConfig
from .engine import Cascade, Outcome, removed_frame, run_cascade, steps_for, survivor_order
from .families import family_keys, size_distribution
from .features import TextSource, combine_features, gather_features

log = logging.getLogger("lawqa.dedup")
HELD_OUT = ("val", "test")


@dataclass
class DedupResult:
    kept: Any  # pandas frame, or partitions on the cluster (Partitions or Dask) for such an input
    removed: pd.DataFrame
    families: pd.Series  # id -> family key
    stats: dict = field(default_factory=dict)
    features: pd.DataFrame | None = None  # every input row's features (the leak check reuses them) ...
    embedder: Any = None  # ... and the Embedder, whose cache holds the embeddings made


def _start(records, cfg: DedupConfig, client, features=None, known=None, embedder=None
           ) -> tuple[pd.DataFrame, dict, Cascade]:
    if features is None:
        feats, timing = gather_features(records, cfg, client, known)
    else:
        feats, timing = combine_features(features)
        timing["features_wall_seconds"] = 0.0  # spent in the clean + filter tasks, counted in their stages
    if feats["id"].duplicated().any():
        raise ValueError("dedup: ids are not unique")
    return feats, timing, Cascade(feats, cfg, TextSource(records, client), embedder)


def deduplicate(records, cfg: DedupConfig | None = None, client=None,
                extra_links: Iterable[tuple[str, str]] | None = None,
                features: list[pd.DataFrame] | None = None) -> DedupResult:
    """Exact, then fuzzy, then semantic dedup over all rows (all splits together), and the split families
    (near-duplicates at the leak thresholds, source rows and `extra_links`: pairs of ids that must share a
    family). A partitioned input stays on the cluster, only features and uncached texts move.
    `features`, if given, are the rows' `partition_features` per partition, in order (computed where the
    partitions were made); otherwise they are computed here."""
    cfg = cfg or DedupConfig()
    t0 = time.perf_counter()
    feats, timing, cascade = _start(records, cfg, client, features)
    ids = feats["id"].to_numpy(dtype=object)
    outcome = run_cascade(cascade, steps_for(cfg), survivor_order(feats))
    removed = removed_frame(outcome, ids)
    t = time.perf_counter()
    families, fam_stats = _families(feats, cfg, outcome, extra_links)
    fam_stats["seconds"] = time.perf_counter() - t
    if is_partitioned(records):  # stays on the cluster: the caller streams it
        kept = records.map_partitions(drop_ids, set(removed["id"]), meta=records._meta)
    else:
        kept = records.reset_index(drop=True)[outcome.alive].reset_index(drop=True)
    stats = _dedup_stats(cfg, cascade, outcome, removed, timing)
    stats["families"] = fam_stats
    stats["seconds_total"] = time.perf_counter() - t0
    log.info("dedup: %d rows in, %s removed, %d out (%.1fs)", len(feats),
             removed["kind"].value_counts().to_dict(), stats["rows_out"], stats["seconds_total"])
    return DedupResult(kept=kept, removed=removed, families=families, stats=stats, features=feats,
                       embedder=cascade.embedder)


def _families(feats: pd.DataFrame, cfg: DedupConfig, outcome: Outcome, extra_links) -> tuple[pd.Series, dict]:
    """Bounded families: exact copies and extra_links are forced; Jaccard/cosine links join strongest first."""
    ids = feats["id"].astype(str).tolist()
    pos = {v: i for i, v in enumerate(ids)}
    extra = [(pos[a], pos[b]) for a, b in (extra_links or ()) if a in pos and b in pos]
    skipped = sum(1 for _ in (extra_links or ())) - len(extra)
    forced = [outcome.links["exact"].idx, np.asarray(extra, np.int64).reshape(-1, 2)]
    links, strength = [], []
    for kind in ("fuzzy", "semantic"):
        if kind in outcome.links:
            at = outcome.thresholds[kind]["link_at"]
            found = outcome.links[kind]
            links.append(found.idx)
            strength.append((found.sims - at) / max(1e-9, 1.0 - at))
    families, stats = family_keys(ids, feats["source_id"].astype(str).tolist(), np.concatenate(forced),
                                  np.concatenate(links) if links else np.zeros((0, 2), np.int64),
                                  np.concatenate(strength) if strength else np.zeros(0), cfg.family_cap(len(ids)))
    kept_sizes = families[outcome.alive].value_counts().to_numpy()
    stats.update(extra_links=len(extra), extra_links_skipped=skipped, kept_rows=size_distribution(kept_sizes))
    return families, stats


def _margin(cfg: DedupConfig, cascade: Cascade, outcome: Outcome) -> dict:
    """The run's own margin: each kept row's most similar other row, where that is below the threshold."""
    rows, nearest = cascade.stats.get("nearest", (np.zeros(0, np.int64), np.zeros(0)))
    threshold = outcome.thresholds["semantic"]["remove_at"]
    vals = nearest[outcome.alive[rows] & (nearest < threshold) & ~np.isnan(nearest)] if len(rows) else nearest
    if not len(vals):
        return {}
    q = np.quantile(vals, [0.5, 0.99, 1.0])
    return {"median": round(float(q[0]), 4), "p99": round(float(q[1]), 4), "max": round(float(q[2]), 4),
            "margin": round(threshold - float(q[2]), 4)}


def _model_stats(cfg: DedupConfig, cascade: Cascade, outcome: Outcome) -> dict:
    """Which model and threshold ran, what the default means (measured), and this run's margin."""
    used = outcome.thresholds.get("semantic", {})
    threshold = used.get("remove_at", 1.0 - cfg.eps)
    return {"name": cfg.model, "family": cfg.model_family, "threshold": round(threshold, 6),
            "calibrated_threshold": round(1.0 - cfg.eps, 6), "eps": cfg.eps,
            "leak_cosine": round(used.get("link_at", cfg.leak_cos), 6), "leak_jaccard": cfg.leak_jaccard,
            "corpus_floor": cascade.stats.get("corpus_floor"),
            "measured": THRESHOLD_NOTES[cfg.model_family] if cfg.semdedup_eps is None else None,
            "nearest_nonduplicate_measured": NEAREST_NONDUPLICATE[cfg.model_family],
            "nearest_nonduplicate_this_run": _margin(cfg, cascade, outcome)}


def _dedup_stats(cfg: DedupConfig, cascade: Cascade, outcome: Outcome, removed: pd.DataFrame,
                 timing: dict) -> dict:
    counts = removed["kind"].value_counts()
    links = {k: int(len(p.idx)) for k, p in outcome.links.items()}
    embed = cascade.stats.get("embed", {})
    timing = dict(timing)
    # embeddings the clean + filter tasks made (dedup.features.worker_embedding): their CPU seconds, summed
    worker_embed = {k: timing.pop(k) for k in ("worker_embed_cpu_seconds",) if k in timing}
    stats: dict[str, Any] = {
        "config": cfg.describe(), "rows_in": cascade.n, "rows_out": int(outcome.alive.sum()),
        "removed_total": int(len(removed)), "model": _model_stats(cfg, cascade, outcome) if cfg.semantic else None,
        "exact": {"removed": int(counts.get("exact", 0)), "seconds": outcome.seconds.get("exact", 0.0)},
        "fuzzy": {"removed": int(counts.get("fuzzy", 0)), **timing,
                  "lsh_seconds": cascade.stats.get("lsh_seconds", 0.0),
                  "seconds": outcome.seconds.get("fuzzy", 0.0) + timing["features_wall_seconds"],
                  "leak_pairs": links.get("fuzzy", 0)},
        "semantic": {"removed": int(counts.get("semantic", 0)), "seconds": outcome.seconds.get("semantic", 0.0),
                     "embed_seconds": embed.get("seconds", 0.0), "leak_pairs": links.get("semantic", 0),
                     **{k: embed.get(k) for k in ("cache_hits", "cache_misses", "precision", "threads",
                                                  "model_calls")},
                     **worker_embed, **cascade.stats.get("search", {})},
    }
    return stats


def dedup_against(new_rows: pd.DataFrame, existing_rows: pd.DataFrame, cfg: DedupConfig | None = None
                  ) -> tuple[pd.DataFrame, dict]:
    """New rows that duplicate nothing: drops new rows that duplicate (exact/fuzzy/semantic, dedup thresholds)
    an existing row or a better new row, and new rows that match a val/test row at the leak thresholds (kind
    "leak": a paraphrase of a held-out row never lands in train). Existing rows always stay."""
    cfg = cfg or DedupConfig()
    t0 = time.perf_counter()
    new_rows, existing_rows = new_rows.reset_index(drop=True), existing_rows.reset_index(drop=True)
    ne, nn = len(existing_rows), len(new_rows)
    stats: dict[str, Any] = {"new_in": nn, "existing": ne, "removed": {k: 0 for k in REMOVAL_KINDS},
                             "cache_hits": 0, "cache_misses": 0, "removed_rows": [], "new_out": nn}
    if nn == 0:
        return new_rows, stats
    both = pd.concat([existing_rows, new_rows], ignore_index=True)
    feats, _, cascade = _start(both, cfg, None)
    is_new = np.r_[np.zeros(ne, bool), np.ones(nn, bool)]
    # existing rows rank before every new row; among new rows the survivor rule decides
    rank = np.r_[np.arange(ne), ne + survivor_order(feats.iloc[ne:].reset_index(drop=True))]
    outcome = run_cascade(cascade, steps_for(cfg), rank, query=is_new, removable=is_new)
    split = both["split"].astype(str).to_numpy() if "split" in both else np.full(ne + nn, "")
    _remove_leaks(outcome, is_new, np.isin(split, HELD_OUT) & ~is_new)
    removed = removed_frame(outcome, feats["id"].to_numpy(dtype=object))
    kept = new_rows[outcome.alive[ne:]].reset_index(drop=True)
    embed = cascade.stats.get("embed", {})
    stats["removed"].update(removed["kind"].value_counts().to_dict())
    stats.update(cache_hits=embed.get("cache_hits", 0), cache_misses=embed.get("cache_misses", 0),
                 model_calls=embed.get("model_calls", 0), removed_rows=removed.to_dict("records"),
                 new_out=int(len(kept)), seconds=time.perf_counter() - t0)
    return kept, stats


def _remove_leaks(outcome: Outcome, is_new: np.ndarray, held_out: np.ndarray) -> None:
    """Remove each new row still alive that links (any kind, leak thresholds) to a held-out row; it is
    reported as a duplicate of its most similar held-out row."""
    best: dict[int, tuple[float, int]] = {}
    for found in outcome.links.values():
        for (a, b), s in zip(found.idx.tolist(), found.sims.tolist()):
            for new, old in ((a, b), (b, a)):
                if is_new[new] and held_out[old] and outcome.alive[new] and s > best.get(new, (-1.0, 0))[0]:
                    best[new] = (s, old)
    for new in sorted(best):
        s, old = best[new]
        outcome.removed.append((new, old, "leak", s))
        outcome.alive[new] = False


def cross_split_leaks(records_with_split, cfg: DedupConfig | None = None, max_examples: int = 10,
                      client=None, known_features: pd.DataFrame | None = None, embedder=None) -> dict:
    """Pairs of rows in different splits at or above the leak thresholds (exact copies, signature Jaccard >=
    leak_jaccard, cosine >= leak_cosine among each row's nearest max_neighbours). Must be 0 after a family
    split. A partitioned input stays on the cluster: only features and uncached texts reach the driver.
    `known_features`: features made earlier for most of these rows (`DedupResult.features`): for those rows
    only the id and split are read; the rest (synthetic rows) are computed. `embedder`: the dedup stage's
    (`DedupResult.embedder`), whose in-memory cache already holds most rows' embeddings."""
    cfg = cfg or DedupConfig()
    t0 = time.perf_counter()
    feats, _, cascade = _start(records_with_split, cfg, client, known=known_features, embedder=embedder)
    out: dict[str, Any] = {"rows": len(feats), "exact_pairs": 0, "jaccard_pairs": 0, "cosine_pairs": 0,
                           "examples": [], "total": 0,
                           "thresholds": {"jaccard": cfg.leak_jaccard, "cosine": cfg.leak_cos,
                                          "neighbours_per_row": cfg.max_neighbours}}
    split = feats["split"].astype(str).to_numpy() if "split" in feats else np.full(len(feats), "")
    outcome = run_cascade(cascade, steps_for(cfg, remove=False),
                          keep_pair=lambda idx: split[idx[:, 0]] != split[idx[:, 1]])
    if "semantic" in outcome.thresholds:  # a default leak cosine may have risen to the corpus floor
        out["thresholds"]["cosine"] = outcome.thresholds["semantic"]["link_at"]
    ids = feats["id"].astype(str).to_numpy()
    names = {"exact": "exact_pairs", "fuzzy": "jaccard_pairs", "semantic": "cosine_pairs"}
    label = {"fuzzy": "jaccard", "semantic": "cosine"}
    for kind, found in outcome.links.items():
        out[names[kind]] = int(len(found.idx))
        if kind in label:
            out["examples"] += [{"a": ids[a], "b": ids[b], "kind": label[kind], "similarity": round(float(s), 4)}
                                for (a, b), s in zip(found.idx[:max_examples], found.sims[:max_examples])]
    out["examples"] = out["examples"][:2 * max_examples]
    keys = np.concatenate([p.idx[:, 0] * len(feats) + p.idx[:, 1] for p in outcome.links.values()])
    out["total"] = int(len(np.unique(keys)))
    if cfg.semantic:
        embed = cascade.stats.get("embed", {})
        out.update(cache_hits=embed.get("cache_hits", 0), cache_misses=embed.get("cache_misses", 0))
    out["seconds"] = time.perf_counter() - t0
    return out
