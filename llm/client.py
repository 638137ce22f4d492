"""LLMClient: every LLM call of a run, from the cache or the endpoint, within the limiter, with retries."""
from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from contextlib import asynccontextmanager
from typing import Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import orjson

from .cache import ResponseCache, cache_key
from .errors import AuthError, EndpointError, EndpointFailing, EndpointUnreachable, ModelNotFound
from .httpx_http import HttpxTransport
from .keys import check_endpoint, resolve_api_key, usable_api_key
from .limiter import SLOW_START, AdaptiveLimiter
from .raw_http import RawHTTP
from .results import ChatRequest, Result, Stats
from .transport import Broken, ConnectFailed, TransportTimeout, retry_after, uses_proxy

DEFAULT_MAX_CONCURRENCY = 32   # the one default of the concurrency ceiling (SdgConfig.max_concurrency uses it)
AUTH_MESSAGE = "the endpoint rejected the API key"
TRANSPORTS = ("auto", "raw", "httpx")
USER_AGENT = "lawqa-curate"


class LLMClient:
    """Every LLM call of a run goes through one of these.

    `connect_to` (tests only) connects to this (host, port) instead of resolving the URL's host name, so a test can
    talk real HTTP to a local server under an NVIDIA host name; plain http only."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 max_concurrency: int = DEFAULT_MAX_CONCURRENCY, min_concurrency: int = 1, rpm: float | None = None,
                 max_retries: int = 8, connect_retries: int = 2, give_up_limit: int = 3,
                 backoff_base: float = 0.5, backoff_max: float = 30.0,
                 max_requests: int | None = None, max_tokens: int | None = None,
                 cache_dir: str | os.PathLike | None = "data/cache", transport: str = "auto",
                 connect_to: tuple[str, int] | None = None, environ: Mapping[str, str] = os.environ):
        check_endpoint(base_url)
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        self.base_url = base_url
        key, self.key_source = resolve_api_key(base_url, api_key, environ)
        self._key = usable_api_key(key, self.key_source)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.connect_retries = int(connect_retries)
        self.give_up_limit = int(give_up_limit)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.rpm = rpm
        self.transport = self._pick_transport(transport, connect_to)
        self._connect_to = connect_to
        self.limiter = AdaptiveLimiter(max_concurrency, floor=min_concurrency, initial=SLOW_START)
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.stats = Stats()
        self.budget_hit: str | None = None     # "max_requests" / "max_tokens" once a budget stopped a call
        self.fatal: EndpointError | None = None  # set once the endpoint as a whole failed; later calls raise it
        self._conn: RawHTTP | HttpxTransport | None = None
        self._head: Any = None
        self._pending: dict[str, asyncio.Future] = {}
        self._next_slot = 0.0
        self._give_ups_in_a_row = 0

    def _pick_transport(self, transport: str, connect_to) -> str:
        scheme = urlsplit(self.base_url).scheme
        if transport == "auto":
            transport = "raw" if scheme == "http" and not uses_proxy(self.base_url) else "httpx"
        if transport == "raw" and scheme != "http":
            raise ValueError("the raw transport speaks plain http only")
        if connect_to is not None and transport != "raw":
            raise ValueError("connect_to needs the raw transport")
        return transport

    # ---- public helpers ---------------------------------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        """The live concurrency limit."""
        return self.limiter.current

    def __repr__(self) -> str:  # never the key
        return f"LLMClient(base_url={self.base_url!r}, key_source={self.key_source!r}, concurrency={self.concurrency})"

    def scrub(self, text: Any) -> str:
        s = str(text)
        if self._key and len(self._key) >= 4:
            s = s.replace(self._key, "[redacted]")
        return s

    def report(self) -> dict:
        d = self.stats.as_dict()
        d["concurrency"] = {"ceiling": self.limiter.ceiling, "final": self.limiter.current,
                            "min": max(self.limiter.floor, int(self.limiter.min_seen)), "cuts": self.limiter.cuts,
                            "queue_cuts": self.limiter.queue_cuts, "max_in_flight": self.limiter.max_inflight}
        d["budget_hit"] = self.budget_hit
        d["key_source"] = self.key_source
        d["transport"] = self.transport
        d["endpoint_error"] = ({"kind": self.fatal.kind, "message": self.scrub(self.fatal)}
                               if self.fatal is not None else None)
        return d

    # ---- sessions ---------------------------------------------------------------------------------------------
    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    @asynccontextmanager
    async def session(self):
        """Open the transport on the running loop; nested use is a no-op."""
        if self._conn is not None:
            yield self
            return
        parts = urlsplit(self.base_url)
        path = parts.path.rstrip("/") + "/chat/completions" + (f"?{parts.query}" if parts.query else "")
        connect_timeout = min(self.timeout, 10.0)
        if self.transport == "raw":
            self._conn = RawHTTP(self.base_url, self.timeout, connect_timeout, self._connect_to, self._count_resend)
        else:
            url = f"{parts.scheme}://{parts.netloc}{path}"
            self._conn = HttpxTransport(url, self.timeout, connect_timeout, self.limiter.ceiling)
        self._head = self._conn.head(path, self._headers())
        self.limiter.reset_waiters()
        self._pending = {}
        t0 = time.monotonic()
        try:
            yield self
        finally:
            self.stats.busy_seconds += time.monotonic() - t0
            conn, self._conn, self._head = self._conn, None, None
            try:
                await conn.aclose()
            except Exception:
                pass

    def _count_resend(self) -> None:
        self.stats.requests += 1
        self.stats.resends += 1

    def run(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        """asyncio.run(coro_fn()) inside a session (for sync callers)."""
        async def main():
            asyncio.get_running_loop().set_exception_handler(_quiet_on_interrupt)
            async with self.session():
                return await coro_fn()
        try:
            return asyncio.run(main())
        except KeyboardInterrupt:
            _INTERRUPTED.set()
            raise

    def run_batch(self, requests: Iterable[ChatRequest]) -> list[Result]:
        reqs = list(requests)

        async def go():
            return await asyncio.gather(*(self.chat(r.model, r.messages, **r.params) for r in reqs))
        return self.run(go)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    # ---- the call -----------------------------------------------------------------------------------------------
    async def chat(self, model: str, messages: list[dict], **params) -> Result:
        """One chat completion: from the cache, or the endpoint (with retries). Raises an EndpointError when the
        endpoint as a whole failed (see the module docstring); returns Result(ok=False) for one failed call."""
        if self._conn is None:
            async with self.session():
                return await self.chat(model, messages, **params)
        if {"model", "messages", "stream"} & params.keys():
            raise ValueError("params must not set model, messages or stream")
        self.stats.calls += 1
        key = cache_key(model, messages, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return Result(ok=True, data=orjson.loads(hit), cached=True, key=key)
        if self.fatal is not None:
            raise self.fatal.again() from None
        pending = self._pending.get(key)
        if pending is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            body = orjson.dumps({"model": model, "messages": messages, **params})
            res = await self._fetch(key, model, body, cost_class(model, params.get("max_tokens")))
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e)
                fut.exception()  # mark retrieved
            raise
        else:
            fut.set_result(res)
            return res
        finally:
            self._pending.pop(key, None)

    def _budget_reason(self) -> str | None:
        if self.budget_hit:
            return self.budget_hit
        if self.max_requests is not None and self.stats.requests >= self.max_requests:
            return "max_requests"
        if self.max_tokens is not None and self.stats.prompt_tokens + self.stats.completion_tokens >= self.max_tokens:
            return "max_tokens"
        return None

    def _fail(self, key: str, reason: str) -> Result:
        reason = self.scrub(reason)
        self.stats.failures[reason] += 1
        return Result(ok=False, reason=reason, key=key)

    def _stop(self, exc: EndpointError) -> EndpointError:
        """Remember the first endpoint-wide failure: later calls raise the same kind at once."""
        if self.fatal is None:
            self.fatal = exc
        return exc

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return random.uniform(cap / 2, cap)  # "equal jitter"

    async def _rpm_wait(self) -> None:
        if not self.rpm:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 60.0 / float(self.rpm)
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _fetch(self, key: str, model: str, body: bytes, cost_class=None) -> Result:
        attempt = 0
        while True:
            await self._rpm_wait()
            started = await self.limiter.acquire()
            if self.fatal is not None:   # another call found the endpoint gone while this one waited
                self.limiter.release()
                raise self.fatal.again() from None
            reason = self._budget_reason()  # checked holding a slot, just before sending: no overshoot
            if reason:
                self.limiter.release()
                self.budget_hit = reason
                return self._fail(key, "budget")
            self.stats.requests += 1
            result, why, min_wait = await self._attempt(key, model, body, started, cost_class)
            if result is not None:
                return result
            connect = why.startswith("connect")
            if attempt >= (self.connect_retries if connect else self.max_retries):
                return self._give_up(key, why, attempt + 1, connect)
            delay = max(min_wait + random.uniform(0, 0.1 + 0.1 * min_wait), self._backoff(attempt)
                        if not min_wait else 0.0)
            attempt += 1
            self.stats.retries += 1
            await asyncio.sleep(delay)

    def _give_up(self, key: str, why: str, tries: int, connect: bool) -> Result:
        """A call out of retries: endpoint-wide when it never connected or several calls in a row gave up."""
        where = urlsplit(self.base_url).netloc
        if connect:
            raise self._stop(EndpointUnreachable(f"cannot reach {where}: {why} ({tries} tries)")) from None
        self._give_ups_in_a_row += 1
        reason = f"{why} (gave up after {tries} tries)"
        if self._give_ups_in_a_row >= self.give_up_limit:
            raise self._stop(EndpointFailing(
                f"{self._give_ups_in_a_row} calls in a row failed after all retries (last: {reason})")) from None
        return self._fail(key, reason)

    async def _attempt(self, key: str, model: str, body: bytes, started: float, cost_class=None
                       ) -> tuple[Result | None, str | None, float]:
        """One HTTP request holding one limiter slot (released here): (result, None, 0) when final, or
        (None, why, minimum wait) when worth retrying."""
        released = False
        try:
            try:
                resp = await self._conn.post(self._head, body)
            except ConnectFailed as exc:
                self.limiter.on_failure(started)
                return None, f"connection error: {exc}", 0.0
            except TransportTimeout:
                self.stats.timeouts += 1
                self.limiter.on_failure(started)
                return None, "timeout", 0.0
            except Broken as exc:
                self.limiter.on_failure(started)
                return None, f"broken answer: {exc}", 0.0
            status = resp.status
            self.stats.http_status[status] += 1
            if 200 <= status < 300:
                return self._accept(key, model, resp.body, started, cost_class)
            if status == 429:
                self.stats.rate_limited += 1
                self.limiter.release()
                released = True
                self.limiter.on_rate_limited()
                return None, "http 429", retry_after(resp.headers) or 0.0
            if status >= 500 or status in (408, 409):
                if status != 500:       # 502/503/504/529/408: overload signals; a plain 500 is a bug, not load
                    self.limiter.on_failure(started)
                return None, f"http {status}", retry_after(resp.headers) or 0.0
            fatal = self._endpoint_error(status, model)
            if fatal is not None:
                raise fatal from None
            return self._fail(key, f"http {status}"), None, 0.0
        finally:
            if not released:
                self.limiter.release()

    def _endpoint_error(self, status: int, model: str) -> EndpointError | None:
        """The endpoint-wide meaning of a 3xx/4xx answer, or None for one call's problem (400, 413, 422...)."""
        if status in (401, 403):
            return self._stop(AuthError(AUTH_MESSAGE, status))
        if status == 404:
            return self._stop(ModelNotFound(
                f"http 404 for model {model!r}: no such model there, or the URL is not an OpenAI-compatible "
                "base (it usually ends in /v1)", status))
        if 300 <= status < 400:
            return self._stop(EndpointError(
                f"the endpoint redirected (http {status}); redirects are not followed so the key stays with the "
                "host named: give the final URL", status))
        return None

    def _accept(self, key: str, model: str, body: bytes, started: float = 0.0, cost_class=None
                ) -> tuple[Result | None, str | None, float]:
        """A 2xx answer: stored (committed at once: a crash loses nothing paid) and returned, or retried if it is
        not a JSON object. Its latency from `started` (the send) feeds the limiter's queue signal."""
        try:
            text = body.decode("utf-8")
            data = orjson.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            return None, "invalid response", 0.0
        if self._key and self._key in text:   # never store the key, even if a server echoes it
            text = self.scrub(text)
            data = json.loads(text)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        pt, ct = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
        self.stats.prompt_tokens += pt
        self.stats.completion_tokens += ct
        self.stats.completed += 1
        if self.cache is not None:
            self.cache.put(key, model, text, pt, ct)
        latency = time.monotonic() - started if started else None   # a batch answer has no send time
        self.limiter.on_success(latency, ct, cost_class, started)
        self._give_ups_in_a_row = 0
        return Result(ok=True, data=data, key=key), None, 0.0


def cost_class(model: str, max_tokens) -> tuple:
    """The kind of call whose latencies the limiter compares to learn queueing: one model, max_tokens within a power
    of two. Exact max_tokens would not do: SDG sizes each call's max_tokens from its source's length, and the first
    answer of a new kind has nothing to be compared with."""
    if not isinstance(max_tokens, int) or max_tokens <= 0:
        return model, None
    return model, 1 << (max_tokens - 1).bit_length()


def _quiet_on_interrupt(loop, context: dict) -> None:
    """A Ctrl-C lands inside whichever task runs at that moment; that task and the gathers above it then die with a
    KeyboardInterrupt / CancelledError nobody awaits, which asyncio reports as a traceback when they are collected,
    after the caller has printed its one "interrupted" line. Those are the interruption itself, not bugs: say
    nothing. Everything else goes to the default handler."""
    if isinstance(context.get("exception"), (KeyboardInterrupt, asyncio.CancelledError)):
        return
    if _INTERRUPTED.is_set() and str(context.get("message", "")).startswith("Task was destroyed but it is pending"):
        return  # a task the interrupted loop never got to finish, collected later
    loop.default_exception_handler(context)


_INTERRUPTED = threading.Event()  # set once a Ctrl-C ended a client's loop


def _int(value) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def client_from_config(cfg) -> LLMClient:
    """Build an LLMClient from an SdgConfig (endpoint, api_key, api_timeout, max_concurrency, rpm, max_requests,
    max_tokens, cache_dir)."""
    return LLMClient(cfg.endpoint, api_key=cfg.api_key, timeout=cfg.api_timeout, max_concurrency=cfg.max_concurrency,
                     rpm=cfg.rpm, max_requests=cfg.max_requests, max_tokens=cfg.max_tokens, cache_dir=cfg.cache_dir)
