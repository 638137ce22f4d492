"""Writing the dataset: atomic files, JSONL splits in the record contract.

Nothing is ever half-written: each file is written to a temporary file in the same directory, flushed
and fsynced, then renamed over the target, so a crash, Ctrl-C or a full disk leaves the previous file
(or none), never a truncated one.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

import orjson
import pandas as pd

from records import COLUMNS, to_json_columns


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files a killed writer (kill -9, power loss) left beside `path`: `.<name>.<pid>.*.tmp` whose
    process is gone (or with no pid in the name); a live writer's temp file is left alone."""
    removed = []
    for tmp in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        pid = tmp.name[len(Path(path).name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


@contextmanager
def atomic_write(path: Path, mode: str = "wb", file_mode: int = 0o644) -> Iterator[IO]:
    """Open a temp file beside `path`; on success fsync and rename it to `path`, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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
    """Records as JSON lines in contract column order (`reward` as an object). Made column by column: the values
    of df.to_dict("records") without its per-row dicts, which cost more than the JSON."""
    columns = {name: _values(df[name]) for name in COLUMNS}
    columns.update(to_json_columns(columns))
    lines = [orjson.dumps(dict(zip(COLUMNS, row))) for row in zip(*columns.values())]
    return b"\n".join(lines) + (b"\n" if lines else b"")


def _values(column: pd.Series) -> list:
    """A column's values as DataFrame.to_dict("records") gives them: Python scalars, None for pd.NA."""
    values = column.tolist()
    if column.hasnans:
        values = [None if value is pd.NA else value for value in values]
    return values


def split_file_name(split: str) -> str:
    """The tutorial's file names: law-qa-train.jsonl, law-qa-val.jsonl, law-qa-test.jsonl."""
    return f"law-qa-{split}.jsonl"


def user_prompt(title: str, question: str) -> str:
    """The user turn of a training pair: the title, a blank line, the question (as the reward model sees it)."""
    return f"{title}\n\n{question}"


def chat_jsonl_bytes(df: pd.DataFrame, system_prompt: str | None = None) -> bytes:
    """Rows as chat JSON lines: {"messages": [{"role": "system"}?, {"role": "user"}, {"role": "assistant"}]}."""
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    lines = [orjson.dumps({"messages": head + [{"role": "user", "content": user_prompt(t, q)},
                                               {"role": "assistant", "content": a}]})
             for t, q, a in zip(*_texts(df))]
    return b"\n".join(lines) + (b"\n" if lines else b"")


def _texts(df: pd.DataFrame) -> tuple[list, list, list]:
    """Title, question and answer as lists (what iterating the columns gives, without pandas' per-value cost)."""
    return df["title"].tolist(), df["question"].tolist(), df["answer"].tolist()


def nemo_jsonl_bytes(df: pd.DataFrame, system_prompt: str | None = None) -> bytes:
    """Rows as NeMo SFT JSON lines: {"input": title + question, "output": answer} (no system turn)."""
    lines = [orjson.dumps({"input": user_prompt(t, q), "output": a}) for t, q, a in zip(*_texts(df))]
    return b"\n".join(lines) + (b"\n" if lines else b"")


@dataclass(frozen=True)
class Format:
    """A fine-tuning format written next to the tutorial files: `<name>/<split>.jsonl`, encoded by `encode`.
    The writer, the card, the audit and `--dry-run` all read this registry; adding a format is one entry."""

    name: str
    encode: Callable[[pd.DataFrame, str | None], bytes]  # (rows of one split, system prompt) -> JSONL bytes
    schema: str  # one line for the card and --help
    used_by: str


FORMATS: dict[str, Format] = {
    "chat": Format("chat", chat_jsonl_bytes,
                   '{"messages": [{"role": "system"}?, {"role": "user", "content": title + "\\n\\n" + question}, '
                   '{"role": "assistant", "content": answer}]}',
                   "OpenAI fine-tuning, TRL SFTTrainer, most chat templates"),
    "nemo": Format("nemo", nemo_jsonl_bytes, '{"input": title + "\\n\\n" + question, "output": answer}',
                   "NeMo SFT data loaders"),
}


def parse_formats(text: str | None) -> tuple[str, ...]:
    """'all' / 'chat,nemo' / 'none' -> the formats in registry order. Raises ValueError naming bad ones."""
    if text is None or text.strip().lower() in ("", "all"):
        return tuple(FORMATS)
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    unknown = [n for n in names if n not in FORMATS and n not in ("jsonl", "tutorial")]
    if unknown:
        raise ValueError(f"--formats: unknown format(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(FORMATS)}, 'all' or 'none' (the tutorial jsonl is always written)")
    return tuple(f for f in FORMATS if f in names)


def format_file_name(fmt: str, split: str) -> str:
    """Path of a split in a fine-tuning format, relative to the final directory."""
    return f"{fmt}/{split}.jsonl"


def describe_files(formats: tuple[str, ...]) -> str:
    """The data files a run writes, in one line (for --dry-run)."""
    return ("law-qa-{train,val,test}.jsonl" + "".join(f", {f}/{{train,val,test}}.jsonl" for f in formats)
            + ", removed.jsonl")


@dataclass
class EncodedPartition:
    """One partition's rows as the bytes each output file gets, and what the writer counts of them: made where the
    partition lives (a Dask worker encodes while the driver writes), so only bytes and counts travel."""

    formats: tuple[str, ...]
    chunks: dict[str, dict[str, bytes]]  # format ("jsonl" = the tutorial files) -> split -> JSONL bytes
    rows: dict[str, int]  # split -> rows
    licenses: dict[str, int]
    by_round: dict[str, int]  # synthetic rows by SDG round
    rewards: list[dict]  # the synthetic rows' reward dicts
    keys: pd.DataFrame  # source_id and license of each row (sedump.KeptPosts reads them)


def encode_partition(df: pd.DataFrame, formats: tuple[str, ...] = tuple(FORMATS),
                     system_prompt: str | None = None) -> EncodedPartition:
    """A partition's rows encoded for every file they go to (the tutorial JSONL and each fine-tuning format, by
    split), with the counts `write_final` reports. Raises ValueError for a row of an unknown split."""
    from split import SPLITS

    chunks: dict[str, dict[str, bytes]] = {fmt: {} for fmt in ("jsonl", *formats)}
    if not len(df):  # nothing to encode or count (a frame of no rows may lack the columns too)
        return EncodedPartition(tuple(formats), chunks, {}, {}, {}, [], pd.DataFrame({"source_id": [], "license": []}))
    rows: dict[str, int] = {}
    for split, group in df.groupby("split", sort=False):
        if split not in SPLITS:
            raise ValueError(f"row with unknown split {split!r}")
        chunks["jsonl"][split] = jsonl_bytes(group)
        for fmt in formats:
            chunks[fmt][split] = FORMATS[fmt].encode(group, system_prompt)
        rows[split] = len(group)
    licenses = {str(k): int(n) for k, n in df["license"].value_counts().items()}
    synthetic = df[df["synthetic"].astype(bool)]
    by_round = {str(k): int(n) for k, n in synthetic["round"].value_counts().items()}
    rewards = [orjson.loads(r) for r in synthetic["reward"] if r]
    keys = df[["source_id", "license"]].reset_index(drop=True)
    return EncodedPartition(tuple(formats), chunks, rows, licenses, by_round, rewards, keys)


def write_final(final_dir: Path, partitions, formats: tuple[str, ...] = tuple(FORMATS),
                system_prompt: str | None = None, remove_stale: bool = True) -> dict:
    """Stream partitions (in order) into the tutorial files and each fine-tuning format, all atomically.

    A partition is a DataFrame (encoded here) or an `EncodedPartition` made for the same `formats` (e.g. by the
    worker holding it); each is read once and its rows go to their split's file in every format. No file appears
    until every partition has been written, and then all appear together (a failure leaves the previous
    files). Files of formats not asked for this time are removed so the folder never mixes two runs.
    Returns {"rows": {split: n}, "licenses": {license: n}, "files": {format: {split: relative path}},
    "synthetic": {"rows": n, "by_round": {round: n}}, "synthetic_rewards": [reward dict per synthetic row]}.
    """
    from collections import Counter
    from contextlib import ExitStack

    from split import SPLITS

    final_dir = Path(final_dir)
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
    files = {"jsonl": {s: split_file_name(s) for s in SPLITS}}
    files.update({fmt: {s: format_file_name(fmt, s) for s in SPLITS} for fmt in formats})
    counts, licenses, by_round = Counter({s: 0 for s in SPLITS}), Counter(), Counter()
    rewards: list[dict] = []
    with ExitStack() as stack:
        handles = {fmt: {s: stack.enter_context(atomic_write(final_dir / rel, "wb")) for s, rel in by_split.items()}
                   for fmt, by_split in files.items()}
        for part in partitions:
            if not isinstance(part, EncodedPartition):
                part = encode_partition(part, formats, system_prompt)
            elif part.formats != tuple(formats):
                raise ValueError(f"a partition encoded for {part.formats}, written as {tuple(formats)}")
            for fmt, by_split in part.chunks.items():
                for split, data in by_split.items():
                    handles[fmt][split].write(data)
            counts.update(part.rows)
            licenses.update(part.licenses)
            by_round.update(part.by_round)
            rewards += part.rewards
    for fmt in FORMATS if remove_stale else ():
        if fmt not in formats:
            for s in SPLITS:
                stale = final_dir / format_file_name(fmt, s)
                if stale.exists():
                    stale.unlink()
    return {"rows": {s: counts[s] for s in SPLITS}, "licenses": dict(sorted(licenses.items())), "files": files,
            "synthetic": {"rows": sum(by_round.values()),
                          "by_round": dict(sorted(by_round.items(), key=lambda kv: int(kv[0])))},
            "synthetic_rewards": rewards}


def write_removed(path: Path, removed: pd.DataFrame) -> int:
    """The rows dedup removed (id, kind, duplicate_of, similarity, ...) as JSONL, atomically; returns rows."""
    with atomic_write(path, "wb") as f:
        for row in removed.to_dict("records"):
            f.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS) + b"\n")
    return len(removed)
