"""Per-row features computed where the rows live (per partition on the cluster) and gathered on the driver: ids,
survivor scores, hashes and MinHash signatures -- never the text. Texts reach the driver only for embedding, and only
those the embedding cache lacks."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from partitions import compute, is_partitioned

from .config import DedupConfig
from .minhash import minhash_signatures
from .text import doc_texts, exact_hashes, fold, text_hashes

EXTRA_COLUMNS = ("split",)  # carried into the features when the input has them (the leak check needs split)


def partition_features(pdf: pd.DataFrame, shingle: int, num_perm: int, seed: int) -> pd.DataFrame:
    """Per partition: exact hash, embed-text hash and MinHash signature (as bytes) of each row."""
    texts = doc_texts(pdf)
    folded = [fold(t) for t in texts]  # once, for the exact key and the words
    out = pd.DataFrame({
        "id": pdf["id"].astype(str).to_numpy(),
        "source_id": (pdf["source_id"] if "source_id" in pdf else pdf["id"]).astype(str).to_numpy(),
        "synthetic": (pdf["synthetic"] if "synthetic" in pdf else False),
        "answer_score": pdf["answer_score"] if "answer_score" in pdf else 0,
        "question_score": pdf["question_score"] if "question_score" in pdf else 0,
        "exact_hash": exact_hashes(texts, folded),
        "text_hash": text_hashes(texts),
    }, index=pdf.index)
    out["synthetic"] = out["synthetic"].fillna(False).astype(bool)
    out["answer_score"] = out["answer_score"].fillna(0).astype(np.int64)
    out["question_score"] = out["question_score"].fillna(0).astype(np.int64)
    for col in EXTRA_COLUMNS:
        if col in pdf:
            out[col] = pdf[col].astype(str).to_numpy()
    t = time.perf_counter()
    out["sig"] = [row.tobytes() for row in minhash_signatures(texts, shingle, num_perm, seed, folded=folded)]
    out["_sig_s"] = 0.0
    if len(out):  # CPU seconds of this partition's signatures, summed on the driver
        out.iloc[0, out.columns.get_loc("_sig_s")] = time.perf_counter() - t
    return out


def _meta(extra: list[str]) -> pd.DataFrame:
    cols = {"id": object, "source_id": object, "synthetic": bool, "answer_score": np.int64,
            "question_score": np.int64, "exact_hash": object, "text_hash": object,
            **{c: object for c in extra}, "sig": object, "_sig_s": np.float64}
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})


def kept_features(marked: pd.DataFrame, drop_col: str, word_counts, shingle: int, num_perm: int,
                  seed: int, embed_cfg: DedupConfig | None = None) -> pd.DataFrame:
    """partition_features of the rows a filter kept (`drop_col == ""`): computed in the clean + filter task,
    while the cleaned text is in the worker's memory, so dedup needs no second pass over the partitions. (A
    summarizer of filters.clean_and_filter_partition: `word_counts` is not needed here.) With `embed_cfg`
    (`worker_embedding`), each row's embedding too, as float32 bytes in an "emb" column."""
    kept = marked[marked[drop_col] == ""]
    out = partition_features(kept, shingle, num_perm, seed)
    if embed_cfg is not None and len(kept):
        from .embed import Embedder

        t = time.perf_counter()
        emb = Embedder(embed_cfg)._encode(doc_texts(kept))
        out["emb"] = [row.tobytes() for row in emb]
        out["_emb_s"] = 0.0  # CPU seconds of this partition's embeddings, summed on the driver
        out.iloc[0, out.columns.get_loc("_emb_s")] = time.perf_counter() - t
    return out


def worker_embedding(cfg: DedupConfig) -> DedupConfig | None:
    """The config the clean + filter tasks embed with, or None where the driver should embed instead.

    The static model is small and runs no torch: each worker embeds its own rows while their text is in memory,
    in parallel with the parsing, instead of the driver embedding them all after fetching the texts back. Not
    MiniLM (one model copy and the torch threads belong to the driver), and not when the embedding cache already
    holds embeddings for this model (a rerun: the workers would redo what the cache has)."""
    if not cfg.semantic or cfg.model_family != "static" or cfg.device != "cpu":
        return None
    from dataclasses import replace

    from .embed import Embedder

    cache_dir = Embedder(cfg).cache.dir
    if cache_dir is not None and any(cache_dir.glob("shard-*.npz")):
        return None
    return replace(cfg, embedding_cache=None, progress=False)


def precomputed_embeddings(feats: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(mask over `rows`, their embeddings) for the rows whose features carry one (the "emb" column)."""
    if "emb" not in feats or not len(rows):
        return np.zeros(len(rows), bool), None
    col = feats["emb"].to_numpy(dtype=object)[rows]
    have = np.fromiter((isinstance(v, bytes) and len(v) > 0 for v in col), bool, count=len(rows))
    if not have.any():
        return have, None
    return have, np.frombuffer(b"".join(col[have]), dtype=np.float32).reshape(int(have.sum()), -1)


def combine_features(frames: list[pd.DataFrame]) -> tuple[pd.DataFrame, dict]:
    """Per-partition features (in partition order) as one frame with a 0..n-1 index, and their signature CPU
    seconds."""
    nonempty = [f for f in frames if len(f)]
    feats = pd.concat(nonempty, ignore_index=True) if nonempty else (frames[0] if frames else _meta([]))
    timing = {"signature_cpu_seconds": float(feats["_sig_s"].sum())}
    if "_emb_s" in feats:
        timing["worker_embed_cpu_seconds"] = float(feats["_emb_s"].sum())
    return feats.drop(columns=[c for c in ("_sig_s", "_emb_s") if c in feats]), timing


def gather_features(records, cfg: DedupConfig, client=None, known: pd.DataFrame | None = None
                    ) -> tuple[pd.DataFrame, dict]:
    """(features of every row, 0..n-1 index; timing) of a pandas frame or partitions (Partitions or Dask).
    `known`: features already made for some of these rows (e.g. by the dedup stage, in its order; keyed by id):
    only the ids and EXTRA_COLUMNS are read for those, and only the other rows' features are computed."""
    t0 = time.perf_counter()
    args = (cfg.fuzzy_shingle, cfg.num_perm, cfg.seed)
    if known is not None:
        feats, timing = _features_with_known(records, known, args, client)
    elif is_partitioned(records):
        extra = [c for c in EXTRA_COLUMNS if c in records.columns]
        frames = [compute(records.map_partitions(partition_features, *args, meta=_meta(extra)), client)]
        feats, timing = combine_features(frames)
    else:
        feats, timing = combine_features([partition_features(records, *args)])
    timing["features_wall_seconds"] = time.perf_counter() - t0
    return feats, timing


def _rows_features(pdf: pd.DataFrame, ids: frozenset, shingle: int, num_perm: int, seed: int) -> pd.DataFrame:
    """partition_features of the rows whose id is in `ids`."""
    return partition_features(pdf[pdf["id"].astype(str).isin(ids)], shingle, num_perm, seed)


def _features_with_known(records, known: pd.DataFrame, args: tuple, client) -> tuple[pd.DataFrame, dict]:
    """gather_features for rows of which `known` covers most: the rows' ids (and EXTRA_COLUMNS) in order, the
    known rows' features taken from `known`, the others computed (one more pass over the rows, if any)."""
    extra = [c for c in EXTRA_COLUMNS if c in records.columns]
    rows = records[["id", *extra]]
    rows = (compute(rows, client) if is_partitioned(records) else rows).reset_index(drop=True)
    rows["id"] = rows["id"].astype(str)
    for col in extra:
        rows[col] = rows[col].astype(str)
    base = known.drop(columns=[c for c in (*EXTRA_COLUMNS, "_sig_s") if c in known.columns]).set_index("id")
    new_ids = frozenset(rows["id"][~rows["id"].isin(base.index)])
    timing = {"signature_cpu_seconds": 0.0}
    if new_ids:
        if is_partitioned(records):
            import dask

            # the id set goes to the workers once (one graph key), not inside every partition's task
            part = records.map_partitions(_rows_features, dask.delayed(new_ids), *args, meta=_meta(extra))
            new, timing = combine_features([compute(part, client)])
        else:
            new, timing = combine_features([_rows_features(records, new_ids, *args)])
        base = pd.concat([base, new.drop(columns=extra).set_index("id")])
    feats = base.loc[rows["id"]].reset_index()
    for col in extra:
        feats[col] = rows[col].to_numpy()
    return feats, timing


def sig_matrix(col: pd.Series, num_perm: int) -> np.ndarray:
    if len(col) == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    return np.frombuffer(b"".join(col.tolist()), dtype=np.uint32).reshape(len(col), num_perm)


def texts_with_hashes(pdf: pd.DataFrame, wanted: frozenset) -> pd.DataFrame:
    """Per partition: the embedding texts whose hash is in `wanted` (and their hashes)."""
    texts = doc_texts(pdf)
    keep = [(h, t) for h, t in zip(text_hashes(texts), texts) if h in wanted]
    return pd.DataFrame(keep, columns=["text_hash", "text"])


class TextSource:
    """The texts of rows by position: read from a pandas frame, or fetched from partitions only for the
    hashes the embedding cache lacks ("" elsewhere: the Embedder reads a text only on a cache miss)."""

    def __init__(self, records, client=None):
        self.records, self.client = records, client
        self.frame = None if is_partitioned(records) else records.reset_index(drop=True)

    def texts(self, rows: np.ndarray, hashes: list[str], cache) -> list[str]:
        if self.frame is not None:
            return doc_texts(self.frame.iloc[rows])
        pos, _ = cache.lookup(hashes)
        wanted = frozenset(h for h, p in zip(hashes, pos) if p < 0)
        if not wanted:
            return [""] * len(hashes)
        meta = pd.DataFrame({"text_hash": pd.Series(dtype=object), "text": pd.Series(dtype=object)})
        fetched = compute(self.records.map_partitions(texts_with_hashes, wanted, meta=meta), self.client)
        by_hash = dict(zip(fetched["text_hash"], fetched["text"]))
        return [by_hash.get(h, "") for h in hashes]
