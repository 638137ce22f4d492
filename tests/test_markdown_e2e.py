"""--text-format end to end: the same rows kept and removed in both formats, Markdown rows written, the audit
passing on both (it re-checks the visible words), on real posts (tests/fixtures/real) and the bundled sample."""
from __future__ import annotations

import json

import pytest

from conftest import REPO, run_main

FLAGS = ("--n-workers", "1", "--dedup", "exact,fuzzy", "--quiet", "--embedding-cache", "", "--seed", "7")


def run_both(tmp_path, source) -> dict:
    """{format: (rows by id, removed ids, report)} of one run per --text-format."""
    runs = {}
    for fmt in ("plain", "markdown"):
        out = tmp_path / fmt
        result = run_main("--input", str(source), "--output-dir", str(out), "--text-format", fmt, *FLAGS)
        assert result.returncode == 0, result.stderr[-2000:]
        final = out / "final"
        rows = {}
        for split in ("train", "val", "test"):
            for line in (final / f"law-qa-{split}.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                rows[row["id"]] = row
        removed = [json.loads(line)["id"] for line in (final / "removed.jsonl").read_text().splitlines()]
        runs[fmt] = (rows, removed, json.loads((final / "report.json").read_text()))
    return runs


def assert_same_rows(runs: dict) -> None:
    (plain, plain_removed, plain_report), (md, md_removed, md_report) = runs["plain"], runs["markdown"]
    assert {i: r["split"] for i, r in plain.items()} == {i: r["split"] for i, r in md.items()}
    assert plain_removed == md_removed
    for report in (plain_report, md_report):
        assert report["audit"]["verdict"] == "pass", report["audit"]["failed"]
    assert not any("visible" in key for row in md.values() for key in row)  # working columns are not written
    drops = [{s["name"]: s.get("dropped") for s in r["stages"]} for r in (plain_report, md_report)]
    assert drops[0] == drops[1]


@pytest.mark.e2e
def test_real_dump_same_rows_in_both_formats_markdown_keeps_code_and_links(tmp_path):
    runs = run_both(tmp_path, REPO / "tests" / "fixtures" / "real" / "ai.stackexchange.com.7z")
    assert_same_rows(runs)
    rows, _, report = runs["markdown"]
    texts = [r["question"] + "\n" + r["answer"] for r in rows.values()]
    assert any("```" in t for t in texts) and any("](http" in t for t in texts)
    assert not any("enter image description here" in t.lower() for t in texts)
    assert report["clean"] == {"text_format": "markdown", "answers_with_images": report["clean"]["answers_with_images"]}
    assert report["clean"]["answers_with_images"] > 0
    assert runs["plain"][2]["clean"]["answers_with_images"] == report["clean"]["answers_with_images"]


@pytest.mark.e2e
def test_bundled_sample_same_rows_in_both_formats(tmp_path):
    runs = run_both(tmp_path, REPO / "data" / "sample" / "law-stackexchange-questions-answers.json")
    assert_same_rows(runs)
    md_rows, plain_rows = runs["markdown"][0], runs["plain"][0]
    assert sum("`" in r["question"] for r in md_rows.values()) > sum("`" in r["question"] for r in plain_rows.values())
