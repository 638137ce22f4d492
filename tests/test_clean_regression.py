"""The clean stage's fast HTML walk gives byte for byte what the original walk gave (tests/clean_reference.py).

Compared on the bundled sample, on generated posts from both generators (data/make_sample.py: the sample's
own HTML; bench/quickgen.py: lists, quotes, code, entities, mojibake) and on hand-made edge cases aimed at the
places where the fast path's shortcut and the walk could part (a line that starts with ">", no-break spaces,
a bullet with no text before a paragraph, line breaks in code, dropped elements, whole documents).
"""
from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

import clean_reference
import modifiers

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "law-stackexchange-questions-answers.json"

EDGE_CASES = [
    "<p>&gt; quoted by hand</p><p>&gt;<em> split</em> marker</p><p>a &gt; b</p>",
    "<p>&gt;</p><p> &gt; &gt; </p><p>after</p>",
    "<p>no&nbsp;break</p><p>&nbsp;</p><p><em>x</em>&nbsp;<b>y</b></p><p>\u2003em space\u3000</p>",
    "<ul><li></li></ul><p>text after an empty bullet</p>",
    "<ul><li><p>one</p><p>two</p></li><li>three<ul><li>deep<ol start='x'><li>n</li></ol></li></ul></li></ul>",
    "<blockquote><p>q1</p><blockquote><p>q2</p></blockquote><p>q3</p></blockquote><p>out</p>",
    "<pre><code>a\n\n  b<br>c\n</code></pre><p>after <code>x</code></p>",
    "<p>a<br>b<br><br>c</p><p><br></p><p>d</p>",
    "<h2>Head</h2><hr><div>line <span>span</span></div><div><p>in div</p></div>text at top <em>level</em>",
    "<table><tr><td>a</td><td>b</td></tr></table><p>x<img alt='alt text' src='x'>y</p>",
    "<script>x</script>lead<style>y</style><p>kept</p><iframe>z</iframe> tail",
    "<P>UPPER</P><EM>case</EM>",
    "<!DOCTYPE html><html><head><title>t</title></head><body><p>doc</p></body></html>",
    "<html><body><p>whole</p></body></html>",
    "<p>a</p>\n\n<p>  b  <a href='x'> link </a>  c </p>\n",
    "<p>\ue001 private use \ue002</p><p>tab\there\x0bvt\x0cff\rcr</p>",
    "<dl><dt>term</dt><dd>definition</dd></dl><p>x</p>",
    "<p>one<p>nested paragraph</p></p><a><p>p in a</p></a>",
    "<li>bare li</li><p>x</p>",
    "text only &amp; entity",
    "   ",
]


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bodies(elements: list[dict]) -> list[str]:
    return [body for e in elements for body in [e["question_body"]] + [a["body"] for a in e["answers"]]]


def _assert_same(bodies: list[str]) -> None:
    mismatches = [b for b in bodies if modifiers.html_to_text(b) != clean_reference.html_to_text(b)]
    assert not mismatches, f"{len(mismatches)} of {len(bodies)} differ; first: {mismatches[0][:300]!r}"


@pytest.mark.parametrize("html", EDGE_CASES)
def test_edge_cases_match_the_reference_walk(html):
    assert modifiers.html_to_text(html) == clean_reference.html_to_text(html)


def test_bundled_sample_matches_the_reference_walk():
    _assert_same(_bodies(json.loads(SAMPLE.read_text(encoding="utf-8"))))


def test_generated_posts_match_the_reference_walk():
    make_sample = _load_module(ROOT / "data" / "make_sample.py", "make_sample_for_test")
    out = io.BytesIO()
    make_sample.generate(400, 11, out, io.BytesIO())
    quickgen = _load_module(ROOT / "bench" / "quickgen.py", "quickgen_for_test")
    _assert_same(_bodies(json.loads(out.getvalue())) + _bodies(quickgen.generate(300, 5)))


def test_the_fast_path_is_taken_for_plain_paragraphs(monkeypatch):
    # guards the speed-up itself: plain paragraphs must not fall back to the per-element walk
    walked = []
    monkeypatch.setattr(modifiers, "_walk", lambda builder, top: walked.append(top.tag))
    # an item with markup: not a simple post (modifiers._simple_visible), so each block goes through _walk_text
    assert modifiers.html_to_text("<p>a <em>b</em></p><h2>c</h2><ul><li>d <em>e</em></li></ul>") == "a b\n\nc"
    assert walked == ["ul"]


def test_a_simple_post_takes_no_walk_in_plain(monkeypatch):
    # guards the one-pass visible text in the plain format too: a post of simple blocks needs no builder at all
    monkeypatch.setattr(modifiers, "_walk_text", lambda root, skip=False: pytest.fail("walked"))
    html = "<p>a <em>b</em></p><h2>c</h2><ul><li>d</li></ul><blockquote><p>&gt;e</p></blockquote>"
    assert modifiers.html_to_text(html) == clean_reference.html_to_text(html) == "a b\n\nc\n\n- d\n\n> >e"
