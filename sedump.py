"""Read a Stack Exchange site's data dump (the `.7z`, its extracted folder, or `Posts.xml`) as records.

The dump holds one `<row .../>` per post in `Posts.xml` (questions are PostTypeId 1, answers PostTypeId 2 with
a ParentId) and, beside it, `PostLinks.xml` (LinkTypeId 3 marks a question closed as a duplicate of another).
Records follow the record contract (records.py), one per answered question, in Posts.xml order, with the raw
HTML bodies, so clean/filter/dedup run unchanged. A record's licence is its posts' ContentLicense, or where the
dump predates that attribute, Stack Exchange's licence for the post's CreationDate (LICENSE_UNTIL); what a row does
not carry (its dates, whether its licence was inferred) is kept per record for the report (KeptPosts).

Memory stays bounded whatever the site's size: pass 1 streams Posts.xml keeping only integers per post (ids,
parent, score, accepted answer) and picks each question's answer; pass 2 streams it again and spills the
chosen questions and answers to an unlinked temp file; records are then read back from it in question order.
A `.7z` is decompressed as a stream (py7zr, in a thread feeding a bounded queue): never unpacked to disk, never
whole in memory; two passes are two decompressions. XML is parsed incrementally by lxml and every row is
cleared once read.
"""
from __future__ import annotations

import argparse
import os
import queue
import re
import tempfile
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import orjson
import pandas as pd
from lxml import etree

from docbuilder import ConvertStats, InputError
from records import conform

POSTS = "Posts.xml"
POST_LINKS = "PostLinks.xml"
ANSWER_POLICIES = ("best", "accepted")
DUPLICATE_LINK = 3  # PostLinks LinkTypeId: 1 = linked, 3 = duplicate
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
READ_BLOCK = 1 << 20
_SITE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")
_ANGLE_TAGS = re.compile(r"<([^<>]+)>")

# Stack Exchange's rule for the licence of user contributions, by the date (UTC) the content was contributed, as its
# help center states it ("What is the license for the content I post?", https://stackoverflow.com/help/licensing):
# before 2011-04-08 CC BY-SA 2.5; from 2011-04-08 up to but not including 2018-05-02 CC BY-SA 3.0; on or after
# 2018-05-02 CC BY-SA 4.0. Dumps made before Stack Exchange added the ContentLicense attribute lack it: a post's
# licence then follows from its CreationDate (UTC in the dumps). An edit is contributed under the licence of its own
# date, so for an edited post this is the licence of the post as first written.
# Times are compared as integers YYYYMMDDhhmmss (cheap to make from the dump's ISO text, ordered as time is).
LICENSE_UNTIL = ((20110408000000, "CC BY-SA 2.5"), (20180502000000, "CC BY-SA 3.0"))
LATEST_LICENSE = "CC BY-SA 4.0"
LICENSE_RULE = ("CC BY-SA 2.5 before 2011-04-08, 3.0 from 2011-04-08, 4.0 from 2018-05-02 (UTC, by the post's "
                "CreationDate; https://stackoverflow.com/help/licensing)")
_CREATED_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|[T ]\d{2}:\d{2}:\d{2})")
NO_DATE = -1  # a post without a readable CreationDate, in the integer time arrays


# ============================================================================================ configuration

@dataclass
class DumpConfig:
    """How a Stack Exchange dump is read: the site (None: from the input's name) and which answer is kept."""

    site: str | None = None
    answer: str = "best"  # best: highest score, first on a tie; accepted: the accepted one when there is one


def add_dump_arguments(group: argparse._ActionsContainer) -> None:
    """--site and --answer (for a Stack Exchange dump given as --input)."""
    group.add_argument("--site", metavar="NAME", default=None,
                       help="the Stack Exchange site of a dump given as --input, e.g. law.stackexchange.com "
                            "(default: from the archive or folder name)")
    group.add_argument("--answer", choices=ANSWER_POLICIES, default=None,
                       help=f"which answer a record keeps (dump input): best = highest score, first on a tie; "
                            f"accepted = the accepted answer when there is one, else best "
                            f"(default: {DumpConfig.answer})")


def dump_config_from_args(args: argparse.Namespace) -> DumpConfig:
    """The validated DumpConfig; ValueError('--flag: why') on a bad value."""
    cfg = DumpConfig()
    if args.answer is not None:
        if args.answer not in ANSWER_POLICIES:
            raise ValueError(f"--answer: {args.answer!r} is not one of {', '.join(ANSWER_POLICIES)}")
        cfg.answer = args.answer
    if args.site is not None:
        site = args.site.strip().lower()
        if not _SITE_RE.match(site):
            raise ValueError(f"--site: {args.site!r} is not a site name like law.stackexchange.com")
        cfg.site = site
    # a missing --input is resolve_input's one-line error, not a flag error here
    json_input = not args.input or (Path(args.input).exists() and input_format(Path(args.input)) == "json")
    if json_input:
        if cfg.site is not None:
            raise ValueError("--site: only for a Stack Exchange dump given as --input (.7z, folder or Posts.xml)")
        if cfg.answer != DumpConfig.answer:
            raise ValueError("--answer: the JSON input has no accepted answers; give a site's dump as --input")
    return cfg


# ============================================================================================ input kinds

def input_format(path: Path) -> str:
    """'7z', 'folder', 'posts' (a Posts.xml) or 'json' (anything else: the Law StackExchange JSON array)."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if path.suffix.lower() == ".7z":
        return "7z"
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return "json"
    if head.startswith(SEVEN_ZIP_MAGIC):
        return "7z"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if path.suffix.lower() == ".xml" or (path.suffix.lower() != ".json" and text[:6] in (b"<?xml ", b"<posts")):
        return "posts"
    return "json"


def site_from_path(path: Path, fmt: str) -> str | None:
    """The site a dump's name says (law.stackexchange.com.7z, law.stackexchange.com[.7z]/, .../Posts.xml)."""
    path = Path(path).resolve()
    if fmt == "posts":
        path = path.parent
    name = path.name.lower()
    if name.endswith(".7z"):
        name = name[:-3]
    name = re.sub(r"-posts$", "", name)  # stackoverflow.com-Posts.7z: the one site split per table
    return name if _SITE_RE.match(name) else None


def site_id_prefix(site: str) -> str:
    """Record id prefix of a site: drop the top-level domain, dots become dashes, then '-qa-'.

    law.stackexchange.com -> law-stackexchange-qa- (the JSON path's ids), stackoverflow.com -> stackoverflow-qa-.
    """
    labels = site.lower().split(".")
    stem = labels[:-1] if len(labels) > 1 else labels
    return "-".join(stem) + "-qa-"


def dump_site(path: Path, fmt: str, site: str | None) -> str:
    """`site` if given, else the site the input's name says; InputError when neither tells."""
    site = site or site_from_path(path, fmt)
    if site is None:
        raise InputError(f"{path}: cannot tell the site from the name; pass --site NAME "
                         f"(e.g. --site law.stackexchange.com)")
    return site


def describe_dump(path: Path, site: str | None) -> dict:
    """The report's `source` fields of a dump input (format, site, files used); InputError if unusable."""
    path = Path(path)
    fmt = input_format(path)
    files = sorted(_members(path, fmt))
    return {"format": fmt, "site": dump_site(path, fmt, site), "files": files}


def dump_sha256(path: Path) -> str:
    """sha256 of a dump folder: over the name and sha256 of each file the converter reads."""
    import hashlib

    from docbuilder import sha256_of

    digest = hashlib.sha256()
    for name, file_path in sorted(_members(Path(path), "folder").items()):
        digest.update(f"{name}\0{sha256_of(Path(file_path))}\n".encode())
    return digest.hexdigest()


# ============================================================================================ streaming bytes

def _members(path: Path, fmt: str) -> dict[str, object]:
    """Posts.xml and (when present) PostLinks.xml: name -> where it is (a file path, or the archive member)."""
    if fmt == "posts":
        found = {POSTS: path}
        links = path.parent / POST_LINKS
        if links.is_file():
            found[POST_LINKS] = links
        return found
    if fmt == "folder":
        found = {}
        for name in (POSTS, POST_LINKS):
            matches = [p for p in path.iterdir() if p.name.lower() == name.lower() and p.is_file()]
            if matches:
                found[name] = sorted(matches)[0]
        if POSTS not in found:
            raise InputError(f"{path}: no {POSTS} in the folder (expected an extracted Stack Exchange dump)")
        return found
    names = _archive_names(path)
    found = {}
    for name in (POSTS, POST_LINKS):
        matches = sorted(n for n in names if n.rsplit("/", 1)[-1].lower() == name.lower())
        if matches:
            found[name] = matches[0]
    if POSTS not in found:
        shown = ", ".join(sorted(names)[:8]) or "nothing"
        raise InputError(f"{path}: no {POSTS} in the archive (it holds {shown})")
    return found


def _archive_names(path: Path) -> list[str]:
    import py7zr

    try:
        with py7zr.SevenZipFile(path, mode="r") as archive:
            return [f.filename for f in archive.list() if not f.is_directory]
    except Exception as exc:  # py7zr raises many kinds for a bad archive; all mean the same to the user
        raise InputError(f"{path}: not a readable 7z archive ({_one_line(exc)})") from None


def _member_sizes(path: Path, fmt: str, members: dict) -> int:
    if fmt != "7z":
        return sum(Path(p).stat().st_size for p in members.values())
    import py7zr

    with py7zr.SevenZipFile(path, mode="r") as archive:
        wanted = set(members.values())
        return sum(f.uncompressed for f in archive.list() if f.filename in wanted)


def _stream(path: Path, fmt: str, members: dict[str, object]) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) blocks of the wanted members; a member's blocks come in order."""
    if fmt != "7z":
        for name, file_path in members.items():
            with open(file_path, "rb") as f:
                for block in iter(lambda: f.read(READ_BLOCK), b""):
                    yield name, block
        return
    yield from _stream_7z(path, {arc: name for name, arc in members.items()})


class _Stop(Exception):
    """The reader went away: abort the decompression."""


class _BlockQueue:
    """A bounded queue from the decompression thread to the reader; `put` gives up once the reader left."""

    def __init__(self, depth: int):
        self.blocks: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def put(self, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop()
            try:
                self.blocks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


def _queue_factory(sink: _BlockQueue, wanted: dict[str, str]):
    """A py7zr WriterFactory whose files hand each decompressed block to `sink` as (member name, bytes)."""
    from py7zr.io import Py7zIO, WriterFactory

    class QueueWriter(Py7zIO):
        def __init__(self, name: str):
            self.name, self.length = name, 0

        def write(self, data) -> int:
            view = memoryview(data)
            for start in range(0, len(view), READ_BLOCK):  # big blocks are handed on in slices
                sink.put((self.name, bytes(view[start:start + READ_BLOCK])))
            self.length += len(view)
            return len(view)

        def read(self, size=None) -> bytes:
            return b""

        def seek(self, offset, whence=0) -> int:
            return self.length

        def seekable(self) -> bool:  # py7zr then does not rewind the file when it is done
            return False

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return self.length

    class Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            return QueueWriter(wanted.get(filename, filename))

    return Factory()


def _stream_7z(path: Path, wanted: dict[str, str], depth: int = 8) -> Iterator[tuple[str, bytes]]:
    """Decompress the wanted archive members (archive name -> our name) in a thread; blocks reach the caller
    through a bounded queue, so at most `depth` blocks of READ_BLOCK bytes wait in memory."""
    import py7zr

    sink = _BlockQueue(depth)

    def work() -> None:
        try:
            with py7zr.SevenZipFile(path, mode="r") as archive:
                archive.extract(targets=list(wanted), factory=_queue_factory(sink, wanted))
            sink.put(("", None))
        except _Stop:
            pass
        except BaseException as exc:  # handed to the reader, which raises it as one line
            try:
                sink.put(("", exc))
            except _Stop:
                pass

    worker = threading.Thread(target=work, name="sedump-7z", daemon=True)
    worker.start()
    try:
        while True:
            name, block = sink.blocks.get()
            if block is None:
                return
            if isinstance(block, BaseException):
                raise InputError(f"{path}: cannot decompress ({_one_line(block)})")
            yield name, block
    finally:
        sink.stop.set()
        # the worker stops at its next block; one still skipping an earlier member of a solid archive
        # (PostHistory.xml precedes Posts.xml in the dumps) is a daemon and is not waited for
        worker.join(timeout=2.0)


def _xml_error(exc: etree.XMLSyntaxError) -> str:
    return _one_line(Exception(exc.msg or exc), 120)  # .msg: without lxml's "(<string>, line N)" suffix


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ============================================================================================ XML rows

class _RowReader:
    """Incremental parser of one `<root><row .../>...</root>` file: each row goes to `on_row`, then is freed."""

    def __init__(self, label: str, root: str, on_row: Callable):
        self.label, self.root, self.on_row = label, root, on_row
        self.parser = etree.XMLPullParser(events=("end",), tag="row", huge_tree=True,
                                          resolve_entities=False, no_network=True)
        self.checked = False

    def feed(self, block: bytes) -> None:
        try:
            self.parser.feed(block)
            self._drain()
        except etree.XMLSyntaxError as exc:
            raise InputError(f"{self.label}: not well-formed XML ({_xml_error(exc)})") from None

    def close(self) -> None:
        try:
            root = self.parser.close()
            self._drain()
        except etree.XMLSyntaxError as exc:
            raise InputError(f"{self.label}: not well-formed XML, truncated? ({_xml_error(exc)})") from None
        if not self.checked and root is not None and root.tag != self.root:
            raise InputError(f"{self.label}: expected a <{self.root}> element, found <{root.tag}>")

    def _drain(self) -> None:
        for _event, row in self.parser.read_events():
            parent = row.getparent()
            if not self.checked:
                if parent is None or parent.tag != self.root:
                    found = "no parent" if parent is None else f"<{parent.tag}>"
                    raise InputError(f"{self.label}: expected <row> elements inside <{self.root}>, found {found}")
                self.checked = True
            self.on_row(row)
            row.clear()
            while row.getprevious() is not None:
                del parent[0]


def _parse(path: Path, fmt: str, members: dict, handlers: dict[str, tuple[str, Callable]], bar) -> None:
    """Stream the members named in `handlers` (name -> (root tag, on_row)) through their row readers."""
    wanted = {name: where for name, where in members.items() if name in handlers}
    readers = {name: _RowReader(f"{path}: {name}" if fmt == "7z" else str(where), *handlers[name])
               for name, where in wanted.items()}
    for name, block in _stream(path, fmt, wanted):
        readers[name].feed(block)
        bar.update(len(block))
    for reader in readers.values():
        reader.close()


def parse_tags(raw: str | None) -> list[str]:
    """Tags in either dump format: '<a><b>' (older dumps) or '|a|b|' (newer ones)."""
    if not raw:
        return []
    raw = raw.strip()
    if raw.startswith("<"):
        return _ANGLE_TAGS.findall(raw)
    return [t for t in raw.split("|") if t]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# ============================================================================================ licences

def creation_time(value: str | None) -> int | None:
    """A dump's CreationDate ("2016-08-02T15:39:14.947", UTC) as the integer 20160802153914; None when missing or
    unreadable. Integers, not datetimes: this runs for every post of a site, and makes the rule two comparisons."""
    if not value or not _CREATED_RE.match(value):
        return None
    time = int(value[:4] + value[5:7] + value[8:10] + (value[11:13] + value[14:16] + value[17:19]
                                                       if len(value) >= 19 else "000000"))
    month, day, clock = time // 100_000_000 % 100, time // 1_000_000 % 100, time % 1_000_000
    if not (1 <= month <= 12 and 1 <= day <= 31 and clock // 10_000 < 24 and clock // 100 % 100 < 60
            and clock % 100 < 61):
        return None
    return time


def license_for_date(created: int) -> str:
    """Stack Exchange's licence for content contributed at `created` (creation_time's integer, UTC), by the rule in
    LICENSE_UNTIL."""
    for until, license_ in LICENSE_UNTIL:
        if created < until:
            return license_
    return LATEST_LICENSE


def post_license(content_license: str | None, created: str | int | None) -> tuple[str | None, bool]:
    """(licence, inferred) of a post: its ContentLicense where the dump has one, else the licence of its
    CreationDate (inferred: True); (None, False) when it has neither. `created`: the CreationDate's text, or
    creation_time's integer when the caller has it already."""
    if content_license and content_license.strip():
        return content_license.strip(), False
    when = created if isinstance(created, int) else creation_time(created)
    return (license_for_date(when), True) if when is not None else (None, False)


def record_license(question: str, answer: str) -> str:
    """A row's licence: its question's and answer's one licence when they agree, else both, labelled — the row
    holds both posts' text, so a consumer filtering on one version must not take a mixed row for it."""
    return question if question == answer else f"{question} (question), {answer} (answer)"


def _iso(time: int) -> str:
    """creation_time's integer back to ISO text (UTC)."""
    digits = f"{time:014d}"
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}T{digits[8:10]}:{digits[10:12]}:{digits[12:]}"


def _period(first: int | None, last: int | None) -> dict | None:
    """{"first", "last"} as ISO times (UTC) from creation_time's integers; None when no post had a date."""
    if first is None or last is None:
        return None
    return {"first": _iso(first), "last": _iso(last)}


# ============================================================================================ stats

@dataclass
class RecordMeta:
    """What a record's row does not carry, in record order: its question's id, the earliest and latest CreationDate
    of its two posts (creation_time's integers, NO_DATE where unreadable) and whether its licence was inferred (1) or the
    dump's (0). Compact arrays: a few bytes per record, whatever the site's size."""

    qid: array = field(default_factory=lambda: array("q"))
    first: array = field(default_factory=lambda: array("q"))
    last: array = field(default_factory=lambda: array("q"))
    inferred: array = field(default_factory=lambda: array("b"))

    def add(self, qid: int, first: int, last: int, inferred: bool) -> None:
        self.qid.append(qid)
        self.first.append(first)
        self.last.append(last)
        self.inferred.append(int(inferred))

    def period(self) -> dict | None:
        """The span of every record's posts (min first, max last CreationDate), or None without dates."""
        first, last = _np(self.first), _np(self.last)
        first, last = first[first != NO_DATE], last[last != NO_DATE]
        return _period(int(first.min()), int(last.max())) if len(first) and len(last) else None


@dataclass
class DumpStats(ConvertStats):
    """ConvertStats for a dump: `elements` counts the question rows of Posts.xml; also every other row.

    posts = questions (elements) + answers (joined to a question row) + sum(skipped): rows that are not a
    question nor a usable answer, by reason. `duplicate_links` are (duplicate, target) record-id pairs whose
    both ends are records of this conversion.
    """

    site: str = ""
    answer_policy: str = DumpConfig.answer
    posts: int = 0
    answers: int = 0
    skipped: Counter = field(default_factory=Counter)
    accepted_taken: int = 0    # records whose answer is the accepted one and not the best-scored one
    accepted_missing: int = 0  # questions naming an accepted answer that is not in Posts.xml (best used)
    answer_license_differs: int = 0
    links: Counter = field(default_factory=Counter)
    duplicate_links: list = field(default_factory=list)
    licenses: Counter = field(default_factory=Counter)           # records per licence
    licenses_inferred: Counter = field(default_factory=Counter)  # of those, records with a licence from a date
    per_record: RecordMeta = field(default_factory=lambda: RecordMeta(), repr=False)

    def section(self) -> dict:
        """The report's `dump` section (JSON-safe)."""
        return {
            "site": self.site, "answer": self.answer_policy, "posts": self.posts, "questions": self.elements,
            "answers": self.answers, "records": self.records,
            "skipped": {k: v for k, v in sorted(self.skipped.items()) if v},
            "accepted_taken": self.accepted_taken, "accepted_missing": self.accepted_missing,
            "answer_license_differs": self.answer_license_differs,
            "licenses": {k: {"records": n, "inferred": self.licenses_inferred[k]}
                         for k, n in sorted(self.licenses.items())},
            "license_rule": LICENSE_RULE, "period": self.per_record.period(),
            "duplicate_links": {"seen": self.links["seen"], "pairs": len(self.duplicate_links),
                                "missing_end": self.links["missing_end"], "repeated": self.links["repeated"],
                                "self": self.links["self"], "malformed": self.links["malformed"],
                                "other_link_types": self.links["other_types"]},
        }


# ============================================================================================ pass 1: integers

_Q_OK, _Q_NO_BODY, _Q_NO_TITLE, _Q_BAD_SCORE = 0, 1, 2, 3
_Q_REASONS = {_Q_NO_BODY: "no_body", _Q_NO_TITLE: "no_title", _Q_BAD_SCORE: "malformed:Score"}


class _Index:
    """Pass 1: per post only integers (row number, ids, score), in compact arrays."""

    def __init__(self, stats: DumpStats):
        self.stats = stats
        self.row = 0
        self.q = {k: array("q") for k in ("row", "id", "accepted")}
        self.q_code = array("b")
        self.a = {k: array("q") for k in ("row", "id", "parent", "score")}
        self.link_post, self.link_target = array("q"), array("q")

    def on_post(self, row) -> None:
        get = row.get
        ordinal = self.row
        self.row += 1
        pid, kind = _int(get("Id")), _int(get("PostTypeId"))
        if pid is None or kind is None:
            self.stats.skipped["malformed_row"] += 1
        elif kind == 1:
            body = get("Body")
            if not body or body.isspace():
                code = _Q_NO_BODY
            elif not (get("Title") or "").strip():
                code = _Q_NO_TITLE
            else:
                code = _Q_OK if _int(get("Score")) is not None else _Q_BAD_SCORE
            for key, value in (("row", ordinal), ("id", pid), ("accepted", _int(get("AcceptedAnswerId")) or 0)):
                self.q[key].append(value)
            self.q_code.append(code)
        elif kind == 2:
            parent, score, body = _int(get("ParentId")), _int(get("Score")), get("Body")
            if parent is None or score is None:
                self.stats.skipped["malformed_answer"] += 1
            elif not body or body.isspace():
                self.stats.skipped["answer_no_body"] += 1
            else:
                for key, value in (("row", ordinal), ("id", pid), ("parent", parent), ("score", score)):
                    self.a[key].append(value)
        else:
            self.stats.skipped[f"post_type:{kind}"] += 1

    def on_link(self, row) -> None:
        links = self.stats.links
        kind, post, target = _int(row.get("LinkTypeId")), _int(row.get("PostId")), _int(row.get("RelatedPostId"))
        if kind is None or post is None or target is None:
            links["malformed"] += 1
        elif kind != DUPLICATE_LINK:
            links["other_types"] += 1
        else:
            links["seen"] += 1
            self.link_post.append(post)
            self.link_target.append(target)


def _np(values: array) -> np.ndarray:
    return np.frombuffer(values, dtype=np.int64) if len(values) else np.zeros(0, dtype=np.int64)


@dataclass
class _Plan:
    """What pass 2 spills: kept question rows (file order = record order) and each one's chosen answer row."""

    q_rows: np.ndarray
    q_ids: np.ndarray
    a_rows: np.ndarray   # sorted
    a_slots: np.ndarray  # the question slot of a_rows[i]
    a_ids: np.ndarray


def _first_rows(ids: np.ndarray) -> np.ndarray:
    """Mask of each id's first occurrence."""
    first = np.zeros(len(ids), dtype=bool)
    first[np.unique(ids, return_index=True)[1]] = True
    return first


def _usable_answers(index: _Index) -> dict[str, np.ndarray]:
    """Answers minus repeated ids and orphans (their question is not in Posts.xml), both counted as skips."""
    a = {k: _np(v) for k, v in index.a.items()}
    skipped = index.stats.skipped
    first = _first_rows(a["id"])
    skipped["duplicate_answer_id"] += int((~first).sum())
    has_question = np.isin(a["parent"], _np(index.q["id"]))
    skipped["answer_no_question"] += int((first & ~has_question).sum())
    keep = first & has_question
    return {k: v[keep] for k, v in a.items()}


def _plan(index: _Index, policy: str) -> _Plan:
    """Pick each question's answer (best: highest score, first on a tie; accepted when asked and present)."""
    stats = index.stats
    q = {k: _np(v) for k, v in index.q.items()}
    code = np.frombuffer(index.q_code, dtype=np.int8) if len(index.q_code) else np.zeros(0, dtype=np.int8)
    stats.elements = len(code)
    for c, reason in _Q_REASONS.items():
        stats.dropped[reason] += int((code == c).sum())
    ok = np.nonzero(code == _Q_OK)[0]
    first = np.zeros(len(code), dtype=bool)
    first[ok[_first_rows(q["id"][ok])]] = True
    stats.dropped["duplicate_question_id"] += int(((code == _Q_OK) & ~first).sum())

    a = _usable_answers(index)
    stats.answers = len(a["id"])
    order = np.lexsort((a["row"], -a["score"], a["parent"]))  # by parent, then score desc, then file order
    parents = a["parent"][order]
    lead = np.ones(len(order), dtype=bool)
    lead[1:] = parents[1:] != parents[:-1]
    best_parent, best_pos = parents[lead], order[lead]

    cand = np.nonzero(first)[0]
    where = np.searchsorted(best_parent, q["id"][cand])
    answered = where < len(best_parent)
    answered[answered] = best_parent[where[answered]] == q["id"][cand][answered]
    stats.dropped["no_answer"] += int((~answered).sum())
    cand, chosen = cand[answered], best_pos[where[answered]]
    chosen = _take_accepted(q["id"][cand], q["accepted"][cand], chosen, a, policy, stats)
    stats.dropped = Counter({k: v for k, v in stats.dropped.items() if v})
    by_row = np.argsort(a["row"][chosen], kind="stable")
    return _Plan(q_rows=q["row"][cand], q_ids=q["id"][cand], a_rows=a["row"][chosen][by_row],
                 a_slots=by_row.astype(np.int64), a_ids=a["id"][chosen][by_row])


def _take_accepted(qids, accepted, chosen, a, policy: str, stats: DumpStats) -> np.ndarray:
    """Swap in the accepted answer where the policy asks and that answer (of that question) exists."""
    named = accepted > 0
    by_id = np.argsort(a["id"], kind="stable")
    pos = np.searchsorted(a["id"], accepted, sorter=by_id).clip(0, max(len(by_id) - 1, 0))
    found = named & (len(by_id) > 0)
    if len(by_id):
        hit = by_id[pos]
        found &= (a["id"][hit] == accepted) & (a["parent"][hit] == qids)
    stats.accepted_missing = int((named & ~found).sum())
    if policy != "accepted" or not len(by_id):
        return chosen
    swap = found & (a["id"][hit] != a["id"][chosen])
    stats.accepted_taken = int(swap.sum())
    return np.where(swap, hit, chosen)


def _link_pairs(index: _Index, plan: _Plan, prefix: str) -> list[tuple[str, str]]:
    """(duplicate, target) record-id pairs whose both ends are kept questions; the rest counted."""
    links = index.stats.links
    kept = np.sort(plan.q_ids)
    pairs, seen = [], set()
    for post, target in zip(_np(index.link_post).tolist(), _np(index.link_target).tolist()):
        if post == target:
            links["self"] += 1
            continue
        ends = np.searchsorted(kept, [post, target])
        if not all(e < len(kept) and kept[e] == v for e, v in zip(ends, (post, target))):
            links["missing_end"] += 1
            continue
        key = (min(post, target), max(post, target))
        if key in seen:
            links["repeated"] += 1
            continue
        seen.add(key)
        pairs.append((f"{prefix}{post}", f"{prefix}{target}"))
    return pairs


# ============================================================================================ pass 2: spill

class _Spill:
    """Pass 2: the planned question and answer rows, as small JSON arrays in an unlinked temp file."""

    def __init__(self, plan: _Plan, spill_dir: str | None):
        self.plan = plan
        self.file = tempfile.TemporaryFile(prefix="sedump-", dir=spill_dir)
        self.offset = 0
        n = len(plan.q_rows)
        self.q_at, self.a_at = np.full((n, 2), -1, dtype=np.int64), np.full((n, 2), -1, dtype=np.int64)
        self.row = 0
        self.next_q = self.next_a = 0

    def on_post(self, row) -> None:
        ordinal = self.row
        self.row += 1
        plan = self.plan
        if self.next_q < len(plan.q_rows) and plan.q_rows[self.next_q] == ordinal:
            self._check(row, plan.q_ids[self.next_q])
            get = row.get
            self.q_at[self.next_q] = self._write([get("Title"), get("Body"), int(get("Score")), get("Tags") or "",
                                                  get("ContentLicense") or "", get("CreationDate") or ""])
            self.next_q += 1
        if self.next_a < len(plan.a_rows) and plan.a_rows[self.next_a] == ordinal:
            self._check(row, plan.a_ids[self.next_a])
            get = row.get
            self.a_at[plan.a_slots[self.next_a]] = self._write([get("Body"), int(get("Score")),
                                                                get("ContentLicense") or "",
                                                                get("CreationDate") or ""])
            self.next_a += 1

    def _check(self, row, expected: int) -> None:
        if _int(row.get("Id")) != expected:
            raise InputError(f"Posts.xml changed between the two passes (row {self.row}: expected Id {expected})")

    def _write(self, payload: list) -> tuple[int, int]:
        data = orjson.dumps(payload)
        self.file.write(data)
        at = (self.offset, len(data))
        self.offset += len(data)
        return at

    def read(self, at) -> list:
        return orjson.loads(os.pread(self.file.fileno(), int(at[1]), int(at[0])))


# ============================================================================================ the converter

def iter_dump_chunks(path: Path, stats: DumpStats, cfg: DumpConfig | None = None, chunk_rows: int = 4096,
                     progress: bool = True, spill_dir: str | None = None) -> Iterator[pd.DataFrame]:
    """Stream a site's dump (.7z, folder or Posts.xml) as record DataFrames of up to `chunk_rows` rows.

    Records are the answered questions, in Posts.xml order, with raw HTML bodies. Counts go to `stats`
    (questions in `elements`, records, drops by reason, skipped rows, duplicate links). Raises InputError (one
    line) when the input is not a readable dump. The temp spill file lives in `spill_dir` (default: TMPDIR).
    """
    from tqdm import tqdm

    cfg = cfg or DumpConfig()
    path = Path(path)
    fmt = input_format(path)
    if fmt == "json":
        raise InputError(f"{path}: not a Stack Exchange dump (.7z, extracted folder or Posts.xml)")
    members = _members(path, fmt)
    site = dump_site(path, fmt, cfg.site)
    stats.site, stats.answer_policy = site, cfg.answer
    prefix = site_id_prefix(site)
    total = _member_sizes(path, fmt, members)

    index = _Index(stats)
    handlers = {POSTS: ("posts", index.on_post), POST_LINKS: ("postlinks", index.on_link)}
    with tqdm(total=total, unit="B", unit_scale=True, desc="convert 1/2 (index)", disable=not progress) as bar:
        _parse(path, fmt, members, handlers, bar)
    stats.posts = index.row
    plan = _plan(index, cfg.answer)
    stats.duplicate_links = _link_pairs(index, plan, prefix)
    del index

    spill = _Spill(plan, spill_dir)
    with spill.file:
        posts_size = _member_sizes(path, fmt, {POSTS: members[POSTS]})
        with tqdm(total=posts_size, unit="B", unit_scale=True, desc="convert 2/2 (join)",
                  disable=not progress) as bar:
            _parse(path, fmt, members, {POSTS: ("posts", spill.on_post)}, bar)
        if spill.next_q != len(plan.q_rows) or spill.next_a != len(plan.a_rows):
            raise InputError(f"{path}: Posts.xml changed between the two passes (fewer rows the second time)")
        spill.file.flush()
        yield from _emit(spill, plan, stats, site, prefix, chunk_rows)


def _emit(spill: _Spill, plan: _Plan, stats: DumpStats, site: str, prefix: str,
          chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Records in question order, read back from the spill, in DataFrames of up to `chunk_rows`."""
    rows: list[dict] = []
    file_name = f"{site}/{POSTS}"
    for slot, qid in enumerate(plan.q_ids.tolist()):
        title, question, q_score, tags, q_license, q_created = spill.read(spill.q_at[slot])
        answer, a_score, a_license, a_created = spill.read(spill.a_at[slot])
        license_ = _record_license(qid, q_license, q_created, a_license, a_created, stats)
        if license_ is None:
            continue
        rid = f"{prefix}{qid}"
        rows.append({"id": rid, "source_id": rid, "title": title, "question": question, "answer": answer,
                     "question_score": q_score, "answer_score": a_score,
                     "tags": ",".join(sorted(parse_tags(tags))), "link": f"https://{site}/questions/{qid}",
                     "license": license_, "file_name": file_name})
        if len(rows) >= chunk_rows:
            stats.records += len(rows)
            yield conform(pd.DataFrame(rows))
            rows = []
    if rows:
        stats.records += len(rows)
        yield conform(pd.DataFrame(rows))


def _record_license(qid: int, q_license: str, q_created: str, a_license: str, a_created: str,
                    stats: DumpStats) -> str | None:
    """The record's licence (record_license of its two posts'), counted with its dates in `stats`; None, counted as
    the drop reason no_license, when a post has neither a ContentLicense nor a readable CreationDate."""
    q_at, a_at = creation_time(q_created), creation_time(a_created)
    (q_lic, q_inferred), (a_lic, a_inferred) = post_license(q_license, q_at), post_license(a_license, a_at)
    if q_lic is None or a_lic is None:
        stats.dropped["no_license"] += 1
        return None
    license_ = record_license(q_lic, a_lic)
    stats.answer_license_differs += int(a_lic != q_lic)
    stats.licenses[license_] += 1
    stats.licenses_inferred[license_] += int(q_inferred or a_inferred)
    dated = [t for t in (q_at, a_at) if t is not None]
    stats.per_record.add(qid, min(dated, default=NO_DATE), max(dated, default=NO_DATE), q_inferred or a_inferred)
    return license_


class KeptPosts:
    """Rows per licence inferred, and the period the written rows' posts span, looked up by each row's
    `source_id` in what the converter recorded (stats.per_record): rows carry neither a date nor an inference
    marker. Synthetic rows count as their source row (they keep its licence). `add` each written partition."""

    def __init__(self, stats: DumpStats):
        meta = stats.per_record
        qid = _np(meta.qid)
        order = np.argsort(qid, kind="stable")
        self.qid, self.first, self.last = qid[order], _np(meta.first)[order], _np(meta.last)[order]
        flags = meta.inferred
        self.flag = (np.frombuffer(flags, dtype=np.int8) if len(flags) else np.zeros(0, np.int8))[order].astype(bool)
        self.prefix = site_id_prefix(stats.site)
        self.inferred: Counter = Counter()
        self.first_seen: int | None = None
        self.last_seen: int | None = None

    def add(self, df: pd.DataFrame) -> None:
        """Count one written partition."""
        if not len(df) or not len(self.qid):
            return
        ids = df["source_id"].astype(str)
        numbers = pd.to_numeric(ids.str.slice(len(self.prefix)).where(ids.str.startswith(self.prefix)),
                                errors="coerce")
        known = numbers.notna().to_numpy()
        wanted = numbers.fillna(-1).astype(np.int64).to_numpy()
        pos = np.searchsorted(self.qid, wanted).clip(0, len(self.qid) - 1)
        found = known & (self.qid[pos] == wanted)
        inferred = found & self.flag[pos]
        for license_, n in df["license"][inferred].value_counts().items():
            self.inferred[str(license_)] += int(n)
        first, last = self.first[pos[found]], self.last[pos[found]]
        first, last = first[first != NO_DATE], last[last != NO_DATE]
        if len(first) and len(last):
            lo, hi = int(first.min()), int(last.max())
            self.first_seen = lo if self.first_seen is None else min(self.first_seen, lo)
            self.last_seen = hi if self.last_seen is None else max(self.last_seen, hi)

    def section(self) -> dict:
        """{"licenses_inferred": {licence: rows}, "period": {"first", "last"} or None} of the rows added."""
        return {"licenses_inferred": dict(sorted(self.inferred.items())),
                "period": _period(self.first_seen, self.last_seen)}


def links_caught_by_dedup(links: list[tuple[str, str]], removed: pd.DataFrame) -> dict:
    """How many duplicate links dedup also caught: both ends end at the same survivor of dedup's removals.

    `removed` is dedup's removed frame (id, kind, duplicate_of, ...). Returns {"links", "caught", "by_kind"}
    where by_kind counts the removal kind that joined them (of the end that was removed directly).
    """
    parent = dict(zip(removed["id"].astype(str), removed["duplicate_of"].astype(str)))
    kind = dict(zip(removed["id"].astype(str), removed["kind"].astype(str)))

    def root(node: str) -> str:
        hops = 0
        while node in parent and hops <= len(parent):
            node, hops = parent[node], hops + 1
        return node

    caught: Counter = Counter()
    for a, b in links:
        if root(a) == root(b):
            caught[kind.get(a) or kind.get(b) or "unknown"] += 1
    return {"links": len(links), "caught": sum(caught.values()), "by_kind": dict(sorted(caught.items()))}
