"""Download the Law StackExchange dump and turn it into records (steps 1 and 2 of the flow).

The download is resumable (a `.part` file and an HTTP Range request), checked (status, length),
shown (tqdm) and atomic (rename when complete). The converter streams the JSON array with ijson (C
backend), so the 106 MB file is never held twice in memory, and yields records in chunks ready to become
Dask partitions. Every element becomes one record or one counted drop with a reason.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import ijson
import pandas as pd

from records import conform, record_id

if TYPE_CHECKING:
    import requests

DATASET_URL = ("https://huggingface.co/datasets/ymoslem/Law-StackExchange/resolve/main/"
               "law-stackexchange-questions-answers.json")
DATASET_FILE = "law-stackexchange-questions-answers.json"
SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "sample" / DATASET_FILE


class DownloadError(Exception):
    """The dataset could not be downloaded (network, HTTP status, or a short read)."""


class InputError(Exception):
    """The input file cannot be read as the Law StackExchange JSON array; the message is one line."""


def download(url: str, dest: Path, connect_timeout: float = 10.0, read_timeout: float = 60.0,
             chunk_size: int = 1 << 16, progress: bool = True, session: requests.Session | None = None) -> Path:
    """Download `url` to `dest`, resuming a previous `.part`; returns `dest`. Skipped if `dest` exists.

    `dest` only ever appears complete: bytes go to `dest.part` and are renamed when the server's length
    (if it sent one) has been reached.
    """
    import requests  # here, not at the top: workers import this module (via decontam) and never download
    from tqdm import tqdm

    dest = Path(dest)
    if dest.exists() and dest.stat().st_size > 0:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    http = session or requests.Session()
    try:
        response = http.get(url, stream=True, timeout=(connect_timeout, read_timeout), headers=headers)
    except requests.RequestException as exc:
        raise DownloadError(f"cannot reach {url}: {_short(exc)}") from None
    with response:
        if response.status_code == 416 and have:  # the .part already holds everything
            part.replace(dest)
            return dest
        if response.status_code not in (200, 206):
            raise DownloadError(f"{url} answered HTTP {response.status_code}")
        if response.status_code == 200 and have:
            have = 0  # the server ignored our Range header: start over
        total = _expected_total(response, have)
        mode = "ab" if have else "wb"
        try:
            with open(part, mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                               desc=f"download {dest.name}", disable=not progress) as bar:
                for chunk in response.iter_content(chunk_size=chunk_size):
                    out.write(chunk)
                    bar.update(len(chunk))
        except requests.RequestException as exc:
            raise DownloadError(f"download of {url} broke off after {part.stat().st_size} bytes "
                                f"({_short(exc)}); run again to resume") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"download of {url} stopped at {size} of {total} bytes; run again to resume")
    part.replace(dest)
    return dest


def _expected_total(response: requests.Response, have: int) -> int | None:
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")
        if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
            return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + (have if response.status_code == 206 else 0)
    return None


def _short(exc: Exception, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file (recorded in the report so a run names exactly what it read); of a dump folder,
    over the files the converter reads."""
    if Path(path).is_dir():
        from sedump import dump_sha256

        return dump_sha256(Path(path))
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ConvertStats:
    """What the converter saw: elements read, records made, and drops by reason."""

    elements: int = 0
    records: int = 0
    dropped: Counter = field(default_factory=Counter)


_FIELD_TYPES = {"question_id": int, "question_title": str, "question_body": str, "score": int,
                "link": str, "license": str}


def _malformed_field(element) -> str | None:
    """The first field that is missing or wrongly typed, or None if the element is well-formed."""
    if not isinstance(element, dict):
        return "element"
    for name, kind in _FIELD_TYPES.items():
        value = element.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return name
    tags = element.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "tags"
    answers = element.get("answers")
    if answers is None:
        return None  # null answers: treated as "no answer"
    if not isinstance(answers, list):
        return "answers"
    for answer in answers:
        if not isinstance(answer, dict) or not isinstance(answer.get("body"), str):
            return "answers.body"
        score = answer.get("score")
        if not isinstance(score, int) or isinstance(score, bool):
            return "answers.score"
    return None


def best_answer(answers: list[dict]) -> dict:
    """The highest-scored answer; the first one on a tie."""
    best = answers[0]
    for answer in answers[1:]:
        if answer["score"] > best["score"]:
            best = answer
    return best


def element_to_record(element: dict, file_name: str) -> dict:
    """One well-formed source element (with at least one answer) as a record (raw HTML kept for cleaning)."""
    answer = best_answer(element["answers"])
    rid = record_id(element["question_id"])
    return {
        "id": rid,
        "source_id": rid,
        "title": element["question_title"],
        "question": element["question_body"],
        "answer": answer["body"],
        "question_score": element["score"],
        "answer_score": answer["score"],
        "tags": ",".join(sorted(element["tags"])),
        "link": element["link"],
        "license": element["license"],
        "file_name": file_name,
    }


def iter_record_chunks(path: Path, stats: ConvertStats, chunk_rows: int = 4096,
                       progress: bool = True) -> Iterator[pd.DataFrame]:
    """Stream the JSON array at `path` as record DataFrames of up to `chunk_rows` rows. The first chunks are a
    quarter and a half of that: the workers get their first partitions sooner instead of idling while the
    driver parses two full ones.

    Raises InputError (one line: file and byte position) when the file is empty, not a JSON array, or
    truncated/invalid; elements that are malformed or have no answer are counted in `stats.dropped`.
    """
    from tqdm import tqdm

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: the file is empty (expected a JSON array of questions)")
    seen_ids: set[int] = set()
    rows: list[dict] = []
    with open(path, "rb") as raw, tqdm(total=size, unit="B", unit_scale=True, desc="convert",
                                       disable=not progress) as bar:
        start = raw.read(4)
        offset = 3 if start.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 BOM is harmless: skip it
        first = start[offset:].lstrip()[:1]
        raw.seek(offset)
        if first and first != b"[":
            head = start[offset:].lstrip()
            if head[:1] in (b"{", b'"') or head[:1].isdigit():
                raise InputError(f"{path}: expected a JSON array of questions at byte {offset}, "
                                 f"found {_describe_start(head)}")
        items = ijson.items(raw, "item", use_float=True)
        last_pos, target = 0, max(1, chunk_rows // 4)
        try:
            for element in items:
                stats.elements += 1
                pos = raw.tell()
                if pos != last_pos:
                    bar.update(pos - last_pos)
                    last_pos = pos
                reason = _drop_reason(element, seen_ids)
                if reason:
                    stats.dropped[reason] += 1
                    continue
                rows.append(element_to_record(element, path.name))
                if len(rows) >= target:
                    stats.records += len(rows)
                    yield conform(pd.DataFrame(rows))
                    rows, target = [], min(chunk_rows, 2 * target)
        except ijson.JSONError as exc:
            raise InputError(f"{path}: not a complete JSON array near byte {raw.tell()} of {size} "
                             f"({_short(exc, 100)})") from None
        except UnicodeDecodeError as exc:
            # yajl turns a lone low-surrogate escape ("\udc80") into bytes Python cannot decode; exc.start is an
            # offset into that one string, so report the reader's position in the file instead
            raise InputError(f"{path}: invalid text in element {stats.elements + 1} near byte {raw.tell()} of "
                             f"{size}: a lone surrogate escape (\\udc00-\\udfff) or bytes that are not UTF-8 "
                             f"({exc.reason})") from None
        bar.update(size - last_pos)
    if stats.elements == 0 and first != b"[":
        raise InputError(f"{path}: no JSON array of questions found")
    if rows:
        stats.records += len(rows)
        yield conform(pd.DataFrame(rows))


def _describe_start(head: bytes) -> str:
    kinds = {b"{": "a JSON object", b'"': "a JSON string"}
    return kinds.get(head[:1], "a JSON number" if head[:1].isdigit() else repr(head[:10]))


def _drop_reason(element, seen_ids: set[int]) -> str | None:
    bad = _malformed_field(element)
    if bad:
        return f"malformed:{bad}"
    qid = element["question_id"]
    if qid in seen_ids:
        return "duplicate_question_id"
    seen_ids.add(qid)
    if not element.get("answers"):
        return "no_answer"
    if not element["license"].strip():
        return "no_license"  # the JSON dump names each question's licence and carries no date to infer it from
    return None


def resolve_input(input_path: str | None, url: str, raw_dir: Path, fallback: bool,
                  warn, progress: bool = True, site: str | None = None) -> dict:
    """Where the data comes from: a local file (the JSON array, or a Stack Exchange site's dump: .7z, extracted
    folder or Posts.xml), the downloaded dump, or (offline) the bundled sample.

    Returns the report's `source` dict: path, origin ("file"/"download"/"sample"), url, sample flag, format
    ("json", or for a dump "7z"/"folder"/"posts" with its site and the files read). `site` (--site) names a
    dump's site when its file name does not. Raises DownloadError if the download fails and fallback is off;
    InputError if `--input` is missing or is a dump that cannot be read.
    """
    if input_path:
        path = Path(input_path)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        from sedump import describe_dump, input_format

        source = {"path": str(path), "origin": "file", "url": None, "sample": is_bundled_sample(path),
                  "format": "json"}
        if input_format(path) != "json":
            source.update(describe_dump(path, site))
        elif not path.is_file():
            raise InputError(f"{path}: not a file")
        return _with_site(source)
    dest = Path(raw_dir) / DATASET_FILE
    try:
        download(url, dest, progress=progress)
        return _with_site({"path": str(dest), "origin": "download", "url": url, "sample": False, "format": "json"})
    except DownloadError as exc:
        if not fallback:
            raise
        warn(f"DOWNLOAD FAILED: {exc}\n"
             f"  Falling back to the bundled SAMPLE ({SAMPLE_PATH.name}, generated data, not real Law.SE posts).\n"
             f"  Pass --input FILE to use a local copy of the dump, or --no-fallback to make this an error.")
        return _with_site({"path": str(SAMPLE_PATH), "origin": "sample", "url": url, "sample": True,
                           "format": "json", "download_error": str(exc)})


def is_bundled_sample(path: Path) -> bool:
    """True for the generated sample shipped in data/sample/ (the JSON file or the site dump beside it)."""
    sample_dir = SAMPLE_PATH.parent.resolve()
    resolved = Path(path).resolve()
    return resolved == sample_dir or sample_dir in resolved.parents


def _with_site(source: dict) -> dict:
    """The source with the site it is from (sites.describe_site); the JSON dump is Law Stack Exchange's, in the
    schema of the Hugging Face dump it names (`dataset`)."""
    from sites import HF_DATASET, LAW_SITE, describe_site

    if source["format"] == "json":
        source.update(describe_site(LAW_SITE), dataset=HF_DATASET)
    else:
        source.update(describe_site(source["site"]))
    return source


def new_convert_stats(source: dict) -> ConvertStats:
    """The stats object the source's converter fills: a sedump.DumpStats for a site's dump."""
    if source["format"] == "json":
        return ConvertStats()
    from sedump import DumpStats

    return DumpStats()


def iter_input_chunks(source: dict, stats: ConvertStats, chunk_rows: int = 4096, progress: bool = True,
                      dump_cfg=None) -> Iterator[pd.DataFrame]:
    """Record chunks of the resolved source: the JSON array (iter_record_chunks) or a site's dump
    (sedump.iter_dump_chunks, read as `dump_cfg`: a sedump.DumpConfig, None for its defaults)."""
    if source["format"] == "json":
        return iter_record_chunks(Path(source["path"]), stats, chunk_rows, progress)
    from sedump import iter_dump_chunks

    return iter_dump_chunks(Path(source["path"]), stats, dump_cfg, chunk_rows, progress)

