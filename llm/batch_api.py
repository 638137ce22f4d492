"""The OpenAI-compatible Batch API over HTTP: files (upload, content) and batches (create, retrieve, list, cancel).

Same rules as the chat client: the key goes only to the endpoint named (the caller passes the client's headers,
built from keys.py), redirects are never followed, and no error message carries the key. Transient failures (429,
5xx, timeouts, connection errors) are retried with jittered backoff; a rejected key is `AuthError`; an endpoint
without the API is `BatchUnsupported`; anything else that stops the batch work is `EndpointError`.
"""
from __future__ import annotations

import asyncio
import random
from typing import Callable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

import orjson

from .errors import AuthError, EndpointError, EndpointUnreachable
from .transport import innermost, retry_after

CHAT_URL = "/v1/chat/completions"      # the `url` of every batch line and the batch's `endpoint`
COMPLETION_WINDOW = "24h"              # the only window the OpenAI Batch API offers
TERMINAL = ("completed", "failed", "expired", "cancelled")


class BatchUnsupported(EndpointError):
    """The endpoint has no files + batches API (404/405 on /batches): --batch cannot run there."""

    kind = "batch_unsupported"


class BatchNotFound(EndpointError):
    """404 for one batch or file id: the endpoint no longer knows it (another account, or deleted)."""

    kind = "batch_not_found"


class BatchAPI:
    """Async calls to `{base_url}/files` and `{base_url}/batches` (base_url ends in /v1, as for chat)."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *, timeout: float = 120.0, retries: int = 5,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, scrub: Callable[[str], str] = str):
        import httpx2

        self.httpx = httpx2
        self.base = base_url.rstrip("/")
        self.query = urlsplit(base_url).query
        self.headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        self.retries, self.backoff_base, self.backoff_max = retries, backoff_base, backoff_max
        self.scrub = scrub
        self.client = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
                                         follow_redirects=False, trust_env=True)

    async def aclose(self) -> None:
        await self.client.aclose()

    # ---- the calls ------------------------------------------------------------------------------------------------
    async def probe(self) -> None:
        """GET /batches?limit=1: raises BatchUnsupported when the endpoint lacks the API, AuthError on 401/403."""
        await self._json("GET", "/batches", params={"limit": "1"}, what="the Batch API check")

    async def upload(self, name: str, data: bytes) -> str:
        """POST /files (purpose batch): the new file's id."""
        obj = await self._json("POST", "/files", what=f"uploading {name} ({len(data):,} bytes: --batch-max-bytes)",
                               data={"purpose": "batch"},
                               files={"file": (name, data, "application/jsonl")})
        return _field(obj, "id", "the file upload")

    async def create(self, file_id: str, metadata: dict[str, str]) -> dict:
        """POST /batches: the new batch object (chat completions, 24h window)."""
        body = {"input_file_id": file_id, "endpoint": CHAT_URL, "completion_window": COMPLETION_WINDOW,
                "metadata": metadata}
        obj = await self._json("POST", "/batches", json_body=body, what="creating a batch")
        _field(obj, "id", "the batch creation")
        return obj

    async def retrieve(self, batch_id: str) -> dict:
        return await self._json("GET", f"/batches/{quote(batch_id, safe='')}", what=f"polling batch {batch_id}")

    async def cancel(self, batch_id: str) -> dict:
        return await self._json("POST", f"/batches/{quote(batch_id, safe='')}/cancel",
                                what=f"cancelling batch {batch_id}")

    async def find_by_file(self, file_id: str, pages: int = 20) -> dict | None:
        """The batch created from `file_id`, looked up in the listing (newest first, `pages` pages of 100): finds a
        batch whose creation answer a killed run never read."""
        after = None
        for _ in range(pages):
            params = {"limit": "100", **({"after": after} if after else {})}
            obj = await self._json("GET", "/batches", params=params, what="listing batches")
            data = obj.get("data") if isinstance(obj.get("data"), list) else []
            for batch in data:
                if isinstance(batch, dict) and batch.get("input_file_id") == file_id:
                    return batch
            if not obj.get("has_more") or not data:
                return None
            after = data[-1].get("id") if isinstance(data[-1], dict) else None
            if not after:
                return None
        return None

    async def content(self, file_id: str) -> bytes:
        """GET /files/{id}/content: the file's bytes (an output or error file)."""
        resp = await self._send("GET", f"/files/{quote(file_id, safe='')}/content", what=f"downloading {file_id}")
        return resp.content

    # ---- plumbing ---------------------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return self.base.split("?", 1)[0] + path

    async def _json(self, method: str, path: str, *, what: str, params=None, json_body=None, data=None,
                    files=None) -> dict:
        resp = await self._send(method, path, what=what, params=params, json_body=json_body, data=data, files=files)
        try:
            obj = orjson.loads(resp.content)
        except ValueError:
            raise EndpointError(f"{what}: the endpoint answered http {resp.status_code} with no JSON") from None
        if not isinstance(obj, dict):
            raise EndpointError(f"{what}: the endpoint answered http {resp.status_code} with no JSON object")
        return obj

    async def _send(self, method: str, path: str, *, what: str, params=None, json_body=None, data=None, files=None):
        """One request with retries on 429 / 5xx / timeouts / connection errors; a 2xx response, or raises."""
        x = self.httpx
        query = dict(parse_qsl(self.query))     # the endpoint URL's own query (e.g. an api-version), kept
        headers = dict(self.headers)
        content = None
        if json_body is not None:
            content = orjson.dumps(json_body)
            headers["Content-Type"] = "application/json"
        last, hint = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff(attempt, hint))
                hint = None
            try:
                resp = await self.client.request(method, self._url(path), params={**query, **(params or {})},
                                                 content=content, data=data, files=files, headers=headers)
            except x.TimeoutException:
                last = "timeout"
                continue
            except (x.TransportError, x.DecodingError) as exc:
                last = f"connection error: {type(innermost(exc)).__name__}"
                continue
            status = resp.status_code
            if 200 <= status < 300:
                return resp
            if status == 429 or status >= 500 or status in (408, 409):
                last = f"http {status}"
                hint = retry_after({k.lower(): v for k, v in resp.headers.items()})
                continue
            raise self._error(status, what, resp)
        if last.startswith("connection error"):
            raise EndpointUnreachable(f"{what}: {last} after {self.retries} retries")
        raise EndpointError(f"{what}: {last} after {self.retries} retries")

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return max(random.uniform(cap / 2, cap), retry_after_s or 0.0)   # a Retry-After is the minimum wait

    def _error(self, status: int, what: str, resp) -> EndpointError:
        if status in (401, 403):
            return AuthError("the endpoint rejected the API key", status)
        if 300 <= status < 400:
            return EndpointError(f"{what}: the endpoint redirected (http {status}); redirects are not followed so "
                                 "the key stays with the host named: give the final URL", status)
        if status in (404, 405) and path_is_batch_api(resp):
            return BatchUnsupported(f"the endpoint has no Batch API (http {status} from {resp.request.method} "
                                    f"{urlsplit(str(resp.request.url)).path}): run without --batch", status)
        if status == 404:
            return BatchNotFound(f"{what}: http 404: {self.scrub(_message(resp))}", status)
        return EndpointError(f"{what}: http {status}: {self.scrub(_message(resp))}", status)


def path_is_batch_api(resp) -> bool:
    """A 404/405 from /batches or /files itself (not from one batch's or file's id, which is a lost object)."""
    path = urlsplit(str(resp.request.url)).path.rstrip("/")
    return path.endswith("/batches") or path.endswith("/files")


def _message(resp) -> str:
    try:
        obj = orjson.loads(resp.content)
        err = obj.get("error") if isinstance(obj, dict) else None
        msg = err.get("message") if isinstance(err, dict) else err
        return " ".join(str(msg or resp.text[:200]).split())[:300]
    except ValueError:
        return " ".join(resp.text[:200].split())


def _field(obj: dict, name: str, what: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise EndpointError(f"{what}: the answer has no {name!r}")
    return value
