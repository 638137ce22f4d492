"""Split families: the rows that must land in one split, bounded so that they cannot chain into giants.

Edges of two strengths:
- forced: exact copies, a row and its source row (synthetic rows follow their source), and `extra_links`
  (pairs of ids that must share a family, e.g. Stack Exchange duplicate links). Always joined.
- similarity: pairs at or above the leak thresholds (signature Jaccard, cosine), each with a strength in
  [0, 1] (how far above its threshold). Joined strongest first while the family stays within `cap` rows; a
  link that would grow a family past the cap is cut (and counted).

Single linkage over similarity alone chains: in a corpus whose posts share a narrow vocabulary every post
links to some other, and one family swallows the corpus (the split then cannot hold its ratios). The cap,
a small share of the rows, keeps every family small enough for a hash split to hold its ratios, and keeps
the strongest links (near copies, paraphrases) inside families. Components already within the cap are taken
as they are (the usual case); only oversized ones go through the strongest-first pass.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .text import natural_key

SIZE_BUCKETS = ((1, 1), (2, 2), (3, 5), (6, 20), (21, 100), (101, 1000), (1001, None))


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label per node from an (m, 2) edge array: the smallest node of its component.

    Numpy hooking and pointer jumping (each edge's larger root points to the smaller, then every node to its
    root), instead of scipy's csgraph, whose import alone costs the driver ~0.2 s of CPU (0.6 s wall on a
    loaded machine); the rounds needed grow with the log of a component's length, a few for dedup's pairs."""
    labels = np.arange(n, dtype=np.int64)
    if n == 0 or len(pairs) == 0:
        return labels
    a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    while True:
        la, lb = labels[a], labels[b]
        differ = la != lb
        if not differ.any():
            return labels
        la, lb = la[differ], lb[differ]
        np.minimum.at(labels, np.maximum(la, lb), np.minimum(la, lb))  # labels are roots: hook them
        while True:  # every node to its root (labels only decrease, so this ends)
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped


class _UnionFind:
    def __init__(self, sizes: np.ndarray):
        self.parent = list(range(len(sizes)))
        self.size = [int(s) for s in sizes]

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int, cap: int | None = None) -> bool:
        """Join a's and b's sets unless the result would exceed `cap`; False if refused."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if cap is not None and self.size[ra] + self.size[rb] > cap:
            return False
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True


def bounded_labels(weight: np.ndarray, forced: np.ndarray, links: np.ndarray, strength: np.ndarray,
                   cap: int) -> tuple[np.ndarray, int]:
    """(component label per node, links cut). `weight[i]` is 1 for a row, 0 for a node that only names a
    source; forced edges always join; similarity `links` join strongest first up to `cap` rows."""
    n = len(weight)
    labels = components(n, np.concatenate([forced, links]) if len(links) else forced)
    sizes = np.bincount(labels, weights=weight, minlength=n)
    big = sizes[labels] > cap
    if not big.any():
        return labels, 0
    uf = _UnionFind(weight)
    for a, b in forced:
        if big[a]:
            uf.union(int(a), int(b))
    inside = big[links[:, 0]] if len(links) else np.zeros(0, bool)
    order = np.lexsort((links[inside, 1], links[inside, 0], -strength[inside])) if inside.any() else []
    cut = 0
    for a, b in links[inside][order]:
        cut += not uf.union(int(a), int(b), cap)
    roots = np.array([uf.find(i) for i in range(n)], dtype=np.int64)
    # oversized components get fresh labels from their union-find roots, offset past the others
    labels = np.where(big, n + roots, labels)
    return labels, cut


def size_distribution(sizes: np.ndarray) -> dict:
    """Counts of families by size bucket ("1", "2", "3-5", ... ">1000") and the largest family."""
    out = {}
    for lo, hi in SIZE_BUCKETS:
        name = str(lo) if lo == hi else (f"{lo}-{hi}" if hi else f">{lo - 1}")
        out[name] = int(((sizes >= lo) & (sizes <= (hi or np.inf))).sum())
    return {"by_size": out, "largest": int(sizes.max()) if len(sizes) else 0}


def family_keys(ids: list[str], source_ids: list[str], forced: np.ndarray, links: np.ndarray,
                strength: np.ndarray, cap: int) -> tuple[pd.Series, dict]:
    """(family key per id, stats). Node i < len(ids) is row i; source ids that are not row ids get nodes of
    their own. A family's key is the smallest source_id (natural order) among its rows."""
    n = len(ids)
    node = {v: i for i, v in enumerate(ids)}
    for s in source_ids:
        node.setdefault(s, len(node))
    src_idx = np.fromiter((node[s] for s in source_ids), dtype=np.int64, count=n)
    weight = np.r_[np.ones(n), np.zeros(len(node) - n)]
    forced = np.concatenate([forced.reshape(-1, 2), np.stack([np.arange(n), src_idx], axis=1)]).astype(np.int64)
    labels, cut = bounded_labels(weight, forced, links.reshape(-1, 2).astype(np.int64), strength, cap)
    best: dict[int, str] = {}
    for lab, s in zip(labels[:n].tolist(), source_ids):
        if lab not in best or natural_key(s) < natural_key(best[lab]):
            best[lab] = s
    keys = pd.Series([best[lab] for lab in labels[:n].tolist()], index=pd.Index(ids, name="id"), name="family")
    sizes = keys.value_counts().to_numpy()
    stats = {"count": int(len(sizes)), "cap": int(cap), "links": int(len(links)), "links_cut": int(cut),
             **size_distribution(sizes)}
    return keys, stats
