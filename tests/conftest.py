"""Shared fixtures. Tests are hermetic: offline (no model or data hub), servers on 127.0.0.1 only, no credential
from the developer's environment, and nothing written into the checkout (every run works in a temp directory)."""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Variables that could carry a credential to a paid endpoint or a hub: never seen by a test or a child process.
_SECRET_VAR = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.IGNORECASE)
for _name in [n for n in os.environ if _SECRET_VAR.search(n)]:
    del os.environ[_name]

sys.dont_write_bytecode = True  # no __pycache__ from the modules the tests import (child processes: hermetic_env)


def _checkout_state() -> list[str] | None:
    """`git status --ignored` of the checkout (bytecode caches aside), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return sorted(line for line in out.stdout.splitlines() if "__pycache__" not in line and ".pyc" not in line)


def pytest_sessionstart(session):
    session.config._checkout_before = _checkout_state()


def pytest_sessionfinish(session, exitstatus):
    """Tests write nothing into the checkout: a file that appeared (or vanished) there fails the run."""
    before = getattr(session.config, "_checkout_before", None)
    after = _checkout_state()
    if before is None or after is None or before == after:
        return
    changed = sorted(set(before) ^ set(after))
    print("\nERROR: the tests changed the checkout:\n  " + "\n  ".join(changed[:20]), file=sys.stderr)
    session.exitstatus = 1


# The working directory of every `python main.py` a test starts: the pipeline's relative defaults (data/raw,
# data/curated, data/cache) land here, never in the checkout.
RUN_DIR = Path(tempfile.mkdtemp(prefix="lawqa-tests-"))
atexit.register(shutil.rmtree, RUN_DIR, ignore_errors=True)

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

SAMPLE = REPO / "data" / "sample" / "law-stackexchange-questions-answers.json"


@pytest.fixture
def server(tmp_path):
    """`server(**options)` starts an OpenAI-compatible test server (tests/llm_server.py) on 127.0.0.1."""
    from llm_server import start_server

    servers = []

    def make(**kw):
        srv = start_server(log_path=tmp_path / f"server{len(servers)}.jsonl", **kw)
        servers.append(srv)
        return srv
    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def cluster_client():
    """A client of a 2-worker LocalCluster (started once, on first use), which is not Dask's default scheduler:
    Dask collections in other tests keep computing where they did."""
    from distributed import Client, LocalCluster

    # no Bokeh pages: test_cluster checks that the pipeline's own cluster never loads them into this process
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False}) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def partitions_of(client, frame: pd.DataFrame, n: int):
    """`frame` as `n` partitions.Partitions on `client`'s cluster, in order."""
    from partitions import Partitions

    bounds = [len(frame) * i // n for i in range(n + 1)]
    parts = [frame.iloc[a:b] for a, b in zip(bounds, bounds[1:])]
    return Partitions(client, client.scatter(parts, hash=False), frame.iloc[:0])


def hermetic_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: this one (credentials already removed), offline, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not _SECRET_VAR.search(k)}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1", **extra}


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch):
    """A test that sets a key sets it itself; none leaks in from the developer's shell."""
    for name in [n for n in os.environ if _SECRET_VAR.search(n)]:
        monkeypatch.delenv(name)


def run_main(*args: str, env: dict | None = None, timeout: float = 300, cwd: Path | None = None):
    """Run `python main.py ARGS` in a subprocess (in a temp working directory, with no endpoint unless the test
    names one); returns CompletedProcess with text output."""
    if args[:1] != ("audit",) and not any(a.startswith("--synth-gen-endpoint") for a in args):
        args = (*args, "--synth-gen-endpoint", "")
    if args[:1] != ("audit",) and not any(a.startswith("--embedding-cache") for a in args):
        args = (*args, "--embedding-cache", str(RUN_DIR / "embeddings"))
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env=hermetic_env(**(env or {})), cwd=cwd or RUN_DIR)


def source_element(qid: int, body_words: int = 60, answer_words: int = 60, score: int = 1,
                   answer_scores: tuple[int, ...] = (2,), tags=("contract", "civil-law")) -> dict:
    """One element in the exact Law StackExchange schema, with generated text."""
    def text(n: int, salt: str) -> str:
        return " ".join(f"{salt}{qid}w{i}" for i in range(n))

    return {
        "question_id": qid,
        "tags": list(tags),
        "score": score,
        "license": "CC BY-SA 4.0",
        "link": f"https://law.stackexchange.com/questions/{qid}/generated-question-{qid}",
        "question_title": f"Generated question number {qid}?",
        "question_body": f"<p>{text(body_words, 'q')}</p>",
        "answers": [{"answer_id": qid * 10 + i, "body": f"<p>{text(answer_words, 'a' + str(i))}</p>", "score": s}
                    for i, s in enumerate(answer_scores)],
    }


@pytest.fixture
def write_source(tmp_path):
    """Write a list of elements (or raw text) as a dump file; returns its path."""
    def _write(elements, name: str = "dump.json") -> Path:
        path = tmp_path / name
        if isinstance(elements, (str, bytes)):
            path.write_bytes(elements.encode() if isinstance(elements, str) else elements)
        else:
            path.write_text(json.dumps(elements))
        return path
    return _write
