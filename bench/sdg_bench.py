"""SDG throughput benchmark against the test server.

    python bench/sdg_bench.py [--target 2000] [--latency 0.1] [--capacity 64] [--max-concurrency 128]
                              [--transports raw,httpx]

Starts tests/llm_server.py in its own process (100 ms per answer, 64 concurrent requests, 429 + Retry-After beyond),
then grows train by `--target` synthetic rows once per scheme:
1. ours: synthetic_gen.grow_train through llm.LLMClient (adaptive concurrency, retries, cache in a fresh temp dir),
   once per transport named in --transports ("raw": the HTTP/1.1 client plain-http endpoints get by default;
   "httpx": the httpx2 client https endpoints get);
2. the tutorial's scheme: batches of 320 source rows gathered at once with asyncio.gather on a plain AsyncOpenAI
   (the SDK's default 2 retries), one failed call dropping the whole batch.
Prints requests/s (answered 200s per second of LLM time) against the capacity (capacity / latency), retries, 429s,
rows lost, calls paid twice, total time and the client's CPU per HTTP request (the client shares the machine with
the server: a client at N ms/request cannot exceed 1000/N req/s). Goal: ours (default transport) >= 90% of
capacity, no lost rows, no call paid twice.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import openai  # noqa: E402
import pandas as pd  # noqa: E402

import llm  # noqa: E402
import synthetic_gen as sg  # noqa: E402
from llm_server import completed_twice, read_log, spawn_server  # noqa: E402
from test_synthetic_gen import curate, dedup_against, make_records  # noqa: E402

GEN_MODEL, REWARD_MODEL = "bench-gen", "bench-reward"


def log_counts(path: Path, since: int = 0) -> dict:
    entries = read_log(path)[since:]
    out = {"http_requests": len(entries), "answered": sum(e["status"] == 200 for e in entries),
           "429": sum(e["status"] == 429 for e in entries), "twice": len(completed_twice(entries)),
           "n_entries": since + len(entries)}
    return out


def cpu_model() -> str:
    """lscpu's model name (machines differ: say which one the numbers come from)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                "unknown CPU")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_ours(base_url: str, records: pd.DataFrame, target: int, args, log_path: Path, transport: str) -> dict:
    n_train = int((records["split"] == "train").sum())
    with tempfile.TemporaryDirectory() as tmp:
        cfg = sg.SdgConfig(endpoint=base_url, model=GEN_MODEL, reward_model=REWARD_MODEL, n_variants=3,
                           target_size=n_train + target, max_concurrency=args.max_concurrency,
                           cache_dir=str(Path(tmp) / "cache"), progress=not args.quiet, api_timeout=30)
        client = llm.LLMClient(base_url, api_key=None, timeout=cfg.api_timeout, max_concurrency=cfg.max_concurrency,
                               cache_dir=cfg.cache_dir, transport=transport)
        before = log_counts(log_path)
        t0, c0 = time.monotonic(), cpu_seconds()
        try:
            new, rep = sg.grow_train(records, cfg, curate, dedup_against, Path(tmp) / "sdg_failures.jsonl",
                                     client=client)
        finally:
            client.close()
        total = time.monotonic() - t0
    srv = log_counts(log_path, before["n_entries"])
    llm_s = sum(r["llm_seconds"] for r in rep["rounds"])
    lost = sum(r["call_failures"] for r in rep["rounds"])
    return {"scheme": f"ours ({transport})", "rows": len(new), "stop": rep["stop_reason"], "rounds": len(rep["rounds"]),
            "sources": rep["sources_used"], "answered": srv["answered"], "http_requests": srv["http_requests"],
            "429": srv["429"], "retries": rep["llm"]["retries"], "failed_calls": lost,
            "parse_failures": sum(r["parse_failures"] for r in rep["rounds"]),
            "rows_lost_to_errors": lost, "llm_seconds": llm_s, "total_seconds": total,
            "answered_per_s": srv["answered"] / llm_s if llm_s else 0.0, "paid_twice": srv["twice"],
            "final_concurrency": rep["llm"]["concurrency"], "client_cpu_s": cpu_seconds() - c0,
            "queue_cuts": rep["llm"]["concurrency"].get("queue_cuts", 0)}


async def _oracle(base_url: str, records: pd.DataFrame, n: int, concurrency: int) -> float:
    """An ideal client for this server: exactly `concurrency` raw requests in flight (it knows the capacity, so it
    never meets a 429), the same mix of generation and reward requests as SDG sends, nothing else done per answer.
    Returns answered requests per second: what this server can deliver on this machine now."""
    client = llm.LLMClient(base_url, cache_dir=None, max_concurrency=concurrency, transport="raw", timeout=30)
    reqs = []
    for row in records.to_dict("records"):
        reqs += [llm.ChatRequest(GEN_MODEL, build(str(row[col]), 3), {"seed": 7}) for build, col in sg.PROMPTS.values()]
        reqs += [llm.ChatRequest(REWARD_MODEL, sg.reward_messages(row["title"], row["question"], row["answer"]),
                                 {"seed": k}) for k in range(3)]
        if len(reqs) >= n:
            break
    t0 = time.monotonic()
    async with client.session():
        res = await asyncio.gather(*(client.chat(r.model, r.messages) for r in reqs))
    assert all(r.ok for r in res) and client.stats.rate_limited == 0
    return len(reqs) / (time.monotonic() - t0)


async def _tutorial(base_url: str, records: pd.DataFrame, target: int, batch_size: int, deadline_s: float) -> dict:
    """Batches of `batch_size` rows, asyncio.gather over the batch, one exception drops the batch."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="no-key", timeout=30)   # SDK defaults: 2 retries
    train = records[records["split"] == "train"].reset_index(drop=True)
    stats = {"calls": 0, "failed_batches": 0, "rows_lost_to_errors": 0, "accepted": 0, "sources": 0}
    thresholds = dict(sg.DEFAULT_THRESHOLDS)

    async def call(model, messages, **params):
        stats["calls"] += 1
        resp = await client.chat.completions.with_raw_response.create(model=model, messages=messages,
                                                                     extra_body=params or None)
        return json.loads(resp.text)

    async def one_row(row):
        outs = await asyncio.gather(*(call(GEN_MODEL, build(str(row[col]), 3), top_p=0.7, max_tokens=1024,
                                           seed=1234) for build, col in sg.PROMPTS.values()))
        lists = [sg.parse_items(o["choices"][0]["message"]["content"], 3) for o in outs]
        if not all(p.ok for p in lists):
            return 0
        scores = await asyncio.gather(*(call(REWARD_MODEL, sg.reward_messages(t, q, a))
                                        for t, q, a in zip(*(p.items for p in lists))))
        return sum(sg.passes(sg.parse_reward_response(s), thresholds) for s in scores)

    t0 = time.monotonic()
    pos = 0
    while stats["accepted"] < target and pos < len(train) and time.monotonic() - t0 < deadline_s:
        batch = train.iloc[pos:pos + batch_size]
        pos += batch_size
        stats["sources"] += len(batch)
        try:
            got = await asyncio.gather(*(one_row(r) for r in batch.to_dict("records")))
            stats["accepted"] += sum(got)
        except Exception:
            stats["failed_batches"] += 1
            stats["rows_lost_to_errors"] += len(batch)
    stats["seconds"] = time.monotonic() - t0
    await client.close()
    return stats


def run_tutorial(base_url: str, records: pd.DataFrame, target: int, args, log_path: Path) -> dict:
    before = log_counts(log_path)
    c0 = cpu_seconds()
    st = asyncio.run(_tutorial(base_url, records, target, 320, args.tutorial_deadline))
    srv = log_counts(log_path, before["n_entries"])
    return {"scheme": "tutorial (gather 320)", "rows": st["accepted"], "stop": "target" if st["accepted"] >= target
            else "deadline/sources", "sources": st["sources"], "answered": srv["answered"],
            "http_requests": srv["http_requests"], "429": srv["429"],
            "retries": srv["http_requests"] - st["calls"], "failed_batches": st["failed_batches"],
            "rows_lost_to_errors": st["rows_lost_to_errors"], "llm_seconds": st["seconds"],
            "total_seconds": st["seconds"], "answered_per_s": srv["answered"] / st["seconds"],
            "paid_twice": srv["twice"], "client_cpu_s": cpu_seconds() - c0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", type=int, default=2000, help="synthetic rows to add")
    ap.add_argument("--sources", type=int, default=2500, help="generated real records (80%% land in train)")
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--capacity", type=int, default=64)
    ap.add_argument("--retry-after", type=float, default=1.0)
    ap.add_argument("--max-concurrency", type=int, default=128, help="ceiling of our adaptive limit")
    ap.add_argument("--tutorial-deadline", type=float, default=60.0, help="stop the tutorial scheme after (s)")
    ap.add_argument("--transports", default="raw,httpx",
                    help="our client's transports to run, comma-separated; the first is judged against the goal")
    ap.add_argument("--skip-tutorial", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args(argv)

    records = make_records(args.sources)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "server.jsonl"
        proc, base_url = spawn_server("--latency", str(args.latency), "--capacity", str(args.capacity),
                                      "--retry-after", str(args.retry_after), "--log-path", str(log_path))
        try:
            oracle = asyncio.run(_oracle(base_url, records, max(3000, 5 * args.capacity), args.capacity))
            results = [run_ours(base_url, records, args.target, args, log_path, t)
                       for t in args.transports.split(",")]
            if not args.skip_tutorial:
                results.append(run_tutorial(base_url, records, args.target, args, log_path))
        finally:
            proc.terminate()
            proc.wait(10)
    capacity = args.capacity / args.latency
    print(f"\nserver: latency {args.latency * 1000:.0f} ms, capacity {args.capacity} concurrent "
          f"-> {capacity:.0f} answered req/s at most; target +{args.target} rows")
    print(f"{'oracle':<22} exactly {args.capacity} raw requests in flight, SDG's request mix, nothing else: "
          f"{oracle:.0f} req/s = {100 * oracle / capacity:.1f}% of capacity (what this server delivers on this "
          f"machine now)")
    for r in results:
        r["capacity_per_s"] = capacity
        r["pct_of_capacity"] = 100.0 * r["answered_per_s"] / capacity
        r["pct_of_oracle"] = 100.0 * r["answered_per_s"] / oracle
        print(f"{r['scheme']:<22} rows {r['rows']:>5} ({r['stop']}, {r.get('rounds', '-')} rounds)  "
              f"answered {r['answered']:>6}  {r['answered_per_s']:6.0f} req/s = {r['pct_of_capacity']:5.1f}% of "
              f"capacity ({r['pct_of_oracle']:5.1f}% of the oracle)  "
              f"429s {r['429']:>6}  retries {r['retries']:>6}  rows lost {r['rows_lost_to_errors']:>5}  "
              f"paid twice {r['paid_twice']}  LLM time {r['llm_seconds']:6.1f} s  total {r['total_seconds']:6.1f} s  "
              f"client CPU {1000 * r['client_cpu_s'] / max(1, r['http_requests']):.2f} ms/request"
              + (f"  limiter {r['final_concurrency']}" if "final_concurrency" in r else ""))
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (client and "
          f"server share them; a client CPU-bound at N ms/request cannot exceed 1000/N req/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    ours = results[0]
    ok = (ours["pct_of_capacity"] >= 90 and ours["rows_lost_to_errors"] == 0 and ours["rows"] == args.target
          and ours["paid_twice"] == 0)
    print(f"goal for {ours['scheme']} (>= 90% of capacity, no lost rows, no call paid twice):",
          "MET" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
