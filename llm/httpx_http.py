"""The https / proxied transport: httpx2 (TLS, proxies from the environment), redirects never followed."""
from __future__ import annotations

from typing import Mapping

from .transport import Broken, ConnectFailed, Response, TransportTimeout, connect_reason, innermost


class HttpxTransport:
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

    async def post(self, head: dict, body: bytes) -> Response:
        x = self.httpx
        try:
            r = await self.client.post(self.url, content=body, headers=head)
        except x.ConnectTimeout:
            raise ConnectFailed("connect timeout") from None
        except x.ConnectError as exc:
            raise ConnectFailed(connect_reason(innermost(exc))) from None
        except x.TimeoutException:
            raise TransportTimeout() from None
        except (x.TransportError, x.DecodingError) as exc:
            raise Broken(type(exc).__name__) from None
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    async def aclose(self) -> None:
        await self.client.aclose()
