"""Tests for data/make_sample.py (the bundled-sample generator) and tests/data/make_bad_inputs.py.

Fast: a few hundred generated questions, no embedding model. The HTML -> text used here is a small
stdlib converter (independent of modifiers.py) so these tests check the generator, not the pipeline.
"""
from __future__ import annotations

import functools
import html.parser
import json
import os
import re
import subprocess
import sys
from collections import Counter

import ftfy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "data", "make_sample.py")
BAD_GEN = os.path.join(ROOT, "tests", "data", "make_bad_inputs.py")
N = 600
SEED = 7

FIELDS = {"question_id", "tags", "score", "license", "link", "question_title", "question_body", "answers"}
LINK_RE = re.compile(r"^https://law\.stackexchange\.com/questions/(\d+)/[a-z0-9]+(?:-[a-z0-9]+)*$")


# ------------------------------------------------------------------------------------------------ helpers

class _Text(html.parser.HTMLParser):
    BLOCK = {"p", "li", "blockquote", "pre", "h1", "h2", "h3", "ul", "ol", "hr", "br", "div"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


@functools.lru_cache(maxsize=None)
def html_to_text(s: str) -> str:
    p = _Text()
    p.feed(s)
    p.close()
    t = ftfy.fix_text("".join(p.out)).replace("\u200b", "")
    return "\n".join(x for x in (re.sub(r"\s+", " ", ln).strip() for ln in t.split("\n")) if x)


def words(html: str) -> int:
    return len(html_to_text(html).split())


def best_answer(rec):
    if not rec["answers"]:
        return None
    scores = [a["score"] for a in rec["answers"]]
    return rec["answers"][scores.index(max(scores))]


def passes_default_filters(rec) -> bool:
    b = best_answer(rec)
    return (b is not None and rec["score"] >= 0 and b["score"] >= 0
            and 50 <= words(rec["question_body"]) <= 500 and 50 <= words(b["body"]) <= 500)


def norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def joined(rec) -> str:
    return "\n".join([html_to_text(rec["question_title"]), html_to_text(rec["question_body"]),
                      html_to_text(best_answer(rec)["body"])])


def shingles5(t: str) -> set:
    w = t.lower().split()
    return {" ".join(w[i:i + 5]) for i in range(max(1, len(w) - 4))}


def jaccard5(a: str, b: str) -> float:
    sa, sb = shingles5(a), shingles5(b)
    return len(sa & sb) / len(sa | sb)


def run_gen(out, *extra, n=N, seed=SEED):
    subprocess.run([sys.executable, GEN, "--questions", str(n), "--seed", str(seed), "--out", str(out), *extra],
                   check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    out = d / "law-stackexchange-questions-answers.json"
    run_gen(out)
    truth = d / "law-stackexchange-questions-answers-duplicates.jsonl"
    recs = json.loads(out.read_bytes())
    lines = [json.loads(x) for x in truth.read_text().splitlines()]
    return {"dir": d, "out": out, "truth": truth, "recs": recs, "lines": lines,
            "by_id": {r["question_id"]: r for r in recs}, "raw": out.read_text(encoding="utf-8")}


# ------------------------------------------------------------------------------------------------ schema

def test_schema_of_every_element(corpus):
    recs = corpus["recs"]
    assert isinstance(recs, list) and len(recs) == N
    qids, aids = set(), set()
    for r in recs:
        assert set(r) == FIELDS
        assert type(r["question_id"]) is int and r["question_id"] not in qids
        qids.add(r["question_id"])
        assert isinstance(r["tags"], list) and r["tags"] and all(isinstance(t, str) and t for t in r["tags"])
        assert type(r["score"]) is int
        assert r["license"] in ("CC BY-SA 3.0", "CC BY-SA 4.0")
        m = LINK_RE.match(r["link"])
        assert m and int(m.group(1)) == r["question_id"], r["link"]
        assert isinstance(r["question_title"], str) and r["question_title"].strip()
        assert "<" not in r["question_title"]
        assert isinstance(r["question_body"], str) and r["question_body"].lstrip().startswith("<")
        assert isinstance(r["answers"], list)
        for a in r["answers"]:
            assert set(a) == {"answer_id", "body", "score"}
            assert type(a["answer_id"]) is int and a["answer_id"] not in aids
            aids.add(a["answer_id"])
            assert isinstance(a["body"], str) and a["body"].strip()
            assert type(a["score"]) is int
    assert not (qids & aids)
    assert {r["license"] for r in recs} == {"CC BY-SA 3.0", "CC BY-SA 4.0"}


def test_deterministic_byte_identical(tmp_path, corpus):
    out = tmp_path / "again.json"
    truth = tmp_path / "truth.jsonl"
    run_gen(out, "--truth", str(truth))
    assert out.read_bytes() == corpus["out"].read_bytes()
    assert truth.read_bytes() == corpus["truth"].read_bytes()
    other = tmp_path / "other.json"
    run_gen(other, seed=SEED + 1)
    assert other.read_bytes() != corpus["out"].read_bytes()


def test_output_independent_of_workers(tmp_path):
    n = 450  # three chunks of (hidden, test-only) size 200
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run_gen(a, "--workers", "1", "--chunk", "200", n=n, seed=3)
    run_gen(b, "--workers", "2", "--chunk", "200", n=n, seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a-duplicates.jsonl").read_bytes() == (tmp_path / "b-duplicates.jsonl").read_bytes()
    ids = [r["question_id"] for r in json.loads(a.read_bytes())]
    assert ids == sorted(ids) and len(set(ids)) == n


def test_atomic_write_leaves_no_temp_files(corpus):
    names = sorted(os.listdir(corpus["dir"]))
    assert names == ["law-stackexchange-questions-answers-duplicates.jsonl",
                     "law-stackexchange-questions-answers.json"]
    assert oct(os.stat(corpus["out"]).st_mode & 0o777) == "0o644"


def test_zero_questions_is_an_empty_array(tmp_path):
    out = tmp_path / "empty.json"
    run_gen(out, n=0)
    assert json.loads(out.read_bytes()) == []
    assert (tmp_path / "empty-duplicates.jsonl").read_text() == ""


# ------------------------------------------------------------------------------------------------ planted duplicates

def test_truth_file_consistent(corpus):
    lines, by_id = corpus["lines"], corpus["by_id"]
    kinds = Counter(x["kind"] for x in lines)
    assert set(kinds) == {"exact", "near", "paraphrase"}
    for k in kinds:  # roughly 3% of rows each
        assert 0.015 * N <= kinds[k] <= 0.05 * N, kinds
    copies = [x["question_id"] for x in lines]
    assert len(set(copies)) == len(copies)
    originals = [x["duplicates"] for x in lines]
    assert len(set(originals)) == len(originals), "an original is copied at most once"
    assert not set(copies) & set(originals), "copies are never copied"
    for x in lines:
        assert set(x) == {"question_id", "duplicates", "kind"}
        assert x["question_id"] in by_id and x["duplicates"] in by_id
        assert x["question_id"] > x["duplicates"]
        assert len(str(x["question_id"])) == len(str(x["duplicates"])), "string order == numeric order"


def test_originals_and_copies_pass_default_filters(corpus):
    by_id = corpus["by_id"]
    for x in corpus["lines"]:
        orig, copy = by_id[x["duplicates"]], by_id[x["question_id"]]
        assert passes_default_filters(orig), x
        assert passes_default_filters(copy), x
        # the survivor rule (answer score, then question score, then smaller id) keeps the original
        assert best_answer(copy)["score"] == best_answer(orig)["score"]
        assert 0 <= copy["score"] <= orig["score"]


def test_exact_copies_identical_after_normalisation(corpus):
    by_id = corpus["by_id"]
    for x in corpus["lines"]:
        if x["kind"] != "exact":
            continue
        o, c = by_id[x["duplicates"]], by_id[x["question_id"]]
        assert c["question_title"] == o["question_title"]
        assert norm(html_to_text(c["question_body"])) == norm(html_to_text(o["question_body"]))
        assert [norm(html_to_text(a["body"])) for a in c["answers"]] == \
               [norm(html_to_text(a["body"])) for a in o["answers"]]
        assert [a["score"] for a in c["answers"]] == [a["score"] for a in o["answers"]]
        assert c["link"] != o["link"]


def test_near_and_paraphrase_similarity_bands(corpus):
    by_id = corpus["by_id"]
    seen = Counter()
    for x in corpus["lines"]:
        if x["kind"] == "exact":
            continue
        o, c = by_id[x["duplicates"]], by_id[x["question_id"]]
        j = jaccard5(joined(o), joined(c))
        if x["kind"] == "near":
            assert 0.85 <= j < 1.0, (x, j)
        else:
            assert j < 0.5, (x, j)
            # same facts: the numbers (amounts, dates, counts) of the original survive the rewrite
            nums = set(re.findall(r"\d[\d,]*", joined(o)))
            assert nums <= set(re.findall(r"\d[\d,]*", joined(c))), x
        seen[x["kind"]] += 1
    assert seen["near"] and seen["paraphrase"]


def test_unrelated_documents_share_few_shingles(corpus):
    """Unplanted pairs must not look like near-duplicates to word-shingle MinHash (sampled pairs)."""
    recs = [r for r in corpus["recs"] if r["answers"]][:150]
    planted = {frozenset((x["question_id"], x["duplicates"])) for x in corpus["lines"]}
    sh = {r["question_id"]: shingles5(joined(r)) for r in recs}
    ids = list(sh)
    worst = 0.0
    for i in range(len(ids)):
        a = sh[ids[i]]
        for j in range(i + 1, len(ids)):
            b = sh[ids[j]]
            inter = len(a & b)
            if inter and frozenset((ids[i], ids[j])) not in planted:
                worst = max(worst, inter / (len(a) + len(b) - inter))
    assert worst < 0.3, worst


# ------------------------------------------------------------------------------------------------ realism

def test_required_html_constructs_present(corpus):
    raw = corpus["raw"]
    for needle in ["<p>", "<blockquote>", "<ul>", "<ol>", "<li>", "<a href=", "<code>", "<pre><code>", "<br>",
                   "<em>", "<strong>", "<h2>", "<hr>", "<script", "<style", "&amp;", "&quot;", "&#39;",
                   "&nbsp;", "&gt;", "&lt;", "&#8217;"]:
        assert needle in raw, needle


def test_length_tails(corpus):
    recs = corpus["recs"]
    q = [words(r["question_body"]) for r in recs]
    a = [words(best_answer(r)["body"]) for r in recs if r["answers"]]
    for name, xs in (("question", q), ("best answer", a)):
        short = sum(x < 50 for x in xs) / len(xs)
        long_ = sum(x > 500 for x in xs) / len(xs)
        mid = 1 - short - long_
        assert 0.05 <= short <= 0.2, (name, short)
        assert 0.05 <= long_ <= 0.2, (name, long_)
        assert mid >= 0.6, (name, mid)


def test_scores_answers_and_ordering(corpus):
    recs = corpus["recs"]
    no_answer = sum(not r["answers"] for r in recs) / len(recs)
    assert 0.03 <= no_answer <= 0.15
    assert any(r["score"] < 0 for r in recs)
    assert any(a["score"] < 0 for r in recs for a in r["answers"])
    counts = Counter(len(r["answers"]) for r in recs if r["answers"])
    assert set(counts) == {1, 2, 3, 4, 5}
    multi = [r for r in recs if len(r["answers"]) > 1]
    best_not_first = sum(best_answer(r) is not r["answers"][0] for r in multi)
    ties = sum([a["score"] for a in r["answers"]].count(max(a["score"] for a in r["answers"])) > 1 for r in multi)
    assert best_not_first > 0 and ties > 0


def test_mojibake_and_odd_unicode_present(corpus):
    raw = corpus["raw"]
    assert "â€™" in raw or "Ã" in raw
    assert "\u00a0" in raw and "\u200b" in raw
    assert any(ch in raw for ch in "ﬁﬂ")
    assert "’" in raw
    # the repair step can undo the mojibake
    bodies = [r["question_body"] for r in corpus["recs"] if "â€™" in r["question_body"]]
    assert bodies and all("â€™" not in ftfy.fix_text(b) for b in bodies)


# ------------------------------------------------------------------------------------------------ bad inputs

def test_bad_inputs_generator_matches_committed(tmp_path):
    subprocess.run([sys.executable, BAD_GEN, "--out", str(tmp_path)], check=True, capture_output=True, timeout=60)
    committed = os.path.join(ROOT, "tests", "data", "bad")
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    names = [e["file"] for e in manifest["files"]]
    assert len(names) == len(set(names))
    for e in manifest["files"]:
        assert e["outcome"] in ("error", "skip", "ok")
        if e.get("generated_at_test_time"):
            assert not (tmp_path / e["file"]).exists()
            continue
        fresh = (tmp_path / e["file"]).read_bytes()
        with open(os.path.join(committed, e["file"]), "rb") as fh:
            assert fh.read() == fresh, e["file"]
    with open(os.path.join(committed, "MANIFEST.json"), "rb") as fh:
        assert fh.read() == (tmp_path / "MANIFEST.json").read_bytes()


def test_bad_inputs_are_broken_as_described(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests", "data"))
    try:
        import make_bad_inputs as mbi
    finally:
        sys.path.pop(0)
    bad = os.path.join(ROOT, "tests", "data", "bad")
    for e in json.loads(open(os.path.join(bad, "MANIFEST.json")).read())["files"]:
        if e.get("generated_at_test_time"):
            continue
        raw = open(os.path.join(bad, e["file"]), "rb").read()
        if e["outcome"] == "error":
            try:
                data = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(data, list):  # parses in Python, but holds text that is not valid Unicode
                with pytest.raises(UnicodeEncodeError):
                    json.dumps(data, ensure_ascii=False).encode("utf-8")
        else:
            data = json.loads(raw.decode("utf-8-sig"))
            assert isinstance(data, list)
    # the 10 MB body is built on demand
    p = tmp_path / "huge_body.json"
    mbi.make_huge_body(str(p))
    data = json.loads(p.read_bytes())
    assert len(data) == 3 and len(data[1]["question_body"]) >= 10 * 1024 * 1024
    # the valid record the corpus is built from passes the default filters
    assert passes_default_filters(mbi.valid_record(1, 0))
    deep = json.loads(open(os.path.join(bad, "deep_nesting.json"), "rb").read())
    assert deep[0]["question_body"].count("<div>") == 10000
