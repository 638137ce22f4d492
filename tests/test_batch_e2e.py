"""--batch through main.py: a batch run reaches its target with no online chat call beyond the preflight's and its
dataset passes the audit; killed with -9 while its batches are pending and run again, it creates no new batch for
the same requests and writes the same files as an uninterrupted batch run."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, RUN_DIR, SAMPLE, hermetic_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
FLAGS = ("--n-workers", "1", "--dedup", "exact,fuzzy", "--quiet", "--seed", "7", "--synth-gen-model", "test-gen",
         "--reward-model", "test-reward", "--synth-n-variants", "2", "--target-size", "700", "--batch",
         "--batch-poll", "0.05", "--batch-max-requests", "150", "--embedding-cache", str(RUN_DIR / "embeddings"))
DATA_FILES = ("law-qa-train.jsonl", "law-qa-val.jsonl", "law-qa-test.jsonl", "sdg_failures.jsonl")


def main_cmd(url: str, out: Path, cache: Path) -> list[str]:
    return [sys.executable, str(REPO / "main.py"), "--input", str(SAMPLE), "--output-dir", str(out),
            "--cache-dir", str(cache), "--synth-gen-endpoint", url, *FLAGS]


def digest(out: Path) -> dict[str, str]:
    return {name: hashlib.sha256((out / "final" / name).read_bytes()).hexdigest() for name in DATA_FILES}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One --batch run, start to end: (its output folder, the server's batches and log)."""
    from batch_server import BatchConfig, start_batch_server
    from llm_server import read_log

    tmp = tmp_path_factory.mktemp("batch-e2e")
    srv = start_batch_server(BatchConfig(delay=0.2), log_path=tmp / "log.jsonl")
    try:
        result = subprocess.run(main_cmd(srv.base_url, tmp / "out", tmp / "cache"), capture_output=True, text=True,
                                timeout=600, env=hermetic_env(), cwd=RUN_DIR)
        batches, counts = srv.batches, srv.counts
    finally:
        srv.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "out", batches, counts, read_log(tmp / "log.jsonl")


def test_batch_run_reaches_target_with_only_the_preflight_online(uninterrupted):
    out, batches, counts, log = uninterrupted
    report = json.loads((out / "final" / "report.json").read_text())
    sdg = report["sdg"]
    assert sdg["stop_reason"] == "target_reached" and sdg["added"] > 0
    assert report["audit"]["verdict"] == "pass", report["audit"]
    online = [e for e in log if e.get("via") != "batch"]
    probes = len(report["sdg_preflight"]["structured_output"]["probes"])     # the preflight's structured-output probes
    assert report["sdg_preflight"]["calls"] == 2                                       # generation + reward
    assert counts["requests"] == len(online) == 2 + probes                             # online: the preflight only
    assert {b["id"] for b in sdg["batch"]["batches"]} == {b["id"] for b in batches}
    assert all(b["status"] == "completed" and b["requests"] <= 150 for b in sdg["batch"]["batches"])
    assert sdg["batch"]["answered"] == sum(1 for e in log if e.get("via") == "batch")
    card = (out / "final" / "README.md").read_text()
    assert "Batch API" in card and f"{len(batches)} batch" in card


def test_kill_9_while_pending_then_rerun_creates_no_new_batch(uninterrupted, tmp_path):
    from batch_server import BatchConfig, start_batch_server
    from llm_server import completed_twice, read_log
    from llm.batch_runner import BatchStore

    base_out = uninterrupted[0]
    srv = start_batch_server(BatchConfig(delay=1.5), log_path=tmp_path / "log.jsonl")
    out, cache = tmp_path / "out", tmp_path / "cache"
    try:
        proc = subprocess.Popen(main_cmd(srv.base_url, out, cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=hermetic_env(), cwd=RUN_DIR)
        looks = []

        def kill_on_third_look(batch):     # batches created, recorded and polled: pending at the provider
            looks.append(batch["id"])
            if len(looks) == 3:
                os.kill(proc.pid, signal.SIGKILL)
        srv.batch_state.on_retrieve = kill_on_third_look
        try:
            proc.communicate(timeout=600)
        finally:
            proc.kill()
        srv.batch_state.on_retrieve = None
        assert proc.returncode == -signal.SIGKILL
        pending = srv.batches
        assert pending and all(b["status"] in ("validating", "in_progress") for b in pending)
        assert len(BatchStore(cache, srv.base_url).open_parts()) == len(pending)
        again = subprocess.run(main_cmd(srv.base_url, out, cache), capture_output=True, text=True, timeout=600,
                               env=hermetic_env(), cwd=RUN_DIR)
        batches = srv.batches
    finally:
        srv.stop()
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads((out / "final" / "report.json").read_text())
    assert report["sdg"]["stop_reason"] == "target_reached"
    resumed = {b["id"] for b in report["sdg"]["batch"]["batches"] if b["resumed"]}
    assert {b["id"] for b in pending} == resumed                       # picked up, none created again
    lines = [k for b in batches for k in srv.batch_lines(b["id"])]
    assert len(lines) == len(set(lines))                               # no request in two batches
    assert not completed_twice(read_log(tmp_path / "log.jsonl"))
    assert digest(out) == digest(base_out)                             # the same files as an uninterrupted run
    assert BatchStore(cache, srv.base_url).open_parts() == []
