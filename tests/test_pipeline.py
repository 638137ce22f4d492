"""End to end: `python main.py` in a subprocess on the bundled sample."""
import json
import re

import pytest

from conftest import SAMPLE, run_main

pytestmark = pytest.mark.e2e
SPLITS = ("train", "val", "test")
OFFLINE_URL = "http://127.0.0.1:9/law-stackexchange-questions-answers.json"  # nothing listens on port 9


def read_split(final, split):
    return [json.loads(line) for line in (final / f"law-qa-{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    result = run_main("--input", str(SAMPLE), "--output-dir", str(out), "--n-workers", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    return out / "final", result


def test_writes_three_splits_and_report(sample_run):
    final, _ = sample_run
    report = json.loads((final / "report.json").read_text())
    rows = {s: read_split(final, s) for s in SPLITS}
    assert all(rows[s] for s in SPLITS)
    assert report["splits"] == {s: len(rows[s]) for s in SPLITS}
    for stage in report["stages"]:
        assert stage["rows_in"] == stage["rows_out"] + sum(stage["dropped"].values()), stage
    names = [s["name"] for s in report["stages"]]
    assert names[:3] == ["convert", "clean", "filter"] and "split" in names
    convert = report["stages"][0]
    assert convert["dropped"].get("no_answer", 0) > 0  # the sample has unanswered questions, counted
    assert report["source"]["origin"] == "file" and len(report["source"]["sha256"]) == 64
    total = sum(len(v) for v in rows.values())
    assert 0.7 < len(rows["train"]) / total < 0.9


def test_rows_follow_the_record_contract(sample_run):
    final, _ = sample_run
    tag = re.compile(r"<(p|a|ul|ol|li|blockquote|code|pre|br|div|script|style)\b[^>]*>", re.I)
    ids = set()
    for split in SPLITS:
        for row in read_split(final, split):
            assert row["split"] == split
            assert row["id"] not in ids
            ids.add(row["id"])
            assert not tag.search(row["question"]) and not tag.search(row["answer"]), row["id"]
            assert "&amp;" not in row["answer"] and "â€™" not in row["answer"]
            assert 50 <= len(row["question"].split()) <= 500 and 50 <= len(row["answer"].split()) <= 500
            assert row["question_score"] >= 0 and row["answer_score"] >= 0
            assert row["tags"] == ",".join(sorted(row["tags"].split(","))) if row["tags"] else True
            assert row["link"].startswith("https://law.stackexchange.com/questions/")


def test_no_family_in_two_splits(sample_run):
    final, _ = sample_run
    seen = {}
    for split in SPLITS:
        for row in read_split(final, split):
            assert seen.setdefault(row["source_id"], split) == split


def test_deterministic_across_runs_workers_and_partitions(sample_run, tmp_path):
    final, _ = sample_run
    result = run_main("--input", str(SAMPLE), "--output-dir", str(tmp_path), "--n-workers", "1",
                      "--partition-rows", "97", "--quiet")
    assert result.returncode == 0, result.stderr
    for split in SPLITS:
        name = f"law-qa-{split}.jsonl"
        assert (tmp_path / "final" / name).read_bytes() == (final / name).read_bytes(), name


def test_offline_download_falls_back_to_sample_loudly(tmp_path):
    result = run_main("--url", OFFLINE_URL, "--raw-dir", str(tmp_path / "raw"), "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "DOWNLOAD FAILED" in result.stderr and "--input" in result.stderr
    report = json.loads((tmp_path / "final" / "report.json").read_text())
    assert report["source"]["sample"] is True and report["source"]["origin"] == "sample"
    assert "SAMPLE" in result.stdout


def test_no_fallback_fails_with_one_line(tmp_path):
    result = run_main("--url", OFFLINE_URL, "--raw-dir", str(tmp_path / "raw"), "--output-dir", str(tmp_path),
                      "--no-fallback", "--quiet")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert not (tmp_path / "final").exists()


def test_bad_input_one_line_no_partial_output(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(SAMPLE.read_text()[:20000])
    result = run_main("--input", str(bad), "--output-dir", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and "near byte" in errors[0]
    assert not (tmp_path / "out" / "final").exists() or not any((tmp_path / "out" / "final").iterdir())
