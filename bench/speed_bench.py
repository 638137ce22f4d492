"""Issue 21's bench: the whole `python main.py` against the tutorial's method, side by side, on one corpus.

    python bench/speed_bench.py                          # 24,370 questions, 3 rounds
    python bench/speed_bench.py --before DIR --rounds 3  # also a checkout of the code before the speed work
    python bench/speed_bench.py --ours-args "--text-format plain"  # more flags for our runs (both checkouts)

Each round runs, one after the other on the same file: the tutorial's method (bench/baseline_tutorial.py
--double-clean --workers 2: HTML cleaned twice as the tutorial did, on both cores), our pipeline with default
flags (all three dedup kinds, static embeddings, a fresh embedding cache: a first run), and with --before the
same command in that other checkout. A shared machine's load moves every time; the ratio of two runs made
seconds apart moves much less, so the table gives each round's ratio and the median of them, with the load
average next to each run and the CPU model (lscpu) on top.

Per run of ours: whole-process wall and peak RSS (the process tree, psutil), and from report.json the stages,
the leak check, audit and dedup seconds and the start-up (process start to the convert stage; report
"timeline"). With --before, the data files of the two checkouts' outputs (split JSONL, every format, removed.jsonl:
everything but report.json, README.md and the pictures, which hold timings) are compared by sha256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PY, REPO, commit, corpus, cpu_info, cpu_seconds_of_children, measure  # noqa: E402

REPORT_ONLY = {"report.json", "README.md"}


def data_digests(final: Path) -> dict[str, str]:
    """sha256 of every output file whose bytes do not depend on timings (all but report.json, README.md, PNGs)."""
    return {str(p.relative_to(final)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(final.rglob("*"))
            if p.is_file() and p.name not in REPORT_ONLY and p.suffix != ".png"}


def run_ours(repo: Path, path: Path, out: Path, cache: Path, extra: list[str]) -> dict:
    """`python main.py --input path` in `repo` (default flags plus `extra`, a fresh embedding cache), measured."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    load, cpu = os.getloadavg()[0], cpu_seconds_of_children()
    r = measure([PY, "main.py", "--input", str(path), "--output-dir", str(out), "--quiet",
                 "--embedding-cache", str(cache), *extra], cwd=repo)
    cpu = cpu_seconds_of_children() - cpu
    if r["rc"] != 0:
        raise SystemExit(f"pipeline failed in {repo} ({r['rc']}):\n{r['stderr'][-3000:]}")
    report = json.loads((out / "final" / "report.json").read_text())
    stages = {s["name"]: round(s["seconds"], 2) for s in report["stages"]}
    timeline = report.get("timeline") or {}
    return {"wall": r["seconds"], "cpu": cpu, "rss_tree_mib": r["rss_tree_mib"], "load": load, "stages": stages,
            "dedup": stages.get("dedup"), "audit": (report.get("audit") or {}).get("seconds"),
            "leaks": (report.get("leaks") or {}).get("seconds"), "startup": timeline.get("convert"),
            "embed_cpu": ((report.get("dedup") or {}).get("semantic") or {}).get("worker_embed_cpu_seconds"),
            "digests": data_digests(out / "final")}


def run_tutorial(path: Path) -> dict:
    load, cpu = os.getloadavg()[0], cpu_seconds_of_children()
    r = measure([PY, "bench/baseline_tutorial.py", str(path), "--workers", "2", "--double-clean"])
    if r["rc"] != 0:
        raise SystemExit(f"baseline failed: {r['stderr'][-2000:]}")
    return {"wall": r["seconds"], "cpu": cpu_seconds_of_children() - cpu, "rss_tree_mib": r["rss_tree_mib"], "load": load,
            "total_s": json.loads(r["stdout"])["total_s"]}


def fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def table(rounds: list[dict], before: bool) -> list[str]:
    head = ("| round | load | tutorial s (CPU s) | ours s (CPU s) | ours / tutorial | start-up s | dedup s | leak check s | "
            "audit s | peak RSS MiB (tutorial) |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for i, r in enumerate(rounds, 1):
        for label in (("after", "before") if before else ("after",)):
            o, t = r[label], r["tutorial"]
            name = "ours" if not before else f"ours ({label})"
            lines.append(f"| {i} {name} | {o['load']:.1f} | {t['wall']:.1f} ({t['cpu']:.1f}) | {o['wall']:.1f} "
                         f"({o['cpu']:.1f}) | **{o['wall'] / t['wall']:.2f}** | {fmt(o['startup'])} | "
                         f"{fmt(o['dedup'])} | {fmt(o['leaks'])} | {fmt(o['audit'])} | {o['rss_tree_mib']:.0f} "
                         f"({t['rss_tree_mib']:.0f}) |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=24370)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", type=Path, default=None, help="a checkout of the code before the speed work")
    ap.add_argument("--json", type=Path, default=None, help="also write every measure here")
    ap.add_argument("--ours-args", default="", help="more flags for both of our runs, e.g. '--text-format plain'")
    a = ap.parse_args()
    cpu = cpu_info()
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores; commit {commit()}; load {os.getloadavg()[0]:.1f}", flush=True)
    path = corpus(a.questions, a.seed)
    extra = a.ours_args.split()
    work = Path(tempfile.mkdtemp(prefix="lawqa-speed-"))
    rounds = []
    try:
        for i in range(a.rounds):
            r = {"tutorial": run_tutorial(path), "after": run_ours(REPO, path, work / "after", work / "cache-a", extra)}
            if a.before:
                r["before"] = run_ours(a.before.resolve(), path, work / "before", work / "cache-b", extra)
            rounds.append(r)
            msg = f"round {i + 1}: tutorial {r['tutorial']['wall']:.1f}s, ours {r['after']['wall']:.1f}s"
            print(msg + (f", before {r['before']['wall']:.1f}s" if a.before else ""), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [f"CPU: {cpu['model']}, {cpu['cores']} cores; commit {commit()}; {a.questions:,} questions "
             f"(seed {a.seed})" + (f"; ours with {a.ours_args}" if extra else ""), ""] + table(rounds, bool(a.before))
    ratios = [r["after"]["wall"] / r["tutorial"]["wall"] for r in rounds]
    lines += ["", f"median ours / tutorial: {statistics.median(ratios):.2f} (rounds: "
              + ", ".join(f"{x:.2f}" for x in ratios) + ")"]
    if a.before:
        before = [r["before"]["wall"] / r["tutorial"]["wall"] for r in rounds]
        same = all(r["before"]["digests"] == r["after"]["digests"] for r in rounds)
        lines += [f"median before / tutorial: {statistics.median(before):.2f} (rounds: "
                  + ", ".join(f"{x:.2f}" for x in before) + ")",
                  f"output data files byte-identical before/after (sha256 of {len(rounds[0]['after']['digests'])} "
                  f"files, every round): {'yes' if same else 'NO'}"]
    print("\n".join(lines))
    if a.json:
        a.json.write_text(json.dumps({"cpu": cpu, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
