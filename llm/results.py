"""A chat request, its result, and the client's accounting."""
from __future__ import annotations

import collections
from dataclasses import dataclass, field


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
