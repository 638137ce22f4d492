"""--batch: the SDG loop through the OpenAI Batch API (tests/batch_server.py: files + batches on the test server).

What must hold: a batch run gives the rows, failures file and cache keys of an online run; a provider's limits split
a wave into several batches; partial failures, expiry and cancellation keep what completed and name the rest; a
server without the API fails the preflight (exit 4) before any work; Ctrl-C leaves the batch running and says how to
resume or cancel; kill -9 while a batch is pending, then a rerun, creates no new batch and pays nothing twice."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llm  # noqa: E402
import synthetic_gen as sg  # noqa: E402
from batch_server import BatchConfig, start_batch_server  # noqa: E402
from conftest import SAMPLE, hermetic_env, run_main  # noqa: E402
from llm.batch_runner import BatchLimits, BatchStore, batch_line, plan_parts  # noqa: E402
from llm_server import completed_twice, read_log  # noqa: E402
from test_synthetic_gen import config, curate, dedup_against, make_records  # noqa: E402

pytestmark = pytest.mark.timeout(120)
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def batch_server(tmp_path):
    servers = []

    def make(batch: BatchConfig | None = None, **kw):
        srv = start_batch_server(batch or BatchConfig(), log_path=tmp_path / f"bserver{len(servers)}.jsonl", **kw)
        servers.append(srv)
        return srv
    yield make
    for s in servers:
        s.stop()


def batch_config(srv, tmp_path, **kw) -> sg.SdgConfig:
    kw.setdefault("batch_poll", 0.02)
    kw.setdefault("structured_output", "off")   # no probe calls: every answer here came through a batch
    batch_kw = {k: kw.pop(k) for k in list(kw) if k.startswith("batch")}
    return dataclasses.replace(config(srv, tmp_path, **kw), batch=True, **batch_kw)


def grow(records, cfg, tmp_path, name="sdg_failures.jsonl", client=None):
    return sg.grow_train(records, cfg, curate, dedup_against, tmp_path / name, client=client)


def cache_keys(cache_dir) -> set[str]:
    db = sqlite3.connect(Path(cache_dir) / "llm_cache.sqlite")
    try:
        return {row[0] for row in db.execute("SELECT key FROM responses")}
    finally:
        db.close()


def failure_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- the plan of a wave ---------------------------------------------------------------------------------------------
def test_plan_parts_one_model_per_file_sorted_and_within_both_limits():
    queued = {f"{i:064x}": ("gen" if i % 3 else "reward", b'{"model":"m","messages":[],"x":"' + b"a" * (i % 7) + b'"}')
              for i in range(50)}
    limits = BatchLimits(max_requests=7, max_bytes=700)
    parts, too_big = plan_parts(queued, limits)
    assert too_big == []
    assert sorted(k for _, keys, _ in parts for k in keys) == sorted(queued)          # every request, once
    for model, keys, data in parts:
        assert {queued[k][0] for k in keys} == {model} and keys == sorted(keys)
        assert len(keys) <= 7 and len(data) <= 700
        assert data == b"".join(batch_line(k, queued[k][1]) for k in keys)
        lines = [json.loads(line) for line in data.splitlines()]
        assert [x["custom_id"] for x in lines] == keys and {x["url"] for x in lines} == {"/v1/chat/completions"}
    assert any(len(data) > 600 for _, _, data in parts)                                # bytes, not only count, split
    assert plan_parts(dict(reversed(list(queued.items()))), limits) == (parts, [])     # order-free: same files
    big = {"f" * 64: ("gen", b'{"x":"' + b"b" * 800 + b'"}')}
    assert plan_parts({**queued, **big}, limits)[1] == ["f" * 64]


# ---- a whole batch run, against an online run ----------------------------------------------------------------------
def test_batch_run_equals_online_run_and_shares_its_cache(server, batch_server, tmp_path):
    records = make_records(60)
    n_train = int((records["split"] == "train").sum())
    online = server(wrong_count_rate=0.2)
    new_a, rep_a = grow(records, config(online, tmp_path, target_size=n_train + 30, cache_dir=str(tmp_path / "ca")),
                        tmp_path, "fa.jsonl")
    srv = batch_server(BatchConfig(delay=0.1), wrong_count_rate=0.2)
    cfg = batch_config(srv, tmp_path, target_size=n_train + 30, cache_dir=str(tmp_path / "cb"),
                       batch_max_requests=40, structured_output="auto")
    new_b, rep_b = grow(records, cfg, tmp_path, "fb.jsonl")
    # the same parse -> gates -> reward -> curate -> dedup path: identical rows and failures file
    pd.testing.assert_frame_equal(new_a.reset_index(drop=True), new_b.reset_index(drop=True))
    assert (tmp_path / "fa.jsonl").read_bytes() == (tmp_path / "fb.jsonl").read_bytes()
    assert rep_b["stop_reason"] == "target_reached" and len(new_b) == 30
    assert cache_keys(tmp_path / "ca") == cache_keys(tmp_path / "cb")                 # the same keys as online
    probes = len(rep_b["structured_output"]["probes"])   # online, as the preflight's (no preflight ran here)
    assert probes >= 1 and srv.counts["requests"] == probes                          # no other online chat call
    rounds = {f"round {r['round']}" for r in rep_b["rounds"]}
    assert {w["label"] for w in rep_b["batch"]["waves"]} == rounds                 # the probes sent no batch
    assert not completed_twice(read_log(srv.cfg.log_path))
    batch = rep_b["batch"]
    assert len(batch["batches"]) == len(srv.batches) >= 4 and batch["failed"] == 0
    assert {b["id"] for b in batch["batches"]} == {b["id"] for b in srv.batches}
    assert all(b["requests"] <= 40 and b["status"] == "completed" and b["times"]["created_at"]
               for b in batch["batches"])
    assert batch["answered"] + probes == len(cache_keys(tmp_path / "cb"))
    assert batch["answered"] == rep_b["llm"]["requests"]
    rounds = {w["label"] for w in batch["waves"]}
    assert rounds == {f"round {r['round']}" for r in rep_b["rounds"]}
    assert len(batch["waves"]) >= 2 * len(rep_b["rounds"])          # generation, then scoring: one wave per step
    # a later online run over the batch run's cache pays for nothing
    again, rep = grow(records, config(online, tmp_path, target_size=n_train + 30, cache_dir=str(tmp_path / "cb")),
                      tmp_path, "fc.jsonl")
    pd.testing.assert_frame_equal(again.reset_index(drop=True), new_b.reset_index(drop=True))
    assert rep["llm"]["requests"] == 0


def test_file_size_and_request_limits_force_several_batches(batch_server, tmp_path):
    srv = batch_server(BatchConfig(delay=0.05, max_file_bytes=6000, max_requests=9))
    cfg = batch_config(srv, tmp_path, rounds=1, ratio=0.3, batch_max_bytes=6000, batch_max_requests=9)
    new, rep = grow(make_records(40), cfg, tmp_path)
    assert len(new) > 0 and rep["batch"]["failed"] == 0
    assert srv.uploads and max(srv.uploads) <= 6000 and len(srv.uploads) == len(rep["batch"]["batches"])
    first_wave = rep["batch"]["waves"][0]
    assert first_wave["batches"] >= 3 and first_wave["requests"] == 3 * rep["rounds"][0]["sources"]
    assert all(b["status"] == "completed" for b in srv.batches)


def test_partial_failures_are_named_and_asked_again_by_a_rerun(batch_server, tmp_path):
    srv = batch_server(BatchConfig(delay=0.05, error_rate=0.25))
    records = make_records(40)
    cfg = batch_config(srv, tmp_path, rounds=1, ratio=0.3)
    new, rep = grow(records, cfg, tmp_path)
    lines = failure_lines(tmp_path / "sdg_failures.jsonl")
    failed_calls = [x for x in lines if x["kind"] == "call"]
    assert failed_calls and {x["reason"] for x in failed_calls} == {"batch http 500"}
    assert rep["failures"]["batch http 500"] == len(failed_calls) == rep["rounds"][0]["call_failures"]
    assert rep["batch"]["failed"] > 0 and rep["batch"]["answered"] == len(cache_keys(cfg.cache_dir))
    answered = len(read_log(srv.cfg.log_path))
    srv.bcfg.error_rate = 0.0
    again, rep2 = grow(records, cfg, tmp_path, "again.jsonl")
    assert not [x for x in failure_lines(tmp_path / "again.jsonl") if x["kind"] == "call"]
    assert len(again) > len(new)
    assert not completed_twice(read_log(srv.cfg.log_path))           # only the failed ones were asked again
    assert len(read_log(srv.cfg.log_path)) > answered


def test_expired_batch_keeps_what_completed_and_names_the_rest(batch_server, tmp_path):
    srv = batch_server(BatchConfig(delay=0.05, outcome="expired", expire_fraction=0.5))
    cfg = batch_config(srv, tmp_path, rounds=1, ratio=0.3, reward_mode="none")
    new, rep = grow(make_records(40), cfg, tmp_path)
    (b,) = rep["batch"]["batches"]
    assert b["status"] == "expired" and b["answered"] == b["requests"] // 2 == len(cache_keys(cfg.cache_dir))
    expired = [x for x in failure_lines(tmp_path / "sdg_failures.jsonl") if x["reason"] == "batch expired"]
    assert len(expired) == b["failed"] == b["requests"] - b["answered"]
    assert rep["llm"]["failures"] == {"batch expired": b["failed"]}


def test_failed_batch_names_every_request(batch_server, tmp_path):
    srv = batch_server(BatchConfig(outcome="failed"))
    cfg = batch_config(srv, tmp_path, rounds=1, ratio=0.2)
    new, rep = grow(make_records(20), cfg, tmp_path)
    assert len(new) == 0 and rep["stop_reason"] in ("no_progress", "max_rounds")
    reasons = {x["reason"] for x in failure_lines(tmp_path / "sdg_failures.jsonl")}
    assert reasons == {"batch failed: the batch failed (injected)"}
    assert rep["batch"]["batches"][0]["status"] == "failed" and len(cache_keys(cfg.cache_dir)) == 0


def test_batch_cancelled_at_the_provider_keeps_what_completed(batch_server, tmp_path):
    srv = batch_server(BatchConfig(delay=0.6))
    looks = []

    def cancel_on_third_look(batch):      # someone cancels it in the provider's console, mid-way
        looks.append(batch["id"])
        if len(looks) == 3:
            with srv.batch_state.lock:
                srv.batch_state.batches[batch["id"]]["status"] = "cancelling"
    srv.batch_state.on_retrieve = cancel_on_third_look
    cfg = batch_config(srv, tmp_path, rounds=1, ratio=0.3, reward_mode="none", batch_poll=0.1)
    new, rep = grow(make_records(40), cfg, tmp_path)
    b = rep["batch"]["batches"][0]
    assert b["status"] == "cancelled" and 0 < b["answered"] < b["requests"]
    assert b["answered"] == len(cache_keys(cfg.cache_dir))
    named = [x for x in failure_lines(tmp_path / "sdg_failures.jsonl") if x["reason"] == "batch cancelled"]
    assert len(named) == b["failed"] == b["requests"] - b["answered"]


def test_keys_by_host_reach_the_batch_api_and_a_rejected_key_stops(batch_server, tmp_path):
    import hashlib

    srv = batch_server(BatchConfig(delay=0.02), api_key="sk-batch-right-1234")
    cfg = batch_config(srv, tmp_path, rounds=1, ratio=0.2, reward_mode="none", api_key="sk-batch-right-1234")
    new, rep = grow(make_records(20), cfg, tmp_path)
    assert len(new) > 0 and rep["key_source"] == "--api-key"
    assert {e["key_sha256"] for e in read_log(srv.cfg.log_path)} == {hashlib.sha256(b"sk-batch-right-1234")
                                                                     .hexdigest()}
    wrong = dataclasses.replace(cfg, api_key="sk-batch-wrong-9876", cache_dir=str(tmp_path / "c2"))
    with pytest.raises(llm.AuthError):
        sg.preflight(wrong)
    new, rep = grow(make_records(20), wrong, tmp_path, "f2.jsonl")
    assert rep["stop_reason"] == "endpoint_error" and "rejected the API key" in rep["stop_detail"]
    assert "sk-batch-wrong" not in json.dumps(rep) and "sk-batch-wrong" not in (tmp_path / "f2.jsonl").read_text()


def test_budget_counts_batch_lines(batch_server, tmp_path):
    srv = batch_server(BatchConfig(delay=0.02))
    cfg = batch_config(srv, tmp_path, rounds=3, ratio=0.3, max_requests=20)
    new, rep = grow(make_records(40), cfg, tmp_path)
    assert rep["stop_reason"] == "budget" and rep["llm"]["requests"] <= 20
    assert sum(len(srv.batch_lines(b["id"])) for b in srv.batches) == rep["llm"]["requests"]


# ---- preflight: a server without the API -----------------------------------------------------------------------
def test_server_without_batch_api_fails_the_preflight_before_any_work(batch_server, tmp_path):
    srv = batch_server(BatchConfig(api=False))
    started = time.perf_counter()
    result = run_main("--input", str(SAMPLE), "--output-dir", str(tmp_path / "out"), "--quiet", "--batch",
                      "--synth-gen-endpoint", srv.base_url, "--synth-gen-model", "test-gen", "--reward-model",
                      "test-reward", "--cache-dir", str(tmp_path / "cache"), "--target-size", "600", timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 4, result.stderr
    assert len(lines) == 1 and "no Batch API" in lines[0] and "run without --batch" in lines[0], lines
    assert srv.counts["requests"] == 0                     # checked before the preflight's paid calls
    assert not (tmp_path / "out").exists() and time.perf_counter() - started < 60


# ---- interruptions: a driver process running grow_train with --batch ------------------------------------------------
DRIVER = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/.."]
import main, synthetic_gen as sg
from test_synthetic_gen import make_records, curate, dedup_against
cfg = sg.SdgConfig(endpoint=sys.argv[2], model="gen-model", reward_model="test-reward", cache_dir=sys.argv[3],
                   progress=False, rounds=1, ratio=0.3, batch=True, batch_poll=0.05, batch_max_requests=15,
                   structured_output="off")
main.install_interrupt_handlers()
try:
    new, rep = sg.grow_train(make_records(40), cfg, curate, dedup_against, sys.argv[4])
except BaseException as exc:
    code = main.exit_code_for(exc, None)
    if code is None:
        raise
    sys.exit(code)
print(json.dumps({"rows": len(new), "batches": rep["batch"]["batches"], "stop": rep["stop_reason"]}))
"""


def drive(srv, tmp_path, name: str, timeout: float = 60) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(TESTS), srv.base_url, str(tmp_path / "cache"),
                             str(tmp_path / name)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hermetic_env())


def kill_when(srv, hook: str, proc_box: list, sig: int, after: int = 1) -> None:
    """Send `sig` to the driver from the server's handler thread at the `after`-th `hook` (on_created: the batch
    exists, its id not yet answered; on_retrieve: the id recorded and polled)."""
    seen = []

    def fire(batch):
        seen.append(batch["id"])
        if len(seen) == after and proc_box:
            os.kill(proc_box[0].pid, sig)
            time.sleep(0.3)            # the signal lands before the answer leaves
    setattr(srv.batch_state, hook, fire)


@pytest.mark.parametrize("hook", ["on_created", "on_retrieve"])
def test_kill_9_while_pending_then_rerun_creates_no_new_batch(batch_server, tmp_path, hook):
    srv = batch_server(BatchConfig(delay=1.0))
    box: list = []
    kill_when(srv, hook, box, signal.SIGKILL, after=2)
    box.append(drive(srv, tmp_path, "f1.jsonl"))
    box[0].communicate(timeout=60)
    assert box[0].returncode == -signal.SIGKILL
    before = srv.batches
    assert len(before) == 2 and all(b["status"] not in ("completed", "cancelled") for b in before)
    records = BatchStore(tmp_path / "cache", srv.base_url).open_parts()
    assert len(records) >= 2 and all(r["file_id"] for r in records)
    # on_created: killed before the creation's answer came back: a batch exists that no record names yet
    assert any(r["batch_id"] is None for r in records) == (hook == "on_created")
    setattr(srv.batch_state, hook, None)
    proc = drive(srv, tmp_path, "f2.jsonl")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.splitlines()[-1])
    assert result["rows"] > 0
    after = srv.batches
    first_wave = {b["id"] for b in after if b["metadata"].get("lawqa_part") in {r["id"] for r in records}}
    assert {b["id"] for b in before} <= first_wave                   # picked up, not created again
    lines = [k for b in after for k in srv.batch_lines(b["id"])]
    assert len(lines) == len(set(lines))                             # no request in two batches
    assert not completed_twice(read_log(srv.cfg.log_path))
    assert {b["id"] for b in before} <= {b["id"] for b in result["batches"] if b["resumed"]}
    assert BatchStore(tmp_path / "cache", srv.base_url).open_parts() == []


def test_ctrl_c_leaves_the_batch_running_and_says_how_to_resume_or_cancel(batch_server, tmp_path):
    srv = batch_server(BatchConfig(delay=20.0))    # still running through two dry runs and the cancel
    box: list = []
    kill_when(srv, "on_retrieve", box, signal.SIGINT)
    box.append(drive(srv, tmp_path, "f1.jsonl"))
    _, err = box[0].communicate(timeout=60)
    assert box[0].returncode == 130, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("interrupted:"), lines
    ids = [b["id"] for b in srv.batches]
    assert ids and all(i in lines[1] for i in ids[:5]) and "--batch-cancel" in lines[1]
    assert all(b["status"] in ("validating", "in_progress") for b in srv.batches)   # left running
    where = ("--synth-gen-endpoint", srv.base_url, "--cache-dir", str(tmp_path / "cache"), "--quiet")
    plan = run_main("--dry-run", "--batch", "--synth-gen-model", "gen-model", *where, timeout=120)
    assert f"{len(ids)} batch(es) recorded in flight" in plan.stdout, plan.stdout
    plan = run_main("--dry-run", "--batch-cancel", *where, timeout=120)
    assert f"would cancel {len(ids)} batch(es)" in plan.stdout and all(i in plan.stdout for i in ids)
    assert all(b["status"] in ("validating", "in_progress") for b in srv.batches)    # a dry run touched nothing
    # --batch-cancel: cancels them, keeps what they completed, runs no stage
    result = run_main("--batch-cancel", *where, "--batch-poll", "0.05", "--output-dir", str(tmp_path / "out"),
                      timeout=120)
    assert result.returncode == 0, result.stderr
    stopped = result.stdout.splitlines()
    assert sorted(line.split()[1].rstrip(":") for line in stopped) == sorted(ids), stopped
    assert all(" cancelled; " in line for line in stopped)
    assert {b["status"] for b in srv.batches} == {"cancelled"}
    kept = sum(int(line.split("; ")[1].split()[0].replace(",", "")) for line in stopped)
    assert kept == len(cache_keys(tmp_path / "cache")) == sum(b["request_counts"]["completed"] for b in srv.batches)
    assert BatchStore(tmp_path / "cache", srv.base_url).open_parts() == []
    assert not (tmp_path / "out").exists()


def test_batch_api_redirect_is_not_followed(tmp_path):
    """A 307 from /v1/batches: the preflight stops with one line, and nothing (the key least of all) reaches the
    host it points to."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.server.server_address[1] == second.server_address[1]:
                hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{second.server_address[1]}/v1/batches?limit=1")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass
    first, second = (ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2))
    for httpd in (first, second):
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        cfg = sg.SdgConfig(endpoint=f"http://127.0.0.1:{first.server_address[1]}/v1", model="m", batch=True,
                           reward_mode="none", api_key="sk-never-leaves-1234", cache_dir=str(tmp_path / "c"),
                           progress=False)
        with pytest.raises(llm.EndpointError, match="redirected") as info:
            sg.preflight(cfg)
        assert "sk-never-leaves" not in str(info.value)
    finally:
        for httpd in (first, second):
            httpd.shutdown()
            httpd.server_close()
    assert hits == []


# ---- waves: one per step of the call chain ---------------------------------------------------------------------------
def test_waves_follow_the_depth_of_the_call_chain(batch_server, tmp_path):
    """Chains of different depths (1 to 3 calls, some waiting on a plain sleep between calls): a wave goes out only
    when every chain waits, so there are exactly as many waves as the deepest chain has steps, and wave k holds the
    k-th call of every chain that long."""
    import asyncio

    srv = batch_server(BatchConfig(delay=0.02))
    client = llm.BatchLLMClient(srv.base_url, cache_dir=tmp_path / "c", progress=False,
                                limits=BatchLimits(poll_seconds=0.01))
    depths = [1 + i % 3 for i in range(30)]

    async def chain(i: int, depth: int):
        for step in range(depth):
            for _ in range(i % 4):          # work between calls that is not a call: the wave must wait for it
                await asyncio.sleep(0)
            res = await client.chat("m", [{"role": "user", "content": f"chain {i} step {step}"}], seed=step)
            assert res.ok
        return depth
    try:
        assert client.run(lambda: asyncio.gather(*(chain(i, d) for i, d in enumerate(depths)))) == depths
        waves = client.batch_report()["waves"]
    finally:
        client.close()
    assert [w["requests"] for w in waves] == [sum(d > k for d in depths) for k in range(3)]


def test_a_recorded_batch_the_endpoint_lost_is_named_then_asked_again(batch_server, tmp_path):
    """A recorded batch id the endpoint answers 404 for (deleted, another account): its requests fail as "batch
    lost" (never a crash, never a wait forever) and the next run asks for them in a new batch."""
    import asyncio

    srv = batch_server(BatchConfig(delay=30.0))
    messages = [[{"role": "user", "content": f"question {i}"}] for i in range(5)]

    def run(timeout: float | None = None):
        client = llm.BatchLLMClient(srv.base_url, cache_dir=tmp_path / "c", progress=False,
                                    limits=BatchLimits(poll_seconds=0.01))

        async def ask():
            calls = asyncio.gather(*(client.chat("m", m) for m in messages))
            return await (asyncio.wait_for(calls, timeout) if timeout else calls)
        try:
            return client.run(ask)
        finally:
            client.close()
    with pytest.raises(asyncio.TimeoutError):
        run(timeout=0.5)                                   # stopped while its batch is pending
    (lost,) = srv.batches
    with srv.batch_state.lock:
        del srv.batch_state.batches[lost["id"]]
    results = run()
    assert [r.reason for r in results] == ["batch lost"] * 5
    srv.bcfg.delay = 0.02
    results = run()
    assert all(r.ok for r in results) and len(srv.batches) == 1 and srv.batches[0]["id"] != lost["id"]
