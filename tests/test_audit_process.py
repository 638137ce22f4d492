"""The audit in a process of its own (spare_process): a spawned process that runs a function and returns its
result or raises its exception here, ignores a Ctrl-C (the driver handles it) and stops at once when
terminated; the pipeline's audit stage runs there (not with --audit off, nor with MiniLM) and gives the section
the driver's audit gives, an unreadable dataset included."""
from __future__ import annotations

import os
import signal
import time
from contextlib import nullcontext

import pytest

import audit
import main
from config import parse_args
from pipeline import Context
from spare_process import SpareProcess, spare_process
from test_audit import clean_rows, write_dataset


def test_a_spare_process_runs_elsewhere_and_returns_or_raises():
    with spare_process(("audit",)) as spare:
        assert spare.run(os.getpid) != os.getpid()
        assert spare.run(divmod, 17, 5) == (3, 2)
        with pytest.raises(audit.AuditError, match="no law-qa-train.jsonl"):
            spare.run(audit.find_final, "/nonexistent/unreadable")


def test_a_spare_process_ignores_ctrl_c_and_stops_when_terminated():
    spare = SpareProcess()
    pid = spare.run(os.getpid)
    os.kill(pid, signal.SIGINT)
    assert spare.run(os.getpid) == pid  # still there: the driver decides what a Ctrl-C stops
    started = time.monotonic()
    spare._pool.apply_async(time.sleep, (60,))
    time.sleep(0.2)
    spare.terminate()
    assert time.monotonic() - started < 10
    with pytest.raises(OSError):
        os.kill(pid, 0)


def run_audit_stage(client, out, monkeypatch, *flags: str) -> tuple[dict, list]:
    """Filter's start of the audit process, then Audit.run, on a Context whose client is the test's. Returns the
    audit section and the functions the audit process ran."""
    ran = []
    real_run = SpareProcess.run

    def spy(self, fn, *args, **kwargs):
        ran.append(fn.__name__)
        return real_run(self, fn, *args, **kwargs)

    monkeypatch.setattr(SpareProcess, "run", spy)
    ctx = Context(parse_args(["--output-dir", str(out), "--quiet", *flags]), start_client=lambda: nullcontext(client))
    ctx.data["written"] = {"synthetic_rewards": []}
    try:
        main.start_audit_process(ctx)
        main.Audit().run(ctx)
        assert isinstance(ctx.data["pictures"].result(), dict)  # drawn on a worker meanwhile
    finally:
        ctx.close()
    return ctx.report.sections["audit"], ran


def without_seconds(section):
    if isinstance(section, dict):
        return {k: without_seconds(v) for k, v in section.items() if k != "seconds"}
    return section


def driver_audit(out) -> dict:
    from report import RunReport

    return audit.audit_dataset(out / "final", RunReport().to_dict(), embeddings=None)


def test_the_audit_stage_audits_in_its_own_process_as_the_driver_would(cluster_client, tmp_path, monkeypatch):
    write_dataset(tmp_path, clean_rows())
    section, ran = run_audit_stage(cluster_client, tmp_path, monkeypatch, "--audit", "fast")
    assert ran == ["audit_dataset"]
    assert section["checks"] and section["seconds"] > 0
    assert without_seconds(section) == without_seconds(driver_audit(tmp_path))


def test_an_unreadable_dataset_is_verdict_error_with_the_drivers_message(cluster_client, tmp_path, monkeypatch):
    with pytest.raises(audit.AuditError) as expected:
        driver_audit(tmp_path)
    section, ran = run_audit_stage(cluster_client, tmp_path, monkeypatch, "--audit", "fast")
    assert ran == ["audit_dataset"]
    assert section == {"verdict": "error", "error": str(expected.value)}


def test_audit_off_starts_no_process(cluster_client, tmp_path, monkeypatch):
    section, ran = run_audit_stage(cluster_client, tmp_path, monkeypatch, "--audit", "off")
    assert section == {"verdict": "not run", "checks": {}} and ran == []


@pytest.mark.parametrize("model, in_process", [("static", True), ("minilm", False)])
def test_a_minilm_audit_stays_in_the_driver(tmp_path, model, in_process):
    """--audit full with MiniLM: torch has every core here; the static model's audit goes to the process."""
    ctx = Context(parse_args(["--output-dir", str(tmp_path), "--quiet", "--audit", "full",
                              "--embedding-model", model]))
    try:
        main.start_audit_process(ctx)
        assert ("audit_process" in ctx.data) == in_process
    finally:
        ctx.close()
