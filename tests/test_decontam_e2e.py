"""--decontaminate end to end: an eval file holding 30 of the output's own questions and 20 unrelated ones removes
exactly those 30 rows (none of the others), logs them in removed.jsonl and reports them per file."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest

from conftest import REPO, SAMPLE, run_main

pytestmark = pytest.mark.e2e
FLAGS = ("--n-workers", "1", "--embedding-model", "static", "--quiet", "--seed", "7")


def planted_ids() -> set[str]:
    """Rows with a planted copy in the sample: a paraphrase of one of them is a true extra match, so skip them."""
    ids = set()
    for line in (SAMPLE.parent / "law-stackexchange-questions-answers-duplicates.jsonl").read_text().splitlines():
        ids.update(str(v) for v in json.loads(line).values() if isinstance(v, (str, int)))
    return ids


def unrelated_questions(tmp_path, n: int, dataset_titles: set[str]) -> list[str]:
    """Question bodies of a sample generated with another seed (HTML tags dropped). The generator's title templates
    are few, so another seed can repeat a title word for word: bodies whose title is in the dataset are left out."""
    out = tmp_path / "other.json"
    subprocess.run([sys.executable, str(REPO / "data" / "make_sample.py"), "--questions", "200", "--seed", "1",
                    "--out", str(out)], check=True, capture_output=True, timeout=120)
    items = [e for e in json.loads(out.read_text()) if e["question_title"] not in dataset_titles]
    return [re.sub(r"<[^>]+>", " ", e["question_body"]) for e in items[:n]]


def test_decontaminate_removes_exactly_the_eval_questions(tmp_path):
    first = run_main("--input", str(SAMPLE), "--output-dir", str(tmp_path / "a"), *FLAGS, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [json.loads(line) for s in ("train", "val", "test")
            for line in (tmp_path / "a" / "final" / f"law-qa-{s}.jsonl").read_text().splitlines()]
    skip = planted_ids()
    singles = [r for r in rows if not any(part in skip for part in (r["id"], r["id"].rsplit("-", 1)[-1]))]
    picked = random.Random(3).sample(singles, 30)
    eval_file = tmp_path / "eval.jsonl"
    items = [{"question": r["question"]} for r in picked] + [{"prompt": q} for q in unrelated_questions(tmp_path, 20, {r["title"] for r in rows})]
    eval_file.write_text("".join(json.dumps(i) + "\n" for i in items))

    second = run_main("--input", str(SAMPLE), "--output-dir", str(tmp_path / "b"), *FLAGS,
                      "--decontaminate", str(eval_file), timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    final = tmp_path / "b" / "final"
    kept = {json.loads(line)["id"] for s in ("train", "val", "test")
            for line in (final / f"law-qa-{s}.jsonl").read_text().splitlines()}
    assert {r["id"] for r in rows} - kept == {r["id"] for r in picked}
    removed = [json.loads(line) for line in (final / "removed.jsonl").read_text().splitlines()]
    decontaminated = [r for r in removed if r["kind"] == "decontaminated"]
    assert sorted(r["id"] for r in decontaminated) == sorted(r["id"] for r in picked)
    assert all(r["duplicate_of"].startswith("eval.jsonl:") for r in decontaminated)
    report = json.loads((final / "report.json").read_text())
    section = report["decontamination"]
    assert section["removed"]["total"] == 30 and section["files"][str(eval_file)]["removed"]["total"] == 30
    assert "Decontamination against evaluation sets" in (final / "README.md").read_text()
