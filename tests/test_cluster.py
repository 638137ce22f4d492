"""`--scheduler-address`: the pipeline on an existing Dask cluster whose workers cannot import our code."""
import json
import subprocess
import sys

import pytest

from conftest import SAMPLE, run_main

pytestmark = pytest.mark.e2e

CLUSTER = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()
cluster.close()
"""


@pytest.fixture
def external_cluster(tmp_path):
    # started from an empty directory, so its workers have no path to this repository
    proc = subprocess.Popen([sys.executable, "-c", CLUSTER], cwd=tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = proc.stdout.readline().strip()
    assert address.startswith("tcp://"), address
    yield address
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_runs_on_an_existing_cluster_with_the_same_output(external_cluster, tmp_path):
    common = ["--input", str(SAMPLE), "--dedup", "exact,fuzzy", "--quiet", "--formats", "none"]
    remote = run_main(*common, "--output-dir", str(tmp_path / "remote"), "--scheduler-address", external_cluster)
    assert remote.returncode == 0, remote.stderr[-2000:]
    local = run_main(*common, "--output-dir", str(tmp_path / "local"), "--n-workers", "1")
    assert local.returncode == 0, local.stderr[-2000:]
    for split in ("train", "val", "test"):
        name = f"law-qa-{split}.jsonl"
        assert (tmp_path / "remote" / "final" / name).read_bytes() == (tmp_path / "local" / "final" / name).read_bytes()
    report = json.loads((tmp_path / "remote" / "final" / "report.json").read_text())
    assert sum(report["splits"].values()) > 0


def test_semantic_dedup_on_an_existing_cluster_embeds_in_the_driver(external_cluster, tmp_path):
    """Workers of another cluster cannot read the static model's files (the local cluster's workers embed their
    rows as they clean them): there the driver embeds, with the same output as a local run."""
    common = ["--input", str(SAMPLE), "--dedup", "all", "--embedding-model", "static", "--embedding-cache", "",
              "--quiet", "--formats", "none"]
    remote = run_main(*common, "--output-dir", str(tmp_path / "remote"), "--scheduler-address", external_cluster)
    assert remote.returncode == 0, remote.stderr[-2000:]
    local = run_main(*common, "--output-dir", str(tmp_path / "local"), "--n-workers", "1")
    assert local.returncode == 0, local.stderr[-2000:]
    for name in ("law-qa-train.jsonl", "law-qa-val.jsonl", "law-qa-test.jsonl", "removed.jsonl"):
        assert (tmp_path / "remote" / "final" / name).read_bytes() == (tmp_path / "local" / "final" / name).read_bytes()
    semantic = [json.loads((tmp_path / d / "final" / "report.json").read_text())["dedup"]["semantic"]
                for d in ("remote", "local")]
    assert semantic[0]["model_calls"] == 1 and "worker_embed_cpu_seconds" not in semantic[0]
    assert semantic[1]["model_calls"] == 0 and semantic[1]["worker_embed_cpu_seconds"] > 0


def test_a_new_cluster_has_the_task_modules_imported_before_the_first_partition():
    """The first convert task must not pay for importing lxml, ftfy, pandas... (a second or so a worker); and no
    dashboard is served unless asked for (its imports cost the start-up a second)."""
    import time

    from cluster import TASK_MODULES, dask_client
    from config import ClusterConfig

    def imported(names):
        return all(name in sys.modules for name in names)

    with dask_client(ClusterConfig(n_workers=2, memory_limit="2GiB")) as client:
        deadline = time.monotonic() + 60
        while not all(client.run(imported, TASK_MODULES).values()):
            assert time.monotonic() < deadline, client.run(imported, TASK_MODULES)
            time.sleep(0.2)
        assert len(client.scheduler_info()["workers"]) == 2
        assert "distributed.dashboard.scheduler" not in sys.modules  # the Bokeh pages were not loaded
