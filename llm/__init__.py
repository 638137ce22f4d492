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
- An adaptive concurrency limit: a slow start (one call, +1 per success while latency does not grow) then additive
  growth while the limit is in use and calls succeed; a call whose latency says it waited in the server's queue
  (2x the unqueued latency of its kind, by 0.5 s or more; the median of three) cuts the limit to what the server
  serves at once, so a one-slot server never holds calls that time out queued; on a 429 the limit is cut to what
  the server demonstrably holds (the calls still in flight); timeouts, connection errors and 502/503/504 halve it
  (at most once per round trip; a plain 500 does not cut); never above `max_concurrency`, never below 1; optional
  `rpm` cap.
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

Batch mode (`--batch`): `BatchLLMClient` has the same `chat()`; its cache misses go out as OpenAI Batch API waves
(batch_client: the queue; batch_runner: batch files within the provider's limits, the durable records of batches in
flight, polling, collecting into the same cache; batch_api: the files + batches HTTP calls).

Modules: errors, keys (keys by host), cache, results, limiter, transport + raw_http + httpx_http, client, batch_api,
batch_runner, batch_client.
"""
from .batch_api import BatchAPI, BatchUnsupported
from .batch_client import BatchInterrupted, BatchLLMClient, batch_client_from_config, probe_batch_api
from .batch_runner import BatchLimits
from .cache import ResponseCache, cache_key
from .client import DEFAULT_MAX_CONCURRENCY, LLMClient, client_from_config
from .errors import AuthError, EndpointError, EndpointFailing, EndpointUnreachable, ModelNotFound
from .keys import (KEY_ENV_VARS, check_endpoint, is_local_url, is_nvidia_host, key_variable, resolve_api_key,
                   usable_api_key)
from .limiter import PROBE_SLOWDOWN, AdaptiveLimiter
from .results import ChatRequest, Result, Stats

__all__ = ["AdaptiveLimiter", "AuthError", "BatchAPI", "BatchInterrupted", "BatchLLMClient", "BatchLimits",
           "BatchUnsupported", "batch_client_from_config", "probe_batch_api", "ChatRequest", "DEFAULT_MAX_CONCURRENCY", "EndpointError",
           "EndpointFailing", "EndpointUnreachable", "KEY_ENV_VARS", "LLMClient", "ModelNotFound", "PROBE_SLOWDOWN",
           "ResponseCache", "Result", "Stats", "cache_key", "check_endpoint", "client_from_config", "is_local_url",
           "is_nvidia_host", "key_variable", "resolve_api_key", "usable_api_key"]
