"""--batch against online SDG on the test server: the same rows, and what the batch machinery costs the client.

    python bench/batch_bench.py [--records 2000] [--target 1500] [--max-requests 500]

Grows train by `--target` rows twice from the same records, each against its own in-process test server with no
latency: online (llm.LLMClient) and --batch (llm.BatchLLMClient: waves of batch files of at most --max-requests
lines, the server finishing each batch at once, polled every 10 ms). Prints wall time, the process's CPU time per
answered request, waves and batches, and checks the two runs give identical rows and cache keys. What it measures
is the client's own overhead (queueing, idle detection, JSONL files, collecting into the cache), not a provider's
batch latency (hours).
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import pandas as pd  # noqa: E402

import synthetic_gen as sg  # noqa: E402
from batch_server import BatchConfig, start_batch_server  # noqa: E402
from llm_server import start_server  # noqa: E402
from sdg_bench import cpu_model  # noqa: E402
from test_synthetic_gen import curate, dedup_against, make_records  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def keys(cache_dir: Path) -> set[str]:
    db = sqlite3.connect(cache_dir / "llm_cache.sqlite")
    try:
        return {row[0] for row in db.execute("SELECT key FROM responses")}
    finally:
        db.close()


def grow(cfg: sg.SdgConfig, records, failures: Path) -> tuple[pd.DataFrame, dict, float, float]:
    t0, c0 = time.perf_counter(), cpu_seconds()
    new, rep = sg.grow_train(records, cfg, curate, dedup_against, failures)
    return new, rep, time.perf_counter() - t0, cpu_seconds() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--target", type=int, default=1500)
    ap.add_argument("--max-requests", type=int, default=500)
    a = ap.parse_args()
    records = make_records(a.records)
    n_train = int((records["split"] == "train").sum())
    tmp = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    online, batch = start_server(), start_batch_server(BatchConfig(delay=0.0))
    try:
        base = sg.SdgConfig(endpoint=online.base_url, model="bench-gen", reward_model="bench-reward",
                            target_size=n_train + a.target, cache_dir=str(tmp / "online"), progress=False)
        new_a, rep_a, wall_a, cpu_a = grow(base, records, tmp / "fa.jsonl")
        cfg_b = dataclasses.replace(base, endpoint=batch.base_url, cache_dir=str(tmp / "batch"), batch=True,
                                    batch_poll=0.01, batch_max_requests=a.max_requests)
        new_b, rep_b, wall_b, cpu_b = grow(cfg_b, records, tmp / "fb.jsonl")
    finally:
        online.stop()
        batch.stop()
    same = new_a.reset_index(drop=True).equals(new_b.reset_index(drop=True))
    n_a, n_b = rep_a["llm"]["completed"], rep_b["llm"]["completed"]
    print(f"CPU: {cpu_model()}; {a.records:,} records, +{a.target:,} rows, {rep_a['llm']['calls']:,} calls")
    print(f"online: {wall_a:6.2f} s wall, {1000 * cpu_a / max(n_a, 1):.2f} ms CPU per answer "
          f"(client + in-process server), {len(rep_a['rounds'])} round(s), {n_a:,} answers")
    b = rep_b["batch"]
    print(f"batch:  {wall_b:6.2f} s wall, {1000 * cpu_b / max(n_b, 1):.2f} ms CPU per answer "
          f"(client + in-process server), {len(rep_b['rounds'])} round(s), {len(b['waves'])} wave(s), "
          f"{len(b['batches'])} batch(es), {n_b:,} answers")
    print(f"identical rows: {same}; identical cache keys: {keys(tmp / 'online') == keys(tmp / 'batch')}; "
          f"identical sdg_failures.jsonl: {(tmp / 'fa.jsonl').read_bytes() == (tmp / 'fb.jsonl').read_bytes()}")


if __name__ == "__main__":
    main()
