"""The durable response cache: a paid answer is stored the moment it arrives and never paid for again."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path


def cache_key(model: str, messages: list[dict], params: dict | None = None) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params or {}},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """sqlite: key -> response JSON (the whole body: content, finish_reason, usage). WAL, 0600, one commit per
    response (survives kill -9)."""

    def __init__(self, cache_dir: str | os.PathLike, name: str = "llm_cache.sqlite"):
        d = Path(cache_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / name
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)  # exists with 0600 before sqlite touches it
        os.close(fd)
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed row survives a process crash
        self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, response TEXT, "
                        "prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)")
        for suffix in ("-wal", "-shm"):  # sqlite gives these the db's mode; make sure
            p = Path(str(self.path) + suffix)
            if p.exists():
                os.chmod(p, 0o600)

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT response FROM responses WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, response: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?)",
                            (key, model, response, prompt_tokens, completion_tokens, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.db.close()
