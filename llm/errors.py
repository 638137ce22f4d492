"""The endpoint-wide failures of an LLM endpoint: raised, they stop SDG with one line."""
from __future__ import annotations


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
