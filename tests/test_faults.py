"""Faults: SIGINT / SIGKILL inside every stage (and during SDG against the test server), disk full on write, a Dask
worker killed mid-run. After an interruption the same command, run again, finishes with byte-identical data files
to an uninterrupted run, leaves no temporary files, and (with SDG) never re-sends a completed LLM request.

Interruptions are placed from inside the run: `python tests/test_faults.py --inject STAGE SIGNAL DELAY -- ARGS`
wraps the stage's function so that DELAY seconds after the stage starts (0 = at once) the main process gets
SIGNAL, then runs main.main(ARGS). Stages that run on the Dask workers get the wrapper by value (cloudpickle ships
functions of __main__), and it signals the main process by pid. During SDG the test server itself sends the signal
to main.py right after it has written an answer (see `What "completed" means` below).

Runtime: about 5 minutes on 2 cores. Semantic dedup (static embeddings) runs only where it is tested: the dedup
cells and SDG (dedup of the new rows against everything); elsewhere `--dedup exact,fuzzy`."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, RUN_DIR, hermetic_env

HERE = Path(__file__).resolve().parent
NOISE = ("Repo card metadata block was not found",)  # huggingface_hub, printed when the static model loads


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith(NOISE)]
pytestmark = pytest.mark.e2e

STAGES = ("convert", "clean", "filter", "dedup", "split", "synthesize", "write", "card", "audit")
DATA_GLOBS = ("law-qa-*.jsonl", "chat/*.jsonl", "nemo/*.jsonl", "removed.jsonl")
BASE_FLAGS = ("--n-workers", "1", "--embedding-model", "static", "--embedding-cache", "", "--partition-rows", "64",
              "--quiet", "--seed", "7")
# where embeddings are not what is tested, no semantic dedup: ~2 s less per run (CI has 2 cores)
FAST = ("--dedup", "exact,fuzzy")
NO_SDG = ("--synth-gen-endpoint", "")


# ------------------------------------------------------------------------------------------ the injector
def inject(stage: str, signame: str, delay: float, argv: list[str]) -> int:
    """Install a fault through the stage runner's one hook, then run main.main(argv): DELAY seconds after STAGE
    starts the process gets SIGNAL; `write` fires at its 2nd partition (bytes already in the temp files), and
    ENOSPC makes the disk "fill up" there."""
    import threading

    sys.path.insert(0, str(REPO))
    import pipeline

    assert stage in STAGES, stage
    sig = None if signame == "ENOSPC" else int(getattr(signal, signame))
    fired = []

    def hook(at_stage: str, event: str, index: int) -> None:
        if at_stage != stage or fired:
            return
        if stage == "write" and not (event == "partition" and index == 1):
            return
        fired.append(True)
        if sig is None:
            raise OSError(28, "No space left on device")
        if delay <= 0:
            os.kill(os.getpid(), sig)
        else:
            threading.Timer(delay, os.kill, (os.getpid(), sig)).start()

    pipeline.set_fault_hook(hook)
    import main

    return main.main(argv)


# ------------------------------------------------------------------------------------------ helpers
def data_digest(out: Path) -> dict[str, str]:
    final = out / "final"
    files = sorted(p for g in DATA_GLOBS for p in final.glob(g))
    if (final / "sdg_failures.jsonl").exists():
        files.append(final / "sdg_failures.jsonl")
    return {str(p.relative_to(final)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def all_files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def stray_files(out: Path) -> list[str]:
    return sorted(f for f in all_files(out) if Path(f).name.startswith(".") or f.endswith((".tmp", ".part")))


def run_cmd(args: list[str], timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python SCRIPT ARGS` in a temp working directory; SCRIPT relative to the repository."""
    args = [str(REPO / args[0]), *args[1:]]
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=RUN_DIR,
                          env=hermetic_env(**(env or {})))


def main_args(src: Path, out: Path, *extra: str) -> list[str]:
    return ["--input", str(src), "--output-dir", str(out), *BASE_FLAGS, *extra]


def interrupted_then_rerun(tmp: Path, name: str, stage: str, signame: str, delay: float, args: list[str],
                           baseline: dict[str, str]) -> str:
    """Interrupt, check the interrupted run's exit, rerun the same command, compare. Returns the matrix cell."""
    out = Path(args[args.index("--output-dir") + 1])
    first = run_cmd([__file__, "--inject", stage, signame, str(delay), "--", *args])
    if signame == "SIGKILL":  # (orphaned Dask workers may log their own end to the shared stderr)
        assert first.returncode in (-9, 0), (first.returncode, first.stderr[-2000:])
    else:
        assert "Traceback" not in first.stderr, first.stderr[-3000:]
        lines = stderr_lines(first.stderr)
        assert first.returncode in (130, 0), (first.returncode, first.stderr[-2000:])
        if first.returncode == 130:
            assert len(lines) == 1 and lines[0].startswith("interrupted"), first.stderr
    again = run_cmd(["main.py", *args])
    assert again.returncode == 0, again.stderr[-3000:]
    assert not stray_files(out), stray_files(out)
    assert data_digest(out) == baseline, f"{name}: rerun output differs from the uninterrupted run"
    return f"exit {first.returncode} -> rerun identical"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The source file, the uninterrupted run's data digests {"fast": exact+fuzzy dedup, "semantic": all three
    kinds with static embeddings}, and the module's temp dir."""
    tmp = tmp_path_factory.mktemp("faults")
    src = tmp / "q300.json"
    made = run_cmd(["data/make_sample.py", "--questions", "300", "--seed", "1", "--out", str(src)])
    assert made.returncode == 0, made.stderr
    baselines = {}
    for name, extra in (("fast", (*NO_SDG, *FAST)), ("semantic", NO_SDG)):
        base = tmp / f"baseline-{name}"
        result = run_cmd(["main.py", *main_args(src, base, *extra)])
        assert result.returncode == 0, result.stderr[-3000:]
        baselines[name] = data_digest(base)
    assert baselines["fast"] != baselines["semantic"]  # semantic dedup did remove rows: the dedup cells test it
    return src, baselines, tmp


MATRIX = [(stage, sig) for stage in ("convert", "clean", "filter", "dedup", "split", "write", "card", "audit")
          for sig in ("SIGINT", "SIGKILL")]


@pytest.mark.e2e
@pytest.mark.parametrize("stage,signame", MATRIX, ids=[f"{s}-{g}" for s, g in MATRIX])
def test_interrupt_each_stage_then_rerun(stage, signame, corpus):
    src, baselines, tmp = corpus
    delay = round(random.Random(f"{stage}{signame}").uniform(0, 0.3), 3)
    out = tmp / f"{stage}-{signame}"
    kind = "semantic" if stage == "dedup" else "fast"   # dedup cells run all three kinds (static embeddings)
    extra = NO_SDG if kind == "semantic" else (*NO_SDG, *FAST)
    cell = interrupted_then_rerun(tmp, f"{stage}/{signame}", stage, signame, delay,
                                  main_args(src, out, *extra), baselines[kind])
    print(f"{stage:<11}{signame:<8} delay {delay}s: {cell}")


@pytest.mark.e2e
def test_sigint_and_sigkill_while_rewriting_keep_previous_outputs(corpus):
    """An interrupted write over a finished run leaves that run's files complete (old), never a mix."""
    src, baselines, tmp = corpus
    out = tmp / "rewrite"
    args = main_args(src, out, *NO_SDG, *FAST)
    assert run_cmd(["main.py", *args]).returncode == 0
    before = data_digest(out)
    for signame in ("SIGINT", "SIGKILL"):
        first = run_cmd([__file__, "--inject", "write", signame, "0", "--", *args])
        assert first.returncode in (130, -9), first.stderr[-2000:]
        assert data_digest(out) == before  # the finished run's files, complete
        if signame == "SIGINT":
            assert not stray_files(out), stray_files(out)
    # kill -9 cannot clean up its temp files: the next run removes them (their writer is gone)
    assert run_cmd(["main.py", *args]).returncode == 0
    assert data_digest(out) == before and not stray_files(out), stray_files(out)


@pytest.mark.e2e
def test_disk_full_on_write(corpus):
    src, baselines, tmp = corpus
    out = tmp / "diskfull"
    args = main_args(src, out, *NO_SDG, *FAST)
    assert run_cmd(["main.py", *args]).returncode == 0
    before, files = data_digest(out), all_files(out)
    report = (out / "final" / "report.json").read_bytes()
    result = run_cmd([__file__, "--inject", "write", "ENOSPC", "0", "--", *args])
    lines = stderr_lines(result.stderr)
    assert result.returncode not in (0, -9) and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error:") and "No space left on device" in lines[0], lines
    assert data_digest(out) == before and all_files(out) == files and not stray_files(out)
    assert (out / "final" / "report.json").read_bytes() == report


# ------------------------------------------------------------------------------------------ SDG (issue 5)
# What "completed" means. The server logs a request as completed once it has written the 200 answer in full. The
# client stores an answer in its cache (one SQLite commit) as soon as it has read it; a rerun is answered from the
# cache. Between the server's last write and the client's commit there is a window (the bytes in the socket, the
# SDK's parsing, the INSERT) that no client can close: a kill -9 (or Ctrl-C) landing there loses an answer the server
# counts as completed, and the rerun must ask for it again - the only way not to lose that row. So the invariant
# checked is the precise one:
#   - every answer the interrupted run had committed is never sent again (not even once: the cache answers it);
#   - an answer the server completed twice is one the interrupted run never committed (it was in flight at the
#     kill), and there are at most --max-concurrency of them;
#   - within one run nothing is completed twice; the rerun's files equal an uninterrupted run's, byte for byte.
# Which answers the client committed is read from its cache: the test server puts the request hash in each
# answer's id ("chatcmpl-<hash[:24]>"). The kill is fired by the server itself right after it has written the
# K-th answer (K seeded), i.e. inside that window - the old timer-based kill hit it by chance (about one run in ten)
# and the test, counting every written answer as paid, failed then.
SDG_MAX_CONCURRENCY = 4
SDG_SERVER = {"latency": 0.05, "wrong_count_rate": 0.35}   # wrong counts: re-asks and sdg_failures.jsonl rows


def sdg_flags(url: str, cache: Path) -> list[str]:
    # the test server's "paraphrases" drop a word or two: at the default threshold they are (rightly) semantic
    # duplicates of their source, so this test, about faults, keeps only near-identical rows out
    return ["--synth-gen-endpoint", url, "--synth-gen-model", "test-gen", "--reward-model", "test-reward",
            "--semdedup-eps", "0.002",
            "--target-size", "150", "--synth-n-variants", "2", "--max-concurrency", str(SDG_MAX_CONCURRENCY),
            "--cache-dir", str(cache)]


def committed_requests(cache_dir: Path) -> set[str]:
    """hash[:24] of every request whose answer the client committed to its response cache."""
    db = sqlite3.connect(str(cache_dir / "llm_cache.sqlite"))
    try:
        rows = db.execute("SELECT response FROM responses").fetchall()
    finally:
        db.close()
    ids = {json.loads(text)["id"] for (text,) in rows}
    assert all(i.startswith("chatcmpl-") for i in ids)
    return {i[len("chatcmpl-"):] for i in ids}


@pytest.fixture(scope="module")
def sdg_baseline(corpus):
    from llm_server import completed_twice, read_log, start_server

    src, _, tmp = corpus
    log = tmp / "sdg-base.log"
    server = start_server(log_path=log, **SDG_SERVER)
    try:
        out = tmp / "sdg-base"
        result = run_cmd(["main.py", *main_args(src, out, *sdg_flags(server.base_url, tmp / "sdg-base-cache"))])
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "final" / "report.json").read_text())
    assert report["sdg"]["added"] > 0 and report["sdg"]["stop_reason"] == "target_reached", report["sdg"]
    assert (out / "final" / "sdg_failures.jsonl").read_text().strip(), "no parse failure to write: raise the rate"
    entries = read_log(log)
    assert not completed_twice(entries)
    return data_digest(out), sum(1 for e in entries if e.get("completed"))


@pytest.mark.e2e
@pytest.mark.parametrize("signame", ["SIGKILL", "SIGINT"])
def test_interrupt_sdg_then_rerun_pays_no_call_twice(signame, corpus, sdg_baseline):
    """kill -9 / Ctrl-C of main.py (a subprocess) mid-SDG, right after the server has written an answer; the same
    command again: no committed answer is asked for again, and the final files equal an uninterrupted run's."""
    from llm_server import completed_twice, read_log, start_server

    src, _, tmp = corpus
    baseline, base_completed = sdg_baseline
    log = tmp / f"sdg-{signame}.log"
    out, cache = tmp / f"sdg-{signame}", tmp / f"sdg-{signame}-cache"
    args = [str(REPO / "main.py"), *main_args(src, out, *sdg_flags("URL", cache))]
    kill_after = random.Random(signame).randint(base_completed // 5, base_completed * 3 // 5)
    server = start_server(log_path=log, **SDG_SERVER)
    try:
        args[args.index("URL")] = server.base_url
        proc = subprocess.Popen([sys.executable, *args], cwd=RUN_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=hermetic_env())
        completed = itertools.count(1)

        def kill_inside_the_window(entry):  # on the server's handler thread, the answer just written in full
            if next(completed) == kill_after:
                os.kill(proc.pid, getattr(signal, signame))
        server.on_completed = kill_inside_the_window
        try:
            _, stderr = proc.communicate(timeout=300)
        finally:
            proc.kill()
        server.on_completed = None
        if signame == "SIGKILL":
            assert proc.returncode == -9, (proc.returncode, stderr[-2000:])
        else:
            lines = stderr_lines(stderr)
            assert "Traceback" not in stderr, stderr[-3000:]
            assert proc.returncode == 130 and len(lines) == 1 and lines[0].startswith("interrupted"), stderr
        first = read_log(log)
        committed = committed_requests(cache)
        # nothing part-written in final/: sdg_failures.jsonl is renamed into place only when the loop ends
        assert not (out / "final" / "sdg_failures.jsonl").exists()
        if signame == "SIGINT":
            assert not stray_files(out), stray_files(out)
        again = run_cmd(args)
    finally:
        server.stop()
    assert again.returncode == 0, again.stderr[-3000:]
    entries = read_log(log)
    rerun = entries[len(first):]
    done_first = {e["hash"][:24] for e in first if e.get("completed")}
    lost = done_first - committed          # written by the server, never committed by the killed client
    assert kill_after <= len(done_first) < base_completed, "the interruption did not land mid-SDG"
    assert committed <= done_first
    assert len(lost) <= SDG_MAX_CONCURRENCY, f"{len(lost)} completed answers were not committed as they arrived"
    resent = sorted({e["hash"][:24] for e in rerun} & committed)
    assert not resent, f"{len(resent)} answers already in the cache were requested again"
    assert completed_twice(first) == [] and completed_twice(rerun) == []
    twice = {h[:24] for h in completed_twice(entries)}
    assert twice <= lost, "a completed LLM request the client had committed was sent again after the interruption"
    assert data_digest(out) == baseline, "rerun output differs from the uninterrupted run"
    assert not stray_files(out), stray_files(out)
    print(f"synthesize {signame} after answer {kill_after}/{base_completed}: {len(committed)} committed, "
          f"{len(lost)} written but not committed (in flight), {len(rerun)} requests in the rerun "
          f"({len(twice)} of them re-sent answers never committed), 0 committed answers re-sent; rerun identical")


# ------------------------------------------------------------------------------------------ a Dask worker dies
CLUSTER = """
import logging, sys, time
from distributed import LocalCluster, Client
if __name__ == "__main__":
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    pids = client.run(lambda: __import__("os").getpid())
    print(cluster.scheduler_address, *pids.values(), flush=True)
    time.sleep(600)
"""


@pytest.mark.e2e
def test_dask_worker_killed_mid_run(corpus):
    src, baselines, tmp = corpus
    baseline = baselines["fast"]
    script = tmp / "cluster.py"
    script.write_text(CLUSTER)
    cluster = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=RUN_DIR)
    try:
        address, *pids = cluster.stdout.readline().split()
        out = tmp / "worker-killed"
        proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), *main_args(src, out, *NO_SDG, *FAST,
                                                                       "--scheduler-address", address)],
                                cwd=RUN_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=hermetic_env())
        time.sleep(random.Random(3).uniform(2.0, 4.0))
        os.kill(int(pids[0]), signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        cluster.kill()
        cluster.wait()
    assert "Traceback" not in stderr, stderr[-3000:]
    if proc.returncode == 0:
        assert data_digest(out) == baseline  # recovered: the same output
    else:
        lines = [line for line in stderr.splitlines() if line.strip() and "%|" not in line]
        assert proc.returncode == 5 and lines[-1].startswith("error: the Dask cluster lost work"), stderr[-2000:]
    print(f"worker killed: exit {proc.returncode}")


if __name__ == "__main__" and len(sys.argv) > 5 and sys.argv[1] == "--inject":
    sep = sys.argv.index("--")
    sys.exit(inject(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[sep + 1:]))
