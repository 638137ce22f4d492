"""Batch waves: a set of queued chat requests -> batch files within the provider's limits -> batches created,
polled, collected into the response cache -> one Result per request.

Nothing paid twice: each batch is recorded in `<cache_dir>/batches/<part id>.json` (atomic write + fsync) before
its file is uploaded, again with the file id, and again with the batch id the moment the endpoint returns it; a run
killed at any point and started again finds the record of every request it queues and waits for that batch instead
of creating a new one (a batch created but not yet recorded is found by its input file in the endpoint's listing).
Nothing lost: every answer of a finished batch (completed, or failed / expired / cancelled with what did complete)
goes into the response cache before its record is marked collected; the requests without an answer get a failed
Result naming why ("batch expired", "batch http 500", ...), which SDG writes to sdg_failures.jsonl.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import orjson

from .batch_api import CHAT_URL, TERMINAL, BatchAPI, BatchNotFound
from .errors import EndpointError

# OpenAI's Batch API takes up to 50,000 requests and 200 MB per input file; 100 MB is the older OpenAI limit and
# Together's, so the default fits the common providers; --batch-max-requests / --batch-max-bytes change them
DEFAULT_MAX_REQUESTS = 50_000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_POLL_SECONDS = 30.0
MAX_WAIT_SECONDS = 26 * 3600   # past the 24 h window (+ the provider's finalizing): stop waiting, say so
STATE_DIR = "batches"
FINISHED = (*TERMINAL, "lost")   # "lost": the endpoint answered 404 for a recorded batch id


@dataclass(frozen=True)
class BatchLimits:
    """What one batch may hold, and how often a batch in flight is polled."""

    max_requests: int = DEFAULT_MAX_REQUESTS
    max_bytes: int = DEFAULT_MAX_BYTES
    poll_seconds: float = DEFAULT_POLL_SECONDS


def batch_line(key: str, body: bytes) -> bytes:
    """One line of a batch input file: the request body exactly as an online call sends it, the cache key as
    custom_id (so an answer finds its cache entry, whoever collects it)."""
    return b'{"custom_id":"' + key.encode() + b'","method":"POST","url":"' + CHAT_URL.encode() + b'","body":' \
        + body + b"}\n"


def plan_parts(queued: dict[str, tuple[str, bytes]], limits: BatchLimits
               ) -> tuple[list[tuple[str, list[str], bytes]], list[str]]:
    """Split queued requests {key: (model, body)} into batch files: one model per file (the providers' rule),
    keys in sorted order (a rerun builds the same files), at most limits.max_requests lines and limits.max_bytes
    bytes each. Returns ([(model, keys, file bytes)], keys of requests too large for any file)."""
    parts, too_big = [], []
    for model in sorted({m for m, _ in queued.values()}):
        keys, chunks, size = [], [], 0
        for key in sorted(k for k, (m, _) in queued.items() if m == model):
            line = batch_line(key, queued[key][1])
            if len(line) > limits.max_bytes:
                too_big.append(key)
                continue
            if keys and (len(keys) >= limits.max_requests or size + len(line) > limits.max_bytes):
                parts.append((model, keys, b"".join(chunks)))
                keys, chunks, size = [], [], 0
            keys.append(key)
            chunks.append(line)
            size += len(line)
        if keys:
            parts.append((model, keys, b"".join(chunks)))
    return parts, too_big


def part_id(model: str, keys: list[str]) -> str:
    return hashlib.sha256((model + "\n" + "\n".join(sorted(keys))).encode()).hexdigest()[:24]


class BatchStore:
    """The durable record of this cache's batches for one endpoint: one JSON file per batch."""

    def __init__(self, cache_dir: str | os.PathLike, endpoint: str):
        self.dir = Path(cache_dir) / STATE_DIR
        self.endpoint = endpoint

    def open_parts(self) -> list[dict]:
        """Records of batches not yet collected, for this endpoint, oldest first."""
        if not self.dir.is_dir():
            return []
        parts = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue    # a torn write cannot happen (atomic); an unreadable file is not ours to judge
            if isinstance(rec, dict) and rec.get("endpoint") == self.endpoint and not rec.get("collected"):
                parts.append(rec)
        return sorted(parts, key=lambda r: (r.get("recorded_at", 0), r.get("id", "")))

    def save(self, rec: dict) -> None:
        """Write the record atomically and durably (file and folder fsynced): a kill -9 right after this
        returns still finds it."""
        self._write(self.dir, f"{rec['id']}.json", rec)

    @staticmethod
    def _write(folder: Path, name: str, rec: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(orjson.dumps(rec, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def forget(self, rec: dict) -> None:
        (self.dir / f"{rec['id']}.json").unlink(missing_ok=True)

    def finish(self, rec: dict) -> None:
        """A collected batch: its record (without the key list) moves to `done/`, out of the in-flight scan. A kill
        between the two steps leaves it in flight too: the next run collects it again, from the provider, for free."""
        done = {k: v for k, v in rec.items() if k != "keys"}
        self._write(self.dir / "done", f"{rec.get('batch_id') or rec['id']}.json", done)
        self.forget(rec)


# a request's result, as the client builds it: accept(key, model, body bytes) -> Result | None (None: unreadable),
# fail(key, reason) -> Result(ok=False)
Accept = Callable[[str, str, bytes], object]
Fail = Callable[[str, str], object]


class WaveRunner:
    """Runs waves for one client: ships, waits (with a progress bar), collects; keeps the report of every batch."""

    def __init__(self, make_api: Callable[[], BatchAPI], store: BatchStore, limits: BatchLimits, accept: Accept,
                 fail: Fail, progress: bool = True):
        self.make_api, self.store, self.limits = make_api, store, limits
        self.accept, self.fail, self.progress = accept, fail, progress
        self.batches: list[dict] = []      # the report: one entry per batch this run waited for
        self.waves: list[dict] = []
        self.waiting: list[str] = []       # ids of the batches being waited for now (Ctrl-C names them)
        self.label = ""                    # e.g. "round 3": goes into the batches' metadata and the report

    async def run_wave(self, queued: dict[str, tuple[str, bytes]]) -> dict[str, object]:
        """Results for every queued request {key: (model, body)}; raises EndpointError if the batch work as a
        whole fails (key rejected, endpoint gone)."""
        t0 = time.monotonic()
        wave = len(self.waves) + 1
        results: dict[str, object] = {}
        api = self.make_api()
        self.waiting = []
        try:
            resumed = await self._resumable(api, queued)
            covered = {k for r in resumed for k in r["keys"]}
            new_parts, too_big = plan_parts({k: v for k, v in queued.items() if k not in covered}, self.limits)
            for key in too_big:
                results[key] = self.fail(key, f"batch: request over {self.limits.max_bytes:,} bytes "
                                              "(--batch-max-bytes)")
            records = list(resumed)
            for model, keys, data in new_parts:
                records.append(await self._submit(api, self._record(wave, model, keys, data), data))
            batches = await self._wait(api, records, wave)
            for rec, batch in zip(records, batches):
                await self._collect(api, rec, batch, queued, results)
            self.waiting = []     # kept when interrupted: BatchInterrupted names the batches left running
        finally:
            await api.aclose()
        for key in queued:
            if key not in results:
                results[key] = self.fail(key, "batch: no answer for this request")
        self.waves.append({"wave": wave, "label": self.label, "requests": len(queued),
                           "batches": len(records), "resumed": len(resumed),
                           "seconds": round(time.monotonic() - t0, 3)})
        return results

    def _record(self, wave: int, model: str, keys: list[str], data: bytes) -> dict:
        rec = {"id": part_id(model, keys), "endpoint": self.store.endpoint, "model": model, "keys": keys,
               "requests": len(keys), "bytes": len(data), "label": self.label, "wave": wave,
               "recorded_at": time.time(), "file_id": None, "batch_id": None, "collected": False}
        self.store.save(rec)     # before the upload: a kill during it leaves a record without a file id
        return rec

    async def _resumable(self, api: BatchAPI, queued: dict) -> list[dict]:
        """The in-flight records holding any queued request: those with a batch id, and those whose batch the
        endpoint lists under their file (created, but the run was killed before it read the id). Any other one
        never became a batch (killed during its upload, or before the create): forgotten, its requests planned
        afresh."""
        out = []
        for rec in self.store.open_parts():
            if not set(rec["keys"]) & queued.keys():
                continue
            if not rec.get("batch_id") and rec.get("file_id"):
                found = await api.find_by_file(rec["file_id"])
                if found is not None:
                    rec["batch_id"] = found["id"]
                    self.store.save(rec)
            if rec.get("batch_id"):
                rec["resumed"] = True
                out.append(rec)
            else:
                self.store.forget(rec)
        return out

    async def _submit(self, api: BatchAPI, rec: dict, data: bytes) -> dict:
        """Upload the file and create the batch, recording each id the moment it is known."""
        rec["file_id"] = await api.upload(f"lawqa-{rec['id']}.jsonl", data)
        self.store.save(rec)
        batch = await api.create(rec["file_id"], {"lawqa_part": rec["id"], "lawqa_label": rec.get("label") or ""})
        rec["batch_id"] = batch["id"]
        self.store.save(rec)   # a rerun now waits for this batch, never creates another
        self.waiting.append(rec["batch_id"])
        return rec

    async def _wait(self, api: BatchAPI, records: list[dict], wave: int) -> list[dict]:
        """Poll every batch of the wave until each is finished; a progress bar shows status, counts, elapsed."""
        self.waiting = [rec["batch_id"] for rec in records]
        latest: dict[str, dict] = {}
        bar = None
        if self.progress and records:
            from tqdm import tqdm
            bar = tqdm(total=sum(r["requests"] for r in records), unit="req", leave=False,
                       desc=f"batch wave {wave}" + (f" ({self.label})" if self.label else "")
                       + f": {len(records)} batch(es)")
        started = time.monotonic()
        try:
            while True:
                for rec in records:
                    if latest.get(rec["batch_id"], {}).get("status") not in FINISHED:
                        try:
                            latest[rec["batch_id"]] = await api.retrieve(rec["batch_id"])
                        except BatchNotFound:     # a recorded batch the endpoint no longer knows: ask again
                            latest[rec["batch_id"]] = {"id": rec["batch_id"], "status": "lost"}
                statuses = [latest[r["batch_id"]].get("status") for r in records]
                if bar is not None:
                    _show(bar, records, latest, statuses)
                if all(s in FINISHED for s in statuses):
                    return [latest[r["batch_id"]] for r in records]
                if time.monotonic() - started > MAX_WAIT_SECONDS:
                    raise EndpointError(f"batches {', '.join(self.waiting)} were still not finished after "
                                        f"{MAX_WAIT_SECONDS // 3600} h; run again later to pick them up")
                await asyncio.sleep(self.limits.poll_seconds)
        finally:
            if bar is not None:
                bar.close()

    async def _collect(self, api: BatchAPI, rec: dict, batch: dict, queued: dict, results: dict) -> None:
        """Every answer of a finished batch into the cache; a failed Result for each request without one; then
        the record is marked collected."""
        status = batch.get("status")
        answered, failed = set(), {}
        for file_key in ("output_file_id", "error_file_id"):
            file_id = batch.get(file_key)
            if not file_id:
                continue
            for line in (await api.content(file_id)).splitlines():
                key, body, reason = _parse_line(line)
                if key is None or key not in rec["keys"]:
                    continue
                if body is not None:
                    res = self.accept(key, rec["model"], body)
                    if res is not None:
                        answered.add(key)
                        if key in queued:
                            results[key] = res
                        continue
                    reason = "batch: invalid response"
                failed[key] = reason
        why = _batch_failure(batch)
        for key in rec["keys"]:
            if key in queued and key not in answered:
                results[key] = self.fail(key, failed.get(key) or why)
        rec.update({"collected": True, "status": status, "answered": len(answered),
                    "failed": len(rec["keys"]) - len(answered)})
        self.store.finish(rec)
        self.batches.append(_report_entry(rec, batch))


def _show(bar, records: list[dict], latest: dict, statuses: list[str]) -> None:
    done = 0
    for rec in records:
        counts = latest[rec["batch_id"]].get("request_counts") or {}
        done += int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
    bar.n = min(bar.total, done)
    tally: dict[str, int] = {}
    for s in statuses:
        tally[s] = tally.get(s, 0) + 1
    bar.set_postfix_str(", ".join(f"{s}: {n}" for s, n in sorted(tally.items())), refresh=False)
    bar.refresh()


def _parse_line(line: bytes) -> tuple[str | None, bytes | None, str | None]:
    """(custom_id, the answer's body when it is a 2xx chat completion, else why it failed) of one output or error
    file line."""
    try:
        obj = orjson.loads(line)
    except ValueError:
        return None, None, None
    if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
        return None, None, None
    key, resp, err = obj["custom_id"], obj.get("response"), obj.get("error")
    if isinstance(resp, dict):
        status = resp.get("status_code")
        if isinstance(status, int) and 200 <= status < 300 and isinstance(resp.get("body"), dict):
            return key, orjson.dumps(resp["body"]), None
        if isinstance(status, int):
            return key, None, f"batch http {status}"
    if isinstance(err, dict) and err.get("code"):
        return key, None, "batch " + str(err["code"]).removeprefix("batch_").replace("_", " ")
    return key, None, "batch: failed request"


def _batch_failure(batch: dict) -> str:
    """Why a request of this batch has no answer, from the batch's own status."""
    status = batch.get("status") or "unknown"
    errors = (batch.get("errors") or {}).get("data") if isinstance(batch.get("errors"), dict) else None
    if status == "failed" and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return "batch failed: " + " ".join(str(errors[0].get("message") or errors[0].get("code")).split())[:200]
    return f"batch {status}"


def _report_entry(rec: dict, batch: dict) -> dict:
    times = {k: batch.get(k) for k in ("created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at",
                                       "expired_at", "cancelled_at") if batch.get(k)}
    return {"id": rec["batch_id"], "file_id": rec["file_id"], "label": rec.get("label"), "wave": rec.get("wave"),
            "model": rec["model"], "requests": rec["requests"], "bytes": rec["bytes"], "status": batch.get("status"),
            "request_counts": batch.get("request_counts") or {}, "answered": rec["answered"],
            "failed": rec["failed"], "resumed": bool(rec.get("resumed")), "times": times,
            "output_file_id": batch.get("output_file_id"), "error_file_id": batch.get("error_file_id")}
