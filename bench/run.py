"""One benchmark entry point: the pipeline against the tutorial's method, scaling, start-up.

    python bench/run.py            # 24,370 and 250,000 questions (generated, fixed seed)
    python bench/run.py --quick    # 2,437 and 24,370 questions (same measures, ~10x scaling)
    python bench/run.py --sizes 24370,250000 --no-dedup-bench --no-sample   # only the targets table's rows

Run it on a quiet machine (`uptime`: load average below the core count); the load at start and end is
written with the figures, and the ratio rows compare our pipeline and the tutorial's method on the same file
in the same run, so a steady load cancels out of them. The head of the output (and of bench/RESULTS.md) names
the CPU (lscpu model name), its cores, and whether it has bf16 (avx512_bf16 or amx_bf16 in its flags).

What it does, each step in its own subprocess (so peak RSS is per step):
  corpora   reuses or generates bench/corpora/lawqa-<N>-s<seed>.json with data/make_sample.py
            (bench/quickgen.py if that script is missing);
  pipeline  `python main.py --input CORPUS --dedup exact,fuzzy` (SDG off): seconds per stage from its
            report.json, whole-process wall time, peak RSS of the driver, of the Dask workers (all
            descendants, summed at each sample) and of the whole process tree (psutil, every 50 ms; the
            tree re-listed every second);
  baseline  bench/baseline_tutorial.py on the same file in the same run (the tutorial's method);
  semantic  bench/dedup_bench.py (the dedup engineer's) when present: its output is copied verbatim;
  --help    `python main.py --help`, best and median of 5;
  sample    `python main.py --input data/sample/...` with default flags (SDG off), twice (embedding
            cache cold, then warm), and with --dedup exact,fuzzy.
Prints a table and writes bench/RESULTS.md with the machine, date, commit and load average.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO / "bench" / "corpora"
OUT = REPO / "bench" / "out"
SAMPLE = REPO / "data" / "sample" / "law-stackexchange-questions-answers.json"
PY = sys.executable
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


# ------------------------------------------------------------------------------------------ measuring
def measure(cmd: list[str], timeout: float = 3600, cwd: Path = REPO, interval: float = 0.05,
            tree_every: int = 20) -> dict:
    """Run `cmd`; wall seconds, exit code, stdout/stderr and peak RSS (driver, descendants, tree) in MiB.

    The RSS of the known processes is read every `interval` (one /proc read each); the process tree itself is
    listed only every `tree_every` samples, because listing it scans every process on the machine (~5 ms of
    CPU a time: every 50 ms that took a tenth of a core from the 2-core pipeline being timed)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = {"driver": 0, "workers": 0, "tree": 0}
    stop = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        children, samples = [], 0
        while not stop.is_set():
            try:
                driver = root.memory_info().rss
                if samples % tree_every == 0:
                    children = root.children(recursive=True)
                samples += 1
                kids = 0
                for child in children:
                    try:
                        kids += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            peaks["driver"] = max(peaks["driver"], driver)
            peaks["workers"] = max(peaks["workers"], kids)
            peaks["tree"] = max(peaks["tree"], driver + kids)
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    stop.set()
    sampler.join()
    mib = 1 << 20
    return {"cmd": cmd, "rc": proc.returncode, "seconds": time.perf_counter() - t0, "stdout": out, "stderr": err,
            "rss_driver_mib": peaks["driver"] / mib, "rss_workers_mib": peaks["workers"] / mib,
            "rss_tree_mib": peaks["tree"] / mib}


def cpu_seconds_of_children() -> float:
    r = os.times()
    return r.children_user + r.children_system


# ------------------------------------------------------------------------------------------- corpora
def corpus(n: int, seed: int) -> Path:
    """bench/corpora/lawqa-<n>-s<seed>.json, generated once (data/make_sample.py, else bench/quickgen.py)."""
    path = CORPORA / f"lawqa-{n}-s{seed}.json"
    if path.is_file() and path.stat().st_size > 0:
        return path
    CORPORA.mkdir(parents=True, exist_ok=True)
    gen = REPO / "data" / "make_sample.py"
    if not gen.is_file():
        gen = REPO / "bench" / "quickgen.py"
    print(f"generating {path.name} with {gen.relative_to(REPO)} ...", flush=True)
    subprocess.run([PY, str(gen), "--questions", str(n), "--seed", str(seed), "--out", str(path)], check=True,
                   cwd=REPO, env=ENV)
    return path


# ------------------------------------------------------------------------------------------- steps
def run_pipeline(path: Path, tag: str, extra: list[str] | None = None) -> dict:
    out = OUT / tag
    shutil.rmtree(out, ignore_errors=True)
    cmd = [PY, "main.py", "--input", str(path), "--output-dir", str(out), "--quiet", *(extra or [])]
    r = measure(cmd)
    if r["rc"] != 0:
        raise SystemExit(f"pipeline failed ({r['rc']}): {' '.join(cmd)}\n{r['stderr'][-3000:]}")
    report = json.loads((out / "final" / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    r["stages"] = {k: round(v["seconds"], 2) for k, v in stages.items()}
    r["rows"] = {k: (v["rows_in"], v["rows_out"]) for k, v in stages.items()}
    r["ccf_seconds"] = sum(stages[k]["seconds"] for k in ("convert", "clean", "filter") if k in stages)
    r["ccfd_seconds"] = r["ccf_seconds"] + stages.get("dedup", {}).get("seconds", 0.0)
    return r


def run_baseline(path: Path, workers: int = 1) -> dict:
    r = measure([PY, "bench/baseline_tutorial.py", str(path), "--workers", str(workers)])
    if r["rc"] != 0:
        raise SystemExit(f"baseline failed: {r['stderr'][-2000:]}")
    r["result"] = json.loads(r["stdout"])
    return r


def run_help(times: int = 5) -> dict:
    walls = [measure([PY, "main.py", "--help"], interval=0.2)["seconds"] for _ in range(times)]
    return {"best": min(walls), "median": statistics.median(walls)}


def run_dedup_bench(n: int) -> dict | None:
    script = REPO / "bench" / "dedup_bench.py"
    if not script.is_file():
        return None
    r = measure([PY, str(script), "--questions", str(n)], timeout=5400)
    return {"rc": r["rc"], "seconds": r["seconds"], "rss_tree_mib": r["rss_tree_mib"],
            "output": (r["stdout"] + ("\n" + r["stderr"][-2000:] if r["rc"] else "")).strip()}


# ------------------------------------------------------------------------------------------- report
def cpu_info() -> dict:
    """CPU model name, logical cores and bf16 support, from `lscpu` (else /proc/cpuinfo)."""
    info = {"model": platform.processor() or "unknown CPU", "cores": psutil.cpu_count() or 0, "flags": ""}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    if not fields:
        try:
            text = Path("/proc/cpuinfo").read_text()
            fields = {"Model name": text.split("model name", 1)[1].split(":", 1)[1].split("\n", 1)[0],
                      "Flags": text.split("\nflags", 1)[1].split(":", 1)[1].split("\n", 1)[0]}
        except (OSError, IndexError):
            pass
    info["model"] = fields.get("Model name", info["model"]).strip()
    info["cores"] = int(fields.get("CPU(s)", info["cores"]) or 0)
    flags = fields.get("Flags", "").split()
    info["bf16"] = any(f in flags for f in ("avx512_bf16", "amx_bf16"))
    return info


def machine() -> str:
    """One line: CPU model, cores, bf16 yes/no, RAM, Python, OS."""
    cpu = cpu_info()
    mem = psutil.virtual_memory().total / (1 << 30)
    return (f"{cpu['model']}, {cpu['cores']} cores, bf16 {'yes' if cpu['bf16'] else 'no'}, {mem:.0f} GiB RAM, "
            f"Python {platform.python_version()}, {platform.system()}")


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head.strip() + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def fmt_m(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} MiB"


def target_rows(res: dict) -> list[str]:
    """The speed and scaling rows of the targets table (issue 12's figures)."""
    small, large = res["sizes"]
    ps, pl, b = res["pipeline"][small], res["pipeline"][large], res["baseline"]["result"]
    ccf, ccfd = ps["ccf_seconds"], ps["ccfd_seconds"]
    ratio = b["total_s"] / ccf if ccf else float("nan")
    ratio_d = b["total_s"] / ccfd if ccfd else float("nan")
    rt = pl["ccfd_seconds"] / ccfd if ccfd else float("nan")
    rw = pl["seconds"] / ps["seconds"]
    rr = pl["rss_tree_mib"] / ps["rss_tree_mib"]
    rows = [
        f"| convert+clean+filter+exact+fuzzy, {small:,} q (stage sum; whole process wall) | ≤ 20 s | "
        f"{ccfd:.1f} s; {ps['seconds']:.1f} s | {'yes' if ccfd <= 20 else 'NO'} |",
        f"| vs tutorial's method, same file, same run: convert+clean+filter+exact+fuzzy | ≥ 5× | "
        f"{b['total_s']:.1f} s / {ccfd:.1f} s = **{ratio_d:.1f}×** | {'yes' if ratio_d >= 5 else 'NO'} |",
        f"| the convert+clean+filter stages alone (their tasks also make dedup's hashes and MinHash signatures) | - | "
        f"{b['total_s']:.1f} s / {ccf:.1f} s = {ratio:.1f}× | - |",
        f"| the dedup stage's share of that stage sum (exact + LSH + families; its features came with clean) | - | "
        f"{ps['stages'].get('dedup', 0.0) / ccfd:.0%} ({ps['stages'].get('dedup', 0.0):.1f} s) | - |" if ccfd else "",
        f"| {small:,} → {large:,} q: time (stage sum; whole process) | ≤ 10× | {rt:.1f}×; {rw:.1f}× | "
        f"{'yes' if max(rt, rw) <= 10 else 'NO'} |",
        f"| {small:,} → {large:,} q: peak RSS, process tree (driver; workers) | ≤ 3× | {rr:.1f}× "
        f"({pl['rss_driver_mib'] / max(ps['rss_driver_mib'], 1):.1f}×; "
        f"{pl['rss_workers_mib'] / max(ps['rss_workers_mib'], 1):.1f}×) | {'yes' if rr <= 3 else 'NO'} |",
    ]
    return [row for row in rows if row]


def render(res: dict) -> str:
    small, large = res["sizes"]
    ccf = res["pipeline"][small]["ccf_seconds"]
    base = res["baseline"]
    b = base["result"]
    lines = [
        "# Benchmark results",
        "",
        f"- machine: {res['machine']}",
        f"- date: {res['date']}",
        f"- commit: {res['commit']}",
        f"- load average (1 min) at start / end: {res['load'][0]:.1f} / {res['load'][1]:.1f} "
        "(this machine is shared with other sessions; wall times under load are pessimistic)",
        f"- command: `python bench/run.py{' --quick' if res['quick'] else ''}`; corpora from "
        f"{res['generator']} (seed {res['seed']})",
        "",
        "## Targets",
        "",
        "| measure | target | result | met |",
        "|---|---|---|---|",
    ]
    lines += target_rows(res)
    h = res["help"]
    lines.append(f"| `python main.py --help` | < 1 s | {h['best']:.2f} s best, {h['median']:.2f} s median | "
                 f"{'yes' if h['median'] < 1 else 'NO'} |")
    for key, label in (("sample_default_cold", "bundled sample, default flags, embedding cache cold"),
                       ("sample_default_warm", "bundled sample, default flags, embedding cache warm"),
                       ("sample_exact_fuzzy", "bundled sample, --dedup exact,fuzzy")):
        s = res.get(key)
        if s:
            lines.append(f"| whole `python main.py` — {label} | report it | {s['seconds']:.1f} s wall, "
                         f"{fmt_m(s['rss_tree_mib'])} peak | - |")
    lines += ["", "## Pipeline per stage (seconds from report.json; RSS peaks from psutil every 50 ms, the process "
              "tree re-listed every second)", "",
              "| questions | rows in → after filter → after dedup | convert | clean | filter | dedup | split | "
              "write | process wall | peak RSS driver | workers | tree |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in (small, large):
        p = res["pipeline"][n]
        st, rows = p["stages"], p["rows"]
        flow = f"{rows['convert'][0]:,} → {rows['filter'][1]:,} → {rows['dedup'][1]:,}" if "dedup" in rows else ""
        lines.append(f"| {n:,} | {flow} | " + " | ".join(f"{st.get(k, 0):.1f}" for k in
                                                          ("convert", "clean", "filter", "dedup", "split", "write"))
                     + f" | {p['seconds']:.1f} | {fmt_m(p['rss_driver_mib'])} | {fmt_m(p['rss_workers_mib'])} | "
                       f"{fmt_m(p['rss_tree_mib'])} |")
    lines += ["", f"## The tutorial's method on the same {small:,}-question file", "",
              "BeautifulSoup(lxml) get_text + collapse whitespace, ftfy.fix_text, `len(text.split())` word counts, "
              "row by row in one process (bench/baseline_tutorial.py; HTML cleaned once per field, the tutorial "
              "did it twice, so the ratio is a lower bound).", "",
              "| step | seconds |", "|---|---|",
              f"| json.loads + extract | {b['convert_s']:.1f} |",
              f"| clean + filter (HTML {b['step_cpu_s']['html']:.1f}, ftfy {b['step_cpu_s']['ftfy']:.1f}, "
              f"filter {b['step_cpu_s']['filter']:.1f}) | {b['clean_filter_s']:.1f} |",
              f"| total ({b['rows']:,} answered questions, {b['kept']:,} kept) | {b['total_s']:.1f} |",
              f"| peak RSS | {base['rss_tree_mib']:.0f} MiB |"]
    if res.get("baseline2"):
        b2 = res["baseline2"]["result"]
        lines.append(f"| same method on 2 processes (for reference): total | {b2['total_s']:.1f} "
                     f"(ratio {b2['total_s'] / ccf:.1f}×) |")
    for n, d in res.get("dedup_bench", {}).items():
        if d:
            lines += ["", f"## Semantic dedup (bench/dedup_bench.py --questions {n})", "", "```",
                      d["output"][-6000:], "```"]
    if res.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {x}" for x in res["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2,437 and 24,370 questions instead of 24,370 and 250,000")
    ap.add_argument("--sizes", default=None, metavar="SMALL,LARGE",
                    help="the two corpus sizes (questions) instead of the defaults, e.g. 24370,250000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-dedup-bench", action="store_true", help="skip bench/dedup_bench.py")
    ap.add_argument("--no-sample", action="store_true", help="skip the bundled-sample runs")
    ap.add_argument("--baseline-2proc", action="store_true", help="also run the baseline on 2 processes")
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    a = ap.parse_args()
    sizes = (2437, 24370) if a.quick else (24370, 250000)
    if a.sizes:
        sizes = tuple(int(x) for x in a.sizes.split(","))
        if len(sizes) != 2 or min(sizes) < 1:
            ap.error("--sizes: two positive sizes, SMALL,LARGE")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    gen = "data/make_sample.py" if (REPO / "data" / "make_sample.py").is_file() else "bench/quickgen.py"
    res: dict = {"sizes": sizes, "quick": a.quick, "seed": a.seed, "machine": machine(), "commit": commit(),
                 "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "generator": gen,
                 "pipeline": {}, "dedup_bench": {}, "notes": []}
    load0 = os.getloadavg()[0]
    paths = {n: corpus(n, a.seed) for n in sizes}

    def say(msg: str) -> None:
        print(msg, flush=True)

    for n in sizes:
        say(f"pipeline on {n:,} questions ...")
        res["pipeline"][n] = run_pipeline(paths[n], f"pipeline-{n}", ["--dedup", "exact,fuzzy"])
        p = res["pipeline"][n]
        say(f"  {p['stages']}  wall {p['seconds']:.1f}s  peak tree {p['rss_tree_mib']:.0f} MiB")
    say(f"baseline (tutorial's method) on {sizes[0]:,} questions ...")
    res["baseline"] = run_baseline(paths[sizes[0]], 1)
    say(f"  total {res['baseline']['result']['total_s']:.1f}s")
    if a.baseline_2proc:
        res["baseline2"] = run_baseline(paths[sizes[0]], 2)
    say("main.py --help ...")
    res["help"] = run_help()
    if not a.no_sample and SAMPLE.is_file():
        say("bundled sample ...")
        cache = OUT / "sample-embedding-cache"
        shutil.rmtree(cache, ignore_errors=True)
        for key in ("sample_default_cold", "sample_default_warm"):
            res[key] = run_pipeline(SAMPLE, key, ["--embedding-cache", str(cache)])
        res["sample_exact_fuzzy"] = run_pipeline(SAMPLE, "sample_exact_fuzzy", ["--dedup", "exact,fuzzy"])
    if not a.no_dedup_bench:
        for n in sizes[:1]:
            say(f"bench/dedup_bench.py --questions {n} ...")
            res["dedup_bench"][n] = run_dedup_bench(n)
    res["load"] = (load0, os.getloadavg()[0])
    text = render(res)
    Path(a.out).write_text(text)
    print(text)
    (OUT / "results.json").parent.mkdir(parents=True, exist_ok=True)
    slim = {k: v for k, v in res.items() if k not in ("pipeline", "baseline", "baseline2")}
    slim["pipeline"] = {n: {k: v for k, v in p.items() if k not in ("stdout", "stderr")}
                        for n, p in res["pipeline"].items()}
    (OUT / "results.json").write_text(json.dumps(slim, indent=1, default=str))


if __name__ == "__main__":
    main()
