"""Secrets and safety: a canary API key (flag and environment) appears in no output, log, cache or error line;
cache 0600 and report 0644; HTML cleaning fetches nothing; no pickle/eval of input; input never names a file."""
from __future__ import annotations

import hashlib
import json
import re
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import REPO, run_main, source_element

CANARY = "sk-canary-5e1f0c2a9b8d7e6f"
CANARY_ENV = "nvapi-canary-env-9f8e7d6c5b4a"


def everything_under(*roots) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for root in roots for p in root.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def sdg_run(tmp_path_factory):
    from llm_server import start_server

    tmp = tmp_path_factory.mktemp("secrets")
    src = tmp / "dump.json"
    elements = [source_element(i, body_words=60 + i % 30, answer_words=70 + i % 20) for i in range(1, 41)]
    elements[0]["link"] = "../../../../tmp/evil-link"                 # path-like input fields
    elements[1]["question_title"] = "/etc/passwd ../../evil-title"
    elements[2]["tags"] = ["../evil-tag"]
    src.write_text(json.dumps(elements))
    server = start_server(api_key=CANARY, wrong_count_rate=0.3, log_path=tmp / "server.log")
    try:
        result = run_main("--input", str(src), "--output-dir", str(tmp / "out"), "--n-workers", "1",
                          "--dedup", "exact,fuzzy", "--api-key", CANARY, "--verbose",
                          "--synth-gen-endpoint", server.base_url, "--synth-gen-model", "test-gen",
                          "--reward-model", "test-reward", "--target-size", "45", "--synth-n-variants", "2",
                          "--cache-dir", str(tmp / "cache"), "--embedding-cache", str(tmp / "emb"),
                          env={"NVIDIA_API_KEY": CANARY_ENV, "OPENAI_API_KEY": CANARY_ENV}, timeout=300)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, result


@pytest.mark.e2e
def test_canary_key_is_nowhere(sdg_run):
    tmp, result = sdg_run
    files = everything_under(tmp / "out", tmp / "cache")
    assert any(name.endswith(".sqlite") for name, _ in files)
    assert any(name.endswith("sdg_failures.jsonl") for name, _ in files)  # wrong counts were logged there
    for where, data in [("stdout", result.stdout.encode()), ("stderr", result.stderr.encode())] + files:
        for secret in (CANARY, CANARY_ENV):
            assert secret.encode() not in data, where
            assert secret.encode("utf-16-le") not in data, where


@pytest.mark.e2e
def test_only_the_flags_key_reached_the_endpoint(sdg_run):
    """--api-key wins over both variables, and the server saw that key and no other (by its sha256)."""
    from llm_server import read_log

    tmp, _ = sdg_run
    seen = {e["key_sha256"] for e in read_log(tmp / "server.log")}
    assert seen == {hashlib.sha256(CANARY.encode()).hexdigest()}
    report = json.loads((tmp / "out" / "final" / "report.json").read_text())
    assert '"key_source": "--api-key"' in json.dumps(report)


def test_a_key_echoed_by_the_server_is_not_cached_or_returned(server, tmp_path, monkeypatch):
    import llm
    import llm_server

    answer = llm_server.Handler._answer

    def echo_key(self, body, h):
        resp = answer(self, body, h)
        resp["choices"][0]["message"]["content"] = f"you sent {self.headers.get('Authorization')}"
        return resp
    monkeypatch.setattr(llm_server.Handler, "_answer", echo_key)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_ENV)
    srv = server()
    client = llm.LLMClient(srv.base_url, cache_dir=tmp_path / "cache")
    [res] = client.run_batch([llm.ChatRequest("gen", [{"role": "user", "content": "hi"}])])
    client.close()
    assert res.content == "you sent Bearer [redacted]"
    assert client.report()["key_source"] == "OPENAI_API_KEY"
    for name, data in everything_under(tmp_path / "cache"):
        assert CANARY_ENV.encode() not in data, name


@pytest.mark.parametrize("status", [401, 403, 404, 503, 307])
def test_endpoint_error_lines_never_hold_the_key(server, tmp_path, status):
    import llm

    srv = server(error_models={"m": status}, fail_status=status)
    client = llm.LLMClient(srv.base_url, api_key=CANARY, cache_dir=tmp_path / "cache", max_retries=0,
                           give_up_limit=1)
    with pytest.raises(llm.EndpointError) as ei:
        client.run_batch([llm.ChatRequest("m", [{"role": "user", "content": CANARY}])])
    for text in (str(ei.value), repr(ei.value), repr(client), json.dumps(client.report())):
        assert CANARY not in text


@pytest.mark.e2e
def test_file_modes(sdg_run):
    tmp, _ = sdg_run
    caches = list((tmp / "cache").rglob("*.sqlite*"))
    assert caches
    for path in caches:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    final = tmp / "out" / "final"
    assert stat.S_IMODE((final / "report.json").stat().st_mode) == 0o644
    for path in final.rglob("*.jsonl"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


@pytest.mark.e2e
def test_input_never_names_a_file(sdg_run, tmp_path_factory):
    tmp, _ = sdg_run
    names = {p.name for p in (tmp / "out").rglob("*")}
    assert not [n for n in names if "evil" in n or "passwd" in n], names
    assert not list(tmp.parent.glob("**/evil*")) and not list(tmp.glob("evil*"))
    allowed = re.compile(r"^(law-qa-(train|val|test)\.jsonl|(train|val|test)\.jsonl|chat|nemo|final|README\.md|"
                         r"report\.json|removed\.jsonl|sdg_failures\.jsonl|[a-z_]+\.png)$")
    assert all(allowed.match(n) for n in names), sorted(n for n in names if not allowed.match(n))


@pytest.mark.e2e
def test_rejected_key_error_line_does_not_echo_it(tmp_path):
    from llm_server import start_server

    src = tmp_path / "dump.json"
    src.write_text(json.dumps([source_element(i) for i in range(1, 21)]))
    server = start_server(api_key="the-right-key-000")
    try:
        result = run_main("--input", str(src), "--output-dir", str(tmp_path / "out"), "--n-workers", "1",
                          "--dedup", "none", "--api-key", CANARY, "--synth-gen-endpoint", server.base_url,
                          "--synth-gen-model", "test-gen", "--target-size", "40", "--cache-dir",
                          str(tmp_path / "cache"), timeout=300)
    finally:
        server.stop()
    assert result.returncode == 4 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert CANARY not in result.stderr + result.stdout
    for _, data in everything_under(tmp_path):
        assert CANARY.encode() not in data


class _Counter(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_html_cleaning_fetches_nothing():
    import pandas as pd

    from modifiers import clean_partition

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    html = (f'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "{url}/dtd">'
            f'<link rel="stylesheet" href="{url}/css"><p>Visible text here.<img src="{url}/img.png"></p>'
            f'<iframe src="{url}/frame"></iframe><script src="{url}/js">alert(1)</script>'
            f'<object data="{url}/obj"></object><embed src="{url}/embed"><video src="{url}/video"></video>'
            f'<style>@import url("{url}/import");</style><svg><image href="{url}/svg"/></svg>'
            f'<p style="background:url({url}/bg)">More <a href="{url}/link">text</a>.</p>'
            f'<?xml-stylesheet href="{url}/xsl"?><math><mi xlink:href="{url}/math">x</mi></math>')
    try:
        row = {c: "" for c in ("id", "source_id", "tags", "link", "license", "file_name", "split", "reward")}
        df = pd.DataFrame([{**row, "title": "t <b>x</b>", "question": html, "answer": html,
                            "question_score": 1, "answer_score": 1, "synthetic": False, "round": 0}])
        cleaned = clean_partition(df)
        import time

        time.sleep(0.5)
    finally:
        server.shutdown()
    assert _Counter.hits == [], _Counter.hits
    text = cleaned["question"].iloc[0]
    assert "Visible text here." in text and "alert(1)" not in text


def test_no_pickle_or_eval_of_input():
    """No module deserialises with pickle/marshal/yaml.load or evaluates strings."""
    bad = re.compile(r"(\b(pickle|marshal|dill|cloudpickle)\.loads?|\byaml\.load|\bshelve\.open|"
                     r"(?<![.\w])(eval|exec))\s*\(")  # (torch's model.eval() is not Python's eval)
    offenders = []
    for path in sorted(REPO.glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if bad.search(code) and "literal_eval" not in code:
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders
