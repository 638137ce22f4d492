"""A Stack Exchange site's dump end to end: the .7z and its folder give byte-identical data files, every question
is counted, and questions the site closed as duplicates share their target's split."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import REPO, run_main
from sedump import DumpStats, iter_dump_chunks, links_caught_by_dedup

DUMP_FLAGS = ("--n-workers", "1", "--dedup", "exact,fuzzy", "--quiet", "--embedding-cache", "", "--seed", "7")


@pytest.mark.e2e
def test_dump_as_7z_and_folder_gives_identical_splits_and_keeps_duplicates_together(tmp_path):
    finals = {}
    for name in ("law.stackexchange.com.7z", "law.stackexchange.com"):
        out = tmp_path / name
        result = run_main("--input", str(REPO / "data" / "sample" / name), "--output-dir", str(out), *DUMP_FLAGS)
        assert result.returncode == 0, result.stderr[-2000:]
        finals[name] = out / "final"
    files = sorted(p.relative_to(finals["law.stackexchange.com"]).as_posix()
                   for p in finals["law.stackexchange.com"].rglob("*.jsonl"))
    assert "law-qa-train.jsonl" in files
    for rel in files:
        assert (finals["law.stackexchange.com.7z"] / rel).read_bytes() == \
            (finals["law.stackexchange.com"] / rel).read_bytes(), rel
    final = finals["law.stackexchange.com"]
    split_of = {}
    for split in ("train", "val", "test"):
        for line in (final / f"law-qa-{split}.jsonl").read_text().splitlines():
            split_of[json.loads(line)["id"]] = split
    stats = DumpStats()
    for _ in iter_dump_chunks(REPO / "data" / "sample" / "law.stackexchange.com", stats, progress=False):
        pass
    both = [(a, b) for a, b in stats.duplicate_links if a in split_of and b in split_of]
    assert len(both) >= 5
    assert all(split_of[a] == split_of[b] for a, b in both)
    report = json.loads((final / "report.json").read_text())
    convert = next(s for s in report["stages"] if s["name"] == "convert")
    assert (convert["rows_in"], convert["rows_out"]) == (301, 268)
    assert report["source"]["format"] == "folder" and report["dump"]["duplicate_links"]["pairs"] == 16
    removed = pd.read_json(final / "removed.jsonl", lines=True)
    assert links_caught_by_dedup(stats.duplicate_links, removed)["caught"] >= 2
