"""llm.py against tests/llm_server.py (real HTTP on 127.0.0.1), through both transports where it matters."""
from __future__ import annotations

import os
import stat
import sys
import time
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


def test_retries_on_5xx_complete(server, tmp_path):
    srv = server(fail_first=2, fail_status=503)
    c = client(srv, tmp_path)
    res = c.run_batch(reqs(6))
    assert all(r.ok for r in res)
    assert c.stats.retries == 12 and c.stats.requests == 18 and c.stats.completed == 6
    assert c.stats.http_status[503] == 12
    assert not completed_twice(server_log(srv))


def test_429_storm_completes(server, tmp_path):
    srv = server(capacity=4, latency=0.03, retry_after=0.02)
    c = client(srv, tmp_path, max_concurrency=32, max_retries=50)
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


def test_401_stops_with_one_clear_line(server, tmp_path):
    srv = server(api_key="the-right-key")
    c = client(srv, tmp_path, api_key=CANARY)
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


def test_hang_times_out_and_retries(server, tmp_path):
    srv = server(hang_first=1, hang_seconds=3)
    c = client(srv, tmp_path, timeout=0.4)
    t0 = time.monotonic()
    [r] = c.run_batch(reqs(1))
    assert r.ok and c.stats.timeouts == 1 and c.stats.retries == 1
    assert time.monotonic() - t0 < 2.5
    assert not completed_twice(read_log(srv.cfg.log_path))   # (the hung request is logged when it ends)


def test_gives_up_after_bounded_retries(server, tmp_path):
    srv = server(fail_first=100)
    c = client(srv, tmp_path, max_retries=2)
    [r] = c.run_batch(reqs(1))
    assert not r.ok and r.reason == "http 500 (gave up after 3 tries)"
    assert c.stats.requests == 3


def test_refused_connection_is_unreachable_in_seconds(tmp_path):
    c = llm.LLMClient("http://127.0.0.1:9/v1", cache_dir=tmp_path / "c", backoff_base=0.01, timeout=2)
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
