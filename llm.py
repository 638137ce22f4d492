"""One async client for every LLM call of a run (OpenAI-compatible `/chat/completions`).

- Keys by host: `--api-key` goes to the endpoint named; NVIDIA_API_KEY only to NVIDIA hosts (nvidia.com and its
  subdomains); OPENAI_API_KEY only to other hosts, local ones included (the openai SDK's convention for any
  base_url). Redirects are never followed, so the key never leaves the host named. The key is never written,
  logged, cached or put in an exception message; the report names its source, never the key.
- Transport: plain `http://` endpoints (local vLLM, llama.cpp, test servers) get a small HTTP/1.1 keep-alive client
  on asyncio streams; `https://` and proxied endpoints get httpx2 (TLS, proxies). Why two: against a fast local
  server the client's own CPU per request is what caps throughput, and the SDK / httpx2 layers cost an order of
  magnitude more CPU per request than the raw exchange (bench/sdg_bench.py); over TLS to a remote API the network
  sets the pace and a mature stack is worth its cost.
- An adaptive concurrency limit (AIMD): additive growth while the limit is in use and calls succeed; on a 429 the
  limit is cut to what the server demonstrably holds (the calls still in flight); timeouts, connection errors and
  502/503/504 halve it (at most once per round trip; a plain 500 does not cut); never above `max_concurrency`,
  never below 1; optional `rpm` cap.
- Retries with jittered exponential backoff on 429, 5xx, 408/409, timeouts and connection errors; a 429's
  Retry-After (or retry-after-ms) is the minimum wait of that call. 400/422 and other 4xx are not retried.
- Errors, raised or returned (the caller stops SDG on a raised `EndpointError`, keeps going on a failed Result):
  raised: `AuthError` (401/403), `ModelNotFound` (404), `EndpointUnreachable` (no connection after
  `connect_retries` retries: refused, name not resolved, connect timeout), `EndpointFailing` (`give_up_limit`
  calls in a row gave up after their retries: a 5xx / timeout / 429 storm), `EndpointError` (a redirect);
  returned as `Result(ok=False, reason=...)`: one call that gave up ("http 503 (gave up after 9 tries)"), other
  4xx ("http 400"), "budget". Once one is raised the client stays stopped: every later call that needs the
  network raises the same kind at once (cached answers are still served).
- A durable SQLite response cache (WAL, file mode 0600) keyed by sha256 of model + messages + generation
  parameters (not the endpoint URL, not the key), committed as each response arrives, so a crash never loses a
  paid call and a rerun never pays twice; identical calls in flight at the same time are sent once.
- Accounting (calls, cache hits, HTTP requests, retries, failures by reason, tokens from `usage`) and budgets
  (`max_requests` HTTP requests, `max_tokens` prompt+completion tokens) that turn further calls into
  `Result(ok=False, reason="budget")` and set `client.budget_hit`.

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
import socket
import sqlite3
import threading
import time
import urllib.request
import zlib
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import orjson

DEFAULT_MAX_CONCURRENCY = 32   # the one default of the concurrency ceiling (SdgConfig.max_concurrency uses it)
KEY_ENV_VARS = ("NVIDIA_API_KEY", "OPENAI_API_KEY")
AUTH_MESSAGE = "the endpoint rejected the API key"
TRANSPORTS = ("auto", "raw", "httpx")
USER_AGENT = "lawqa-curate"
PROBE_SLOWDOWN = 8   # growth above the last 429's level is this many times slower than below it


# ---- errors -----------------------------------------------------------------------------------------------------
class EndpointError(RuntimeError):
    """The endpoint as a whole failed: every later call would fail the same way, so stop SDG (one-line message).
    `kind` names the failure for reports."""

    kind = "endpoint"

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    def again(self) -> "EndpointError":
        """A fresh copy (for the later calls of a stopped client)."""
        return type(self)(str(self), self.status)


class AuthError(EndpointError):
    """401/403: the endpoint rejected the API key."""

    kind = "auth"


class ModelNotFound(EndpointError):
    """404 from /chat/completions: no such model there, or the URL is not an OpenAI-compatible /v1 base."""

    kind = "model_not_found"


class EndpointUnreachable(EndpointError):
    """No connection after the connect retries: refused, host name not resolved, connect timeout."""

    kind = "unreachable"


class EndpointFailing(EndpointError):
    """Several calls in a row gave up after all their retries (a 5xx / timeout / 429 storm)."""

    kind = "failing"


# ---- keys by host -------------------------------------------------------------------------------------------------
def _host(url: str | None) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def is_nvidia_host(url: str | None) -> bool:
    """True for nvidia.com and its subdomains only (not evilnvidia.com, not nvidia.com.evil.org)."""
    host = _host(url)
    return host == "nvidia.com" or host.endswith(".nvidia.com")


def is_local_url(url: str | None) -> bool:
    host = _host(url)
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.startswith("127.")


def key_variable(endpoint: str | None) -> str:
    """The environment variable whose key may go to `endpoint`: NVIDIA_API_KEY for NVIDIA hosts, else
    OPENAI_API_KEY."""
    return "NVIDIA_API_KEY" if is_nvidia_host(endpoint) else "OPENAI_API_KEY"


def resolve_api_key(endpoint: str | None, flag_key: str | None,
                    environ: Mapping[str, str] = os.environ) -> tuple[str | None, str | None]:
    """(key, source) for `endpoint`: the flag's key for the endpoint named; else NVIDIA_API_KEY for an NVIDIA host;
    else OPENAI_API_KEY for any other host (local ones too, as the openai SDK does); never a key meant for another
    kind of host. Source is "--api-key", "NVIDIA_API_KEY", "OPENAI_API_KEY" or None (no key)."""
    if flag_key:
        return flag_key, "--api-key"
    var = key_variable(endpoint)
    value = environ.get(var)
    return (value, var) if value else (None, None)


def usable_api_key(key: str | None, source: str | None) -> str | None:
    """The key without surrounding whitespace (a key pasted with its newline), or ValueError("SOURCE: why") when it
    holds characters a header line cannot carry (it goes into one as it is). The message never holds the key."""
    if key is None:
        return None
    key = key.strip()
    if not all(33 <= ord(c) < 127 for c in key):
        raise ValueError(f"{source}: the API key holds characters an HTTP header cannot carry "
                         "(spaces, line breaks or non-ASCII)")
    return key


def check_endpoint(url: str) -> None:
    """Raise ValueError("--synth-gen-endpoint: why") unless `url` is an http(s) URL with a host and no user info
    (user info would let two URL parsers disagree on the host the key goes to)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"--synth-gen-endpoint: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("--synth-gen-endpoint: must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("--synth-gen-endpoint: no host name")
    if "@" in parts.netloc:
        raise ValueError("--synth-gen-endpoint: user info in the URL is not supported; pass the key with --api-key")
    if any(c.isspace() or c == "\\" for c in url):
        raise ValueError("--synth-gen-endpoint: spaces and backslashes are not allowed")
    if not url.isascii() or not url.isprintable():
        raise ValueError("--synth-gen-endpoint: ASCII only (percent-encode the path, punycode the host)")


def cache_key(model: str, messages: list[dict], params: dict | None = None) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params or {}},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---- results and accounting ----------------------------------------------------------------------------------------
@dataclass
class ChatRequest:
    model: str
    messages: list[dict]
    params: dict = field(default_factory=dict)


@dataclass
class Result:
    ok: bool
    data: dict | None = None       # the response JSON (as the server sent it; cached answers too)
    reason: str | None = None      # failure reason when not ok
    cached: bool = False
    key: str = ""

    def _choice(self) -> dict:
        try:
            choice = self.data["choices"][0] if self.data else {}
        except (KeyError, IndexError, TypeError):
            return {}
        return choice if isinstance(choice, dict) else {}

    @property
    def content(self) -> str:
        message = self._choice().get("message")
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else ""

    @property
    def finish_reason(self) -> str | None:
        """"stop", "length" (cut off at max_tokens), ... as the server said; None when it said nothing."""
        reason = self._choice().get("finish_reason")
        return reason if isinstance(reason, str) else None


@dataclass
class Stats:
    calls: int = 0
    cache_hits: int = 0
    coalesced: int = 0
    requests: int = 0          # HTTP requests sent (first tries + retries)
    retries: int = 0
    resends: int = 0           # sent again at once: a kept-alive connection the server had closed (in requests)
    completed: int = 0         # HTTP 200 answers stored
    rate_limited: int = 0      # 429 answers
    timeouts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: dict = field(default_factory=lambda: collections.Counter())
    http_status: dict = field(default_factory=lambda: collections.Counter())
    busy_seconds: float = 0.0  # wall time spent inside sessions

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("calls", "cache_hits", "coalesced", "requests", "retries", "resends",
                                           "completed", "rate_limited", "timeouts", "prompt_tokens",
                                           "completion_tokens")}
        d["total_tokens"] = self.prompt_tokens + self.completion_tokens
        d["failures"] = dict(sorted(self.failures.items()))
        d["http_status"] = {str(k): v for k, v in sorted(self.http_status.items())}
        d["busy_seconds"] = round(self.busy_seconds, 3)
        return d


class ResponseCache:
    """sqlite: key -> response JSON (the whole body: content, finish_reason, usage). WAL, 0600, one commit per
    response (survives kill -9)."""

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
        self.rate_limited_at = math.inf   # the limit at the last 429
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
        # grow only when the limit is actually in use (otherwise there is no evidence it could be higher); at or
        # above the level where the server last said 429, probe PROBE_SLOWDOWN times slower: every probe past
        # the server's capacity costs a call a Retry-After wait
        if self.inflight >= self.current - 1 and self.limit < self.ceiling:
            step = 1.0 / self.limit if self.limit < self.rate_limited_at else 1.0 / (PROBE_SLOWDOWN * self.limit)
            self.limit = min(float(self.ceiling), self.limit + step)
            self._wake()

    def on_rate_limited(self) -> None:
        """429: the server holds what is in flight now (this call already released)."""
        self.rate_limited_at = self.limit
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


def _retry_after(headers: Mapping[str, str]) -> float | None:
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


# ---- transports: post(body) -> _Response, or raise one of the three _Transport* errors ----------------------------
@dataclass
class _Response:
    status: int
    headers: dict          # lower-case names
    body: bytes


class _ConnectFailed(Exception):
    """No connection (refused, name not resolved, connect timeout): the request never left."""


class _Timeout(Exception):
    """Connected, but no complete answer in time."""


class _Broken(Exception):
    """The connection broke or the answer was not HTTP we can read."""


class _Stale(Exception):
    """A kept-alive connection was closed by the server before any byte of the answer."""


def _connect_reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "connect timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    return type(exc).__name__


def _innermost(exc: BaseException) -> BaseException:
    """The first cause of a wrapped exception (httpx2 wraps the socket's error twice)."""
    for _ in range(10):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


class _RawHTTP:
    """HTTP/1.1 keep-alive POSTs to one plain-http host over asyncio streams; never follows redirects."""

    def __init__(self, url: str, timeout: float, connect_timeout: float, connect_to: tuple[str, int] | None,
                 on_resend: Callable[[], None]):
        parts = urlsplit(url)
        port = parts.port or 80
        self.addr = connect_to or (parts.hostname, port)
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        self.host_header = host if port == 80 else f"{host}:{port}"
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.on_resend = on_resend   # a request sent again after a kept-alive connection turned out closed

    def head(self, path: str, headers: Mapping[str, str]) -> bytes:
        """The request head up to (not including) the Content-Length value: built once per client."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host_header}"] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def post(self, head: bytes, body: bytes) -> _Response:
        data = head + str(len(body)).encode() + b"\r\n\r\n" + body
        conn = self._take_idle()
        if conn is not None:
            try:
                return await self._exchange(conn, data)
            except _Stale:
                self.on_resend()  # the server closed it as we reused it (keep-alive race): once more, fresh
        try:
            return await self._exchange(await self._connect(), data)
        except _Stale:
            raise _Broken("connection closed before any answer") from None

    def _take_idle(self):
        while self._idle:
            reader, writer = self._idle.pop()   # the most recently used: the least likely to have timed out
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def _connect(self):
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await asyncio.open_connection(*self.addr)
        except (OSError, TimeoutError) as exc:
            raise _ConnectFailed(_connect_reason(exc)) from None

    async def _exchange(self, conn, data: bytes) -> _Response:
        reader, writer = conn
        got_head = False
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(data)
                await writer.drain()
                status, headers, version = await self._read_head(reader)
                got_head = True
                body, reusable = await self._read_body(reader, status, headers, version)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
            if got_head or partial:   # a truncated answer: never resent silently (it may have been paid)
                raise _Broken("connection closed mid-answer") from None
            raise _Stale() from None
        except TimeoutError:
            writer.close()
            raise _Timeout() from None
        except (asyncio.LimitOverrunError, ValueError, UnicodeDecodeError, zlib.error) as exc:
            writer.close()
            raise _Broken(f"unreadable answer ({type(exc).__name__})") from None
        except BaseException:
            writer.close()
            raise
        if reusable:
            self._idle.append(conn)
        else:
            writer.close()
        return _Response(status, headers, body)

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict, str]:
        while True:
            raw = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = raw[:-4].decode("latin-1").split("\r\n")
            version, code = status_line.split(" ", 2)[:2]
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if not version.startswith("HTTP/") or len(code) != 3:
                raise ValueError("not an HTTP status line")
            if code[0] != "1":    # 1xx (100 Continue) precede the real answer
                return int(code), headers, version

    @staticmethod
    async def _read_body(reader, status: int, headers: dict, version: str) -> tuple[bytes, bool]:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304):
            body = b""
        else:
            return _decode(await reader.read(), headers), False   # delimited by the close
        connection = headers.get("connection", "").lower()
        reusable = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
        return _decode(body, headers), reusable

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":   # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _decode(body: bytes, headers: dict) -> bytes:
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "deflate"):
        return zlib.decompress(body, 47)   # 47: zlib or gzip header, detected
    raise ValueError(f"content-encoding {encoding}")


class _Httpx:
    """httpx2 for https and proxied endpoints: TLS, proxies from the environment, no redirects followed."""

    def __init__(self, url: str, timeout: float, connect_timeout: float, max_connections: int):
        import httpx2

        self.httpx = httpx2
        self.url = url
        self.client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(timeout, connect=connect_timeout), follow_redirects=False, trust_env=True,
            limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections))

    def head(self, path: str, headers: Mapping[str, str]) -> dict:
        return dict(headers)

    async def post(self, head: dict, body: bytes) -> _Response:
        x = self.httpx
        try:
            r = await self.client.post(self.url, content=body, headers=head)
        except x.ConnectTimeout:
            raise _ConnectFailed("connect timeout") from None
        except x.ConnectError as exc:
            raise _ConnectFailed(_connect_reason(_innermost(exc))) from None
        except x.TimeoutException:
            raise _Timeout() from None
        except (x.TransportError, x.DecodingError) as exc:
            raise _Broken(type(exc).__name__) from None
        return _Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    async def aclose(self) -> None:
        await self.client.aclose()


def _uses_proxy(url: str) -> bool:
    proxies = urllib.request.getproxies_environment()
    scheme = urlsplit(url).scheme
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(_host(url), proxies)


# ---- the client -----------------------------------------------------------------------------------------------------
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
        self.limiter = AdaptiveLimiter(max_concurrency, floor=min_concurrency)
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.stats = Stats()
        self.budget_hit: str | None = None     # "max_requests" / "max_tokens" once a budget stopped a call
        self.fatal: EndpointError | None = None  # set once the endpoint as a whole failed; later calls raise it
        self._conn: _RawHTTP | _Httpx | None = None
        self._head: Any = None
        self._pending: dict[str, asyncio.Future] = {}
        self._next_slot = 0.0
        self._give_ups_in_a_row = 0

    def _pick_transport(self, transport: str, connect_to) -> str:
        scheme = urlsplit(self.base_url).scheme
        if transport == "auto":
            transport = "raw" if scheme == "http" and not _uses_proxy(self.base_url) else "httpx"
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
                            "min": max(self.limiter.floor, int(self.limiter.min_seen)), "cuts": self.limiter.cuts}
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
            self._conn = _RawHTTP(self.base_url, self.timeout, connect_timeout, self._connect_to, self._count_resend)
        else:
            url = f"{parts.scheme}://{parts.netloc}{path}"
            self._conn = _Httpx(url, self.timeout, connect_timeout, self.limiter.ceiling)
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
            res = await self._fetch(key, model, body)
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

    async def _fetch(self, key: str, model: str, body: bytes) -> Result:
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
            result, why, min_wait = await self._attempt(key, model, body, started)
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

    async def _attempt(self, key: str, model: str, body: bytes, started: float
                       ) -> tuple[Result | None, str | None, float]:
        """One HTTP request holding one limiter slot (released here): (result, None, 0) when final, or
        (None, why, minimum wait) when worth retrying."""
        released = False
        try:
            try:
                resp = await self._conn.post(self._head, body)
            except _ConnectFailed as exc:
                self.limiter.on_failure(started)
                return None, f"connection error: {exc}", 0.0
            except _Timeout:
                self.stats.timeouts += 1
                self.limiter.on_failure(started)
                return None, "timeout", 0.0
            except _Broken as exc:
                self.limiter.on_failure(started)
                return None, f"broken answer: {exc}", 0.0
            status = resp.status
            self.stats.http_status[status] += 1
            if 200 <= status < 300:
                return self._accept(key, model, resp.body)
            if status == 429:
                self.stats.rate_limited += 1
                self.limiter.release()
                released = True
                self.limiter.on_rate_limited()
                return None, "http 429", _retry_after(resp.headers) or 0.0
            if status >= 500 or status in (408, 409):
                if status != 500:       # 502/503/504/529/408: overload signals; a plain 500 is a bug, not load
                    self.limiter.on_failure(started)
                return None, f"http {status}", _retry_after(resp.headers) or 0.0
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

    def _accept(self, key: str, model: str, body: bytes) -> tuple[Result | None, str | None, float]:
        """A 2xx answer: stored (committed at once: a crash loses nothing paid) and returned, or retried if it is
        not a JSON object."""
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
        self.limiter.on_success()
        self._give_ups_in_a_row = 0
        return Result(ok=True, data=data, key=key), None, 0.0


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
