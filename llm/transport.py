"""What both transports share: the answer, the three ways a request fails, Retry-After, proxy detection.

A transport has `head(path, headers)` (built once per session) and `post(head, body) -> Response`, and raises
`ConnectFailed`, `TransportTimeout` or `Broken` (`Stale` stays inside the raw transport)."""
from __future__ import annotations

import asyncio
import email.utils
import socket
import time
import urllib.request
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from .keys import host_of


@dataclass
class Response:
    status: int
    headers: dict          # lower-case names
    body: bytes


class ConnectFailed(Exception):
    """No connection (refused, name not resolved, connect timeout): the request never left."""


class TransportTimeout(Exception):
    """Connected, but no complete answer in time."""


class Broken(Exception):
    """The connection broke or the answer was not HTTP we can read."""


class Stale(Exception):
    """A kept-alive connection was closed by the server before any byte of the answer."""


def connect_reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "connect timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    return type(exc).__name__


def innermost(exc: BaseException) -> BaseException:
    """The first cause of a wrapped exception (httpx2 wraps the socket's error twice)."""
    for _ in range(10):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def retry_after(headers: Mapping[str, str]) -> float | None:
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


def uses_proxy(url: str) -> bool:
    proxies = urllib.request.getproxies_environment()
    scheme = urlsplit(url).scheme
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(host_of(url), proxies)
