"""Shared fixtures. Tests never touch a model or data hub: everything is offline and on 127.0.0.1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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


def run_main(*args: str, env: dict | None = None, timeout: float = 300, cwd: Path | None = None):
    """Run `python main.py ARGS` in a subprocess; returns CompletedProcess with text output."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or REPO)


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
