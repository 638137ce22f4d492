"""The pipeline's audit stage: on a local cluster of two workers the audit runs on a worker (not the one drawing
the card's pictures) and gives the section the driver's audit gives; on an existing cluster it stays in the
driver; an unreadable dataset is verdict "error" with the driver's message either way. Real Dask: a LocalCluster
of two worker processes; the task stream says which worker ran what."""
from __future__ import annotations

from contextlib import nullcontext

import pytest

import audit
import main
from config import parse_args
from pipeline import Context
from test_audit import clean_rows, write_dataset


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as dask:
        dask.wait_for_workers(2)
        yield dask


def run_audit_stage(client, out, *flags: str) -> tuple[dict, dict[str, list[tuple[str, str]]]]:
    """Audit.run on a Context whose client is the test's (the stage's close leaves it open), then the close.
    Returns the audit section and {task name: [(worker, status), ...]} of the tasks run meanwhile."""
    from distributed import get_task_stream

    ctx = Context(parse_args(["--output-dir", str(out), "--quiet", *flags]), start_client=lambda: nullcontext(client))
    ctx.data["written"] = {"synthetic_rewards": []}
    with get_task_stream(client) as stream:
        try:
            main.Audit().run(ctx)
        finally:
            ctx.close()  # waits for the pictures and a worker's audit
    ran: dict[str, list[tuple[str, str]]] = {}
    for task in stream.data:
        ran.setdefault(task["key"].split("-")[0], []).append((task["worker"], task["status"]))
    return ctx.report.sections["audit"], ran


def without_seconds(section):
    if isinstance(section, dict):
        return {k: without_seconds(v) for k, v in section.items() if k != "seconds"}
    return section


def driver_audit(out) -> dict:
    from report import RunReport

    return audit.audit_dataset(out / "final", RunReport().to_dict(), embeddings=None)


def test_on_a_local_cluster_the_audit_runs_on_the_worker_the_pictures_do_not_use(client, tmp_path):
    write_dataset(tmp_path, clean_rows())
    section, ran = run_audit_stage(client, tmp_path, "--audit", "fast")
    assert [status for _, status in ran["audit_dataset"]] == ["OK"], ran
    (audit_worker, _), = ran["audit_dataset"]
    assert audit_worker in client.scheduler_info()["workers"]
    assert [worker for worker, _ in ran["draw_pictures"]] != [audit_worker], ran
    assert section["seconds"] > 0
    assert without_seconds(section) == without_seconds(driver_audit(tmp_path))


def test_on_an_existing_cluster_the_audit_stays_in_the_driver(client, tmp_path):
    write_dataset(tmp_path, clean_rows())
    section, ran = run_audit_stage(client, tmp_path, "--audit", "fast",
                                   "--scheduler-address", client.scheduler.address)
    assert "audit_dataset" not in ran and "draw_pictures" in ran, ran
    assert without_seconds(section) == without_seconds(driver_audit(tmp_path))


@pytest.mark.parametrize("where", ["worker", "driver"])
def test_an_unreadable_dataset_is_verdict_error_with_the_drivers_message(client, tmp_path, where):
    flags = () if where == "worker" else ("--scheduler-address", client.scheduler.address)
    with pytest.raises(audit.AuditError) as expected:
        driver_audit(tmp_path)
    section, ran = run_audit_stage(client, tmp_path, "--audit", "fast", *flags)
    assert section == {"verdict": "error", "error": str(expected.value)}
    assert [status for _, status in ran.get("audit_dataset", [])] == (["error"] if where == "worker" else [])


def test_audit_off_runs_no_audit(client, tmp_path):
    section, ran = run_audit_stage(client, tmp_path, "--audit", "off")
    assert section == {"verdict": "not run", "checks": {}} and "audit_dataset" not in ran, ran


@pytest.mark.e2e
def test_a_minilm_audit_stays_in_the_driver(client, tmp_path):
    """--audit full with MiniLM: torch on a one-thread worker took about 3x as long as in the driver."""
    write_dataset(tmp_path, clean_rows())
    section, ran = run_audit_stage(client, tmp_path, "--audit", "full", "--embedding-model", "minilm")
    assert "audit_dataset" not in ran and "draw_pictures" in ran, ran
    assert section["checks"]["near_dup_cosine"]["model"] == "minilm"
