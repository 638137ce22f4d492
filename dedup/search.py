"""Semantic pair search: seeded k-means, then each point against the points of its nearest clusters,
keeping each point's `max_neighbours` most similar rows at or above a threshold (numpy, or torch on a GPU)."""
from __future__ import annotations

import logging
import time

import numpy as np

log = logging.getLogger("lawqa.dedup")


def kmeans_labels(emb: np.ndarray, k: int, seed: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centroids) of seeded k-means; cuML on --device gpu when importable, else numpy."""
    if device == "gpu":
        try:
            from cuml.cluster import KMeans as CuKMeans

            km = CuKMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=100, output_type="numpy")
            km.fit(emb)
            return np.asarray(km.labels_, dtype=np.int64), np.asarray(km.cluster_centers_, dtype=np.float32)
        except ImportError:
            log.warning("--device gpu: cuML not importable, k-means runs on CPU (sklearn)")
    return spherical_kmeans(emb, k, seed)


def spherical_kmeans(emb: np.ndarray, k: int, seed: int, iters: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means on L2-normalized rows (assignment by the largest dot product), in numpy: the clusters
    only route the pair search, so a few Lloyd steps suffice, and it avoids sklearn's thread-pool start-up,
    which cost seconds per call on a loaded 2-core machine."""
    rng = np.random.default_rng(seed)
    cents = emb[np.sort(rng.choice(len(emb), size=k, replace=False))].copy()
    labels = np.zeros(len(emb), np.int64)
    for step in range(iters):
        new = np.argmax(emb @ cents.T, axis=1)
        if step and np.array_equal(new, labels):
            break
        moved = new != labels
        # a cluster whose members are the ones it had keeps its centroid (the same sum of the same rows)
        changed = np.arange(k) if not step else np.unique(np.r_[labels[moved], new[moved]])
        labels = new
        order = np.argsort(labels, kind="stable")  # each cluster's members in row order, as emb[labels == c]
        bounds = np.searchsorted(labels[order], np.arange(k + 1))
        for c in changed.tolist():
            if bounds[c + 1] > bounds[c]:
                m = emb[order[bounds[c]:bounds[c + 1]]].sum(axis=0)
                cents[c] = m / max(float(np.linalg.norm(m)), 1e-12)
    return labels, cents.astype(np.float32)


def _top_neighbours_numpy(emb: np.ndarray):
    def top(q: np.ndarray, db: np.ndarray, k: int, threshold: float):
        sims = emb[q] @ emb[db].T
        at = np.minimum(np.searchsorted(db, q), len(db) - 1)  # q and db are sorted: each query's own column
        own = np.nonzero(db[at] == q)[0]
        sims[own, at[own]] = -np.inf  # a row is not its own neighbour
        hit = sims >= threshold
        # a row with at most k hits has all of them among its k nearest: only rows with more need the top k
        # (np.argpartition over every row cost most of the search)
        over = np.nonzero(np.count_nonzero(hit, axis=1) > k)[0]
        hit[over] = False
        ii, jj = np.divmod(np.flatnonzero(hit), hit.shape[1])  # np.nonzero of a 2-d mask is ~3x slower
        if len(over):
            cols = np.argpartition(-sims[over], k - 1, axis=1)[:, :k]
            oi, oj = np.nonzero(np.take_along_axis(sims[over], cols, axis=1) >= threshold)
            ii, jj = np.concatenate([ii, over[oi]]), np.concatenate([jj, cols[oi, oj]])
            order = np.argsort(ii, kind="stable")  # query order, as if every row had been taken in turn
            ii, jj = ii[order], jj[order]
        return ii, jj, sims[ii, jj], sims.max(axis=1)
    return top


def _top_neighbours(emb: np.ndarray, device: str):
    """top(query idx, db idx, k, threshold) -> (query positions, db columns, similarities) of the pairs at or
    above `threshold` among each query's k most similar db rows, and each query's best similarity.
    On --device gpu the embeddings go to the GPU once and only the top-k come back."""
    if device == "gpu":
        import torch

        if torch.cuda.is_available():
            et = torch.from_numpy(np.ascontiguousarray(emb)).cuda()

            def top(q: np.ndarray, db: np.ndarray, k: int, threshold: float):
                qt, dt = torch.from_numpy(q).cuda(), torch.from_numpy(db).cuda()
                sims = et[qt] @ et[dt].T
                sims[qt[:, None] == dt[None, :]] = -float("inf")
                vals, cols = torch.topk(sims, min(k, sims.shape[1]), dim=1)
                cols, vals = cols.cpu().numpy(), vals.float().cpu().numpy()
                ii, jj = np.nonzero(vals >= threshold)
                return ii, cols[ii, jj], vals[ii, jj], np.max(vals, axis=1)
            return top
    return _top_neighbours_numpy(emb)


def _probe_plan(emb: np.ndarray, clusters: int, probe: int, seed: int, device: str):
    """(k, each point's `probe` nearest clusters, its nearest cluster)."""
    n = len(emb)
    k = min(clusters, max(1, n // 50))
    if k <= 1:
        return 1, np.zeros((n, 1), np.int64), np.zeros(n, np.int64)
    _, cents = kmeans_labels(emb, k, seed, device)
    top = np.argsort(-(emb @ cents.T), axis=1, kind="stable")[:, :min(probe, k)]
    return k, top, top[:, 0]


def semantic_pairs(emb: np.ndarray, threshold: float, clusters: int, probe: int, seed: int,
                   device: str = "cpu", query_mask: np.ndarray | None = None, max_neighbours: int = 32,
                   block: int = 2048) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pairs (i<j) with cosine >= threshold among each queried point's `max_neighbours` nearest points,
    searched within k-means clusters: the points whose nearest cluster is c are compared with every point
    having c among its `probe` nearest clusters. `query_mask`: search only from these points.
    Stats: cluster/search seconds, clusters, and `nearest` (each queried point's best similarity found)."""
    n = len(emb)
    t0 = time.perf_counter()
    nearest = np.full(n, np.nan)
    if n < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0), {"cluster_s": 0.0, "search_s": 0.0, "clusters": 0,
                                                          "nearest": nearest}
    k, top, primary = _probe_plan(emb, clusters, probe, seed, device)
    cluster_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    search = _top_neighbours(emb, device)
    qmask = np.ones(n, bool) if query_mask is None else query_mask
    found_a, found_b, found_s = [], [], []
    for c in range(k):
        db = np.nonzero((top == c).any(axis=1))[0]
        qs = np.nonzero((primary == c) & qmask)[0]
        for s in range(0, len(qs) if len(db) > 1 else 0, block):
            q = qs[s: s + block]
            ii, cols, sims, best = search(q, db, max_neighbours, threshold)
            nearest[q] = best
            found_a.append(q[ii])
            found_b.append(db[cols])
            found_s.append(sims)
    pairs, sims = _unique_pairs(found_a, found_b, found_s, n)
    return pairs, sims, {"cluster_s": cluster_s, "search_s": time.perf_counter() - t1, "clusters": int(k),
                         "nearest": nearest}


def _unique_pairs(found_a: list, found_b: list, found_s: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    if not found_a:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    a, b = np.concatenate(found_a), np.concatenate(found_b)
    s = np.concatenate(found_s).astype(np.float64)
    pr = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1).astype(np.int64)
    _, idx = np.unique(pr[:, 0] * n + pr[:, 1], return_index=True)
    return pr[idx], s[idx]
