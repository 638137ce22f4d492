"""Licences, card, report and prompts true to the input's site (issue 18, items 3-5).

Real posts: tests/fixtures/real/ai.stackexchange.com.7z (300 questions of 2016, a dump without ContentLicense; see
its ATTRIBUTION.md). Expectations about it are read from its XML with the standard library, not from sedump.
"""
from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET

import py7zr
import pytest
import yaml

import card
import sedump
import synthetic_gen as sg
from conftest import REPO, SAMPLE, run_main
from docbuilder import ConvertStats, iter_record_chunks, resolve_input
from sedump import DumpStats, KeptPosts, iter_dump_chunks, post_license, record_license
from sites import dataset_name, site_name, site_subject

FIXTURE = REPO / "tests" / "fixtures" / "real" / "ai.stackexchange.com.7z"
SAMPLE_7Z = REPO / "data" / "sample" / "law.stackexchange.com.7z"
AI_NAME, AI_SUBJECT = "Artificial Intelligence Stack Exchange", "questions on Artificial Intelligence Stack Exchange"


def convert(path):
    stats = DumpStats()
    frames = list(iter_dump_chunks(path, stats, chunk_rows=100, progress=False))
    import pandas as pd

    return pd.concat(frames, ignore_index=True), stats


@pytest.fixture(scope="module")
def fixture_posts(tmp_path_factory) -> dict[str, dict]:
    """The fixture's Posts.xml rows by Id, read with the standard library."""
    folder = tmp_path_factory.mktemp("ai-fixture")
    with py7zr.SevenZipFile(FIXTURE) as archive:
        archive.extractall(folder)
    return {row.get("Id"): dict(row.attrib) for row in ET.parse(folder / "Posts.xml").getroot().iter("row")}


@pytest.fixture(scope="module")
def fixture_rows():
    return convert(FIXTURE)


# ---- Stack Exchange's rule: the licence of a post's date ---------------------------------------------------------
@pytest.mark.parametrize("created,expected", [
    ("2009-07-31T21:42:52.667", "CC BY-SA 2.5"),
    ("2011-04-07T23:59:59.999", "CC BY-SA 2.5"),   # the last moment of 2.5 (UTC)
    ("2011-04-08T00:00:00.000", "CC BY-SA 3.0"),   # from 2011-04-08: 3.0
    ("2011-04-08", "CC BY-SA 3.0"),
    ("2016-08-02T15:39:14.947", "CC BY-SA 3.0"),
    ("2018-05-01T23:59:59.997", "CC BY-SA 3.0"),   # up to but not including 2018-05-02
    ("2018-05-02T00:00:00.000", "CC BY-SA 4.0"),   # on or after 2018-05-02: 4.0
    ("2025-01-01 10:00:00", "CC BY-SA 4.0"),
])
def test_licence_follows_the_post_date(created, expected):
    assert post_license(None, created) == (expected, True)
    assert post_license("  ", created) == (expected, True)


def test_content_license_wins_and_a_post_without_either_has_none():
    assert post_license("CC BY-SA 2.5", "2020-01-01T00:00:00") == ("CC BY-SA 2.5", False)
    for unreadable in (None, "", "yesterday", "2016-13-01T00:00:00", "16-08-02"):
        assert post_license(None, unreadable) == (None, False)
    assert record_license("CC BY-SA 4.0", "CC BY-SA 4.0") == "CC BY-SA 4.0"
    assert record_license("CC BY-SA 3.0", "CC BY-SA 4.0") == "CC BY-SA 3.0 (question), CC BY-SA 4.0 (answer)"


def _row(pid: int, kind: int, created: str | None, license_: str | None, parent: int | None = None) -> str:
    attrs = {"Id": pid, "PostTypeId": kind, "Score": 1, "Body": f"&lt;p&gt;post {pid}&lt;/p&gt;"}
    attrs.update({"Title": f"Question {pid}?", "Tags": "|t|"} if kind == 1 else {"ParentId": parent})
    if created:
        attrs["CreationDate"] = created
    if license_:
        attrs["ContentLicense"] = license_
    return "<row " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + " />"


def test_tiny_dump_keeps_content_license_infers_the_rest_and_drops_neither(tmp_path):
    rows = [_row(1, 1, "2016-01-01T00:00:00.000", "CC BY-SA 4.0"), _row(2, 2, "2016-01-02T00:00:00.000",
                                                                         "CC BY-SA 4.0", 1),  # the dump's: kept
            _row(3, 1, "2017-06-01T00:00:00.000", None), _row(4, 2, "2018-06-01T00:00:00.000", None, 3),  # inferred
            _row(5, 1, None, None), _row(6, 2, "2019-01-01T00:00:00.000", None, 5)]  # a question with neither
    site = tmp_path / "cooking.stackexchange.com"
    site.mkdir()
    (site / "Posts.xml").write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "\n".join(rows)
                                    + "\n</posts>\n")
    df, stats = convert(site)
    assert dict(zip(df["id"], df["license"])) == {
        "cooking-stackexchange-qa-1": "CC BY-SA 4.0",  # from ContentLicense, though its date says 3.0
        "cooking-stackexchange-qa-3": "CC BY-SA 3.0 (question), CC BY-SA 4.0 (answer)"}
    assert stats.dropped == {"no_license": 1} and stats.elements == stats.records + 1 == 3
    section = stats.section()
    assert section["licenses"] == {"CC BY-SA 4.0": {"records": 1, "inferred": 0},
                                   "CC BY-SA 3.0 (question), CC BY-SA 4.0 (answer)": {"records": 1, "inferred": 1}}
    assert section["period"] == {"first": "2016-01-01T00:00:00", "last": "2018-06-01T00:00:00"}
    assert section["answer_license_differs"] == 1


def test_json_element_without_a_licence_is_a_named_drop(write_source):
    from conftest import source_element

    elements = [source_element(1), dict(source_element(2), license=""), source_element(3)]
    stats = ConvertStats()
    rows = [r for chunk in iter_record_chunks(write_source(elements), stats, progress=False) for r in chunk["id"]]
    assert rows == ["law-stackexchange-qa-1", "law-stackexchange-qa-3"] and stats.dropped == {"no_license": 1}


# ---- the real fixture -----------------------------------------------------------------------------------------------
def test_fixture_licences_are_all_inferred_from_2016_dates(fixture_rows, fixture_posts):
    df, stats = fixture_rows
    assert len(df) > 200 and not any(p.get("ContentLicense") for p in fixture_posts.values())
    assert all(p["CreationDate"].startswith("2016-") for p in fixture_posts.values())
    assert set(df["license"]) == {"CC BY-SA 3.0"}
    assert stats.section()["licenses"] == {"CC BY-SA 3.0": {"records": len(df), "inferred": len(df)}}
    questions = [fixture_posts[i.rsplit("-", 1)[1]]["CreationDate"] for i in df["id"]]
    assert stats.section()["period"]["first"] == min(questions)[:19]


def test_kept_posts_count_the_rows_written_and_their_period(fixture_rows, fixture_posts):
    df, stats = fixture_rows
    kept = KeptPosts(stats)
    part = df.iloc[10:40]
    synthetic = part.iloc[:2].assign(id=lambda d: d["id"] + "-synth-r1-0", synthetic=True)  # counts as its source
    kept.add(part)
    kept.add(synthetic)
    section = kept.section()
    assert section["licenses_inferred"] == {"CC BY-SA 3.0": 32}
    qids = part["id"].str.rsplit("-", n=1).str[1]
    by_question = {qid: [p["CreationDate"] for p in fixture_posts.values() if qid in (p["Id"], p.get("ParentId"))]
                   for qid in qids}
    firsts = [fixture_posts[q]["CreationDate"] for q in by_question]
    assert section["period"]["first"] == min(firsts)[:19]
    assert section["period"]["last"] <= max(d for dates in by_question.values() for d in dates)[:19]


# ---- the card and report name the input's site -----------------------------------------------------------------------
def _report(source: dict, licenses: dict, inferred: dict, period: dict | None) -> dict:
    return {"source": {**source, "sha256": "ab" * 32}, "stages": [], "splits": {"train": 8, "val": 1, "test": 1},
            "outputs": {"files": {"jsonl": {s: f"law-qa-{s}.jsonl" for s in ("train", "val", "test")}},
                        "licenses": licenses, "licenses_inferred": inferred, "period": period,
                        "synthetic": {"rows": 0, "by_round": {}}},
            "dump": {"license_rule": sedump.LICENSE_RULE}}


def _header(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def test_card_of_another_site_names_it_and_not_law_stack_exchange(tmp_path):
    source = resolve_input(str(FIXTURE), "http://unused", tmp_path, fallback=False, warn=print)
    assert (source["site_name"], source["site_url"], source["sample"]) == (AI_NAME, "https://ai.stackexchange.com",
                                                                           False)
    period = {"first": "2016-08-02T15:43:35", "last": "2016-10-19T07:44:43"}
    text = card.render_card(_report(source, {"CC BY-SA 3.0": 10}, {"CC BY-SA 3.0": 10}, period), {})
    assert f"[{AI_NAME}](https://ai.stackexchange.com)" in text and f"# {AI_NAME} Q&A" in text
    for wrong in ("Law Stack", "Law StackExchange", "law.stackexchange", "ymoslem", "huggingface.co/datasets"):
        assert wrong not in text, wrong
    header = _header(text)
    assert header["pretty_name"] == "ai-stackexchange-qa" and "legal" not in header["tags"]
    assert "ai-stackexchange" in header["tags"] and "source_datasets" not in header
    assert "`ai.stackexchange.com.7z` (file): PostLinks.xml, Posts.xml" in text
    assert "posts from 2016-08-02 to 2016-10-19" in text
    assert "CC BY-SA 3.0: 10 (10 inferred)" in text and "licence inferred for 10 of 10 rows" in text
    assert "rows per license: : " not in text and "(both, labelled, when its question and answer differ)" in text


def test_card_of_the_json_dump_names_law_stack_exchange_and_the_hf_dump(tmp_path, write_source):
    from conftest import source_element

    real = resolve_input(str(write_source([source_element(1)])), "http://unused", tmp_path, False, print)
    text = card.render_card(_report(real, {"CC BY-SA 4.0": 10}, {}, None), {})
    assert "Questions and answers from [Law Stack Exchange](https://law.stackexchange.com), as published in the " \
           "[ymoslem/Law-StackExchange]" in text and "inferred" not in text and "SAMPLE" not in text
    assert "each row's `license` is its question's, as the dump gives it" in text
    header = _header(text)
    assert header["pretty_name"] == "law-stackexchange-qa"
    assert header["source_datasets"] == ["ymoslem/Law-StackExchange"]
    assert {"legal", "law-stackexchange"} <= set(header["tags"])
    sample = resolve_input(str(SAMPLE), "http://unused", tmp_path, False, print)
    assert sample["sample"] is True
    text = card.render_card(_report(sample, {"CC BY-SA 4.0": 10}, {}, None), {})
    assert "generated sample in the schema of the [ymoslem/Law-StackExchange]" in text and "not real posts" in text


def test_bundled_site_dump_is_marked_as_the_generated_sample(tmp_path):
    source = resolve_input(str(SAMPLE_7Z), "http://unused", tmp_path, False, print)
    assert source["sample"] is True and source["site_name"] == "Law Stack Exchange"
    text = card.render_card(_report(source, {"CC BY-SA 4.0": 10}, {}, None), {})
    assert "generated sample in the layout of [Law Stack Exchange](https://law.stackexchange.com)" in text
    assert "ymoslem" not in text


def test_site_names():
    assert site_name("ai.stackexchange.com") == AI_NAME and site_subject("ai.stackexchange.com") == AI_SUBJECT
    assert site_subject("law.stackexchange.com") == "legal questions"
    assert site_name("retrocomputing.stackexchange.com") == "Retrocomputing Stack Exchange"
    assert site_name("3d-printing.stackexchange.com") == "3d Printing Stack Exchange"
    assert site_name("stackoverflow.com") == "Stack Overflow"
    assert dataset_name("stackoverflow.com") == "stackoverflow-qa"
    assert site_name("example.org") == "example.org" and dataset_name("ai.stackexchange.com") == "ai-stackexchange-qa"


# ---- the prompts name the site's subject ---------------------------------------------------------------------------
def _domain(*argv: str) -> str:
    from config import parse_args

    return parse_args([*argv, "--synth-gen-endpoint", ""]).sdg.domain


def test_domain_comes_from_the_input_or_the_flag(tmp_path, capsys):
    assert _domain() == _domain("--input", str(SAMPLE)) == _domain("--input", str(SAMPLE_7Z)) == "legal questions"
    assert _domain("--input", str(FIXTURE)) == AI_SUBJECT
    posts = tmp_path / "Posts.xml"
    posts.write_text("<posts></posts>")
    assert _domain("--input", str(posts), "--site", "cooking.stackexchange.com") == "questions on Seasoned Advice"
    assert _domain("--input", str(FIXTURE), "--domain", "  questions on   machine learning ") == \
        "questions on machine learning"
    for bad in ("", "two\nlines", "x" * 201):
        with pytest.raises(SystemExit) as exit_info:
            _domain("--domain", bad)
        assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("error: --domain: ") == 3


def _markers():
    spec = importlib.util.spec_from_file_location("sdg_real_model", REPO / "bench" / "sdg_real_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prompts_name_the_domain_and_the_bench_still_tells_their_kind():
    bench = _markers()
    built = {"title": sg.title_prompt("Q?", 3, AI_SUBJECT),
             "question": sg.question_prompt("Q?", 3, AI_SUBJECT),
             "answer": sg.answer_prompt("An answer.", 3, AI_SUBJECT),
             "judge": sg.judge_prompt("T?", "Q", "A", AI_SUBJECT)}
    for kind, messages in built.items():
        assert AI_SUBJECT in messages[0]["content"] and "legal" not in messages[0]["content"]
        entry = {"request": {"messages": messages}, "response": {}, "status": 200, "seconds": 0}
        assert bench.describe(entry)["kind"] == kind
    assert built["judge"][0]["content"].startswith(f"You rate answers to {AI_SUBJECT}.\n\n")
    assert sg.judge_prompt("T?", "Q", "A")[0]["content"].startswith("You rate answers to legal questions.\n\n")


def test_the_loop_and_preflight_send_the_domain_to_the_endpoint(server, tmp_path):
    """Real HTTP to the test server: every generation and judge request of the preflight and the loop names it."""
    from test_synthetic_gen import config, curate, dedup_against, fast_client, make_records

    srv = server()
    cfg = config(srv, tmp_path, reward_mode="judge", domain=AI_SUBJECT, ratio=0.2, thresholds={"helpfulness": 0})
    client, sent = fast_client(cfg), []
    real_chat = client.chat

    async def recording_chat(model, messages, *args, **kwargs):
        sent.append(messages[0]["content"])
        return await real_chat(model, messages, *args, **kwargs)

    client.chat = recording_chat
    sg.preflight(cfg, client=client)
    sg.grow_train(make_records(20), cfg, curate, dedup_against, tmp_path / "failures.jsonl", client=client)
    judged = [p for p in sent if p.startswith("You rate answers")]
    generated = [p for p in sent if p.startswith(("QUESTION:", "ANSWER:"))]
    assert len(judged) >= 2 and len(generated) >= 4 and len(judged) + len(generated) == len(sent)
    assert all(p.startswith(f"You rate answers to {AI_SUBJECT}.") for p in judged)
    assert all(f"in the style of {AI_SUBJECT}" in p or f"in the style of answers to {AI_SUBJECT}" in p
               for p in generated)


# ---- end to end on the real fixture ---------------------------------------------------------------------------------
@pytest.mark.e2e
def test_pipeline_on_the_real_fixture_writes_a_card_and_report_true_to_the_site(tmp_path, fixture_posts):
    out = tmp_path / "out"
    result = run_main("--input", str(FIXTURE), "--output-dir", str(out), "--n-workers", "1", "--dedup",
                      "exact,fuzzy", "--quiet", "--embedding-cache", "")
    assert result.returncode == 0, result.stderr[-2000:]
    final = out / "final"
    rows = [json.loads(line) for split in ("train", "val", "test")
            for line in (final / f"law-qa-{split}.jsonl").read_text().splitlines()]
    assert rows and {r["license"] for r in rows} == {"CC BY-SA 3.0"}
    report = json.loads((final / "report.json").read_text())
    outputs = report["outputs"]
    assert outputs["licenses"] == outputs["licenses_inferred"] == {"CC BY-SA 3.0": len(rows)}
    dates = [p["CreationDate"][:19] for r in rows for p in fixture_posts.values()
             if p["Id"] == r["id"].rsplit("-", 1)[1]]
    assert outputs["period"]["first"] == min(dates)
    assert report["source"]["site_name"] == AI_NAME and report["source"]["sample"] is False
    text = (final / "README.md").read_text()
    assert _header(text)["pretty_name"] == "ai-stackexchange-qa"
    assert f"[{AI_NAME}](https://ai.stackexchange.com)" in text
    assert "ymoslem" not in text and "Law Stack" not in text and "rows per license: : " not in text
    assert f"CC BY-SA 3.0: {len(rows)} ({len(rows)} inferred)" in text
    assert f"posts from {outputs['period']['first'][:10]} to {outputs['period']['last'][:10]}" in text
    assert f"[{AI_NAME}, https://ai.stackexchange.com]" in result.stdout
    assert f"licences: CC BY-SA 3.0={len(rows)} ({len(rows)} inferred)" in result.stdout
