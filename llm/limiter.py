"""The adaptive concurrency limit shared by every call of a client: AIMD on 429s and errors, and a latency signal
that learns how many calls a server really serves at once.

Why latency: a server that answers one call at a time (a llama.cpp server with one slot) never says 429; it queues
what it cannot serve, and a call that waits behind fifteen others times out and is paid again. So the limit starts
low and grows only while latency does not grow with it (slow start: +1 per success, doubling per round trip, until
the first sign of a limit: a 429, an error, or one call that queued), and a call whose latency is QUEUE_RATIO times the unqueued latency of its kind, by at
least `min_queue_seconds`, says the server queued it: the limit is cut to what the server serves (calls in flight /
that ratio) and grows past that level QUEUE_PROBE_SLOWDOWN times slower. The unqueued latency of a kind of call
(`cost_class`: the model and max_tokens within a power of two, see llm.client.cost_class) is the least seen, both
per call and per completion token (plus a fixed overhead): a call is judged by the smaller of the two ratios, so
neither a long answer on a decode-bound server nor a short one on a fixed-latency server reads as queueing; the first
answer of a kind grows the limit only if it was alone in flight. The median of the last three calls decides a cut (one slow
call is no queue); any call at or above GROW_RATIO stops growth.
"""
from __future__ import annotations

import asyncio
import collections
import math
import statistics
import time

PROBE_SLOWDOWN = 8          # growth above the last 429's level is this many times slower than below it
QUEUE_PROBE_SLOWDOWN = 32   # ... and above the level where the server last queued our calls
QUEUE_RATIO = 2.0           # a call this many times slower than its kind's unqueued latency waited in a queue
GROW_RATIO = 1.5            # the limit grows only on calls faster than this ratio (or within min_queue_seconds)
MIN_QUEUE_SECONDS = 0.5     # a queue shorter than this is jitter, not worth a cut (a 100 ms server under load)
OVERHEAD_TOKENS = 32        # per-token latency counts this many tokens of fixed work per call (prompt, network)
SLOW_START = 1              # the client's first limit: no server is flooded before its parallelism is known


class AdaptiveLimiter:
    """An adaptive concurrency limit (see the module docstring); `limit` is live (read it for progress bars).
    `initial`: the first limit (default: the ceiling, no slow start; the client starts at SLOW_START)."""

    def __init__(self, ceiling: int, floor: int = 1, initial: int | None = None,
                 min_queue_seconds: float = MIN_QUEUE_SECONDS):
        self.ceiling = max(1, int(ceiling))
        self.floor = max(1, min(int(floor), self.ceiling))
        self.limit = float(min(self.ceiling, initial or self.ceiling))
        self.slow_start = self.limit < self.ceiling
        self.inflight = 0
        self.last_cut = 0.0
        self.cuts = 0
        self.queue_cuts = 0
        self.min_seen = self.limit
        self.max_inflight = 0
        self.rate_limited_at = math.inf   # the limit at the last 429
        self.queued_at = math.inf         # what the server served at the last cut for queueing (the level cut to)
        self.min_queue_seconds = float(min_queue_seconds)
        self._unqueued: dict = {}         # cost class -> [least latency, least latency per token]
        self._recent: collections.deque = collections.deque(maxlen=3)   # (ratio, seconds queued) of the last calls
        self._waiters: collections.deque = collections.deque()

    @property
    def current(self) -> int:
        return max(self.floor, int(self.limit))

    def reset_waiters(self) -> None:
        self._waiters = collections.deque()

    async def acquire(self) -> float:
        if self.inflight < self.current and not self._waiters:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
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
                self.max_inflight = max(self.max_inflight, self.inflight)
                fut.set_result(None)

    def queue_signal(self, latency: float, tokens: int, cost_class=None) -> tuple[float, float]:
        """(ratio to the unqueued latency of this kind of call, seconds it seemingly waited); learns that latency."""
        per_token = latency / (max(0, int(tokens)) + OVERHEAD_TOKENS)
        best = self._unqueued.get(cost_class)
        if best is None:
            self._unqueued[cost_class] = [latency, per_token]
            return 1.0, 0.0
        best[0], best[1] = min(best[0], latency), min(best[1], per_token)
        ratio = min(latency / best[0] if best[0] > 0 else 1.0, per_token / best[1] if best[1] > 0 else 1.0)
        return ratio, latency - latency / max(ratio, 1.0)

    def on_success(self, latency: float | None = None, tokens: int = 0, cost_class=None,
                   started: float = math.inf) -> None:
        """A call answered; `latency` (seconds from send) and its completion `tokens` feed the queue signal."""
        queued = False
        if latency is not None:
            # the first answer of its kind is measured against nothing: evidence for growth only if it was alone
            unknown_kind = cost_class not in self._unqueued and self.inflight > 1
            ratio, waited = self.queue_signal(latency, tokens, cost_class)
            if unknown_kind:
                return
            self._recent.append((ratio, waited))
            queued = ratio >= GROW_RATIO and waited >= self.min_queue_seconds
            if len(self._recent) == self._recent.maxlen and started >= self.last_cut:
                mid_ratio = statistics.median(r for r, _ in self._recent)
                mid_wait = statistics.median(w for _, w in self._recent)
                if mid_ratio >= QUEUE_RATIO and mid_wait >= self.min_queue_seconds:
                    self._cut_for_queue(mid_ratio)
                    return
        # grow only when the limit is actually in use (otherwise there is no evidence it could be higher) and the
        # call did not queue; at or above the level where the server last said 429 (or queued), probe
        # PROBE_SLOWDOWN (QUEUE_PROBE_SLOWDOWN) times slower: each probe past its capacity costs a call a wait
        if queued:
            # the first queued call ends the doubling: from here the limit grows by one per round trip, so a
            # one-slot server sees at most a call or two more than it serves before the median says "cut"
            self.slow_start = False
            return
        if self.inflight < self.current - 1 or self.limit >= self.ceiling:
            return
        if self.slow_start:
            step = 1.0
        elif self.limit >= self.queued_at:
            step = 1.0 / (QUEUE_PROBE_SLOWDOWN * self.limit)
        elif self.limit >= self.rate_limited_at:
            step = 1.0 / (PROBE_SLOWDOWN * self.limit)
        else:
            step = 1.0 / self.limit
        self.limit = min(float(self.ceiling), self.limit + step)
        self._wake()

    def _cut_for_queue(self, ratio: float) -> None:
        """The server queues our calls: keep what it serves at once (calls in flight / how much slower they are)."""
        self.slow_start = False
        new = max(float(self.floor), min(self.limit - 1.0, math.floor(self.inflight / ratio)))
        self.queued_at = new    # growth past what the server serves is a slow probe: each costs one queued call
        if new < self.limit:
            self.limit = new
            self.cuts += 1
            self.queue_cuts += 1
            self.min_seen = min(self.min_seen, self.limit)
        self.last_cut = time.monotonic()
        self._recent.clear()

    def on_rate_limited(self) -> None:
        """429: the server holds what is in flight now (this call already released)."""
        self.slow_start = False
        self.rate_limited_at = self.limit
        new = max(float(self.floor), min(self.limit - 1.0, float(self.inflight)))
        if new < self.limit:
            self.limit = new
            self.cuts += 1
            self.last_cut = time.monotonic()
            self.min_seen = min(self.min_seen, self.limit)

    def on_failure(self, started: float) -> None:
        """Timeout / connection error / 5xx: halve, once per round trip."""
        self.slow_start = False
        if started >= self.last_cut:
            self.limit = max(float(self.floor), self.limit / 2.0)
            self.cuts += 1
            self.last_cut = time.monotonic()
            self.min_seen = min(self.min_seen, self.limit)
