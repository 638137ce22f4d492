"""sdg_parse: the strict parser and gates, tested on a committed corpus of realistic model outputs
(tests/data/sdg_outputs/*.json: raw text, n, kind, finish_reason, sources, and the expected items with the slots
an item gate rejects, or the expected response-level rejection reason)."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sdg_parse as sp  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "data" / "sdg_outputs"
CASES = sorted(CORPUS.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_corpus_is_big_and_covers_every_reason():
    cases = [load(p) for p in CASES]
    assert len(cases) >= 40
    reasons = Counter(c["expect"].get("reason") for c in cases if "reason" in c["expect"])
    reasons.update(r for c in cases for r in c["expect"].get("rejected", {}).values())
    assert set(sp.RESPONSE_REASONS) <= set(reasons), set(sp.RESPONSE_REASONS) - set(reasons)
    assert set(sp.ITEM_REASONS) <= set(reasons), set(sp.ITEM_REASONS) - set(reasons)
    assert {c["kind"] for c in cases} == {"title", "question", "answer"}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus_case(path):
    case = load(path)
    r = sp.parse_items(case["raw"], case["n"], case["kind"], case["finish_reason"], case["sources"],
                       tuple(case["words"]) if case.get("words") else None, case.get("topic"))
    expect = case["expect"]
    assert r.raw == case["raw"]
    if "reason" in expect:
        assert (r.ok, r.reason) == (False, expect["reason"]), (r.items, r.detail)
        return
    assert r.ok, (r.reason, r.detail, r.items)
    assert r.items == expect["items"]
    assert {str(slot): reason for slot, reason, _ in r.rejected} == expect["rejected"]
    for item in r.accepted:          # nothing of the list's wrapping survives in an accepted item
        assert not item.startswith(("* ", "- ", "**", "<think", "```")) and "</think>" not in item
        assert not sp.is_closing(item.split("\n")[-1]) and not sp.is_refusal(item)


def test_every_rejection_keeps_the_raw_text():
    raw = "I'm sorry, but I can't help with that."
    r = sp.parse_items(raw, 3, "title")
    assert not r.ok and r.raw == raw and r.items == []


def test_wrong_count_detail_names_the_numbers():
    r = sp.parse_items("* a question here?\n* another question?", 3)
    assert r.reason == "wrong_count" and r.detail == "expected 3 items, got 2"


def test_no_n_accepts_any_count_and_no_kind_skips_title_gate():
    r = sp.parse_items("* one\n* two\n* three\n* four")
    assert r.ok and r.items == ["one", "two", "three", "four"]


def test_split_reasoning():
    assert sp.split_reasoning("<think>a</think>\nB") == ("B", "<think>a</think>")
    assert sp.split_reasoning("plan\n</think>B") == ("B", "plan\n</think>")
    assert sp.split_reasoning("<think>never closed") == ("", "<think>never closed")
    assert sp.split_reasoning("<THINKING>x</THINKING>y") == ("y", "<THINKING>x</THINKING>")


@pytest.mark.parametrize("text,out", [
    ('"whole"', "whole"), ('"a" and "b"', '"a" and "b"'), ("'Can't I sue?'", "Can't I sue?"),
    ("\u201cCurly?\u201d", "Curly?"), ("*italic item*", "italic item"), ("`code`", "code"),
    ("He said \"no\".", "He said \"no\"."), ("Question 2: Is it legal?", "Is it legal?"),
    ("**Bold** words", "Bold words"),
])
def test_clean_item_quotes_only_when_wrapping(text, out):
    assert sp.clean_item(text) == out


def test_echo_similarity_line():
    src = " ".join(f"word{i}" for i in range(100))
    one_changed = src.replace("word50", "other")
    ten_dropped = " ".join(f"word{i}" for i in range(100) if i % 10)
    assert sp.similarity(src, src) == 1.0
    assert sp.similarity(one_changed, src) >= sp.ECHO_MIN_SIMILARITY
    assert sp.similarity(ten_dropped, src) < sp.ECHO_MIN_SIMILARITY
    assert sp.item_problem(one_changed, "answer", [src]) == "echo"
    assert sp.item_problem(ten_dropped, "answer", [src]) is None


@pytest.mark.parametrize("title,problem", [
    ("Can a landlord keep the deposit?", None), ("No question mark here.", "not_a_question"),
    ("Is it legal? I hope this helps", "not_a_question"), ("Why?", "title_length"),
    ("Is " + "x" * 400 + "?", "title_length"), ("Line one?\nLine two?", "not_a_question"),
])
def test_title_gate(title, problem):
    assert sp.title_problem(title) == problem


# ---- the junk gates: what they catch and what they leave alone ----------------------------------------------------
@pytest.mark.parametrize("text", [
    "This response includes a paraphrase of the answer in three parts.",
    "The original text was rewritten as an explanation of the legal process.",
    "Each item is one paragraph of at least 50 words, one item per line.",
    "Your request has been accepted. Thank you for asking.",
    "Question: How do I know if a news article contains libel?",
    "A landlord may keep a deposit. I hope this helps!",
    "The rewritten answer has been edited to keep all facts as they are.",
    "The question is a legal one, requiring careful consideration of the law.",
    "This is a legal question that asks for more information about the request.",
    "This is the requested answer. It contains 3 times of what you asked.",
    "I will ensure that the law is applied to all of my responses.",
    "What are the details of my legal question?",
])
def test_about_the_task_catches_meta_talk(text):
    assert sp.is_about_the_task(text)


@pytest.mark.parametrize("text", [
    "A variation of the contract needs the consent of both parties.",
    "The task of proving the statement true lies on the person who made it.",
    "Can the website be made to delete the post, or disclose who posted it?",
    "The court may deny your request if it is late; the original lease still applies.",
    "In other words, the tenant may reduce the rent until the lamp is fixed.",
])
def test_about_the_task_leaves_legal_text_alone(text):
    assert not sp.is_about_the_task(text)


def test_off_topic_repetitive_and_escapes():
    source = "My landlord kept the security deposit after I moved out of the flat; the carpet was already worn."
    on = "Can a landlord keep a tenant's security deposit for a carpet that was worn before the tenancy?"
    off = "How do I make sure my account is protected from unauthorized access?"
    assert sp.item_problem(on, "title", [], topic=source) is None
    assert sp.item_problem(off, "title", [], topic=source) == "off_topic"
    assert sp.item_problem(off, "title", []) is None                  # no topic given: not checked
    assert sp.item_problem("Is it legal to keep a deposit, a deposit, a deposit, a deposit?", "title", []) == \
        "repetitive"
    assert sp.is_repetitive("no no no, the landlord may not") and not sp.is_repetitive(on)
    assert sp.is_garbled("the original text andcitetheresnomorefurtherexplanationhere at all")
    assert not sp.is_garbled("see https://example.org/a/very/long/path/that/is/not/words/run/together/at/all")
    assert sp.item_problem("Can a landlord keep the \\*whole\\* deposit?", "title", []) == "escaped_markup"
    assert sp.item_problem("Can a landlord keep the deposit?\\n", "title", []) == "escaped_markup"


def test_word_range_gates_and_excerpt_echo():
    src = " ".join(f"w{i}" for i in range(80))
    assert sp.words_problem("a b c", (5, 10)) == "too_few_words"
    assert sp.words_problem(" ".join("a" * 11), (5, 10)) == "too_many_words"
    assert sp.words_problem("a b c d e", (5, 10)) is None and sp.words_problem("a", None) is None
    assert sp.is_echo(" ".join(f"w{i}" for i in range(10, 40)), src)          # a verbatim excerpt
    mixed = " ".join(f"w{i}" if i % 4 else f"x{i}" for i in range(10, 40))     # a quarter of the words changed
    assert not sp.is_echo(mixed, src)


def test_a_marker_inside_a_line_is_stripped():
    r = sp.parse_items("* 2. Can a landlord keep a deposit?\n* A. Is a deposit refundable at the end?\n"
                       "* - May a tenant ask for the deposit back?", 3, "title")
    assert r.items == ["Can a landlord keep a deposit?", "Is a deposit refundable at the end?",
                       "May a tenant ask for the deposit back?"]


@pytest.mark.parametrize("title,problem", [
    ("Are there are no answers yet. How does it work?", "not_a_question"),
    ("Is there a refund for a camera on my driveway! Thank you! Is this possible?", "not_a_question"),
    ("Does U.S. law let a landlord keep the deposit?", None),
    ("Can a landlord keep a deposit for wear and tear, e.g. a worn carpet?", None),
])
def test_a_title_is_one_sentence(title, problem):
    assert sp.title_problem(title) == problem


def test_new_facts_are_numbers_and_names_the_source_lacks():
    src = "My landlord in Leeds kept my deposit of $1,200 after 2 years. Is that allowed under the Housing Act?"
    assert sp.new_facts("Can my landlord in Leeds keep a $1200 deposit after 2 years under the Housing Act?", src) == []
    assert sp.new_facts("Marta Patel from Dayton, Illinois paid $1,910 to my landlord.", src) == \
        ["1,910", "Patel", "Dayton", "Illinois"]
    keeps = "Can my landlord in Leeds keep my deposit of $1,200 after 2 years under the Housing Act?"
    assert sp.item_problem(keeps, "title", [], topic=src) is None
    assert sp.item_problem(keeps.replace("Leeds", "York"), "title", [], topic=src) == "new_facts"
