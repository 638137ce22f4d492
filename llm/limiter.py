"""The adaptive (AIMD) concurrency limit shared by every call of a client."""
from __future__ import annotations

import asyncio
import collections
import math
import time

PROBE_SLOWDOWN = 8   # growth above the last 429's level is this many times slower than below it


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
