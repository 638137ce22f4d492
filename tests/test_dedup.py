"""dedup.py: exact / fuzzy / semantic dedup, survivor rule, families, leaks, embedding cache, CLI flags.

Unit tests run on small hand-made frames. The quality tests run on a generated corpus with planted
duplicates (data/make_sample.py + the real converter and cleaner) and skip while that generator is absent.
Semantic tests use the distilled static model where the model does not matter (milliseconds) and MiniLM
once, on a module-scoped corpus, where it does.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dedup
from records import conform, record_id, synthetic_id, VISIBLE

REPO = Path(__file__).resolve().parent.parent
# MiniLM tests load the model and embed on CPU (tens of seconds on 2 shared cores): outside the fast tier
heavy = pytest.mark.e2e

def _vocab() -> list[str]:
    """~20k real words (MiniLM's WordPiece vocabulary), so random documents are semantically distinct."""
    words = (Path(dedup.minilm_path("minilm")) / "vocab.txt").read_text().split()
    return sorted({w for w in words if w.isalpha() and w.isascii() and len(w) > 3})


WORDS = _vocab()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_rows(n: int, seed: int = 0, words: int = 120) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        rid = record_id(i)
        rows.append(dict(id=rid, source_id=rid, title=f"Question {i} about {rng.choice(WORDS)}?",
                         question=_text(rng, words // 2), answer=_text(rng, words), question_score=rng.randint(0, 5),
                         answer_score=rng.randint(0, 5), tags="contract", link=f"https://law.stackexchange.com/q/{i}",
                         license="CC BY-SA 4.0", file_name="x.json", synthetic=False, round=0, reward=""))
    return rows


def frame(rows: list[dict]) -> pd.DataFrame:
    """Records of plain-text row dicts: their visible text is their text (a dict copied from a record and edited
    would otherwise carry its source's visible-text working columns)."""
    return conform(pd.DataFrame(rows).drop(columns=list(VISIBLE.values()), errors="ignore"))


def copy_row(row: dict, new_qid: int, **changes) -> dict:
    r = dict(row)
    r["id"] = r["source_id"] = record_id(new_qid)
    r.update(changes)
    return r


def edit_words(text: str, rng: random.Random, frac: float) -> str:
    w = text.split()
    for _ in range(max(1, int(len(w) * frac))):
        w[rng.randrange(len(w))] = rng.choice(WORDS).upper() + "x"
    return " ".join(w)


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "emb")


def static_cfg(cache_dir, **kw) -> dedup.DedupConfig:
    return dedup.DedupConfig(embedding_model="static", embedding_cache=cache_dir, **kw)


# ------------------------------------------------------------------------------------------ helpers
def test_normalize_text_nfkc_casefold_whitespace():
    assert dedup.normalize_text("  Stra\u00dfe\u00a0 \uff21BC\n\tx ") == "strasse abc x"


def test_words_and_normal_form_agree_with_their_regex_definitions_on_every_character():
    """The fast paths (bytes.translate for ASCII, split/join) give what the regexes they replace give: words are
    runs of \\w in the NFKC-casefolded text, the normal form collapses \\s runs, for every code point in context."""
    import re
    import unicodedata

    from dedup.text import words_of

    nonword, space = re.compile(r"[^\w\s]+"), re.compile(r"\s+")
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF or (code > 0x3000 and code % 7):  # every 7th above U+3000 keeps it quick
            continue
        ch = chr(code)
        for text in (f"a{ch}b", f"x {ch}\u20ac1 \u00e9{ch}", f"{ch}{ch}_9"):
            folded = unicodedata.normalize("NFKC", text).casefold()
            assert words_of(text) == [w.encode() for w in nonword.sub(" ", folded).split()], hex(code)
            assert dedup.normalize_text(text) == space.sub(" ", folded).strip(), hex(code)


def test_natural_key_orders_ids_numerically():
    ids = [record_id(10), record_id(9), synthetic_id(record_id(9), 1, 10), synthetic_id(record_id(9), 1, 2)]
    assert sorted(ids, key=dedup.natural_key) == [record_id(9), synthetic_id(record_id(9), 1, 2),
                                                   synthetic_id(record_id(9), 1, 10), record_id(10)]


def test_lsh_banding_from_threshold():
    for t in (0.5, 0.8, 0.9):
        b, r = dedup.lsh_bands_rows(t, 128)
        assert b * r <= 128
        assert 1 - (1 - t ** r) ** b >= 0.985
        # one more row per band would miss pairs at the threshold
        b2 = 128 // (r + 1)
        assert 1 - (1 - t ** (r + 1)) ** b2 < 0.985


def test_minhash_estimates_jaccard_and_is_deterministic():
    rng = random.Random(3)
    base = _text(rng, 400).split()
    other = list(base)
    for i in range(0, 400, 25):  # 16 single-word edits
        other[i] = "zzz" + str(i)
    a, b = " ".join(base), " ".join(other)

    def shingles(t):
        w = t.split()
        return {tuple(w[i:i + 5]) for i in range(len(w) - 4)}

    true_j = len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b))
    sig = dedup.minhash_signatures([a, b, a], num_perm=256)
    est = (sig[0] == sig[1]).mean()
    assert abs(est - true_j) < 0.08
    assert (sig[0] == sig[2]).all()
    np.testing.assert_array_equal(sig, dedup.minhash_signatures([a, b, a], num_perm=256, chunk=100))


def test_minhash_short_and_empty_texts():
    sig = dedup.minhash_signatures(["", "two words", "two words", "Two, words!"], k=5)
    assert (sig[0] == np.iinfo(np.uint32).max).all()
    assert (sig[1] == sig[2]).all() and (sig[1] == sig[3]).all()


# ------------------------------------------------------------------------------------ exact/fuzzy
def test_exact_dedup_normalises_case_unicode_whitespace(cache_dir):
    rows = make_rows(30)
    rows.append(copy_row(rows[3], 100, question=rows[3]["question"].upper() + "  \n ",
                         title=rows[3]["title"].replace(" ", "\u00a0")))
    res = dedup.deduplicate(frame(rows), static_cfg(cache_dir, semantic=False))
    assert res.removed.to_dict("records") == [
        {"id": record_id(100), "kind": "exact", "duplicate_of": rows[3]["id"], "similarity": 1.0}]
    assert len(res.kept) == 30 and record_id(100) not in set(res.kept["id"])
    assert res.stats["exact"]["removed"] == 1


def test_fuzzy_dedup_finds_near_copies_not_unrelated(cache_dir):
    rng = random.Random(5)
    rows = make_rows(200, seed=1)
    planted = {}
    for k in range(10):
        src = rows[k * 7]
        qid = 1000 + k
        rows.append(copy_row(src, qid, answer=edit_words(src["answer"], rng, 0.01)))
        planted[record_id(qid)] = src["id"]
    res = dedup.deduplicate(frame(rows), static_cfg(cache_dir, semantic=False))
    fz = res.removed[res.removed["kind"] == "fuzzy"]
    got = dict(zip(fz["id"], fz["duplicate_of"]))
    # the survivor rule may keep the copy; either way each planted pair is grouped and nothing else is
    pairs = {frozenset(p) for p in got.items()}
    assert pairs == {frozenset(p) for p in planted.items()}
    assert (fz["similarity"] >= 0.8).all()


def test_dask_and_pandas_inputs_agree(cache_dir):
    import dask.dataframe as dd

    rng = random.Random(2)
    rows = make_rows(120, seed=2)
    rows.append(copy_row(rows[1], 500))
    rows.append(copy_row(rows[2], 501, answer=edit_words(rows[2]["answer"], rng, 0.01)))
    df = frame(rows)
    # the Dask run goes first, on a cold cache of its own: it must fetch the texts it embeds from the partitions
    b = dedup.deduplicate(dd.from_pandas(df, npartitions=4), static_cfg(cache_dir + "-dask"))
    a = dedup.deduplicate(df, static_cfg(cache_dir))
    pd.testing.assert_frame_equal(a.removed, b.removed)
    assert list(a.kept["id"]) == list(b.kept["id"].compute())
    assert a.families.to_dict() == b.families.to_dict()


def test_features_made_in_the_filter_task_give_the_same_dedup(cache_dir):
    """The pipeline hands dedup the features its clean + filter tasks computed (kept rows only, per partition):
    the result must be the one dedup gets computing them itself."""
    import dask.dataframe as dd

    from dedup.features import kept_features

    rng = random.Random(4)
    rows = make_rows(90, seed=4)
    rows += [copy_row(rows[3], 700), copy_row(rows[5], 701, answer=edit_words(rows[5]["answer"], rng, 0.01))]
    df = frame(rows)
    cfg = static_cfg(cache_dir)
    marked = df.assign(drop_reason=["question_too_short" if i in (1, 10, 30, 60) else "" for i in range(len(df))])
    parts = [marked.iloc[i:i + 25] for i in range(0, len(marked), 25)]
    features = [kept_features(p, "drop_reason", None, cfg.fuzzy_shingle, cfg.num_perm, cfg.seed) for p in parts]
    kept = marked[marked["drop_reason"] == ""].drop(columns=["drop_reason"])
    records = dd.from_pandas(kept, npartitions=len(parts))
    given = dedup.deduplicate(records, cfg, features=features)
    computed = dedup.deduplicate(kept.reset_index(drop=True), cfg)
    assert sum(len(f) for f in features) == len(kept) < len(df)
    assert len(given.removed) >= 2
    pd.testing.assert_frame_equal(given.removed, computed.removed)
    assert given.families.to_dict() == computed.families.to_dict()
    assert list(given.kept["id"].compute()) == list(computed.kept["id"])


def test_dask_input_moves_only_uncached_texts_to_the_driver(cache_dir, monkeypatch):
    import dask.dataframe as dd

    df = frame(make_rows(80, seed=5))
    cfg = static_cfg(cache_dir)
    fetched = []
    real = dedup.features.texts_with_hashes

    def spy(pdf, wanted):
        out = real(pdf, wanted)
        fetched.append(len(out))
        return out

    monkeypatch.setattr(dedup.features, "texts_with_hashes", spy)
    dedup.deduplicate(dd.from_pandas(df.iloc[:50], npartitions=3), cfg)
    assert sum(fetched) == 50  # cold: every text, once
    fetched.clear()
    res = dedup.deduplicate(dd.from_pandas(df, npartitions=3), cfg)
    assert sum(fetched) == 30  # only the 30 rows the cache has not seen
    assert res.stats["semantic"]["cache_hits"] == 50
    fetched.clear()
    dedup.deduplicate(dd.from_pandas(df, npartitions=3), cfg)
    assert fetched == []  # warm: no text leaves the partitions


# ------------------------------------------------------------------------------------ survivor rule
def test_survivor_rule_real_then_scores_then_id(cache_dir):
    base = make_rows(1)[0]
    same = dict(title=base["title"], question=base["question"], answer=base["answer"])
    rows = [
        # synthetic with the best scores still loses to any real row
        dict(base, id=synthetic_id(record_id(2), 1, 0), source_id=record_id(2), synthetic=True, round=1,
             answer_score=99, question_score=99, **same),
        dict(base, id=record_id(10), source_id=record_id(10), answer_score=5, question_score=1, **same),
        dict(base, id=record_id(9), source_id=record_id(9), answer_score=5, question_score=1, **same),
        dict(base, id=record_id(3), source_id=record_id(3), answer_score=4, question_score=9, **same),
        dict(base, id=record_id(4), source_id=record_id(4), answer_score=5, question_score=0, **same),
    ]
    res = dedup.deduplicate(frame(rows), static_cfg(cache_dir, semantic=False))
    # answer_score 5 beats 4; question_score 1 beats 0; then id 9 < 10 numerically
    assert list(res.kept["id"]) == [record_id(9)]
    assert set(res.removed["duplicate_of"]) == {record_id(9)}
    order = dedup.survivor_order(frame(rows))
    assert [rows[i]["id"] for i in np.argsort(order)] == [record_id(9), record_id(10), record_id(4),
                                                           record_id(3), synthetic_id(record_id(2), 1, 0)]


def test_kept_rows_keep_input_order(cache_dir):
    rows = make_rows(20, seed=9)
    rows.insert(0, copy_row(rows[5], 99))
    res = dedup.deduplicate(frame(rows), static_cfg(cache_dir))
    assert list(res.kept["id"]) == [r["id"] for r in rows if r["id"] != record_id(99)]


# ---------------------------------------------------------------------------------------- families
def test_families_join_near_duplicates_and_synthetic_rows(cache_dir):
    rng = random.Random(11)
    rows = make_rows(60, seed=11)
    # below the fuzzy threshold (not removed), above the leak threshold (same family)
    loose = copy_row(rows[20], 300, answer=edit_words(rows[20]["answer"], rng, 0.06))
    rows.append(loose)
    other = random.Random(999)  # not the corpus's seed, or the "new" text repeats row 1's
    syn = dict(rows[30], id=synthetic_id(rows[30]["id"], 1, 0), synthetic=True, round=1,
               question="a synthetic paraphrase " + _text(other, 40), answer=_text(other, 80))
    rows.append(syn)
    res = dedup.deduplicate(frame(rows), static_cfg(cache_dir))
    assert record_id(300) in set(res.kept["id"]), res.removed
    fam = res.families
    assert fam[record_id(300)] == fam[rows[20]["id"]] == rows[20]["id"]  # smallest source_id: 21 < 300
    assert fam[syn["id"]] == rows[30]["id"]
    assert fam[rows[0]["id"]] == rows[0]["id"]
    assert len(fam) == len(rows)


def rows_with_near_copies(n: int, copies: int, first_copy_id: int, edit_rate: float, seed: int) -> list[dict]:
    """`n` generated rows plus near copies of the first `copies` (answers edited at `edit_rate`), ids from
    `first_copy_id` on."""
    rng = random.Random(seed)
    rows = make_rows(n, seed=seed)
    for k in range(copies):
        rows.append(copy_row(rows[k], first_copy_id + k, answer=edit_words(rows[k]["answer"], rng, edit_rate)))
    return rows


def test_cross_split_leaks_zero_with_family_split_and_found_otherwise(cache_dir):
    from split import assign_splits

    rows = rows_with_near_copies(80, copies=8, first_copy_id=400, edit_rate=0.06, seed=12)
    df = frame(rows)
    cfg = static_cfg(cache_dir, fuzzy=False, semantic=False)
    res = dedup.deduplicate(df, cfg)
    good = assign_splits(res.kept, res.families.to_dict(), 0, (0.5, 0.25, 0.25))
    leaks = dedup.cross_split_leaks(good, cfg)
    assert leaks["total"] == 0, leaks
    bad = good.copy()
    bad["split"] = ["train" if i % 2 else "test" for i in range(len(bad))]
    bad.loc[bad["id"] == rows[0]["id"], "split"] = "train"
    bad.loc[bad["id"] == record_id(400), "split"] = "test"
    leaks = dedup.cross_split_leaks(bad, cfg)
    assert leaks["jaccard_pairs"] >= 1 and leaks["total"] >= 1
    assert any({e["a"], e["b"]} == {rows[0]["id"], record_id(400)} for e in leaks["examples"])


def test_cross_split_leaks_on_dask_input_matches_pandas(cache_dir):
    import dask.dataframe as dd

    df = frame(rows_with_near_copies(60, copies=6, first_copy_id=500, edit_rate=0.03, seed=13))
    df["split"] = ["train" if i % 3 else "test" for i in range(len(df))]
    df.loc[df.index[:6], "split"] = "train"
    df.loc[df.index[-6:], "split"] = "test"  # the near copies of rows 0-5 sit across the split
    pandas_leaks = dedup.cross_split_leaks(df, static_cfg(cache_dir))
    dask_leaks = dedup.cross_split_leaks(dd.from_pandas(df, npartitions=3), static_cfg(cache_dir + "-cold"))
    assert pandas_leaks["total"] > 0
    for key in ("rows", "exact_pairs", "jaccard_pairs", "cosine_pairs", "total", "examples"):
        assert dask_leaks[key] == pandas_leaks[key], key


# ------------------------------------------------------------------------------ semantic (static)
def test_semantic_static_removes_identical_meaning_rows_and_uses_cache(cache_dir):
    rows = make_rows(80, seed=4)
    # same text but one word changed in the title: not exact, below the fuzzy cut for short edits?
    rows.append(copy_row(rows[10], 700, title=rows[10]["title"] + " (edited)"))
    cfg = static_cfg(cache_dir, fuzzy=False)
    res = dedup.deduplicate(frame(rows), cfg)
    sem = res.removed[res.removed["kind"] == "semantic"]
    assert set(sem["id"]) | set(sem["duplicate_of"]) == {rows[10]["id"], record_id(700)}
    assert res.stats["semantic"]["cache_misses"] == 81
    again = dedup.deduplicate(frame(rows), cfg)
    assert again.stats["semantic"]["cache_hits"] == 81
    assert again.stats["semantic"]["model_calls"] == 0
    pd.testing.assert_frame_equal(res.removed, again.removed)


def test_embedding_cache_atomic_shards_and_reload(tmp_path):
    c = dedup.EmbeddingCache(tmp_path, "m-256")
    c.add(["h1", "h2"], np.eye(2, dtype=np.float32))
    shards = list((tmp_path / "m-256").glob("*"))
    assert len(shards) == 1 and shards[0].suffix == ".npz"
    (tmp_path / "m-256" / "shard-garbage.npz").write_bytes(b"not a zip")  # never fatal
    pos, mat = dedup.EmbeddingCache(tmp_path, "m-256").lookup(["h2", "nope", "h1"])
    assert list(pos >= 0) == [True, False, True]
    np.testing.assert_array_equal(mat[pos[0]], [0, 1])


def test_semantic_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 32)).astype(np.float32)
    pts = np.concatenate([base + rng.normal(scale=s, size=base.shape).astype(np.float32)
                          for s in (0.0, 0.05, 0.1, 0.2, 0.3)])
    emb = dedup.embed.l2norm(pts)
    thr = 0.97
    pairs, sims, _ = dedup.semantic_pairs(emb, thr, clusters=5, probe=2, seed=0)
    full = emb @ emb.T
    ii, jj = np.nonzero(np.triu(full >= thr, 1))
    assert {tuple(p) for p in pairs} == set(zip(ii, jj))


def _reference_top_neighbours(emb):
    """The search's top-k as it was: every query row's k most similar db rows by np.argpartition, then the pairs at
    or above the threshold among them (what the faster search must reproduce pair for pair, bit for bit)."""
    def top(q, db, k, threshold):
        sims = emb[q] @ emb[db].T
        sims[q[:, None] == db[None, :]] = -np.inf
        if sims.shape[1] > k:
            cols = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            cols = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        sims = np.take_along_axis(sims, cols, axis=1)
        ii, jj = np.nonzero(sims >= threshold)
        return ii, cols[ii, jj], sims[ii, jj], np.max(sims, axis=1)
    return top


@pytest.mark.parametrize("max_neighbours, block", [(32, 2048), (4, 50), (200, 2048)])
def test_semantic_pairs_equal_the_argpartition_search(monkeypatch, max_neighbours, block):
    """Groups of near copies larger than max_neighbours (where the top-k cuts) beside small groups and lone rows:
    the same pairs, similarities and nearest-neighbour similarities as the search that took every row's top k."""
    from dedup import search

    rng = np.random.default_rng(5)
    base = rng.normal(size=(60, 48)).astype(np.float32)
    sizes = rng.choice([1, 2, 3, 5, 6, 33, 34, 35, 36, 70], size=len(base))
    pts = np.concatenate([b + rng.normal(scale=0.08, size=(n, 48)).astype(np.float32) for b, n in zip(base, sizes)])
    emb = dedup.embed.l2norm(pts)
    query = rng.random(len(emb)) < 0.7
    for thr in (0.9, 0.97):
        for mask in (None, query):
            args = (emb, thr, 6, 2, 0, "cpu", mask, max_neighbours, block)
            pairs, sims, stats = search.semantic_pairs(*args)
            with monkeypatch.context() as m:
                m.setattr(search, "_top_neighbours_numpy", _reference_top_neighbours)
                ref_pairs, ref_sims, ref_stats = search.semantic_pairs(*args)
            assert len(ref_pairs) > 100 and np.array_equal(pairs, ref_pairs)
            assert sims.tobytes() == ref_sims.tobytes()
            np.testing.assert_array_equal(stats["nearest"], ref_stats["nearest"])


def _reference_spherical_kmeans(emb, k, seed, iters=20):
    """spherical_kmeans as it was: every centroid recomputed from `emb[labels == c]` in every step."""
    rng = np.random.default_rng(seed)
    cents = emb[np.sort(rng.choice(len(emb), size=k, replace=False))].copy()
    labels = np.zeros(len(emb), np.int64)
    for step in range(iters):
        new = np.argmax(emb @ cents.T, axis=1)
        if step and np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            members = emb[labels == c]
            if len(members):
                m = members.sum(axis=0)
                cents[c] = m / max(float(np.linalg.norm(m)), 1e-12)
    return labels, cents.astype(np.float32)


@pytest.mark.parametrize("k, seed", [(2, 0), (9, 1), (40, 2)])
def test_spherical_kmeans_equals_recomputing_every_centroid(k, seed):
    """Recomputing only the clusters whose members changed gives the labels and centroids, bit for bit, of
    recomputing all of them (points in loose groups, so that points move between clusters for several steps)."""
    from dedup.search import spherical_kmeans

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 32))
    pts = np.concatenate([c + rng.normal(scale=1.2, size=(150, 32)) for c in centres])
    emb = dedup.embed.l2norm(pts.astype(np.float32))
    labels, cents = spherical_kmeans(emb, k, seed)
    ref_labels, ref_cents = _reference_spherical_kmeans(emb, k, seed)
    assert np.array_equal(labels, ref_labels) and cents.tobytes() == ref_cents.tobytes()


def test_components_group_as_scipys_connected_components():
    """The numpy components give scipy's groups (each labelled by its smallest node) on random graphs, on
    shuffled long chains (the most rounds) and with self-loops and repeated edges."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from dedup.families import components

    rng = np.random.default_rng(8)
    for trial in range(60):
        n = int(rng.integers(1, 2000))
        if trial % 2:
            perm = rng.permutation(n)
            pairs = np.stack([perm[:-1], perm[1:]], axis=1)[rng.permutation(n - 1)]
        else:
            pairs = rng.integers(0, n, (int(rng.integers(0, 2 * n)), 2))
        labels = components(n, pairs)
        graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        ref = connected_components(graph, directed=False)[1]
        groups = np.unique(np.stack([labels, ref], axis=1), axis=0)
        assert len(groups) == len(np.unique(labels)) == len(np.unique(ref))  # the same partition of the nodes
        first = np.unique(ref, return_index=True)[1]  # each scipy group's smallest node
        assert np.array_equal(np.sort(labels[first]), np.sort(first))


def test_dedup_against_drops_new_duplicates_only(cache_dir):
    rng = random.Random(2021)
    existing = frame(make_rows(50, seed=21))
    src = existing.iloc[3]
    new = [
        dict(src, id=synthetic_id(src["id"], 1, 0), synthetic=True, round=1),  # exact copy of existing
        dict(src, id=synthetic_id(src["id"], 1, 1), synthetic=True, round=1,
             answer=edit_words(src["answer"], rng, 0.01)),  # near copy of existing
        dict(src, id=synthetic_id(src["id"], 1, 2), synthetic=True, round=1, title="fresh title",
             question=_text(rng, 50), answer=_text(rng, 90), answer_score=1),
        dict(src, id=synthetic_id(src["id"], 1, 3), synthetic=True, round=1, answer_score=3),  # new 2's twin
    ]
    new[3].update(title=new[2]["title"], question=new[2]["question"], answer=new[2]["answer"])
    cfg = static_cfg(cache_dir)
    dedup.deduplicate(existing, cfg)  # warms the cache with the existing rows
    kept, st = dedup.dedup_against(frame(new), existing, cfg)
    assert list(kept["id"]) == [synthetic_id(src["id"], 1, 3)]  # higher answer_score wins among new rows
    assert st["removed"]["exact"] == 2 and st["removed"]["fuzzy"] == 1
    assert st["cache_misses"] == 1 and st["cache_hits"] == 50  # only the one new text was embedded
    assert {r["duplicate_of"] for r in st["removed_rows"]} == {src["id"], synthetic_id(src["id"], 1, 3)}


def test_dedup_against_drops_new_rows_that_leak_into_val_or_test(cache_dir):
    """A synthetic train row close to a val row at the leak threshold (Jaccard >= 0.5) but not a duplicate
    (< 0.8) is dropped as "leak"; the same closeness to a train row is fine."""
    rng = random.Random(7)
    existing = frame(make_rows(40, seed=22))
    existing["split"] = ["val" if i == 4 else "train" for i in range(len(existing))]
    new = []
    for k, i in enumerate((4, 5)):  # row 4 is in val, row 5 in train
        src = existing.iloc[i]
        new.append(dict(src, id=synthetic_id(src["id"], 1, k), synthetic=True, round=1, split="train",
                        answer=edit_words(src["answer"], rng, 0.05), question=edit_words(src["question"], rng, 0.05)))
    cfg = static_cfg(cache_dir, semantic=False)
    sig = dedup.minhash_signatures([dedup.doc_text(r["title"], r["question"], r["answer"]) for r in new] +
                                   dedup.doc_texts(existing.iloc[[4, 5]]))
    jaccard = (sig[:2] == sig[2:]).mean(axis=1)
    assert ((jaccard >= cfg.leak_jaccard) & (jaccard < cfg.fuzzy_jaccard)).all(), jaccard  # the intended band
    kept, st = dedup.dedup_against(frame(new).assign(split="train"), existing, cfg)
    assert list(kept["id"]) == [new[1]["id"]]
    assert st["removed"]["leak"] == 1 and st["removed"]["fuzzy"] == 0
    assert st["removed_rows"][0]["duplicate_of"] == existing.iloc[4]["id"]


def test_extra_links_join_families_and_the_family_cap_cuts_weakest_links(cache_dir):
    rows = make_rows(30, seed=9)
    df = frame(rows)
    res = dedup.deduplicate(df, static_cfg(cache_dir), extra_links=[(rows[1]["id"], rows[20]["id"]),
                                                                    ("no-such-id", rows[2]["id"])])
    fam = res.families
    assert fam[rows[1]["id"]] == fam[rows[20]["id"]] == rows[1]["id"]
    assert res.stats["families"]["extra_links"] == 1 and res.stats["families"]["extra_links_skipped"] == 1
    # bounded single linkage: a chain of 8 links, cap 4 -> the weakest links are cut
    from dedup.families import family_keys

    ids = [f"r{i}" for i in range(9)]
    chain = np.array([[i, i + 1] for i in range(8)])
    strength = np.array([0.9, 0.8, 0.1, 0.9, 0.95, 0.05, 0.7, 0.6])
    keys, st = family_keys(ids, ids, np.zeros((0, 2), np.int64), chain, strength, cap=4)
    assert st["largest"] <= 4 and st["links_cut"] >= 2
    assert keys["r0"] == keys["r1"] == keys["r2"] and keys["r2"] != keys["r3"]  # cut at the 0.1 link
    unbounded, st = family_keys(ids, ids, np.zeros((0, 2), np.int64), chain, strength, cap=100)
    assert unbounded.nunique() == 1 and st["links_cut"] == 0 and st["by_size"][">1000"] == 0


# ------------------------------------------------------------------------------------- CLI / import
def dedup_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    dedup.add_dedup_arguments(p.add_argument_group("dedup"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def test_cli_flags_build_config():
    p = dedup_parser()
    cfg = dedup.dedup_config_from_args(p.parse_args([]))
    assert cfg == dedup.DedupConfig(progress=True)  # every default comes from the dataclass
    assert (cfg.exact, cfg.fuzzy, cfg.semantic) == (True, True, True)
    assert (cfg.model, cfg.eps, cfg.leak_cos) == ("static", 0.02, 0.98)  # the CPU default
    cfg = dedup.dedup_config_from_args(p.parse_args(["--device", "gpu"]))
    assert (cfg.model_family, cfg.eps) == ("minilm", dedup.MODEL_DEFAULTS["minilm"]["eps"])
    cfg = dedup.dedup_config_from_args(p.parse_args(
        ["--no-semantic", "--fuzzy-jaccard", "0.7", "--fuzzy-shingle", "3", "--semdedup-eps", "0.05",
         "--semdedup-clusters", "7", "--embedding-model", "static", "--leak-jaccard", "0.4", "--leak-cosine",
         "0.9", "--device", "gpu", "--seed", "4", "--embedding-cache", "", "--quiet"]))
    assert (cfg.semantic, cfg.fuzzy_jaccard, cfg.fuzzy_shingle, cfg.eps, cfg.semdedup_clusters) == \
        (False, 0.7, 3, 0.05, 7)
    assert (cfg.model_family, cfg.leak_jaccard, cfg.leak_cos, cfg.device, cfg.seed, cfg.embedding_cache) == \
        ("static", 0.4, 0.9, "gpu", 4, None)
    cfg = dedup.dedup_config_from_args(p.parse_args(["--dedup", "exact"]))
    assert (cfg.exact, cfg.fuzzy, cfg.semantic) == (True, False, False)


@pytest.mark.parametrize("argv, flag", [
    (["--dedup", "exakt"], "--dedup"), (["--semdedup-eps", "1.5"], "--semdedup-eps"),
    (["--semdedup-eps", "0"], "--semdedup-eps"), (["--fuzzy-jaccard", "0"], "--fuzzy-jaccard"),
    (["--fuzzy-jaccard", "1.01"], "--fuzzy-jaccard"), (["--leak-jaccard", "-1"], "--leak-jaccard"),
    (["--leak-cosine", "2"], "--leak-cosine"), (["--fuzzy-num-perm", "0"], "--fuzzy-num-perm"),
    (["--fuzzy-shingle", "0"], "--fuzzy-shingle"), (["--semdedup-clusters", "0"], "--semdedup-clusters"),
    (["--embedding-batch-size", "0"], "--embedding-batch-size"), (["--max-seq-length", "0"], "--max-seq-length"),
    (["--embedding-threads", "0"], "--embedding-threads"), (["--family-max-share", "0"], "--family-max-share"),
    (["--embedding-model", " "], "--embedding-model"),
])
def test_cli_rejects_bad_values_with_a_one_line_value_error(argv, flag):
    with pytest.raises(ValueError) as err:
        dedup.dedup_config_from_args(dedup_parser().parse_args(argv))
    assert str(err.value).startswith(flag + ":") and "\n" not in str(err.value)


@pytest.mark.parametrize("text, kinds", [("exact,fuzzy", {"exact", "fuzzy"}), ("all", set(dedup.KINDS)),
                                         ("none", set()), ("", set()), (" Semantic ", {"semantic"})])
def test_parse_kinds(text, kinds):
    assert dedup.parse_kinds(text) == kinds


def test_import_is_light():
    code = ("import sys, dedup; heavy = [m for m in ('torch', 'sentence_transformers', 'sklearn', 'model2vec', "
            "'transformers', 'scipy') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ MiniLM
@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    """One MiniLM run over a small corpus with an exact and a reworded copy (module-scoped: ~10 s)."""
    cache = str(tmp_path_factory.mktemp("minilm-cache"))
    rows = make_rows(40, seed=31, words=300)
    rows.append(copy_row(rows[5], 900, title=rows[5]["title"].upper()))  # exact after normalisation
    # differs only past MiniLM's 256-token window: a different text with the same embedding
    rows.append(copy_row(rows[6], 901, answer=rows[6]["answer"] + " and a different closing remark"))
    df = frame(rows)
    cfg = dedup.DedupConfig(embedding_model="minilm", embedding_cache=cache, fuzzy=False, semdedup_eps=0.01)
    return df, cfg, dedup.deduplicate(df, cfg)


@heavy
def test_minilm_semantic_dedup_and_bf16_where_supported(minilm_run):
    _, _, res = minilm_run
    sem = res.removed[res.removed["kind"] == "semantic"]
    assert list(sem["id"]) == [record_id(901)] and list(sem["duplicate_of"]) == [record_id(7)]
    assert float(sem["similarity"].iloc[0]) >= 0.999
    st = res.stats["semantic"]
    assert st["cache_misses"] == 41 and st["model_calls"] == 1
    assert st["precision"] == ("bf16" if dedup.bf16_supported() else "int8" if dedup.embed.int8_supported()
                               else "fp32")


@heavy
def test_minilm_rerun_hits_cache_without_model_call(minilm_run, monkeypatch):
    df, cfg, first = minilm_run

    def boom(self, texts):
        raise AssertionError("the model was called on a warm cache")

    monkeypatch.setattr(dedup.Embedder, "_encode", boom)
    again = dedup.deduplicate(df, cfg)
    assert again.stats["semantic"]["cache_hits"] == 41 and again.stats["semantic"]["model_calls"] == 0
    pd.testing.assert_frame_equal(first.removed, again.removed)


@heavy
def test_minilm_bf16_matches_fp32(minilm_run, tmp_path):
    if not dedup.bf16_supported():
        pytest.skip("CPU without bf16: fp32 is used anyway")
    df, cfg, _ = minilm_run
    texts = [dedup.doc_text(t, q, a) for t, q, a in zip(df["title"], df["question"], df["answer"])][:12]
    e16 = dedup.Embedder(dedup.DedupConfig(embedding_model="minilm", embedding_cache=None))._encode(texts)
    e32 = dedup.Embedder(dedup.DedupConfig(embedding_model="minilm", embedding_cache=None,
                                           precision="fp32"))._encode(texts)
    assert np.einsum("ij,ij->i", e16, e32).min() > 0.999


# --------------------------------------------------------------- quality on planted duplicates
MAKE_SAMPLE = REPO / "data" / "make_sample.py"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A generated corpus with planted exact/near/paraphrase copies, through the real convert/clean/filter
    stages, deduplicated once with the default config (the static model on CPU) -- module-scoped."""
    if not MAKE_SAMPLE.exists():
        pytest.skip("data/make_sample.py not present")
    sys.path.insert(0, str(REPO / "bench"))
    import dedup_bench

    d = tmp_path_factory.mktemp("planted")
    src, truth = dedup_bench.make_corpus(800, 3, out_dir=d)
    df = dedup_bench.load_records(src)
    truth = dedup_bench.load_truth(truth)
    cfg = dedup.DedupConfig(embedding_cache=str(d / "emb"))
    res = dedup.deduplicate(df, cfg)
    return df, truth, cfg, res, dedup_bench.evaluate(res.removed, truth, df["id"])


def test_quality_exact_precision_and_recall_are_one(planted):
    *_, q = planted
    assert q["exact"]["planted"] >= 10
    assert q["exact"]["precision"] == 1.0 and q["exact"]["recall"] == 1.0


def test_quality_fuzzy_f1_on_near_copies(planted):
    *_, q = planted
    assert q["fuzzy"]["planted"] >= 10
    assert q["fuzzy"]["f1"] >= 0.95, q["fuzzy"]
    assert q["fuzzy"]["recall_any_kind"] >= 0.95


def test_quality_default_flags_catch_every_planted_kind(planted):
    """The CPU default (static model, eps 0.02) catches paraphrases too, and removes little beyond the plants."""
    df, truth, cfg, res, q = planted
    assert cfg.model == "static" and res.stats["model"]["threshold"] == 0.98
    assert q["exact"]["recall_any_kind"] >= 0.95 and q["fuzzy"]["recall_any_kind"] >= 0.95
    assert q["semantic"]["recall_any_kind"] >= 0.9 and q["semantic"]["precision"] >= 0.95, q["semantic"]
    planted_rows = sum(k["planted"] for k in q.values())
    assert len(res.removed) <= 1.05 * planted_rows
    margin = res.stats["model"]["nearest_nonduplicate_this_run"]
    assert margin["max"] < res.stats["model"]["threshold"] and margin["margin"] > 0


@pytest.mark.parametrize("model,eps", [pytest.param("minilm", 0.08, marks=heavy), ("static", 0.02)])
def test_quality_semantic_recall_on_paraphrases_at_high_precision(planted, model, eps):
    """Paraphrase-level rewrites sit at MiniLM cosine ~0.88-0.99 (10% quantile ~0.95) and the nearest
    non-duplicate below ~0.90 in this corpus, so eps 0.08 (cosine >= 0.92) separates them; the static
    model's compressed scale needs eps 0.02. (At the default eps 0.01 MiniLM catches only near-identical
    rows: paraphrase recall ~0.03.)"""
    import dataclasses

    import dedup_bench

    df, truth, cfg, *_ = planted
    cfg = dataclasses.replace(cfg, embedding_model=model, semdedup_eps=eps)
    res = dedup.deduplicate(df, cfg)
    q = dedup_bench.evaluate(res.removed, truth, df["id"])
    assert q["semantic"]["planted"] >= 10
    assert q["semantic"]["precision"] >= 0.95 and q["semantic"]["recall"] >= 0.9, q["semantic"]
    assert q["fuzzy"]["f1"] >= 0.95 and q["exact"]["recall"] == 1.0


def test_quality_zero_cross_split_leaks_after_family_split(planted):
    from split import assign_splits

    df, truth, cfg, res, _ = planted
    split = assign_splits(res.kept, res.families.to_dict(), 0, (0.8, 0.1, 0.1))
    leaks = dedup.cross_split_leaks(split, cfg)
    assert leaks["total"] == 0, leaks
    assert leaks["cache_misses"] == 0  # every kept row was embedded by the dedup run
    # and the check is not vacuous: a split that ignores families leaks the planted copies (the default
    # thresholds dedup every planted pair, so the naive split runs on the rows before dedup)
    naive = df.copy()
    naive["split"] = ["train", "val", "test"] * (len(naive) // 3) + ["train"] * (len(naive) % 3)
    assert dedup.cross_split_leaks(naive, cfg)["total"] > 0


# ------------------------------------------------------------------------------ static tokenizer (speed path)
def _hard_texts() -> list[str]:
    """Text a chunk-wise tokenizer could get wrong: every kind of space and control character, combining marks
    after a space, CJK, ligatures, long words and punctuation runs, and random mixtures of them."""
    parts = ["Caf\u00e9", "cafe\u0301", " \u0301accent", "\u00a0nbsp\u00a0", "a\u3000b", "x\u2028y\u2029z",
             "tab\tnew\nline\r\nret", "zero\u200bwidth", "\ufeffbom", "ctl\x1cfs\x1dgs\x1e\x1f", "vt\x0bff\x0c",
             "nel\x85x", "\u6cd5\u5f8b\u554f\u984c", "\uff21\uff22", "\ufb01nance", "\u0130stanbul",
             "\u039f\u0394\u039f\u03a3", "emoji \U0001F600!", "x" * 150, "-" * 700, "don\u2019t \u201cquote\u201d",
             "\u00a7\u00a012", "2019\u20132020", "&amp; <b>", "", "   ", "\x00nul\ufffd"]
    rng = random.Random(5)
    soup = parts + ["\u2003", "\u202f", "\u205f", "\u1680", "\u180e", " ", ".", ",", "'", "word", "LAW"]
    mixed = ["".join(rng.choice(soup) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    return parts + [" ".join(parts)] + mixed


def test_static_chunk_tokenizer_gives_the_models_own_token_ids():
    from model2vec import StaticModel

    from dedup.static_embed import ChunkTokenizer

    model = StaticModel.from_pretrained(str(dedup.config.STATIC_DIR))
    sample = Path(REPO / "data" / "sample" / "law-stackexchange-questions-answers.json").read_text()
    texts = _hard_texts() + [sample[i:i + 3000] for i in range(0, min(len(sample), 600_000), 2_000)]
    fast = ChunkTokenizer(model)
    assert fast(texts) == StaticModel.tokenize(model, texts)
    assert fast(texts[::-1]) == StaticModel.tokenize(model, texts[::-1])  # from its cache
    # texts without the characters only str.split() splits at are split by str.split(), not the regex
    plain = [t for t in texts if not any(ch in t for ch in "\x0b\x0c\x1c\x1d\x1e\x1f\x85")]
    plain += ["", " ", "\n", "a  b", "law \x00 text"]
    assert len(plain) > len(texts) // 2
    assert ChunkTokenizer(model)(plain) == StaticModel.tokenize(model, plain)
    for sample_texts in (texts[:50], plain[:50]):
        small = ChunkTokenizer(model)
        small.MAX_CACHED = 10  # a full cache starts again (every call here fills it), with the same ids
        assert small(sample_texts) == StaticModel.tokenize(model, sample_texts)
        assert small(sample_texts[::-1]) == StaticModel.tokenize(model, sample_texts[::-1])


def _model2vec_embeddings(texts: list[str]) -> np.ndarray:
    """The static model's embeddings as model2vec itself makes them (its tokenizer, its batches, its means)."""
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(dedup.config.STATIC_DIR))
    return dedup.embed.l2norm(np.asarray(StaticModel.encode(model, texts, use_multiprocessing=False), np.float32))


def test_static_embeddings_equal_model2vecs_own(cache_dir):
    """The Embedder's static path (dedup/static_embed.py: its own tokenizer and means) gives model2vec's bytes: on
    hard text, on empty rows, on rows of unknown tokens only (no ids left: zeros), on rows cut at the model's
    character limit and at its 512 tokens, on real posts and on random word soups longer than a batch."""
    sample = Path(REPO / "data" / "sample" / "law-stackexchange-questions-answers.json").read_text()
    unknown_only = ["\U0001F600 \U0001F601", "\u2603", "ab" * 2000, "\U0001F600" * 5 + " " + "x" * 300]
    long_texts = [" ".join(["law"] * 700), "word, " * 800, sample[:20_000], "x " * 5000, ". " * 300 + "end"]
    texts = (_hard_texts() + ["", " ", "\n\n"] + unknown_only + long_texts
             + [sample[i:i + 2500] for i in range(0, min(len(sample), 400_000), 1_700)]
             + [f"{_text(random.Random(i), 200)}" for i in range(1200)])  # > one 1,024-text batch
    emb, _ = dedup.Embedder(static_cfg("")).embed(texts)
    own = _model2vec_embeddings(texts)
    assert np.array_equal(emb, own)
    assert not own[len(_hard_texts()):len(_hard_texts()) + 7].any()  # empty and unknown-only rows: zeros
    # a second Embedder in this process reuses the model's chunk cache (and the same bytes come out)
    again, _ = dedup.Embedder(static_cfg("")).embed(texts[::-1])
    assert np.array_equal(again, own[::-1])


def test_static_means_add_in_numpys_order():
    """static_means equals numpy's mean over a gathered (rows, tokens, dim) array bit for bit on float16 tables
    whose sums depend on the order of the additions (magnitudes over six decades), and on float32 tables; -0.0
    tokens give +0.0 as numpy's sum does."""
    from dedup.static_embed import static_means

    rng = np.random.default_rng(3)
    for dtype in (np.float16, np.float32):
        table = (rng.standard_normal((500, 16)) * 10.0 ** rng.uniform(-3, 3, (500, 1))).astype(dtype)
        table[7] = -0.0
        lens = np.r_[0, 1, 2, 512, rng.integers(0, 600, 300), 0, 3]
        ids = rng.integers(0, 500, int(lens.sum()))
        ids[:1] = 7  # the one-token row: a -0.0 row
        offsets = np.r_[0, np.cumsum(lens)]
        got = static_means(table.astype(np.float32), ids, offsets, dtype)
        for n in np.unique(lens[lens > 0]):
            rows = np.nonzero(lens == n)[0]
            want = table[np.stack([ids[offsets[r]:offsets[r + 1]] for r in rows])].mean(axis=1)
            assert want.dtype == got.dtype and np.array_equal(got[rows], want)
        assert not got[lens == 0].any()
        assert not np.signbit(got[1]).any()


# ------------------------------------------------------------------------------ reuse (speed path)
def test_leak_check_with_dedups_features_and_embedder_matches_a_fresh_one(cache_dir):
    """cross_split_leaks reading only ids and splits for the rows dedup already has features for (and taking their
    embeddings from dedup's Embedder) finds what a fresh check finds, on pandas and Dask input, with rows dedup
    never saw (synthetic rows) computed on the spot."""
    import dask.dataframe as dd

    df = frame(rows_with_near_copies(60, copies=6, first_copy_id=500, edit_rate=0.03, seed=13))
    cfg = static_cfg("")  # no disk cache: every embedding the reusing check needs must come from dedup's Embedder
    res = dedup.deduplicate(df, cfg)
    kept = res.kept.copy()
    kept["split"] = ["train" if i % 3 else "test" for i in range(len(kept))]
    extra = frame(make_rows(5, seed=77) + [kept.iloc[0].to_dict()])  # the last: a test row's text, in train
    extra["id"] = [synthetic_id(kept["id"].iloc[i], 1, 0) for i in range(6)]
    extra["split"] = "train"
    final = pd.concat([kept, extra], ignore_index=True)
    fresh = dedup.cross_split_leaks(final, static_cfg(cache_dir))
    assert fresh["exact_pairs"] == 1 and fresh["total"] >= 1
    for new_texts, rows in ((5, final), (0, dd.from_pandas(final, npartitions=3))):
        calls = res.embedder.calls
        reused = dedup.cross_split_leaks(rows, cfg, known_features=res.features, embedder=res.embedder)
        for key in ("rows", "exact_pairs", "jaccard_pairs", "cosine_pairs", "total", "examples"):
            assert reused[key] == fresh[key], key
        # only the new texts were embedded (once: the Dask pass finds them in the Embedder's cache)
        assert reused["cache_misses"] == new_texts and res.embedder.calls == calls + (new_texts > 0)


def test_workers_embeddings_give_the_same_dedup(cache_dir):
    """Features made with embed_cfg (as the clean tasks make them) carry each row's embedding; dedup from them
    removes what dedup from plain features removes, embeds nothing itself, and caches the same embeddings."""
    from dedup.features import kept_features, worker_embedding

    df = frame(rows_with_near_copies(60, copies=6, first_copy_id=500, edit_rate=0.03, seed=14))
    df["drop_reason"] = ""
    cfg = static_cfg(cache_dir)
    embed_cfg = worker_embedding(cfg)
    assert embed_cfg is not None and embed_cfg.embedding_cache is None
    parts = [df.iloc[:25], df.iloc[25:]]
    with_emb = [kept_features(p, "drop_reason", None, cfg.fuzzy_shingle, cfg.num_perm, cfg.seed, embed_cfg)
                for p in parts]
    plain = [kept_features(p, "drop_reason", None, cfg.fuzzy_shingle, cfg.num_perm, cfg.seed) for p in parts]
    records = df.drop(columns=["drop_reason"])
    a = dedup.deduplicate(records, cfg, features=with_emb)
    assert a.stats["semantic"]["model_calls"] == 0 and a.stats["semantic"]["worker_embed_cpu_seconds"] > 0
    assert worker_embedding(cfg) is None  # the cache holds this model's embeddings now: the driver's turn
    b = dedup.deduplicate(records, static_cfg(cache_dir + "-plain"), features=plain)
    pd.testing.assert_frame_equal(a.removed, b.removed)
    hashes = list(a.features["text_hash"])
    pos_a, emb_a = dedup.EmbeddingCache(cache_dir, a.embedder.key).lookup(hashes)
    pos_b, emb_b = dedup.EmbeddingCache(cache_dir + "-plain", b.embedder.key).lookup(hashes)
    assert np.array_equal(emb_a[pos_a[pos_a >= 0]], emb_b[pos_b[pos_a >= 0]])
