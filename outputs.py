"""Writing the dataset: atomic files, JSONL splits in the record contract.

Nothing is ever half-written: each file is written to a temporary file in the same directory, flushed
and fsynced, then renamed over the target, so a crash, Ctrl-C or a full disk leaves the previous file
(or none), never a truncated one.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import orjson
import pandas as pd

from records import COLUMNS, to_json_dict


@contextmanager
def atomic_write(path: Path, mode: str = "wb", file_mode: int = 0o644) -> Iterator[IO]:
    """Open a temp file beside `path`; on success fsync and rename it to `path`, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def jsonl_bytes(df: pd.DataFrame) -> bytes:
    """Records as JSON lines in contract column order (`reward` as an object)."""
    lines = [orjson.dumps(to_json_dict(row)) for row in df[COLUMNS].to_dict("records")]
    return b"\n".join(lines) + (b"\n" if lines else b"")


def write_jsonl(path: Path, frames: Iterator[pd.DataFrame] | list[pd.DataFrame]) -> int:
    """Write the frames, in order, to one JSONL file atomically; returns the row count."""
    rows = 0
    with atomic_write(path, "wb") as f:
        for df in frames:
            if len(df):
                f.write(jsonl_bytes(df))
                rows += len(df)
    return rows


def split_file_name(split: str) -> str:
    """The tutorial's file names: law-qa-train.jsonl, law-qa-val.jsonl, law-qa-test.jsonl."""
    return f"law-qa-{split}.jsonl"


def write_split_files(final_dir: Path, partitions) -> dict[str, int]:
    """Stream partitions (in order) into law-qa-{train,val,test}.jsonl, all three atomically.

    Each partition is read once and its rows go to their split's file; the files appear together only
    when every partition has been written.
    """
    from contextlib import ExitStack

    from split import SPLITS

    counts = {s: 0 for s in SPLITS}
    with ExitStack() as stack:
        files = {s: stack.enter_context(atomic_write(Path(final_dir) / split_file_name(s), "wb")) for s in SPLITS}
        for df in partitions:
            for split, group in df.groupby("split", sort=False):
                if split not in files:
                    raise ValueError(f"row with unknown split {split!r}")
                files[split].write(jsonl_bytes(group))
                counts[split] += len(group)
    return counts
