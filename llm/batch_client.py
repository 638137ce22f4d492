"""BatchLLMClient: the same `chat()` coroutine as LLMClient, answered through the Batch API instead of online calls.

A cache hit is served at once, as online. A miss is queued; when every coroutine of the event loop is waiting (on
the queue), the queued requests go out as one wave (one or more batch files: llm/batch_runner.py), and when the wave
is collected the waiting `chat()` calls get their Results. So the caller's code is the code of an online run, and a
round takes as many waves as its call chain is deep (generation, re-asks, scoring). A wave's requests are sorted by
cache key, so a rerun builds the same batch files; the batch records in the cache dir are what let a rerun find
them (see batch_runner).

Ctrl-C while a wave waits leaves its batches running at the provider and raises `BatchInterrupted` (a
KeyboardInterrupt) whose `resume_hint` says how to pick them up (`--batch` again) or cancel them (`--batch-cancel`).
"""
from __future__ import annotations

import asyncio
import os
from typing import Any, Awaitable, Callable

from .batch_api import BatchAPI, TERMINAL
from .batch_runner import BatchLimits, BatchStore, WaveRunner
from .client import LLMClient
from .errors import EndpointError
from .results import Result

IDLE_CHECKS_WITHOUT_READY_QUEUE = 200   # event loops that do not expose their ready queue: this many quiet passes
MAX_IDLE_PASSES = 1_000_000            # a coroutine that never stops yielding cannot hold a wave back forever


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C while batches were in flight: they keep running at the provider; `resume_hint` says what to do."""

    def __init__(self, batch_ids: list[str]):
        super().__init__()
        self.batch_ids = list(batch_ids)
        self.resume_hint = (f"{len(batch_ids)} batch(es) keep running at the provider ({', '.join(batch_ids[:5])}"
                            + (", ..." if len(batch_ids) > 5 else "") + "): run the same command again to pick "
                            "them up (nothing is paid twice), or add --batch-cancel to cancel them")


class BatchLLMClient(LLMClient):
    """LLMClient whose cache misses go out as Batch API waves (see the module docstring). `limits`: requests and
    bytes per batch file, poll interval. Batch lines count as `stats.requests` (the --max-requests budget)."""

    batched = True

    def __init__(self, base_url: str, *, limits: BatchLimits = BatchLimits(), progress: bool = True, **kwargs):
        super().__init__(base_url, **kwargs)
        if self.cache is None:
            raise ValueError("--batch needs the response cache (its folder also records the batches in flight)")
        self.limits = limits
        self._queue: dict[str, tuple[str, bytes, asyncio.Future]] = {}
        self._flusher: asyncio.Task | None = None
        self.runner = WaveRunner(self._api, BatchStore(self.cache.path.parent, base_url), limits,
                                 self._accept_batch_answer, self._fail, progress)

    def _api(self) -> BatchAPI:
        return BatchAPI(self.base_url, self._headers(), timeout=self.timeout, retries=self.max_retries,
                        backoff_base=self.backoff_base, backoff_max=self.backoff_max, scrub=self.scrub)

    @property
    def label(self) -> str:
        return self.runner.label

    @label.setter
    def label(self, value: str) -> None:
        """What the next waves belong to (e.g. "round 3"): batch metadata and the report."""
        self.runner.label = value

    # ---- the queue ------------------------------------------------------------------------------------------------
    async def _fetch(self, key: str, model: str, body: bytes, cost_class=None) -> Result:
        """A cache miss (not in flight already): queued for the next wave instead of sent."""
        if self.fatal is not None:
            raise self.fatal.again() from None
        reason = self._budget_reason()
        if reason is None and self.max_requests is not None and \
                self.stats.requests + len(self._queue) >= self.max_requests:
            reason = "max_requests"
        if reason is not None:
            self.budget_hit = reason
            return self._fail(key, "budget")
        fut = asyncio.get_running_loop().create_future()
        self._queue[key] = (model, body, fut)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await fut

    async def _flush(self) -> None:
        """Ship a wave whenever every other coroutine waits, until nothing is queued."""
        while self._queue:
            await _until_idle(lambda: len(self._queue))
            wave, self._queue = self._queue, {}
            live = {k: v for k, v in wave.items() if not v[2].done()}   # a cancelled caller needs no answer
            if not live:
                continue
            self.stats.requests += len(live)
            try:
                results = await self.runner.run_wave({k: (m, b) for k, (m, b, _) in live.items()})
            except asyncio.CancelledError:
                raise
            except BaseException as exc:    # every waiting call gets it: none may wait forever
                if isinstance(exc, EndpointError):
                    self._stop(exc)
                for _, _, fut in live.values():
                    if not fut.done():
                        fut.set_exception(exc.again() if isinstance(exc, EndpointError) else exc)
                if not isinstance(exc, Exception):
                    raise                   # KeyboardInterrupt: the run ends (BatchInterrupted, see run)
                continue
            for key, (_, _, fut) in live.items():
                if not fut.done():
                    fut.set_result(results[key])

    def _accept_batch_answer(self, key: str, model: str, body: bytes) -> Result | None:
        """A batch line's 2xx answer, stored and counted exactly as an online answer (LLMClient._accept)."""
        res, _, _ = self._accept(key, model, body)
        return res

    # ---- the run --------------------------------------------------------------------------------------------------
    def run(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        """As LLMClient.run; a Ctrl-C while batches are in flight raises BatchInterrupted naming them."""
        self._queue, self._flusher = {}, None     # each run is a new event loop: nothing carries over
        try:
            return super().run(coro_fn)
        except KeyboardInterrupt:
            if self.runner.waiting:
                raise BatchInterrupted(self.runner.waiting) from None
            raise

    def report(self) -> dict:
        d = super().report()
        d["mode"] = "batch"     # requests: batch lines; the batches themselves: batch_report()
        return d

    def batch_report(self) -> dict:
        """Batch ids, times and counts of every batch this client waited for, and its waves."""
        runner = self.runner
        return {"limits": {"max_requests": self.limits.max_requests, "max_bytes": self.limits.max_bytes,
                           "poll_seconds": self.limits.poll_seconds},
                "waves": list(runner.waves), "batches": list(runner.batches),
                "requests": sum(b["requests"] for b in runner.batches),
                "answered": sum(b["answered"] for b in runner.batches),
                "failed": sum(b["failed"] for b in runner.batches)}

    # ---- --batch-cancel -------------------------------------------------------------------------------------------
    async def cancel_recorded(self) -> list[dict]:
        """Cancel every batch recorded in flight for this endpoint, wait until each has stopped, and keep what
        completed (answers into the cache). Returns one {id, status, answered, failed} per batch."""
        store, out = self.runner.store, []
        records = [r for r in store.open_parts() if r.get("batch_id")]
        api = self._api()
        try:
            for rec in records:
                batch = await api.retrieve(rec["batch_id"])
                if batch.get("status") not in TERMINAL:
                    await api.cancel(rec["batch_id"])
        finally:
            await api.aclose()
        if records:
            self.runner.label = "cancel"
            api = self._api()
            try:
                batches = await self.runner._wait(api, records, 0)
                for rec, batch in zip(records, batches):
                    await self.runner._collect(api, rec, batch, {}, {})
            finally:
                self.runner.waiting = []
                await api.aclose()
        for entry in self.runner.batches:
            out.append({k: entry[k] for k in ("id", "status", "answered", "failed")})
        for rec in store.open_parts():     # uploaded, never created: nothing runs; forget them
            if not rec.get("batch_id"):
                store.forget(rec)
        return out


async def _until_idle(queued: Callable[[], int]) -> None:
    """Return once no other callback of the running loop is ready: every coroutine of the round waits, on the queue
    (or on something slower). Where the loop hides its ready queue, after many passes that queued nothing new."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    quiet, last = 0, -1
    for _ in range(MAX_IDLE_PASSES):
        await asyncio.sleep(0)
        if ready is not None:
            if not ready:
                return
            continue
        quiet = quiet + 1 if queued() == last else 0
        last = queued()
        if quiet >= IDLE_CHECKS_WITHOUT_READY_QUEUE:
            return


async def probe_batch_api(client: LLMClient) -> None:
    """The preflight's check that the client's endpoint has the files + batches API (GET /batches?limit=1):
    BatchUnsupported (404/405), AuthError (401/403) or EndpointError, raised before any work."""
    api = BatchAPI(client.base_url, client._headers(), timeout=min(client.timeout, 30.0),
                   retries=min(client.max_retries, 1), scrub=client.scrub)
    try:
        await api.probe()
    finally:
        await api.aclose()


def batch_client_from_config(cfg) -> BatchLLMClient:
    """A BatchLLMClient from an SdgConfig (as client_from_config, plus the batch limits)."""
    limits = BatchLimits(max_requests=cfg.batch_max_requests, max_bytes=cfg.batch_max_bytes,
                         poll_seconds=cfg.batch_poll)
    return BatchLLMClient(cfg.endpoint, limits=limits, progress=cfg.progress, api_key=cfg.api_key,
                          timeout=cfg.api_timeout, max_concurrency=cfg.max_concurrency, rpm=cfg.rpm,
                          max_requests=cfg.max_requests, max_tokens=cfg.max_tokens, cache_dir=cfg.cache_dir,
                          environ=os.environ)

