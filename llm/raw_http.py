"""The plain-http transport: HTTP/1.1 keep-alive POSTs over asyncio streams (local servers, where the client's own
CPU per request caps throughput)."""
from __future__ import annotations

import asyncio
import zlib
from typing import Callable, Mapping
from urllib.parse import urlsplit

from .transport import Broken, ConnectFailed, Response, Stale, TransportTimeout, connect_reason


class RawHTTP:
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

    async def post(self, head: bytes, body: bytes) -> Response:
        data = head + str(len(body)).encode() + b"\r\n\r\n" + body
        conn = self._take_idle()
        if conn is not None:
            try:
                return await self._exchange(conn, data)
            except Stale:
                self.on_resend()  # the server closed it as we reused it (keep-alive race): once more, fresh
        try:
            return await self._exchange(await self._connect(), data)
        except Stale:
            raise Broken("connection closed before any answer") from None

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
            raise ConnectFailed(connect_reason(exc)) from None

    async def _exchange(self, conn, data: bytes) -> Response:
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
                raise Broken("connection closed mid-answer") from None
            raise Stale() from None
        except TimeoutError:
            writer.close()
            raise TransportTimeout() from None
        except (asyncio.LimitOverrunError, ValueError, UnicodeDecodeError, zlib.error) as exc:
            writer.close()
            raise Broken(f"unreadable answer ({type(exc).__name__})") from None
        except BaseException:
            writer.close()
            raise
        if reusable:
            self._idle.append(conn)
        else:
            writer.close()
        return Response(status, headers, body)

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
            body = await read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304):
            body = b""
        else:
            return decode_body(await reader.read(), headers), False   # delimited by the close
        connection = headers.get("connection", "").lower()
        reusable = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
        return decode_body(body, headers), reusable

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":   # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def decode_body(body: bytes, headers: dict) -> bytes:
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "deflate"):
        return zlib.decompress(body, 47)   # 47: zlib or gzip header, detected
    raise ValueError(f"content-encoding {encoding}")
