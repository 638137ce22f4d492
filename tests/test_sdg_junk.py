"""Against a test server that answers half of its generation calls the way small models do (preambles, glued
closing remarks, refusals, cut-off items with finish_reason "length", think blocks, sub-bullets, echoes), no junk
reaches an accepted row and the rows still reach the target. grow_train is called directly (fast, not e2e)."""
from __future__ import annotations

import json
from collections import Counter

import pytest

import synthetic_gen as sg
from llm_server import JUNK_KINDS, make_paraphrase, make_question
from test_synthetic_gen import config, grow, make_records

pytestmark = pytest.mark.timeout(120)


def clean_items(doc: str, kind: str, cfg: sg.SdgConfig) -> set[str]:
    """Every item the server's clean answers could hold for this document (any re-ask seed, any slot)."""
    make = make_question if kind == "title" else make_paraphrase
    return {make(doc.strip(), cfg.gen_seed + a, k) for a in range(cfg.max_reasks + 1) for k in range(cfg.n_variants)}


def assert_rows_are_clean_items(new, records, cfg: sg.SdgConfig, items_of, junk_marks) -> None:
    """Every synthetic row's title, question and answer is one of the clean items the server could answer for its
    source (`items_of(doc, kind, cfg)`), and holds none of `junk_marks`."""
    by_id = records.set_index("id")
    for _, row in new.iterrows():
        src = by_id.loc[row["source_id"]]
        assert row["title"] in items_of(src["question"], "title", cfg), row["title"]
        assert row["question"] in items_of(src["question"], "question", cfg), row["question"]
        assert row["answer"] in items_of(src["answer"], "answer", cfg), row["answer"]
        for text in (row["title"], row["question"], row["answer"]):
            assert not any(m in text for m in junk_marks), text


def test_junk_never_reaches_an_accepted_row_and_target_is_reached(server, tmp_path):
    srv = server(junk_rate=0.5)
    records = make_records(80)
    n_train = int((records["split"] == "train").sum())
    cfg = config(srv, tmp_path, target_size=n_train + 40)
    new, rep = grow(records, cfg, tmp_path)
    assert rep["stop_reason"] == "target_reached" and len(new) == 40, rep.get("stop_detail")
    assert_rows_are_clean_items(new, records, cfg, clean_items,
                                ("junk", "<think", "</think>", "I hope", "let me know", "Let me know", "I'm sorry",
                                 "Here are", "\n"))
    # every kind of junk was met and named; each rejected answer is in sdg_failures.jsonl with its raw text
    events = [json.loads(x) for x in (tmp_path / "sdg_failures.jsonl").read_text().splitlines()]
    rejected = [e for e in events if e["kind"] in ("response", "item")]
    assert Counter(e["reason"] for e in rejected) == Counter(rep["rejections"])
    assert {"refusal", "truncated", "wrong_count", "echo"} <= set(rep["rejections"])
    assert all(e["raw"] for e in rejected)
    assert any("junk sub-bullet" in e["raw"] for e in rejected)     # sub-bullets counted as one item: wrong_count
    # a rerun answered from the cache takes the same decisions: same rows, same failures file, no request
    again, rep2 = grow(records, cfg, tmp_path, name="again.jsonl")
    assert again.equals(new) and rep2["llm"]["requests"] == 0
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "sdg_failures.jsonl").read_bytes()


def test_junk_answers_are_deterministic_by_request_and_cover_every_kind():
    from llm_server import junk_answer

    doc = "some document text about deposits and landlords and the law that applies to them"
    assert junk_answer("questions", doc, 3, 1234, "abc") == junk_answer("questions", doc, 3, 1234, "abc")
    answers = {junk_answer("paraphrase", doc, 3, 1, str(i)) for i in range(200)}
    assert len(answers) == len(JUNK_KINDS) and {f for _, f in answers} == {"stop", "length"}
