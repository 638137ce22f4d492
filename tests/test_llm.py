"""the llm package against tests/llm_server.py (real HTTP on 127.0.0.1), through both transports where it matters."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import socketserver
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llm  # noqa: E402
from llm_server import completed_twice, read_log  # noqa: E402

pytestmark = pytest.mark.timeout(60)

CANARY = "sk-canary-7f3a9c1e5b2d4680"


def server_log(srv, wait: float = 2.0) -> list[dict]:
    """The server's log once every request it received is in it (it logs a 200 just after writing it, so a fast
    client can finish before the last entry lands)."""
    deadline = time.monotonic() + wait
    while len(srv.log) < srv.counts["requests"] and time.monotonic() < deadline:
        time.sleep(0.005)
    return read_log(srv.cfg.log_path)


def gen_msgs(i: int) -> list[dict]:
    text = f"Document number {i}. A tenant asked whether the landlord can keep the deposit for normal wear."
    return [{"role": "user", "content": f"TEXT:\n{text}\n\nParaphrase the text above into exactly 2 variants."}]


def reqs(n: int, model: str = "gen") -> list[llm.ChatRequest]:
    return [llm.ChatRequest(model, gen_msgs(i), {"seed": 1234, "top_p": 0.7, "max_tokens": 64}) for i in range(n)]


def client(srv, tmp_path, **kw) -> llm.LLMClient:
    kw.setdefault("cache_dir", tmp_path / "cache")
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    kw.setdefault("timeout", 5.0)
    return llm.LLMClient(srv.base_url, **kw)


@pytest.mark.parametrize("transport", ["raw", "httpx"])
def test_retries_on_5xx_complete(server, tmp_path, transport):
    srv = server(fail_first=2, fail_status=503)
    c = client(srv, tmp_path, transport=transport)
    res = c.run_batch(reqs(6))
    assert all(r.ok for r in res)
    assert c.stats.retries == 12 and c.stats.requests == 18 and c.stats.completed == 6
    assert c.stats.http_status[503] == 12
    assert not completed_twice(server_log(srv))


@pytest.mark.parametrize("transport", ["raw", "httpx"])
def test_429_storm_completes(server, tmp_path, transport):
    srv = server(capacity=4, latency=0.03, retry_after=0.02)
    c = client(srv, tmp_path, max_concurrency=32, max_retries=50, transport=transport)
    res = c.run_batch(reqs(60))
    assert all(r.ok for r in res), [r.reason for r in res if not r.ok]
    assert c.stats.rate_limited > 0
    assert c.limiter.cuts > 0 and c.concurrency <= 8   # adapted down towards the server's capacity
    log = server_log(srv)
    assert sum(e["completed"] for e in log) == 60
    assert not completed_twice(log)


def test_retry_after_is_honoured(server, tmp_path):
    srv = server(rate_limit_first=1, retry_after=0.6)
    c = client(srv, tmp_path)
    t0 = time.monotonic()
    [r] = c.run_batch(reqs(1))
    assert r.ok and time.monotonic() - t0 >= 0.6
    log = server_log(srv)
    assert [e["status"] for e in log] == [429, 200]
    assert log[1]["t"] - log[0]["t"] >= 0.55


@pytest.mark.parametrize("transport", ["raw", "httpx"])
def test_401_stops_with_one_clear_line(server, tmp_path, transport):
    srv = server(api_key="the-right-key")
    c = client(srv, tmp_path, api_key=CANARY, transport=transport)
    with pytest.raises(llm.AuthError) as ei:
        c.run_batch(reqs(5))
    msg = str(ei.value)
    assert msg == "the endpoint rejected the API key"
    assert "\n" not in msg and CANARY not in msg and CANARY not in repr(ei.value)
    assert ei.value.__cause__ is None and ei.value.__suppress_context__
    assert CANARY not in repr(c)


def test_right_key_works_from_the_environment(server, tmp_path, monkeypatch):
    srv = server(api_key=CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    c = client(srv, tmp_path)
    assert all(r.ok for r in c.run_batch(reqs(2)))
    assert c.report()["key_source"] == "OPENAI_API_KEY" and CANARY not in str(c.report())


def test_400_is_not_retried_and_404_stops(server, tmp_path):
    srv = server(error_models={"bad": 400, "gone": 404})
    c = client(srv, tmp_path)
    res = c.run_batch(reqs(2, "bad"))
    assert [r.reason for r in res] == ["http 400", "http 400"]
    assert c.stats.retries == 0 and c.stats.requests == 2 and c.stats.failures == {"http 400": 2}
    with pytest.raises(llm.ModelNotFound, match="404 for model 'gone'"):
        c.run_batch(reqs(1, "gone"))
    assert c.stats.retries == 0 and len(server_log(srv)) == 3
    assert c.report()["endpoint_error"]["kind"] == "model_not_found"


@pytest.mark.parametrize("transport", ["raw", "httpx"])
def test_hang_times_out_and_retries(server, tmp_path, transport):
    srv = server(hang_first=1, hang_seconds=0.8)
    c = client(srv, tmp_path, timeout=0.4, transport=transport)
    t0 = time.monotonic()
    [r] = c.run_batch(reqs(1))
    assert r.ok and c.stats.timeouts == 1 and c.stats.retries == 1
    assert time.monotonic() - t0 < 2.5
    assert not completed_twice(server_log(srv))   # (waits for the hung request, logged when it ends)


def test_gives_up_after_bounded_retries(server, tmp_path):
    srv = server(fail_first=100)
    c = client(srv, tmp_path, max_retries=2)
    [r] = c.run_batch(reqs(1))
    assert not r.ok and r.reason == "http 500 (gave up after 3 tries)"
    assert c.stats.requests == 3


@pytest.mark.parametrize("transport", ["raw", "httpx"])
def test_refused_connection_is_unreachable_in_seconds(tmp_path, transport):
    c = llm.LLMClient("http://127.0.0.1:9/v1", cache_dir=tmp_path / "c", backoff_base=0.01, timeout=2,
                      transport=transport)
    t0 = time.monotonic()
    with pytest.raises(llm.EndpointUnreachable, match="cannot reach 127.0.0.1:9: connection error: connection "
                                                      "refused"):
        c.run_batch(reqs(3))
    assert time.monotonic() - t0 < 3 and c.stats.requests <= 3 * (c.connect_retries + 1)
    assert isinstance(c.fatal, llm.EndpointError) and c.fatal.kind == "unreachable"


def test_cache_hit_on_rerun_sends_nothing(server, tmp_path):
    srv = server()
    first = client(srv, tmp_path).run_batch(reqs(8))
    n_http = len(server_log(srv))
    assert n_http == 8
    c2 = client(srv, tmp_path)
    again = c2.run_batch(reqs(8))
    assert len(server_log(srv)) == 8
    assert c2.stats.cache_hits == 8 and c2.stats.requests == 0
    assert [r.data for r in again] == [r.data for r in first]
    # different parameters (a re-ask's seed) are a different key
    c2.run_batch([llm.ChatRequest("gen", gen_msgs(0), {"seed": 1235, "top_p": 0.7, "max_tokens": 64})])
    assert len(server_log(srv)) == 9


def test_identical_inflight_calls_sent_once(server, tmp_path):
    srv = server(latency=0.1)
    c = client(srv, tmp_path)
    res = c.run_batch(reqs(1) * 5)
    assert all(r.ok for r in res) and len(server_log(srv)) == 1 and c.stats.coalesced == 4


def test_cache_file_is_private_and_holds_no_key(server, tmp_path, capsys):
    srv = server(api_key=CANARY)
    c = client(srv, tmp_path, api_key=CANARY)
    assert all(r.ok for r in c.run_batch(reqs(4)))
    c.close()
    cache_dir = tmp_path / "cache"
    db = cache_dir / "llm_cache.sqlite"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for f in cache_dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
        assert CANARY.encode() not in f.read_bytes()
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err
    assert CANARY not in str(c.report())


def test_budget_max_requests_stops_cleanly(server, tmp_path):
    srv = server()
    c = client(srv, tmp_path, max_requests=3, max_concurrency=8)
    res = c.run_batch(reqs(10))
    assert sum(r.ok for r in res) == 3
    assert {r.reason for r in res if not r.ok} == {"budget"}
    assert c.budget_hit == "max_requests" and c.stats.requests == 3
    assert len(server_log(srv)) == 3
    # cached answers are still served under an exhausted budget
    c2 = client(srv, tmp_path, max_requests=0)
    assert sum(r.ok for r in c2.run_batch(reqs(10))) == 3


def test_budget_max_tokens(server, tmp_path):
    srv = server()
    c = client(srv, tmp_path, max_tokens=50, max_concurrency=1)
    res = c.run_batch(reqs(10))
    assert c.budget_hit == "max_tokens"
    n_ok = sum(r.ok for r in res)
    assert 1 <= n_ok < 10 and c.stats.prompt_tokens + c.stats.completion_tokens >= 50


def test_accounting_matches_server(server, tmp_path):
    srv = server(fail_first=1)
    c = client(srv, tmp_path)
    res = c.run_batch(reqs(5) + reqs(2, "bad"))
    log = server_log(srv)
    assert c.stats.requests == len(log) == 14
    assert c.stats.retries == 7
    usage = [r.data["usage"] for r in res if r.ok]
    assert c.stats.prompt_tokens == sum(u["prompt_tokens"] for u in usage)
    assert c.stats.completion_tokens == sum(u["completion_tokens"] for u in usage)
    rep = c.report()
    assert rep["calls"] == 7 and rep["completed"] == 7 and rep["failures"] == {}


def test_rpm_cap_spaces_requests(server, tmp_path):
    srv = server()
    c = client(srv, tmp_path, rpm=600)  # one per 0.1 s
    t0 = time.monotonic()
    c.run_batch(reqs(5))
    assert time.monotonic() - t0 >= 0.38


def test_limiter_aimd():
    lim = llm.AdaptiveLimiter(10)
    assert lim.current == 10
    lim.inflight = 6
    lim.on_rate_limited()
    assert lim.current == 6
    lim.inflight = 3
    for _ in range(50):
        lim.on_success()
    assert lim.current == 6        # no growth while the limit is not in use
    for _ in range(200):
        lim.inflight = lim.current
        lim.on_success()
    assert lim.current == 10       # grows back to the ceiling, never above
    lim.on_failure(started=time.monotonic())
    assert lim.current == 5
    lim.on_failure(started=0.0)   # started before the last cut: no second cut for the same burst
    assert lim.current == 5


def test_limiter_probes_slowly_past_the_last_429():
    lim = llm.AdaptiveLimiter(100)
    lim.inflight = 40
    lim.limit = 41.0
    lim.on_rate_limited()          # the server held 40
    assert lim.current == 40

    def successes_to_grow_by_one() -> int:
        start, n = lim.current, 0
        while lim.current == start:
            lim.inflight = lim.current
            lim.on_success()
            n += 1
        return n
    below = successes_to_grow_by_one()    # 40 -> 41: still under the 429's level (41)
    above = successes_to_grow_by_one()    # 41 -> 42: past it
    assert below <= 41 and above >= llm.PROBE_SLOWDOWN * 40


# ---- keys by host ---------------------------------------------------------------------------------------------------
NV_KEY, OA_KEY = "nvapi-test-nvidia-key-0001", "sk-test-openai-key-0002"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("url,source", [
    ("https://integrate.api.nvidia.com/v1", "NVIDIA_API_KEY"),
    ("https://nvidia.com/v1", "NVIDIA_API_KEY"),
    ("https://AI.API.NVIDIA.COM./v1", "NVIDIA_API_KEY"),
    ("https://evilnvidia.com/v1", "OPENAI_API_KEY"),
    ("https://nvidia.com.evil.org/v1", "OPENAI_API_KEY"),
    ("https://integrate.api.nvidia.com.evil.org/v1", "OPENAI_API_KEY"),
    ("https://api.openai.com/v1", "OPENAI_API_KEY"),
    ("http://127.0.0.1:8000/v1", "OPENAI_API_KEY"),
])
def test_env_key_goes_only_to_its_kind_of_host(url, source):
    env = {"NVIDIA_API_KEY": NV_KEY, "OPENAI_API_KEY": OA_KEY}
    assert llm.resolve_api_key(url, None, env) == (env[source], source)
    assert llm.resolve_api_key(url, "from-flag", env) == ("from-flag", "--api-key")


def test_no_key_rather_than_the_other_hosts_key():
    assert llm.resolve_api_key("https://integrate.api.nvidia.com/v1", None, {"OPENAI_API_KEY": OA_KEY}) == (None, None)
    assert llm.resolve_api_key("http://localhost:8000/v1", None, {"NVIDIA_API_KEY": NV_KEY}) == (None, None)
    assert llm.resolve_api_key("http://localhost:8000/v1", "", {"OPENAI_API_KEY": ""}) == (None, None)


@pytest.mark.parametrize("bad", ["ftp://host/v1", "http:///v1", "https://user:pw@nvidia.com/v1",
                                 "https://nvidia.com@evil.org/v1", "http://host:99999/v1", "http://ho st/v1",
                                 "http://host/v1\r\nX: y", "http://h\u00f6st/v1"])
def test_urls_that_could_mislead_about_the_host_are_refused(bad):
    with pytest.raises(ValueError, match="^--synth-gen-endpoint: "):
        llm.LLMClient(bad, cache_dir=None)


def test_a_key_that_would_break_the_header_is_refused_without_echo(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="^OPENAI_API_KEY: the API key holds characters") as ei:
        llm.LLMClient("http://127.0.0.1:8000/v1", cache_dir=None)
    assert "abc" not in str(ei.value)
    monkeypatch.setenv("OPENAI_API_KEY", "  sk-with-newline\n")
    assert llm.LLMClient("http://127.0.0.1:8000/v1", cache_dir=None).key_source == "OPENAI_API_KEY"


def test_with_both_keys_exported_each_host_gets_only_its_own(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NVIDIA_API_KEY", NV_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OA_KEY)
    local = server()
    c = client(local, tmp_path)
    assert all(r.ok for r in c.run_batch(reqs(3)))
    assert [e["key_sha256"] for e in server_log(local)] == [sha(OA_KEY)] * 3
    assert c.report()["key_source"] == "OPENAI_API_KEY"
    # an NVIDIA host name, routed to a local server: real HTTP, the NVIDIA rule
    nv = server()
    c2 = llm.LLMClient(f"http://integrate.api.nvidia.com:{nv.port}/v1", cache_dir=tmp_path / "c2",
                       connect_to=("127.0.0.1", nv.port))
    assert all(r.ok for r in c2.run_batch(reqs(3)))
    assert [e["key_sha256"] for e in server_log(nv)] == [sha(NV_KEY)] * 3
    assert c2.report()["key_source"] == "NVIDIA_API_KEY"
    for cl in (c, c2):
        cl.close()
        assert NV_KEY not in repr(cl) and OA_KEY not in str(cl.report())
    for f in tmp_path.rglob("*"):
        if f.is_file() and "server" not in f.name:
            assert NV_KEY.encode() not in f.read_bytes() and OA_KEY.encode() not in f.read_bytes(), f


def test_no_key_sends_no_authorization_header(server, tmp_path):
    srv = server()
    c = client(srv, tmp_path)
    assert all(r.ok for r in c.run_batch(reqs(2)))
    assert [e["key_sha256"] for e in server_log(srv)] == [None, None] and c.report()["key_source"] is None


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("transport", ["raw", "httpx"])
def test_redirect_is_not_followed_and_the_key_stays(server, tmp_path, transport):
    other = server()
    handler = type("R", (_Redirect,), {"target": other.base_url + "/chat/completions"})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        c = llm.LLMClient(f"http://127.0.0.1:{httpd.server_address[1]}/v1", api_key=CANARY, transport=transport,
                          cache_dir=tmp_path / "c")
        with pytest.raises(llm.EndpointError, match=r"redirected \(http 307\)") as ei:
            c.run_batch(reqs(2))
        assert ei.value.kind == "endpoint" and CANARY not in str(ei.value)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert server_log(other) == [] and other.counts["requests"] == 0


def test_auto_transport_uses_httpx_behind_a_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert llm.LLMClient("http://10.0.0.5:8000/v1", cache_dir=None).transport == "raw"
    assert llm.LLMClient("https://api.example.org/v1", cache_dir=None).transport == "httpx"
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert llm.LLMClient("http://10.0.0.5:8000/v1", cache_dir=None).transport == "httpx"
    monkeypatch.setenv("NO_PROXY", "10.0.0.5")
    assert llm.LLMClient("http://10.0.0.5:8000/v1", cache_dir=None).transport == "raw"


# ---- endpoint-wide failures ----------------------------------------------------------------------------------------
def test_a_5xx_storm_stops_the_client_and_nothing_more_is_sent(server, tmp_path):
    srv = server(error_models={"dead": 503})
    c = client(srv, tmp_path, max_retries=1)
    res = c.run_batch(reqs(2, "dead"))     # two calls giving up: returned, the run goes on
    assert [r.reason for r in res] == ["http 503 (gave up after 2 tries)"] * 2
    assert all(r.ok for r in c.run_batch(reqs(1)))   # a success in between: not "in a row"
    assert not any(r.ok for r in c.run_batch(reqs(2, "dead")))
    with pytest.raises(llm.EndpointFailing, match=r"^3 calls in a row failed after all retries \(last: http 503"):
        c.run_batch(reqs(1, "dead"))
    n = len(server_log(srv))
    with pytest.raises(llm.EndpointFailing):
        c.run_batch(reqs(5)[1:])
    assert len(server_log(srv)) == n == 1 + 2 * 5
    assert c.report()["endpoint_error"]["kind"] == "failing"


def test_after_an_endpoint_error_cached_answers_are_still_served(server, tmp_path):
    client(server(), tmp_path).run_batch(reqs(2))
    srv = server(api_key="the-right-key")
    c = client(srv, tmp_path, api_key="a-wrong-key")     # the same cache
    with pytest.raises(llm.AuthError):
        c.run_batch(reqs(3))
    assert [(r.ok, r.cached) for r in c.run_batch(reqs(2))] == [(True, True)] * 2
    with pytest.raises(llm.AuthError):
        c.run_batch(reqs(4)[2:])
    assert len(server_log(srv)) == 1


def test_finish_reason_fresh_and_cached(server, tmp_path, monkeypatch):
    import llm_server

    answer = llm_server.Handler._answer

    def cut_short(self, body, h):
        resp = answer(self, body, h)
        if body.get("max_tokens") == 5:
            resp["choices"][0]["finish_reason"] = "length"
        return resp
    monkeypatch.setattr(llm_server.Handler, "_answer", cut_short)
    srv = server()
    batch = [llm.ChatRequest("gen", gen_msgs(0), {"max_tokens": m}) for m in (5, 64)]
    assert [r.finish_reason for r in client(srv, tmp_path).run_batch(batch)] == ["length", "stop"]
    again = client(srv, tmp_path).run_batch(batch)
    assert [(r.cached, r.finish_reason) for r in again] == [(True, "length"), (True, "stop")]


# ---- the raw transport on answers the test server never gives ------------------------------------------------------
class _Scripted(socketserver.BaseRequestHandler):
    """Answers each POST as `server.mode` says; counts requests in `server.hits`."""

    def handle(self):
        f = self.request.makefile("rb")
        while f.readline():
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                length = int(value) if name.strip().lower() == "content-length" else length
            f.read(length)
            self.server.hits += 1
            mode = self.server.mode
            body = json.dumps({"choices": [{"message": {"role": "assistant", "content": f"ok {mode}"},
                                            "finish_reason": "stop"}]}).encode()
            if mode == "chunked-gzip":
                z = gzip.compress(body)
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (z[:7], z[7:]))
                self.request.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n"
                                     b"\r\n" + chunks + b"0\r\n\r\n")
            elif mode == "close-delimited":
                self.request.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
                return
            elif mode == "silent-close":   # keep-alive implied, then the socket closes anyway
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                return
            elif mode == "truncated":
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body) + 9, body))
                return


@pytest.fixture
def scripted():
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Scripted)
    srv.daemon_threads, srv.hits, srv.mode = True, 0, ""
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("mode", ["chunked-gzip", "close-delimited", "silent-close"])
def test_raw_transport_reads_every_framing(scripted, tmp_path, mode):
    scripted.mode = mode
    c = llm.LLMClient(f"http://127.0.0.1:{scripted.server_address[1]}/v1", cache_dir=tmp_path / "c",
                      max_concurrency=1, transport="raw")
    res = c.run_batch(reqs(5))
    assert [r.content for r in res] == [f"ok {mode}"] * 5
    # a kept-alive connection the server closed is sent again at once: no retry, no failure, counted as sent
    assert c.stats.retries == 0 and scripted.hits == 5 and c.stats.requests - c.stats.resends == 5


def test_raw_transport_never_resends_a_truncated_answer_silently(scripted, tmp_path):
    scripted.mode = "truncated"
    c = llm.LLMClient(f"http://127.0.0.1:{scripted.server_address[1]}/v1", cache_dir=tmp_path / "c",
                      max_retries=1, backoff_base=0.01, transport="raw")
    [r] = c.run_batch(reqs(1))
    assert r.reason == "broken answer: connection closed mid-answer (gave up after 2 tries)"
    assert scripted.hits == 2 and c.stats.requests == 2


def test_a_ctrl_c_inside_a_call_leaves_one_exception_and_no_traceback(server, tmp_path, capfd, caplog):
    """Ctrl-C raises KeyboardInterrupt inside whichever task runs (main.py's handler): it must leave run() as a
    KeyboardInterrupt and nothing else, with no "exception was never retrieved" traceback at collection time."""
    import asyncio
    import gc

    srv = server(latency=0.05)
    c = client(srv, tmp_path)

    async def source(i):
        async def interrupt():
            await asyncio.sleep(0.02)
            raise KeyboardInterrupt
        parts = [c.chat("gen", gen_msgs(10 * i + k)) for k in range(3)]
        return await asyncio.gather(*parts, *([interrupt()] if i == 2 else []))

    async def go():
        return await asyncio.gather(*(source(i) for i in range(6)))
    with pytest.raises(KeyboardInterrupt):
        c.run(go)
    gc.collect()
    server_log(srv)   # (let the server finish the requests the interrupt abandoned)
    err = capfd.readouterr().err + caplog.text   # asyncio reports through logging
    assert "Traceback" not in err and "never retrieved" not in err, err
