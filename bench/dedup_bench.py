"""Dedup benchmark: seconds per step, peak RSS, precision/recall/F1 per kind against planted duplicates,
cold vs warm semantic time, and plain sentence-transformers MiniLM fp32 (256 tokens) in the same run.

    python bench/dedup_bench.py --questions 24370
    python bench/dedup_bench.py --questions 250000 --baseline-docs 500

The corpus comes from data/make_sample.py (planted exact / near / paraphrase copies with a truth file), is
converted, cleaned and filtered by the pipeline's own stages (docbuilder, modifiers, filters), and cached
under bench/corpora/ (git-ignored). The plain sentence-transformers baseline embeds a sample of
--baseline-docs documents (default 1000) and its docs/s is compared with our cold embedding docs/s.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CORPORA = REPO / "bench" / "corpora"


# ------------------------------------------------------------------------------------------- corpus
def make_corpus(questions: int, seed: int, out_dir: Path = CORPORA) -> tuple[Path, Path]:
    """Generate (or reuse) a corpus with planted duplicates; returns (json, truth jsonl)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"sample-{questions}-s{seed}.json"
    truth = out_dir / f"sample-{questions}-s{seed}-duplicates.jsonl"
    if not (out.exists() and truth.exists()):
        subprocess.run([sys.executable, str(REPO / "data" / "make_sample.py"), "--questions", str(questions),
                        "--seed", str(seed), "--out", str(out), "--truth", str(truth)], check=True)
    return out, truth


def load_records(path: Path, filtered: bool = True) -> pd.DataFrame:
    """The pipeline's convert -> clean -> filter stages on one file, as one pandas frame."""
    from docbuilder import ConvertStats, iter_record_chunks
    from modifiers import clean_partition

    chunks = [clean_partition(c) for c in iter_record_chunks(Path(path), ConvertStats(), progress=False)]
    df = pd.concat(chunks, ignore_index=True)
    if filtered:
        from filters import FilterConfig, apply_filters, default_filters

        df, _ = apply_filters(df, default_filters(FilterConfig()))
    return df.reset_index(drop=True)


def load_truth(path: Path) -> pd.DataFrame:
    from records import record_id

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    t = pd.DataFrame(rows, columns=["question_id", "duplicates", "kind"])
    t["id"] = t["question_id"].map(record_id)
    t["of"] = t["duplicates"].map(record_id)
    return t


# --------------------------------------------------------------------------------------- evaluation
def _groups(pairs, ids) -> dict:
    """id -> component label over `pairs` (ids not in any pair are their own component)."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in ids}


def evaluate(removed: pd.DataFrame, truth: pd.DataFrame, present_ids) -> dict:
    """Precision/recall/F1 per kind.

    Truth pairs (copy, original) of kind K = exact|near|paraphrase; dedup kinds exact|fuzzy|semantic map to
    K = exact|near|paraphrase. Recall(K): the share of K pairs (both rows present) that the dedup put in one
    group, by any kind. Precision(kind): the share of rows removed by that kind whose `duplicate_of` is
    in the same planted group (a removal of two rows that are not planted duplicates is a false positive).
    `cumulative recall` counts a pair found by any kind; `own recall` only if the matching kind found it.
    """
    present = set(present_ids)
    t = truth[truth["id"].isin(present) & truth["of"].isin(present)]
    true_grp = _groups(zip(t["id"], t["of"]), present)
    dedup_grp = _groups(zip(removed["id"], removed["duplicate_of"]), present)
    kind_of_removal = dict(zip(removed["id"], removed["kind"]))
    out = {}
    mapping = {"exact": "exact", "fuzzy": "near", "semantic": "paraphrase"}
    for dk, tk in mapping.items():
        tk_pairs = t[t["kind"] == tk]
        found_any = [dedup_grp[a] == dedup_grp[b] for a, b in zip(tk_pairs["id"], tk_pairs["of"])]
        found_own = [dedup_grp[a] == dedup_grp[b] and (kind_of_removal.get(a) == dk or kind_of_removal.get(b) == dk)
                     for a, b in zip(tk_pairs["id"], tk_pairs["of"])]
        rem = removed[removed["kind"] == dk]
        correct = [true_grp.get(a) == true_grp.get(b) for a, b in zip(rem["id"], rem["duplicate_of"])]
        p = float(np.mean(correct)) if len(correct) else 1.0
        r = float(np.mean(found_own)) if len(found_own) else 1.0
        out[dk] = {"planted": int(len(tk_pairs)), "removed": int(len(rem)), "false_positives": int(len(correct) - sum(correct)),
                   "precision": p, "recall": r, "f1": (2 * p * r / (p + r)) if p + r else 0.0,
                   "recall_any_kind": float(np.mean(found_any)) if len(found_any) else 1.0}
    return out


def pair_similarities(df: pd.DataFrame, truth: pd.DataFrame, emb: np.ndarray, sig: np.ndarray) -> pd.DataFrame:
    """Cosine and signature Jaccard of each planted pair (for calibration)."""
    pos = {i: k for k, i in enumerate(df["id"])}
    t = truth[truth["id"].isin(pos) & truth["of"].isin(pos)]
    a = t["id"].map(pos).to_numpy()
    b = t["of"].map(pos).to_numpy()
    return pd.DataFrame({"kind": t["kind"].to_numpy(), "cosine": np.einsum("ij,ij->i", emb[a], emb[b]),
                         "jaccard": (sig[a] == sig[b]).mean(axis=1)})


def nearest_nonduplicate(df: pd.DataFrame, truth: pd.DataFrame, emb: np.ndarray, block: int = 2048) -> np.ndarray:
    """For each row, the highest cosine to a row that is not in its planted group (for calibration)."""
    grp = _groups(zip(truth["id"], truth["of"]), df["id"])
    g = pd.factorize(pd.Series([grp[i] for i in df["id"]]))[0]
    best = np.full(len(df), -1.0)
    for s in range(0, len(df), block):
        sims = emb[s: s + block] @ emb.T
        same = g[s: s + block, None] == g[None, :]
        sims[same] = -1.0
        best[s: s + block] = sims.max(axis=1)
    return best


# ---------------------------------------------------------------------------------------- baseline
def speed_vs_plain_st(texts: list[str], cfg, rounds: int = 4) -> dict:
    """Plain sentence-transformers MiniLM (fp32, no autocast: the tutorial's CPU path) vs our embedder, on
    the same docs, interleaved in `rounds` alternating slices so that load from other processes on a shared
    machine hits both alike. Returns docs/s of each, the ratio, and cos(ours, fp32) per doc."""
    import dataclasses

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    import dedup

    m = SentenceTransformer(dedup._minilm_path(cfg.embedding_model), device="cpu")
    m.max_seq_length = cfg.max_seq_length
    m.float()  # plain fp32, whatever dtype the checkpoint was saved in
    ours = dedup.Embedder(dataclasses.replace(cfg, embedding_cache=None))
    m.encode(texts[:8], batch_size=8)  # load/warm-up, not timed
    ours._encode(texts[:8])
    t_plain = t_ours = 0.0
    e32, e16 = [], []
    for s in np.array_split(np.arange(len(texts)), rounds):
        part = [texts[i] for i in s]
        t = time.perf_counter()
        e32.append(m.encode(part, batch_size=32, normalize_embeddings=True, show_progress_bar=False))
        t_plain += time.perf_counter() - t
        t = time.perf_counter()
        e16.append(ours._encode(part))
        t_ours += time.perf_counter() - t
    cos = np.einsum("ij,ij->i", np.concatenate(e16), np.asarray(np.concatenate(e32), dtype=np.float32))
    return {"docs": len(texts), "plain_st_fp32_docs_per_s": len(texts) / t_plain,
            "ours_docs_per_s_same_docs": len(texts) / t_ours, "speedup_same_docs": t_plain / t_ours,
            "cos_vs_fp32_min": float(cos.min()), "cos_vs_fp32_mean": float(cos.mean()), "precision": ours.precision}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=24370)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embedding-model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--semdedup-eps", type=float, default=None)
    ap.add_argument("--baseline-docs", type=int, default=1000, help="docs for the plain sentence-transformers run (0: skip)")
    ap.add_argument("--no-semantic", action="store_true")
    ap.add_argument("--npartitions", type=int, default=8, help="Dask partitions (0: pandas input)")
    ap.add_argument("--calibrate", action="store_true", help="print cosine/Jaccard of planted pairs and of nearest non-duplicates")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--records", type=Path, help="a records parquet (converted/cleaned/filtered) instead of generating")
    ap.add_argument("--truth", type=Path, help="the truth jsonl for --records")
    ap.add_argument("--save-records", type=Path, help="write the loaded records as parquet (for --records elsewhere)")
    ap.add_argument("--compare-devices", action="store_true",
                    help="also run semantic dedup with --device cpu and report the rows that differ from --device gpu")
    args = ap.parse_args(argv)

    import dedup

    t = time.perf_counter()
    if args.records:
        src, truth_path = args.records, args.truth
        t_gen = 0.0
        t = time.perf_counter()
        df = pd.read_parquet(src)
    else:
        src, truth_path = make_corpus(args.questions, args.seed)
        t_gen = time.perf_counter() - t
        t = time.perf_counter()
        df = load_records(src)
    if args.save_records:
        df.to_parquet(args.save_records, compression="zstd")
    truth = load_truth(truth_path)
    t_load = time.perf_counter() - t
    print(f"corpus: {len(df)} rows after convert/clean/filter ({args.questions} questions; generate {t_gen:.1f}s, "
          f"load {t_load:.1f}s); planted: {truth['kind'].value_counts().to_dict()}", flush=True)

    cache = tempfile.mkdtemp(prefix="dedup-bench-cache-")
    cfg = dedup.DedupConfig(embedding_model=args.embedding_model, semdedup_eps=args.semdedup_eps,
                            embedding_cache=cache, semantic=not args.no_semantic, device=args.device)
    records = df
    if args.npartitions:
        import dask
        import dask.dataframe as dd

        dask.config.set(scheduler="threads")
        records = dd.from_pandas(df, npartitions=args.npartitions)
    rss0 = peak_rss_mb()
    t = time.perf_counter()
    cold = dedup.deduplicate(records, cfg)
    t_cold = time.perf_counter() - t
    rss_cold = peak_rss_mb()
    t = time.perf_counter()
    warm = dedup.deduplicate(records, cfg) if cfg.semantic else cold
    t_warm = time.perf_counter() - t
    quality = evaluate(cold.removed, truth, df["id"])
    st, sw = cold.stats, warm.stats
    n_emb = st["semantic"].get("cache_misses", 0)
    ours_dps = n_emb / st["semantic"]["embed_seconds"] if n_emb and st["semantic"]["embed_seconds"] else float("nan")

    base = {}
    if args.compare_devices and cfg.semantic:
        import dataclasses

        other = "cpu" if args.device == "gpu" else "gpu"
        cache2 = tempfile.mkdtemp(prefix="dedup-bench-cache-")
        t = time.perf_counter()
        res2 = dedup.deduplicate(df, dataclasses.replace(cfg, device=other, embedding_cache=cache2))
        t2 = time.perf_counter() - t
        a = set(zip(cold.removed["id"], cold.removed["kind"]))
        b = set(zip(res2.removed["id"], res2.removed["kind"]))
        e1, _ = dedup.Embedder(cfg).embed([dedup.doc_text(*r) for r in df[["title", "question", "answer"]].itertuples(index=False)])
        e2, _ = dedup.Embedder(dataclasses.replace(cfg, device=other, embedding_cache=cache2)).embed(
            [dedup.doc_text(*r) for r in df[["title", "question", "answer"]].itertuples(index=False)])
        cos = np.einsum("ij,ij->i", e1, e2)
        print(f"\ndevice {args.device} vs {other}: removed {len(a)} vs {len(b)}, differing removals {len(a ^ b)} "
              f"({sorted(a ^ b)[:5]}); embeddings cos min {cos.min():.6f} mean {cos.mean():.7f}; "
              f"precision {cold.stats['semantic'].get('precision')} vs {res2.stats['semantic'].get('precision')}; "
              f"{other} dedup {t2:.1f}s (embed {res2.stats['semantic']['embed_seconds']:.1f}s)")
        shutil.rmtree(cache2, ignore_errors=True)
    if cfg.semantic and cfg.model_family == "minilm" and args.baseline_docs and args.device == "cpu":
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(len(df), size=min(args.baseline_docs, len(df)), replace=False))
        texts = [dedup.doc_text(*df.loc[i, ["title", "question", "answer"]]) for i in pick]
        base = speed_vs_plain_st(texts, cfg)
        base["speedup_full_run"] = ours_dps / base["plain_st_fp32_docs_per_s"]
        base["plain_st_full_corpus_s_estimate"] = n_emb / base["plain_st_fp32_docs_per_s"] if n_emb else None

    # --------------------------------------------------------------------------------- the table
    rows = [
        ("exact", st["exact"]["seconds"]),
        ("fuzzy signatures (CPU s, all partitions)", st["fuzzy"]["signature_cpu_seconds"]),
        ("features wall (hashes+signatures+gather)", st["fuzzy"]["features_wall_seconds"]),
        ("fuzzy LSH + verify + components", st["fuzzy"]["lsh_seconds"]),
        ("semantic embed (cold)", st["semantic"]["embed_seconds"]),
        ("semantic embed (warm, cache)", sw["semantic"]["embed_seconds"]),
        ("semantic k-means", st["semantic"]["cluster_seconds"]),
        ("semantic pair search", st["semantic"]["search_seconds"]),
        ("families", st["families"]["seconds"]),
        ("total dedup (cold)", t_cold),
        ("total dedup (warm)", t_warm),
    ]
    print(f"\n{'step':<42}{'seconds':>10}")
    for name, s in rows:
        print(f"{name:<42}{s:>10.2f}")
    print(f"\npeak RSS: {rss_cold:.0f} MB (before dedup {rss0:.0f} MB); embedded {n_emb} docs cold "
          f"({ours_dps:.1f} docs/s, {st['semantic'].get('precision')}), warm: {sw['semantic'].get('cache_hits', 0)} cache hits, "
          f"{sw['semantic'].get('model_calls', 0)} model calls")
    print(f"LSH: {st['fuzzy']['bands']} bands x {st['fuzzy']['rows']} rows, {st['fuzzy']['candidate_pairs']} candidate pairs; "
          f"k-means clusters: {st['semantic'].get('clusters')}; eps {cfg.eps}; families: {st['families']['count']}")
    print(f"\n{'kind':<10}{'planted':>9}{'removed':>9}{'FP':>5}{'precision':>11}{'recall':>8}{'F1':>7}{'recall(any kind)':>18}")
    for k, q in quality.items():
        print(f"{k:<10}{q['planted']:>9}{q['removed']:>9}{q['false_positives']:>5}{q['precision']:>11.3f}"
              f"{q['recall']:>8.3f}{q['f1']:>7.3f}{q['recall_any_kind']:>18.3f}")
    if base:
        print(f"\nplain sentence-transformers fp32 @256 tok: {base['plain_st_fp32_docs_per_s']:.1f} docs/s; ours "
              f"({base['precision']}, length-sorted) on the same {base['docs']} docs: {base['ours_docs_per_s_same_docs']:.1f} docs/s "
              f"-> {base['speedup_same_docs']:.2f}x, interleaved (full cold run {ours_dps:.1f} docs/s -> {base['speedup_full_run']:.2f}x; "
              f"plain ST would take ~{base['plain_st_full_corpus_s_estimate'] or 0:.0f}s for this corpus); "
              f"cos vs fp32 min {base['cos_vs_fp32_min']:.5f} mean {base['cos_vs_fp32_mean']:.6f}")
    if args.calibrate and cfg.semantic:
        emb, _ = dedup.Embedder(cfg).embed([dedup.doc_text(*r) for r in df[["title", "question", "answer"]].itertuples(index=False)])
        sig = dedup.minhash_signatures([dedup.doc_text(*r) for r in df[["title", "question", "answer"]].itertuples(index=False)])
        ps = pair_similarities(df, truth, emb, sig)
        nn = nearest_nonduplicate(df, truth, emb)
        qs = [0.0, 0.05, 0.1, 0.5, 0.9, 1.0]
        print("\nplanted pairs: quantiles", qs)
        for kind, g in ps.groupby("kind"):
            print(f"  {kind:<11} cosine {np.round(g['cosine'].quantile(qs).to_numpy(), 4)}  "
                  f"jaccard {np.round(g['jaccard'].quantile(qs).to_numpy(), 3)}")
        print(f"  nearest non-duplicate cosine: quantiles [0.5, 0.9, 0.99, 0.999, 1.0] "
              f"{np.round(np.quantile(nn, [0.5, 0.9, 0.99, 0.999, 1.0]), 4)}")
    shutil.rmtree(cache, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": len(df), "steps": dict(rows), "peak_rss_mb": rss_cold,
                                         "quality": quality, "baseline": base,
                                         "stats_cold": st, "stats_warm": sw}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
