"""Stack Exchange dump input (sedump.py): the committed generated site as .7z, folder and Posts.xml.

The expectations are computed here from the XML with the standard library (an independent reading of the
dump), not from sedump's own code. Fast: the sample site has ~300 questions.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import re
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pandas as pd
import py7zr
import pytest

import sedump
from docbuilder import ConvertStats, InputError, iter_input_chunks, new_convert_stats, resolve_input, sha256_of
from records import COLUMNS, WORK_COLUMNS
from sedump import DumpConfig, DumpStats, iter_dump_chunks

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample" / "law.stackexchange.com"
SAMPLE_7Z = ROOT / "data" / "sample" / "law.stackexchange.com.7z"
SITE = "https://law.stackexchange.com/questions/"


def _make_sample():
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "data" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def convert(path, cfg: DumpConfig | None = None, chunk_rows: int = 64) -> tuple[pd.DataFrame, DumpStats]:
    stats = DumpStats()
    frames = list(iter_dump_chunks(Path(path), stats, cfg, chunk_rows=chunk_rows, progress=False))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)), stats


def oracle(posts_xml: bytes, answer: str = "best") -> dict:
    """What the converter must produce, read with ElementTree: kept question id -> expected fields."""
    rows = [r.attrib for r in ET.fromstring(posts_xml).iter("row")]
    questions = [r for r in rows if r.get("PostTypeId") == "1"]
    qids = {int(q["Id"]) for q in questions}
    answers: dict[int, list[dict]] = {}
    for r in rows:
        if r.get("PostTypeId") == "2" and (r.get("Body") or "").strip() and int(r["ParentId"]) in qids:
            answers.setdefault(int(r["ParentId"]), []).append(r)
    out = {}
    for q in questions:
        qid = int(q["Id"])
        if not (q.get("Body") or "").strip() or not (q.get("Title") or "").strip() or qid not in answers:
            continue
        cands = answers[qid]
        best = cands[0]
        for a in cands[1:]:
            if int(a["Score"]) > int(best["Score"]):
                best = a
        chosen = best
        if answer == "accepted":
            chosen = next((a for a in cands if a["Id"] == q.get("AcceptedAnswerId")), best)
        out[qid] = {"question": q, "answer": chosen, "best": best}
    return {"rows": rows, "questions": questions, "kept": out}


@pytest.fixture(scope="module", autouse=True)
def spill_under_tmp(tmp_path_factory):
    """The converter's spill file (and py7zr's temp files, if any) under pytest's tmp dir, not /tmp."""
    saved = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("spill"))
    yield
    tempfile.tempdir = saved


@pytest.fixture(scope="module")
def sample_xml() -> bytes:
    return (SAMPLE_DIR / "Posts.xml").read_bytes()


@pytest.fixture(scope="module")
def folder_result():
    return convert(SAMPLE_DIR)


def test_every_question_counted_and_answered_ones_kept(sample_xml, folder_result):
    df, stats = folder_result
    want = oracle(sample_xml)
    assert stats.elements == len(want["questions"]) == len(re.findall(rb'PostTypeId="1"', sample_xml))
    assert stats.records == len(df) == len(want["kept"])
    assert stats.elements == stats.records + sum(stats.dropped.values())
    assert list(df["id"]) == [f"law-stackexchange-qa-{q}" for q in want["kept"]]  # Posts.xml order
    assert stats.posts == len(want["rows"]) == stats.elements + stats.answers + sum(stats.skipped.values())
    assert set(df.columns) == set(WORK_COLUMNS) and (df["source_id"] == df["id"]).all()  # + the visible text


def test_fields_links_licenses_and_best_answer(sample_xml, folder_result):
    df, _stats = folder_result
    want = oracle(sample_xml)["kept"]
    for row in df.itertuples():
        qid = int(row.id.rsplit("-", 1)[1])
        q, a = want[qid]["question"], want[qid]["answer"]
        assert row.link == f"{SITE}{qid}"
        assert row.license == (q["ContentLicense"] if a["ContentLicense"] == q["ContentLicense"] else
                               f"{q['ContentLicense']} (question), {a['ContentLicense']} (answer)")
        assert (row.title, row.question, row.answer) == (q["Title"], q["Body"], a["Body"])
        assert (row.question_score, row.answer_score) == (int(q["Score"]), int(a["Score"]))
        assert row.tags == ",".join(sorted(t for t in q["Tags"].split("|") if t))
        assert row.file_name == "law.stackexchange.com/Posts.xml"
    assert df["license"].nunique() >= 2  # the sample spans licence versions
    assert df["license"].str.contains("(answer)", regex=False).sum() == _stats.answer_license_differs > 0
    assert sum(v["inferred"] for v in _stats.section()["licenses"].values()) == 0  # every post has ContentLicense


def test_best_answer_takes_first_on_a_tie(tmp_path):
    posts = _posts([_q(1), _a(2, 1, 5, "first"), _a(3, 1, 5, "second"), _a(4, 1, 1, "low")])
    df, _ = convert(_site(tmp_path, posts))
    assert df.loc[0, "answer"] == "<p>first</p>" and df.loc[0, "answer_score"] == 5


def test_no_answers_and_no_rows(tmp_path):
    df, stats = convert(_site(tmp_path / "a", _posts([_q(1), _q(2), '<row Id="3" PostTypeId="4" Body="x" />'])))
    assert len(df) == 0 and stats.elements == 2 and dict(stats.dropped) == {"no_answer": 2}
    df, stats = convert(_site(tmp_path / "b", _posts([])))
    assert len(df) == 0 and stats.elements == 0 and stats.posts == 0


def test_accepted_vs_best(sample_xml):
    best, _ = convert(SAMPLE_DIR)
    accepted, stats = convert(SAMPLE_DIR, DumpConfig(answer="accepted"))
    want = oracle(sample_xml, "accepted")["kept"]
    assert list(accepted["id"]) == list(best["id"])
    for row in accepted.itertuples():
        assert row.answer == want[int(row.id.rsplit("-", 1)[1])]["answer"]["Body"]
    differ = int((accepted["answer"] != best["answer"]).sum())
    assert differ == stats.accepted_taken > 0
    assert stats.accepted_missing > 0  # accepted ids of answers deleted since: best is kept for those


def test_accepted_missing_falls_back_to_best(tmp_path):
    posts = _posts([_q(1, accepted=99), _a(2, 1, 1, "low"), _a(3, 1, 4, "high"),
                    _q(4, accepted=6), _a(5, 4, 9, "top"), _a(6, 4, 0, "chosen")])
    df, stats = convert(_site(tmp_path, posts), DumpConfig(answer="accepted"))
    assert list(df["answer"]) == ["<p>high</p>", "<p>chosen</p>"]
    assert (stats.accepted_missing, stats.accepted_taken) == (1, 1)


def test_both_tag_formats_give_the_same_records(tmp_path):
    make_sample = _make_sample()
    pipe, angle = (make_sample.generate_dump(60, 3, fmt) for fmt in ("pipe", "angle"))
    assert b"Tags=\"|" in pipe["Posts.xml"] and b"Tags=\"&lt;" in angle["Posts.xml"]
    a, _ = convert(_write(tmp_path / "pipe" / "law.stackexchange.com", pipe))
    b, _ = convert(_write(tmp_path / "angle" / "law.stackexchange.com", angle))
    pd.testing.assert_frame_equal(a, b)
    assert a["tags"].str.contains(",").any()
    assert sedump.parse_tags("<contract><civil-law>") == sedump.parse_tags("|contract|civil-law|") \
        == ["contract", "civil-law"]
    assert sedump.parse_tags("") == sedump.parse_tags(None) == [] and sedump.parse_tags("||") == []


def test_skips_counted_with_reasons(sample_xml, folder_result):
    _df, stats = folder_result
    rows = oracle(sample_xml)["rows"]
    kinds = Counter(r["PostTypeId"] for r in rows)
    qids = {r["Id"] for r in rows if r["PostTypeId"] == "1"}
    for kind in set(kinds) - {"1", "2"}:
        assert stats.skipped[f"post_type:{kind}"] == kinds[kind]
    answers = [r for r in rows if r["PostTypeId"] == "2"]
    assert stats.skipped["answer_no_body"] == sum(1 for r in answers if not r.get("Body", "").strip()) > 0
    assert stats.skipped["answer_no_question"] == sum(1 for r in answers if r["ParentId"] not in qids) > 0
    assert stats.dropped["no_body"] >= 1 and stats.dropped["no_answer"] >= 1


def test_handmade_skips_and_duplicate_ids(tmp_path):
    posts = _posts([_q(1), _a(2, 1, 1), _q(1, body="&lt;p&gt;again&lt;/p&gt;"), _q(3, body=""), _a(4, 3, 1),
                    _q(5, title=""), _a(6, 5, 1), _q(7), '<row Id="8" PostTypeId="5" Body="wiki" />',
                    _a(9, 77, 1), '<row Id="x" PostTypeId="1" />', _a(2, 1, 9, "again")])
    df, stats = convert(_site(tmp_path, posts))
    assert list(df["id"]) == ["law-stackexchange-qa-1"] and df.loc[0, "answer"] == "<p>answer 2</p>"
    assert dict(stats.dropped) == {"duplicate_question_id": 1, "no_body": 1, "no_title": 1, "no_answer": 1}
    assert stats.elements == 5
    assert {k: v for k, v in stats.skipped.items() if v} == {
        "post_type:5": 1, "answer_no_question": 1, "malformed_row": 1, "duplicate_answer_id": 1}


def test_7z_folder_and_posts_xml_give_byte_identical_records(folder_result):
    df, stats = folder_result
    from_7z, stats_7z = convert(SAMPLE_7Z, chunk_rows=50)
    from_xml, stats_xml = convert(SAMPLE_DIR / "Posts.xml", chunk_rows=7)
    for other, other_stats in ((from_7z, stats_7z), (from_xml, stats_xml)):
        assert other.to_json(orient="records") == df.to_json(orient="records")
        assert other_stats.section() == stats.section()
        assert other_stats.duplicate_links == stats.duplicate_links


def test_archive_member_order_and_subfolder_do_not_matter(tmp_path, folder_result):
    df, stats = folder_result
    files = {"Badges.xml": b"<badges />" * 5000,
             "law/PostLinks.xml": (SAMPLE_DIR / "PostLinks.xml").read_bytes(),
             "law/Posts.xml": (SAMPLE_DIR / "Posts.xml").read_bytes(), "Users.xml": b"<users />"}
    for order in (list(files), list(reversed(files))):
        archive = tmp_path / str(len(list(tmp_path.iterdir()))) / "law.stackexchange.com.7z"
        archive.parent.mkdir()
        _seven_zip(archive, {name: files[name] for name in order})
        other, other_stats = convert(archive)
        assert other.to_json(orient="records") == df.to_json(orient="records")
        assert other_stats.duplicate_links == stats.duplicate_links


def test_duplicate_links_are_pairs_of_kept_records(folder_result):
    df, stats = folder_result
    root = ET.parse(SAMPLE_DIR / "PostLinks.xml").getroot()
    dups = [(int(r.get("PostId")), int(r.get("RelatedPostId"))) for r in root.iter("row")
            if r.get("LinkTypeId") == "3"]
    kept = set(df["id"])
    rid = "law-stackexchange-qa-{}".format
    want = [(rid(a), rid(b)) for a, b in dups if rid(a) in kept and rid(b) in kept]
    assert sorted(stats.duplicate_links) == sorted(want) and len(want) >= 5
    section = stats.section()["duplicate_links"]
    assert section["seen"] == len(dups) and section["pairs"] == len(want)
    assert section["missing_end"] == len(dups) - len(want) > 0
    assert section["other_link_types"] == sum(1 for r in root.iter("row") if r.get("LinkTypeId") != "3")


def test_links_caught_by_dedup():
    links = [("q-1", "q-2"), ("q-3", "q-4"), ("q-5", "q-6"), ("q-7", "q-8")]
    removed = pd.DataFrame({"id": ["q-2", "q-6", "q-9"], "kind": ["exact", "semantic", "fuzzy"],
                            "duplicate_of": ["q-1", "q-9", "q-5"], "similarity": [1.0, 0.97, 0.9]})
    assert sedump.links_caught_by_dedup(links, removed) == {
        "links": 4, "caught": 2, "by_kind": {"exact": 1, "semantic": 1}}


def test_committed_twin_is_what_the_generator_writes(tmp_path):
    make_sample = _make_sample()
    files = make_sample.generate_dump(300, 0)
    make_sample.write_dump(files, str(tmp_path / "site"), str(tmp_path / "site.7z"))
    for name, data in files.items():
        assert (SAMPLE_DIR / name).read_bytes() == data, f"regenerate: python data/make_sample.py " \
                                                         f"{make_sample.DUMP_SAMPLE_COMMAND}"
    assert (tmp_path / "site.7z").read_bytes() == SAMPLE_7Z.read_bytes()
    with py7zr.SevenZipFile(SAMPLE_7Z) as z:
        assert sorted(z.getnames()) == sorted(files)


# ------------------------------------------------------------------------------------------------ bad input

def _seven_zip(path: Path, files: dict[str, bytes]) -> Path:
    with py7zr.SevenZipFile(path, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as z:
        for name, data in files.items():
            z.writef(io.BytesIO(data), name)
    return path


def _one_line_error(path, match: str, cfg=None):
    with pytest.raises(InputError) as info:
        convert(path, cfg)
    message = str(info.value)
    assert "\n" not in message and re.search(match, message), message
    return message


def test_bad_archives_are_one_line_errors(tmp_path):
    site = tmp_path / "law.stackexchange.com.7z"
    site.write_bytes(b"this is not an archive at all\n" * 10)
    _one_line_error(site, "not a readable 7z archive")
    _seven_zip(site, {"Users.xml": b"<users />"})
    _one_line_error(site, "no Posts.xml in the archive")
    good = SAMPLE_7Z.read_bytes()
    site.write_bytes(good[: len(good) // 2])
    _one_line_error(site, "not a readable 7z archive")
    corrupt = bytearray(good)
    corrupt[40_000:40_100] = bytes(b ^ 0x55 for b in corrupt[40_000:40_100])
    site.write_bytes(bytes(corrupt))
    _one_line_error(site, "cannot decompress|not well-formed XML")
    (tmp_path / "x").mkdir()
    cut = (SAMPLE_DIR / "Posts.xml").read_bytes()[:50_000]
    trunc = _seven_zip(tmp_path / "x" / "law.stackexchange.com.7z", {"Posts.xml": cut})
    _one_line_error(trunc, "not well-formed XML")


def test_bad_xml_is_a_one_line_error(tmp_path):
    folder = tmp_path / "law.stackexchange.com"
    folder.mkdir()
    posts = folder / "Posts.xml"
    posts.write_bytes((SAMPLE_DIR / "Posts.xml").read_bytes()[:30_000])
    _one_line_error(folder, "not well-formed XML")
    posts.write_bytes(b'<?xml version="1.0"?>\n<users>\n  <row Id="1" />\n</users>\n')
    _one_line_error(folder, "expected <row> elements inside <posts>")
    posts.write_bytes(b"")
    _one_line_error(folder, "not well-formed XML")
    posts.unlink()
    _one_line_error(folder, "no Posts.xml in the folder")
    _one_line_error(tmp_path, "no Posts.xml")


def test_site_from_name_or_flag(tmp_path):
    assert sedump.site_from_path(Path("/x/law.stackexchange.com.7z"), "7z") == "law.stackexchange.com"
    assert sedump.site_from_path(Path("/x/cooking.stackexchange.com.7z"), "folder") == "cooking.stackexchange.com"
    assert sedump.site_from_path(Path("/x/stackoverflow.com-Posts.7z"), "7z") == "stackoverflow.com"
    assert sedump.site_from_path(Path("/x/law.stackexchange.com/Posts.xml"), "posts") == "law.stackexchange.com"
    assert sedump.site_from_path(Path("/x/dump/Posts.xml"), "posts") is None
    assert sedump.site_id_prefix("law.stackexchange.com") == "law-stackexchange-qa-"
    assert sedump.site_id_prefix("stackoverflow.com") == "stackoverflow-qa-"
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "Posts.xml").write_bytes(_posts([_q(10), _a(11, 10, 3)]))
    _one_line_error(folder, "cannot tell the site.*--site")
    df, stats = convert(folder, DumpConfig(site="cooking.stackexchange.com"))
    assert list(df["id"]) == ["cooking-stackexchange-qa-10"]
    assert df.loc[0, "link"] == "https://cooking.stackexchange.com/questions/10"
    assert stats.site == "cooking.stackexchange.com"


def test_config_from_args_validates(tmp_path):
    def args(**kw):
        base = {"input": str(SAMPLE_7Z), "site": None, "answer": None}
        base.update(kw)
        return argparse.Namespace(**base)

    assert sedump.dump_config_from_args(args()) == DumpConfig()
    assert sedump.dump_config_from_args(args(answer="accepted", site="Law.StackExchange.com")) == \
        DumpConfig(site="law.stackexchange.com", answer="accepted")
    for bad, flag in ((args(answer="newest"), "--answer"), (args(site="not a site"), "--site"),
                      (args(input=None, site="law.stackexchange.com"), "--site"),
                      (args(input=str(ROOT / "data/sample/law-stackexchange-questions-answers.json"),
                            answer="accepted"), "--answer")):
        with pytest.raises(ValueError, match=f"^{flag}: "):
            sedump.dump_config_from_args(bad)
    parser = argparse.ArgumentParser()
    sedump.add_dump_arguments(parser)
    parsed = parser.parse_args([])
    assert (parsed.site, parsed.answer) == (None, None)


def test_resolve_input_and_dispatch(tmp_path):
    source = resolve_input(str(SAMPLE_7Z), "http://unused", tmp_path, fallback=False, warn=print)
    assert (source["format"], source["site"], source["files"]) == ("7z", "law.stackexchange.com",
                                                                 ["PostLinks.xml", "Posts.xml"])
    stats = new_convert_stats(source)
    assert isinstance(stats, DumpStats)
    frames = list(iter_input_chunks(source, stats, 100, False, DumpConfig()))
    assert sum(len(f) for f in frames) == stats.records > 0 and max(len(f) for f in frames) == 100
    folder = resolve_input(str(SAMPLE_DIR), "http://unused", tmp_path, fallback=False, warn=print)
    assert folder["format"] == "folder" and len(sha256_of(Path(folder["path"]))) == 64
    json_source = resolve_input(str(ROOT / "data/sample/law-stackexchange-questions-answers.json"), "http://unused",
                                tmp_path, fallback=False, warn=print)
    assert json_source["format"] == "json" and type(new_convert_stats(json_source)) is ConvertStats
    with pytest.raises(InputError, match="no such file or folder"):
        resolve_input(str(tmp_path / "missing.7z"), "http://unused", tmp_path, fallback=False, warn=print)


def test_reader_leaving_early_stops_the_decompression_thread():
    before = {t.ident for t in threading.enumerate()}
    stream = sedump._stream_7z(SAMPLE_7Z, {"Posts.xml": "Posts.xml"}, depth=1)
    name, block = next(stream)
    assert name == "Posts.xml" and block.startswith(b"<?xml")
    stream.close()
    assert not [t for t in threading.enumerate() if t.ident not in before and t.name == "sedump-7z"]


# ------------------------------------------------------------------------------------------------ helpers

def _q(qid: int, body: str | None = None, title: str = "A question?", accepted: int | None = None) -> str:
    body = f"&lt;p&gt;question {qid}&lt;/p&gt;" if body is None else body
    acc = f' AcceptedAnswerId="{accepted}"' if accepted else ""
    return (f'<row Id="{qid}" PostTypeId="1"{acc} Score="1" Body="{body}" Title="{title}" '
            f'Tags="|contract|" ContentLicense="CC BY-SA 4.0" />')


def _a(aid: int, parent: int, score: int, text: str | None = None) -> str:
    text = text or f"answer {aid}"
    return (f'<row Id="{aid}" PostTypeId="2" ParentId="{parent}" Score="{score}" '
            f'Body="&lt;p&gt;{text}&lt;/p&gt;" ContentLicense="CC BY-SA 4.0" />')


def _posts(rows: list[str]) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "\n".join(rows) + "\n</posts>\n").encode()


def _site(tmp_path: Path, posts: bytes) -> Path:
    return _write(tmp_path / "law.stackexchange.com", {"Posts.xml": posts})


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder
