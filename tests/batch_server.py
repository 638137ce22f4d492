"""The OpenAI files + batches API on top of tests/llm_server.py (real HTTP on 127.0.0.1), for --batch tests.

    srv = start_batch_server(BatchConfig(delay=0.3), log_path=tmp_path / "log.jsonl")   # then srv.base_url

Routes (each checks the bearer token when the server has an api_key, as chat does):
  POST /v1/files (multipart, purpose=batch) · GET /v1/files/{id} · GET /v1/files/{id}/content
  POST /v1/batches · GET /v1/batches (newest first; limit, after) · GET /v1/batches/{id} · POST /v1/batches/{id}/cancel
A batch is "validating", then "in_progress" (request_counts grow with the time since creation), and `delay` seconds
after creation ends as `outcome`: "completed"; "expired" (the first `expire_fraction` of its lines answered, the
rest in the error file as batch_expired); "failed" (nothing runs: the batch's `errors` say why). A cancel makes it
"cancelling", and at the next look "cancelled" with the lines answered by then (by elapsed time) and the rest as
batch_cancelled. Answers come from llm_server's own chat answer code; `error_rate` of the lines (by request hash)
get a 500 in the error file. `max_file_bytes` rejects a larger upload (400), `max_requests` fails a larger batch.
`api=False`: a server without the API (404 on every files/batches route). Every answered line is logged like an
online answer (hash, completed, key_sha256) with "via": "batch", so `completed_twice` sees both kinds.
Hooks (called on the handler thread): `on_created(batch)` after a batch is created, before the answer is sent;
`on_retrieve(batch)` after a batch's state is computed for GET /v1/batches/{id}.
"""
from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from llm_server import Handler, LLMServer, ServerConfig, _u, bearer_sha256, request_hash

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchConfig:
    api: bool = True                # False: no files / batches routes (404), like a plain chat server
    delay: float = 0.2              # seconds from creation to the end of a batch
    outcome: str = "completed"      # completed | expired | failed
    expire_fraction: float = 0.5    # outcome expired: the share of lines answered before the window closed
    error_rate: float = 0.0         # share of lines (by request hash) answered with a 500 in the error file
    max_file_bytes: int = 0         # an upload over this many bytes -> 400 (0: no limit)
    max_requests: int = 0           # a batch with more lines -> failed (0: no limit)


class _BatchState:
    def __init__(self, cfg: BatchConfig):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.uploads: list[int] = []      # the size of every accepted upload
        self.ids = itertools.count(1)
        self.on_created = None
        self.on_retrieve = None

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):06d}"


class BatchHandler(Handler):
    server_version = "llm-batch-test-server/1"

    @property
    def bt(self) -> _BatchState:
        return self.server.batch_state  # type: ignore[attr-defined]

    def _route(self) -> tuple[list[str], dict]:
        parts = urlsplit(self.path)
        segs = [s for s in parts.path.split("/") if s]
        return (segs[1:] if segs[:1] == ["v1"] else segs), {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def _ours(self, segs: list[str]) -> bool:
        return bool(segs) and segs[0] in ("files", "batches")

    def _authorized(self) -> bool:
        key = self.st.cfg.api_key
        if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
            self._send(401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
            return False
        return True

    def do_GET(self):
        segs, query = self._route()
        if not self._ours(segs):
            return super().do_GET()
        if not self.bt.cfg.api:
            return self._send(404, {"error": {"message": "not found"}})
        if not self._authorized():
            return
        with self.bt.lock:
            if segs == ["batches"]:
                return self._send(200, self._list(query))
            if len(segs) == 2 and segs[0] == "batches":
                batch = self._advance(segs[1])
                if batch is None:
                    return self._send(404, {"error": {"message": "no such batch"}})
                public = _public(batch)
            elif len(segs) in (2, 3) and segs[0] == "files" and segs[1] in self.bt.files:
                f = self.bt.files[segs[1]]
                if len(segs) == 3 and segs[2] == "content":
                    return self._send_bytes(f["data"])
                return self._send(200, _file_object(segs[1], f))
            else:
                return self._send(404, {"error": {"message": "not found"}})
        if self.bt.on_retrieve is not None:
            self.bt.on_retrieve(public)
        self._send(200, public)

    def do_POST(self):
        segs, _ = self._route()
        if not self._ours(segs):
            return super().do_POST()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.bt.cfg.api:
            return self._send(404, {"error": {"message": "not found"}})
        if not self._authorized():
            return
        if segs == ["files"]:
            return self._upload(raw)
        if segs == ["batches"]:
            return self._create(raw)
        if len(segs) == 3 and segs[0] == "batches" and segs[2] == "cancel":
            with self.bt.lock:
                batch = self._advance(segs[1])
                if batch is None:
                    return self._send(404, {"error": {"message": "no such batch"}})
                if batch["status"] not in TERMINAL:
                    batch.update(status="cancelling", cancelling_at=int(time.time()))
                return self._send(200, _public(batch))
        self._send(404, {"error": {"message": "not found"}})

    # ---- files and batches ----------------------------------------------------------------------------------------
    def _send_bytes(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _upload(self, raw: bytes) -> None:
        fields = _multipart(self.headers.get("Content-Type", ""), raw)
        if fields.get("purpose", (None, b""))[1] != b"batch" or "file" not in fields:
            return self._send(400, {"error": {"message": "need purpose=batch and a file"}})
        name, data = fields["file"]
        limit = self.bt.cfg.max_file_bytes
        if limit and len(data) > limit:
            return self._send(400, {"error": {"message": f"file is {len(data)} bytes; the limit is {limit}"}})
        with self.bt.lock:
            file_id = self.bt.new_id("file")
            self.bt.files[file_id] = {"data": data, "filename": name, "purpose": "batch", "created_at": int(time.time())}
            self.bt.uploads.append(len(data))
        self._send(200, _file_object(file_id, self.bt.files[file_id]))

    def _create(self, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(400, {"error": {"message": "invalid JSON"}})
        file_id = body.get("input_file_id")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return self._send(400, {"error": {"message": "endpoint must be /v1/chat/completions, window 24h"}})
        with self.bt.lock:
            f = self.bt.files.get(file_id)
            if f is None:
                return self._send(404, {"error": {"message": f"no such file {file_id}"}})
            batch_id = self.bt.new_id("batch")
            batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": file_id,
                     "completion_window": "24h", "status": "validating", "created_at": int(time.time()),
                     "metadata": body.get("metadata") or {}, "output_file_id": None, "error_file_id": None,
                     "errors": None, "_t0": time.monotonic(), "_lines": [],
                     "_key_sha256": bearer_sha256(self.headers.get("Authorization"))}
            problem = self._validate(batch, f["data"])
            batch["request_counts"] = {"total": len(batch["_lines"]), "completed": 0, "failed": 0}
            if problem:
                batch.update(status="failed", failed_at=int(time.time()),
                             errors={"object": "list", "data": [{"code": "invalid_file", "message": problem}]})
            self.bt.batches[batch_id] = batch
            public = _public(batch)
        if self.bt.on_created is not None:
            self.bt.on_created(public)
        self._send(200, public)

    def _validate(self, batch: dict, data: bytes) -> str | None:
        if self.bt.cfg.outcome == "failed":
            return "the batch failed (injected)"
        seen = set()
        for n, line in enumerate(data.splitlines(), 1):
            try:
                obj = json.loads(line)
            except ValueError:
                return f"line {n} is not JSON"
            if obj.get("method") != "POST" or obj.get("url") != "/v1/chat/completions" or obj["custom_id"] in seen:
                return f"line {n}: bad method, url or duplicate custom_id"
            seen.add(obj["custom_id"])
            batch["_lines"].append(obj)
        if self.bt.cfg.max_requests and len(batch["_lines"]) > self.bt.cfg.max_requests:
            return f"{len(batch['_lines'])} requests; the limit is {self.bt.cfg.max_requests}"
        return None

    def _list(self, query: dict) -> dict:
        batches = sorted(self.bt.batches.values(), key=lambda b: b["id"], reverse=True)
        if query.get("after"):
            batches = [b for b in batches if b["id"] < query["after"]]
        limit = max(1, min(100, int(query.get("limit") or 20)))
        page = [_public(self._advance(b["id"])) for b in batches[:limit]]
        return {"object": "list", "data": page, "has_more": len(batches) > limit,
                "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}

    def _advance(self, batch_id: str) -> dict | None:
        """The batch's state now (by the time since its creation); finished on first look past its end."""
        batch = self.bt.batches.get(batch_id)
        if batch is None or batch["status"] in TERMINAL:
            return batch
        cfg, n = self.bt.cfg, len(batch["_lines"])
        share = min(1.0, (time.monotonic() - batch["_t0"]) / max(cfg.delay, 1e-6))
        if batch["status"] == "cancelling":
            return self._finish(batch, "cancelled", int(n * share))
        if share >= 1.0:
            if cfg.outcome == "expired":
                return self._finish(batch, "expired", int(n * cfg.expire_fraction))
            return self._finish(batch, "completed", n)
        batch["status"] = "validating" if share < 0.1 else "in_progress"
        if share >= 0.1:
            batch.setdefault("in_progress_at", int(time.time()))
        batch["request_counts"]["completed"] = int(n * share)
        return batch

    def _finish(self, batch: dict, status: str, n_answered: int) -> dict:
        out, err, done, failed = [], [], 0, 0
        code = {"expired": "batch_expired", "cancelled": "batch_cancelled"}.get(status)
        for i, line in enumerate(batch["_lines"]):
            body, cid = line["body"], line["custom_id"]
            h = request_hash(body)
            if i >= n_answered:
                err.append({"id": f"req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": code or "batch_failed", "message": f"batch {status}"}})
                failed += 1
            elif _u(h, "batch-error") < self.bt.cfg.error_rate:
                err.append({"id": f"req_{i}", "custom_id": cid, "error": None,
                            "response": {"status_code": 500, "request_id": f"r{i}",
                                         "body": {"error": {"message": "injected error 500"}}}})
                failed += 1
            else:
                answer = self._answer(body, h)
                out.append({"id": f"req_{i}", "custom_id": cid, "error": None,
                            "response": {"status_code": 200, "request_id": f"r{i}", "body": answer}})
                done += 1
                self.st.record({"hash": h, "model": body.get("model", ""), "t": time.time(), "status": 200,
                                "completed": True, "key_sha256": batch["_key_sha256"], "via": "batch",
                                "batch": batch["id"]})
        for key, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                file_id = self.bt.new_id("file")
                self.bt.files[file_id] = {"data": "".join(json.dumps(r) + "\n" for r in rows).encode(),
                                          "filename": f"{batch['id']}_{key}.jsonl", "purpose": "batch_output",
                                          "created_at": int(time.time())}
                batch[key] = file_id
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": done, "failed": failed}
        batch["status"] = status
        batch[f"{status}_at"] = int(time.time())
        return batch


def _public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _file_object(file_id: str, f: dict) -> dict:
    return {"id": file_id, "object": "file", "bytes": len(f["data"]), "created_at": f["created_at"],
            "filename": f["filename"], "purpose": f["purpose"]}


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field name: (file name, bytes)} of a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    out = {}
    if not msg.is_multipart():
        return out
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            out[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return out


class BatchServer(LLMServer):
    """An LLMServer that also speaks the files + batches API (see the module docstring)."""

    def __init__(self, cfg: ServerConfig, batch: BatchConfig, port: int = 0):
        super().__init__(cfg, port=port)
        self.httpd.RequestHandlerClass = BatchHandler
        self.batch_state = self.httpd.batch_state = _BatchState(batch)  # type: ignore[attr-defined]

    @property
    def bcfg(self) -> BatchConfig:
        return self.batch_state.cfg

    @property
    def batches(self) -> list[dict]:
        with self.batch_state.lock:
            return [_public(b) for b in sorted(self.batch_state.batches.values(), key=lambda b: b["id"])]

    def batch_lines(self, batch_id: str) -> list[str]:
        """The custom_ids of a batch's input lines."""
        with self.batch_state.lock:
            return [line["custom_id"] for line in self.batch_state.batches[batch_id]["_lines"]]

    @property
    def uploads(self) -> list[int]:
        with self.batch_state.lock:
            return list(self.batch_state.uploads)


def start_batch_server(batch: BatchConfig | None = None, port: int = 0, **kwargs) -> BatchServer:
    """A started BatchServer; `kwargs` are llm_server.ServerConfig fields (latency, api_key, log_path, ...)."""
    if kwargs.get("log_path") is not None:
        kwargs["log_path"] = str(kwargs["log_path"])
    srv = BatchServer(ServerConfig(**kwargs), batch or BatchConfig(), port=port)
    srv.start()
    return srv
