"""The LLM endpoint failing, through main.py: a rejected key ends the run in seconds before any stage, with nothing
written; an endpoint that dies mid-run stops SDG, not the run — every split file is written with the synthetic
rows accepted so far, the report says why, and the exit code (6) tells scripts that SDG did not finish."""
from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import SAMPLE, run_main

pytestmark = pytest.mark.e2e
FLAGS = ("--n-workers", "1", "--dedup", "exact,fuzzy", "--quiet", "--seed", "7", "--synth-gen-model", "test-gen",
         "--reward-model", "test-reward", "--synth-n-variants", "2", "--max-concurrency", "4")


def test_rejected_key_fails_in_seconds_before_any_work(server, tmp_path):
    srv = server(api_key="the-right-key-123456")
    started = time.perf_counter()
    result = run_main("--input", str(SAMPLE), "--output-dir", str(tmp_path / "out"), *FLAGS,
                      "--synth-gen-endpoint", srv.base_url, "--api-key", "a-wrong-key-654321",
                      "--cache-dir", str(tmp_path / "cache"), "--target-size", "600", timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 4, result.stderr
    assert len(lines) == 1 and "rejected the API key" in lines[0] and "a-wrong-key" not in result.stderr
    assert time.perf_counter() - started < 30
    assert not (tmp_path / "out").exists()


def test_endpoint_dying_mid_run_keeps_the_dataset_and_exits_6(server, tmp_path):
    srv = server()
    answered, lock = [], threading.Lock()

    def die_after_40(entry):  # then every call fails: a 503 storm past the client's retries
        with lock:
            answered.append(entry)
            if len(answered) == 40:
                srv.cfg.fail_rate, srv.cfg.fail_status = 1.0, 503
    srv.on_completed = die_after_40
    out = tmp_path / "out"
    result = run_main("--input", str(SAMPLE), "--output-dir", str(out), *FLAGS, "--synth-gen-endpoint",
                      srv.base_url, "--cache-dir", str(tmp_path / "cache"), "--target-size", "2000", timeout=600)
    assert result.returncode == 6, result.stderr[-2000:]
    assert "synthetic generation stopped early" in result.stderr
    final = out / "final"
    rows = {s: [json.loads(line) for line in (final / f"law-qa-{s}.jsonl").read_text().splitlines()]
            for s in ("train", "val", "test")}
    assert all(rows.values())
    report = json.loads((final / "report.json").read_text())
    assert report["sdg"]["stop_reason"] == "endpoint_error" and "503" in report["sdg"]["stop_detail"]
    assert sum(r["synthetic"] for r in rows["train"]) == report["sdg"]["added"]
    assert "endpoint_error" in (final / "README.md").read_text()
