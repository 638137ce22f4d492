"""Dedup benchmark: seconds per step, precision/recall per kind against planted duplicates with the default
flags (or --embedding-model/--semdedup-eps), the model, threshold and margin that ran, the family-size
distribution, and the Embedder's docs/s for MiniLM (fp32 on one thread = before; fp32 and int8 on one thread
and on every core; auto = bf16 where supported) and the static model, with the machine (CPU model, cores, bf16,
load) printed.

    python bench/dedup_bench.py --questions 24370
    python bench/dedup_bench.py --questions 2000 --speed-docs 64     # a quick check

The corpus comes from data/make_sample.py (planted exact / near / paraphrase copies with a truth file), is
converted, cleaned and filtered by the pipeline's own stages (docbuilder, modifiers, filters), and cached
under bench/corpora/ (git-ignored). CPUs without bf16 run int8 by default (the int8 rows; the pipeline's
flags: --embedding-precision int8, or fp32 for torch fp32). To measure an AVX2-only CPU on an AVX512 one, pin
every kernel library to AVX2 (the table prints the pins in force):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 \
        python bench/dedup_bench.py --questions 24370
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


# ------------------------------------------------------------------------------------------ machine
def machine() -> dict:
    """CPU model, cores this process may use, bf16 yes/no, load average (the machine may be shared)."""
    import platform

    import dedup

    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cores": dedup.available_cores(), "bf16": dedup.bf16_supported(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


# ---------------------------------------------------------------------------------------- embedding speed
SPEED_MODES = (("minilm", "fp32", 1), ("minilm", "fp32", None), ("minilm", "int8", 1), ("minilm", "int8", None),
               ("minilm", "auto", None), ("static", "auto", None))
# env variables that pin torch/oneDNN/MKL/fbgemm to their AVX2 kernels: set them all to measure, on an AVX512
# machine, what an AVX2-only CPU (the target, e.g. an AMD EPYC without AVX512) runs
ISA_PINS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "FBGEMM_ENABLE_INSTRUCTIONS")


def embedding_speed(texts: list[str], modes=SPEED_MODES, repeats: int = 3) -> list[dict]:
    """docs/s of the Embedder per (model, precision, threads) on the same docs (threads None: every core),
    each mode's speed over the first mode's (MiniLM fp32 on one thread: the driver before issue 12, when the
    LocalCluster left torch on one thread), and each MiniLM mode's min cosine to the first mode's embeddings.

    The machine may be shared: the modes run interleaved (each round runs every mode once, every other round
    in reverse order) for `repeats` rounds, and docs/s is the median, so a load change hits every mode alike."""
    import dedup

    embedders = []
    for model, precision, threads in modes:
        emb = dedup.Embedder(dedup.DedupConfig(embedding_model=model, precision=precision,
                                               embedding_threads=threads, embedding_cache=None))
        emb._encode(texts[:8])  # model load and warm-up, not timed
        embedders.append(emb)
    seconds, out = [[] for _ in modes], [None] * len(modes)
    for r in range(repeats):
        for i in (range(len(modes)) if r % 2 == 0 else reversed(range(len(modes)))):
            t = time.perf_counter()
            out[i] = embedders[i]._encode(texts)
            seconds[i].append(time.perf_counter() - t)
    rows = []
    for (model, _, _), emb, s, e in zip(modes, embedders, seconds, out):
        row = {"model": model, "precision": emb.precision, "threads": emb.threads or "-",
               "docs_per_s": len(texts) / float(np.median(s))}
        row["x_first"] = row["docs_per_s"] / (len(texts) / float(np.median(seconds[0])))
        if model == "minilm":
            row["cos_vs_first_min"] = float(np.einsum("ij,ij->i", e, out[0]).min())
        rows.append(row)
    return rows


def print_speed(speed: list[dict], docs: int) -> None:
    """The speed table, with the machine and any ISA pin in force (measured figures need both)."""
    pins = {k: os.environ[k] for k in ISA_PINS if k in os.environ}
    print(f"\nembedding speed on {docs} docs (256 tokens), median of interleaved runs: machine {machine()}"
          + (f", ISA pinned {pins}" if pins else ""))
    print("  (x_first: docs/s over MiniLM fp32 on one thread; cos_vs_first_min: min cosine to its embeddings)")
    for row in speed:
        print("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    by = {(r["model"], r["precision"], r["threads"]): r for r in speed}
    for prec in ("fp32", "int8", "bf16"):
        one = next((r for k, r in by.items() if k[:2] == ("minilm", prec) and k[2] == 1), None)
        every = next((r for k, r in by.items() if k[:2] == ("minilm", prec) and k[2] != 1), None)
        if one and every:
            print(f"  MiniLM {prec}: one thread {one['x_first']:.2f}x, every core ({every['threads']}) "
                  f"{every['x_first']:.2f}x fp32 on one thread")
        elif every:
            print(f"  MiniLM {prec}: every core ({every['threads']}) {every['x_first']:.2f}x fp32 on one thread")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=24370)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embedding-model", default=None, help="default: the device's default (static on CPU)")
    ap.add_argument("--semdedup-eps", type=float, default=None)
    ap.add_argument("--speed-docs", type=int, default=300, help="docs for the embedding speed table (0: skip)")
    ap.add_argument("--speed-repeats", type=int, default=3,
                    help="interleaved rounds of the speed table; docs/s is the median (default 3)")
    ap.add_argument("--npartitions", type=int, default=8, help="Dask partitions (0: pandas input)")
    ap.add_argument("--calibrate", action="store_true",
                    help="print cosine/Jaccard of planted pairs and of nearest non-duplicates")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--records", type=Path, help="a records parquet (converted/cleaned/filtered) instead of generating")
    ap.add_argument("--truth", type=Path, help="the truth jsonl for --records")
    return ap.parse_args(argv)


def load_corpus(args) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = time.perf_counter()
    if args.records:
        df, truth_path = pd.read_parquet(args.records), args.truth
    else:
        src, truth_path = make_corpus(args.questions, args.seed)
        df = load_records(src)
    truth = load_truth(truth_path)
    print(f"corpus: {len(df)} rows after convert/clean/filter ({args.questions} questions, {time.perf_counter() - t:.1f}s); "
          f"planted: {truth['kind'].value_counts().to_dict()}", flush=True)
    return df, truth


def print_quality(quality: dict, removed: int, stats: dict) -> None:
    planted = sum(q["planted"] for q in quality.values())
    print(f"\n{'kind':<10}{'planted':>9}{'removed':>9}{'FP':>5}{'precision':>11}{'recall':>8}{'recall(any kind)':>18}")
    for k, q in quality.items():
        print(f"{k:<10}{q['planted']:>9}{q['removed']:>9}{q['false_positives']:>5}{q['precision']:>11.3f}"
              f"{q['recall']:>8.3f}{q['recall_any_kind']:>18.3f}")
    print(f"removed rows {removed} = {removed / max(planted, 1):.3f} x planted ({planted})")
    model = stats.get("model") or {}
    print(f"model {model.get('name')} threshold {model.get('threshold')} (corpus floor {model.get('corpus_floor')}); "
          f"nearest non-duplicate this run {model.get('nearest_nonduplicate_this_run')}")
    fam = stats["families"]
    print(f"families {fam['count']} (cap {fam['cap']}, links {fam['links']}, cut {fam['links_cut']}); kept rows by "
          f"family size {fam['kept_rows']['by_size']}, largest {fam['kept_rows']['largest']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    import dedup

    print(f"machine: {machine()}", flush=True)
    df, truth = load_corpus(args)
    cache = tempfile.mkdtemp(prefix="dedup-bench-cache-")
    cfg = dedup.DedupConfig(embedding_model=args.embedding_model, semdedup_eps=args.semdedup_eps,
                            embedding_cache=cache, device=args.device)
    records = df
    if args.npartitions:
        import dask
        import dask.dataframe as dd

        dask.config.set(scheduler="threads")
        records = dd.from_pandas(df, npartitions=args.npartitions)
    t = time.perf_counter()
    cold = dedup.deduplicate(records, cfg)
    t_cold = time.perf_counter() - t
    t = time.perf_counter()
    warm = dedup.deduplicate(records, cfg)
    t_warm = time.perf_counter() - t
    st = cold.stats
    steps = {"features (hashes+signatures)": st["fuzzy"]["features_wall_seconds"], "exact": st["exact"]["seconds"],
             "fuzzy LSH + verify": st["fuzzy"]["lsh_seconds"], "semantic embed (cold)": st["semantic"]["embed_seconds"],
             "semantic embed (warm)": warm.stats["semantic"]["embed_seconds"],
             "semantic k-means": st["semantic"].get("cluster_seconds", 0.0),
             "semantic pair search": st["semantic"].get("search_seconds", 0.0),
             "families": st["families"]["seconds"], "total dedup (cold)": t_cold, "total dedup (warm)": t_warm}
    print(f"\n{'step':<34}{'seconds':>10}")
    for name, s in steps.items():
        print(f"{name:<34}{s:>10.2f}")
    print(f"peak RSS {peak_rss_mb():.0f} MB; embedded {st['semantic']['cache_misses']} docs cold "
          f"({st['semantic']['precision']}, {st['semantic']['threads']} threads)")
    quality = evaluate(cold.removed, truth, df["id"])
    print_quality(quality, len(cold.removed), st)
    speed = []
    if args.speed_docs:
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(len(df), size=min(args.speed_docs, len(df)), replace=False))
        speed = embedding_speed(dedup.doc_texts(df.iloc[pick]), repeats=args.speed_repeats)
        print_speed(speed, len(pick))
    if args.calibrate:
        calibrate(df, truth, cfg)
    shutil.rmtree(cache, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": len(df), "steps": steps, "quality": quality,
                                         "speed": speed, "stats": st}, indent=1, default=str))
    return 0


def calibrate(df: pd.DataFrame, truth: pd.DataFrame, cfg) -> None:
    import dedup

    texts = dedup.doc_texts(df)
    emb, _ = dedup.Embedder(cfg).embed(texts)
    ps = pair_similarities(df, truth, emb, dedup.minhash_signatures(texts))
    nn = nearest_nonduplicate(df, truth, emb)
    qs = [0.0, 0.05, 0.1, 0.5, 0.9, 1.0]
    print(f"\n{cfg.model}: planted pairs, quantiles {qs}")
    for kind, g in ps.groupby("kind"):
        print(f"  {kind:<11} cosine {np.round(g['cosine'].quantile(qs).to_numpy(), 4)}  "
              f"jaccard {np.round(g['jaccard'].quantile(qs).to_numpy(), 3)}")
    print(f"  nearest non-duplicate cosine: quantiles [0.5, 0.9, 0.99, 0.999, 1.0] "
          f"{np.round(np.quantile(nn, [0.5, 0.9, 0.99, 0.999, 1.0]), 4)}")


if __name__ == "__main__":
    raise SystemExit(main())
