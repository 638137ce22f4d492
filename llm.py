"""One async client for every LLM call (DESIGN.md, "LLM calls").

Built on the `openai` SDK (AsyncOpenAI, the SDK's own retries off: this module owns the policy):
- an adaptive concurrency limit (AIMD): additive growth while the limit is in use and calls succeed; on a 429 the
  limit is cut to what the server demonstrably holds (the calls still in flight); timeouts, connection errors and
  502/503/504 halve it (at most once per round trip; a plain 500 does not cut); never above `max_concurrency`,
  never below 1; optional `rpm` cap;
- retries with jittered exponential backoff on 429, 5xx, timeouts and connection errors; a 429's Retry-After
  (or retry-after-ms) is honoured as the minimum wait of that call; 400/404/422 and other 4xx are not retried (a
  failure with its reason); 401/403 raise `AuthError` ("the endpoint rejected the API key");
- a durable SQLite response cache (WAL, file mode 0600) keyed by sha256 of model + messages + generation
  parameters (not the endpoint URL, not the key), committed as each response arrives, so a crash never loses a
  paid call and a rerun never pays twice; identical calls in flight at the same time are sent once;
- accounting (calls, cache hits, HTTP requests, retries, failures by reason, tokens from `usage`) and budgets
  (`max_requests` HTTP requests, `max_tokens` prompt+completion tokens) that turn further calls into
  `Result(ok=False, reason="budget")` and set `client.budget_hit`.
The API key is never written, logged, cached or put in an exception message.

Sync use:   results = client.run_batch([ChatRequest(model, messages, {"seed": 1}), ...])
Async use:  async with client.session(): r = await client.chat(model, messages, seed=1)
            (or `client.run(coro_fn)` which opens the session, awaits coro_fn(), closes it)
"""
from __future__ import annotations

import asyncio
import collections
import email.utils
import hashlib
import json
import math
import os
import random
import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlparse


KEY_ENV_VARS = ("NVIDIA_API_KEY", "OPENAI_API_KEY")
NO_KEY = "no-key"  # sent to servers that need none (the SDK insists on some token)
AUTH_MESSAGE = "the endpoint rejected the API key"


class AuthError(RuntimeError):
    """401/403 from the endpoint: stop the run (main exits with a distinct code)."""

    def __init__(self, status: int | None = None):
        super().__init__(AUTH_MESSAGE)
        self.status = status


class BudgetExceeded(RuntimeError):
    """Raised by callers that prefer an exception to `Result(reason="budget")`."""


def resolve_api_key(api_key: str | None = None) -> str | None:
    """The key from the argument, else NVIDIA_API_KEY, else OPENAI_API_KEY (None when none is set)."""
    if api_key:
        return api_key
    for var in KEY_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


def is_local_url(url: str | None) -> bool:
    host = (urlparse(url or "").hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.startswith("127.")


def cache_key(model: str, messages: list[dict], params: dict | None = None) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params or {}},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class ChatRequest:
    model: str
    messages: list[dict]
    params: dict = field(default_factory=dict)


@dataclass
class Result:
    ok: bool
    data: dict | None = None       # the response JSON (as the server sent it)
    reason: str | None = None      # failure reason when not ok
    cached: bool = False
    key: str = ""

    @property
    def content(self) -> str:
        try:
            return (self.data["choices"][0]["message"].get("content") or "") if self.data else ""
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""


@dataclass
class Stats:
    calls: int = 0
    cache_hits: int = 0
    coalesced: int = 0
    requests: int = 0          # HTTP requests sent (first tries + retries)
    retries: int = 0
    completed: int = 0         # HTTP 200 answers stored
    rate_limited: int = 0      # 429 answers
    timeouts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: dict = field(default_factory=lambda: collections.Counter())
    http_status: dict = field(default_factory=lambda: collections.Counter())
    busy_seconds: float = 0.0  # wall time spent inside sessions

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("calls", "cache_hits", "coalesced", "requests", "retries", "completed",
                                           "rate_limited", "timeouts", "prompt_tokens", "completion_tokens")}
        d["total_tokens"] = self.prompt_tokens + self.completion_tokens
        d["failures"] = dict(sorted(self.failures.items()))
        d["http_status"] = {str(k): v for k, v in sorted(self.http_status.items())}
        d["busy_seconds"] = round(self.busy_seconds, 3)
        return d


class ResponseCache:
    """sqlite: key -> response JSON. WAL, 0600, one commit per response (survives kill -9)."""

    def __init__(self, cache_dir: str | os.PathLike, name: str = "llm_cache.sqlite"):
        d = Path(cache_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / name
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)  # exists with 0600 before sqlite touches it
        os.close(fd)
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed row survives a process crash
        self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, response TEXT, "
                        "prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)")
        for suffix in ("-wal", "-shm"):  # sqlite gives these the db's mode; make sure
            p = Path(str(self.path) + suffix)
            if p.exists():
                os.chmod(p, 0o600)

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT response FROM responses WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, response: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?)",
                            (key, model, response, prompt_tokens, completion_tokens, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.db.close()


class AdaptiveLimiter:
    """An AIMD concurrency limit; `limit` is live (read it for progress bars)."""

    def __init__(self, ceiling: int, floor: int = 1, initial: int | None = None):
        self.ceiling = max(1, int(ceiling))
        self.floor = max(1, min(int(floor), self.ceiling))
        self.limit = float(min(self.ceiling, initial or self.ceiling))
        self.inflight = 0
        self.last_cut = 0.0
        self.cuts = 0
        self.min_seen = self.limit
        self._waiters: collections.deque = collections.deque()

    @property
    def current(self) -> int:
        return max(self.floor, int(self.limit))

    def reset_waiters(self) -> None:
        self._waiters = collections.deque()

    async def acquire(self) -> float:
        if self.inflight < self.current and not self._waiters:
            self.inflight += 1
            return time.monotonic()
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise
        return time.monotonic()

    def release(self) -> None:
        self.inflight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.inflight < self.current:
            fut = self._waiters.popleft()
            if not fut.done():
                self.inflight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        # grow only when the limit is actually in use (otherwise there is no evidence it could be higher)
        if self.inflight >= self.current - 1 and self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
            self._wake()

    def on_rate_limited(self) -> None:
        """429: the server holds what is in flight now (this call already released)."""
        new = max(float(self.floor), min(self.limit - 1.0, float(self.inflight)))
        if new < self.limit:
            self.limit = new
            self.cuts += 1
            self.last_cut = time.monotonic()
            self.min_seen = min(self.min_seen, self.limit)

    def on_failure(self, started: float) -> None:
        """Timeout / connection error / 5xx: halve, once per round trip."""
        if started >= self.last_cut:
            self.limit = max(float(self.floor), self.limit / 2.0)
            self.cuts += 1
            self.last_cut = time.monotonic()
            self.min_seen = min(self.min_seen, self.limit)


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        ra = headers.get("retry-after")
        if ra is None:
            return None
        try:
            return max(0.0, float(ra))
        except ValueError:
            dt = email.utils.parsedate_to_datetime(ra)
            return max(0.0, dt.timestamp() - time.time())
    except Exception:
        return None


class LLMClient:
    """Every LLM call of a run goes through one of these."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 max_concurrency: int = 64, min_concurrency: int = 1, rpm: float | None = None,
                 max_retries: int = 8, backoff_base: float = 0.5, backoff_max: float = 30.0,
                 max_requests: int | None = None, max_tokens: int | None = None,
                 cache_dir: str | os.PathLike | None = "data/cache"):
        self.base_url = base_url
        self._key = resolve_api_key(api_key)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.rpm = rpm
        self.limiter = AdaptiveLimiter(max_concurrency, floor=min_concurrency)
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.stats = Stats()
        self.budget_hit: str | None = None   # "max_requests" / "max_tokens" once a budget stopped a call
        self._sdk: openai.AsyncOpenAI | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._next_slot = 0.0
        self._sent_reserved = 0

    # ---- public helpers ---------------------------------------------------------------------------------------
    @property
    def has_key(self) -> bool:
        return bool(self._key)

    @property
    def concurrency(self) -> int:
        """The live concurrency limit."""
        return self.limiter.current

    def __repr__(self) -> str:  # never the key
        return f"LLMClient(base_url={self.base_url!r}, concurrency={self.concurrency})"

    def scrub(self, text: Any) -> str:
        s = str(text)
        if self._key and len(self._key) >= 4:
            s = s.replace(self._key, "[redacted]")
        return s

    def report(self) -> dict:
        d = self.stats.as_dict()
        d["concurrency"] = {"ceiling": self.limiter.ceiling, "final": self.limiter.current,
                            "min": max(self.limiter.floor, int(self.limiter.min_seen)), "cuts": self.limiter.cuts}
        d["budget_hit"] = self.budget_hit
        return d

    # ---- sessions ---------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def session(self):
        """Open the SDK client on the running loop; nested use is a no-op."""
        if self._sdk is not None:
            yield self
            return
        import openai  # imported here: `python main.py --help` should not pay for the SDK

        self._sdk = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._key or NO_KEY, max_retries=0,
                                       timeout=openai.Timeout(self.timeout, connect=min(self.timeout, 10.0)))
        self.limiter.reset_waiters()
        self._pending = {}
        t0 = time.monotonic()
        try:
            yield self
        finally:
            self.stats.busy_seconds += time.monotonic() - t0
            sdk, self._sdk = self._sdk, None
            try:
                await sdk.close()
            except Exception:
                pass

    def run(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        """asyncio.run(coro_fn()) inside a session (for sync callers)."""
        async def main():
            async with self.session():
                return await coro_fn()
        return asyncio.run(main())

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
        """One chat completion: from the cache, or the endpoint (with retries). Raises AuthError on 401/403."""
        if self._sdk is None:
            async with self.session():
                return await self.chat(model, messages, **params)
        self.stats.calls += 1
        key = cache_key(model, messages, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return Result(ok=True, data=json.loads(hit), cached=True, key=key)
        pending = self._pending.get(key)
        if pending is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            res = await self._fetch(key, model, messages, params)
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

    async def _fetch(self, key: str, model: str, messages: list[dict], params: dict) -> Result:
        import openai

        attempt = 0
        while True:
            await self._rpm_wait()
            started = await self.limiter.acquire()
            reason = self._budget_reason()  # checked holding a slot, just before sending: no overshoot
            if reason:
                self.limiter.release()
                self.budget_hit = reason
                return self._fail(key, "budget")
            released = False
            self.stats.requests += 1
            retry_kind, min_wait = None, 0.0
            try:
                raw = await self._sdk.chat.completions.with_raw_response.create(
                    model=model, messages=messages, extra_body=params or None)
                status = raw.status_code
                text = raw.text
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                self.stats.http_status[e.status_code] += 1
                raise AuthError(e.status_code) from None
            except openai.RateLimitError as e:
                self.stats.http_status[429] += 1
                self.stats.rate_limited += 1
                self.limiter.release()
                released = True
                self.limiter.on_rate_limited()
                retry_kind = "http 429"
                min_wait = _retry_after(e.response.headers) or 0.0
            except openai.APITimeoutError:
                self.stats.timeouts += 1
                self.limiter.on_failure(started)
                retry_kind = "timeout"
            except openai.APIConnectionError:
                self.limiter.on_failure(started)
                retry_kind = "connection error"
            except openai.APIStatusError as e:
                code = e.status_code
                self.stats.http_status[code] += 1
                if code >= 500 or code in (408, 409):
                    if code != 500:       # 502/503/504/529/408: overload signals; a plain 500 is a bug, not load
                        self.limiter.on_failure(started)
                    retry_kind = f"http {code}"
                    min_wait = _retry_after(e.response.headers) or 0.0
                else:
                    return self._fail(key, f"http {code}")
            else:
                self.stats.http_status[status] += 1
                try:
                    data = json.loads(text)
                    if not isinstance(data, dict):
                        raise ValueError("not an object")
                except ValueError:
                    retry_kind = "invalid response"
                else:
                    if self._key and self._key in text:   # never store the key, even if a server echoes it
                        text = self.scrub(text)
                        data = json.loads(text)
                    usage = data.get("usage") or {}
                    pt = int(usage.get("prompt_tokens") or 0)
                    ct = int(usage.get("completion_tokens") or 0)
                    self.stats.prompt_tokens += pt
                    self.stats.completion_tokens += ct
                    self.stats.completed += 1
                    if self.cache is not None:
                        self.cache.put(key, model, text, pt, ct)   # committed now: a crash loses nothing paid
                    self.limiter.on_success()
                    return Result(ok=True, data=data, key=key)
            finally:
                if not released:
                    self.limiter.release()
            # retryable
            if attempt >= self.max_retries:
                return self._fail(key, f"{retry_kind} (gave up after {attempt + 1} tries)")
            delay = max(min_wait + random.uniform(0, 0.1 + 0.1 * min_wait), self._backoff(attempt)
                        if not min_wait else 0.0)
            attempt += 1
            self.stats.retries += 1
            await asyncio.sleep(delay)


def client_from_config(cfg) -> LLMClient:
    """Build an LLMClient from any object with the SDG config attribute names."""
    return LLMClient(cfg.endpoint, api_key=getattr(cfg, "api_key", None), timeout=getattr(cfg, "api_timeout", 120.0),
                     max_concurrency=getattr(cfg, "max_concurrency", 64), rpm=getattr(cfg, "rpm", None),
                     max_requests=getattr(cfg, "max_requests", None), max_tokens=getattr(cfg, "max_tokens", None),
                     cache_dir=getattr(cfg, "cache_dir", "data/cache"))
