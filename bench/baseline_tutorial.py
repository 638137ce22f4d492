"""The NeMo Curator tutorial's method (peft-curation-with-sdg, NeMo Curator 0.9), as the speed baseline.

What the tutorial ran per record, row by row:
  convert  json.loads of the whole file (read as lines, joined), the first answer of each question (the
           dump lists answers by votes), questions without answers skipped;
  clean    BeautifulSoup(text, "lxml").get_text(), then collapse every whitespace run (CleanHTML) on
           title, question and answer; then ftfy.fix_text (UnicodeReformatter) on the three;
  filter   WordCountFilter 50-500 words (`len(text.split())`) on question and on answer, and
           score >= 0 on question and on best answer.

The tutorial cleaned HTML twice (once in its extractor, once as a Modify step); by default the baseline
runs it once, so the measured ratio is a lower bound on the real one (`--double-clean` for the faithful
count). It runs on `workers` processes (default 1: the tutorial's converter was single-process; pass 2 to
give it the machine's two cores, as its Dask curation steps had), on the same file our pipeline reads.

    python bench/baseline_tutorial.py FILE [--workers N] [--double-clean]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
import warnings

_WS = re.compile(r"\s+")


def clean_html(text: str) -> str:
    """The tutorial's CleanHTML.modify_document."""
    from bs4 import BeautifulSoup

    text = BeautifulSoup(text, "lxml").get_text()
    return _WS.sub(" ", text).strip()


def _curate_rows(rows: list[dict], double_clean: bool = False) -> tuple[list[dict], dict]:
    """Clean + filter a list of extracted rows (one process). Returns kept rows and timings."""
    import ftfy
    from bs4 import MarkupResemblesLocatorWarning

    warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
    t0 = time.perf_counter()
    passes = 2 if double_clean else 1
    for row in rows:
        for f in ("title", "question", "answer"):
            text = row[f]
            for _ in range(passes):
                text = clean_html(text)
            row[f] = text
    t1 = time.perf_counter()
    for row in rows:
        for f in ("title", "question", "answer"):
            row[f] = ftfy.fix_text(row[f])
    t2 = time.perf_counter()
    kept = []
    for row in rows:
        q, a = len(row["question"].split()), len(row["answer"].split())
        if 50 <= q <= 500 and 50 <= a <= 500 and row["question_score"] >= 0 and row["answer_score"] >= 0:
            kept.append(row)
    t3 = time.perf_counter()
    return kept, {"html": t1 - t0, "ftfy": t2 - t1, "filter": t3 - t2}


def _curate_chunk(args):
    rows, double_clean = args
    kept, times = _curate_rows(rows, double_clean)
    return len(kept), times


def convert(path: str) -> list[dict]:
    """The tutorial's LawQAIterator/LawQAExtractor, minus its HTML cleaning (timed with clean)."""
    with open(path, "r", encoding="utf-8") as f:
        lines = f.readlines()
    content = json.loads("".join(lines))
    file_name = os.path.basename(path)
    rows = []
    for element in content:
        if not element.get("answers"):
            continue
        best = element["answers"][0]
        rows.append({"file_name": file_name, "id": f"law-stackexchange-qa-{element['question_id']}",
                     "title": element["question_title"], "question": element["question_body"],
                     "question_score": element["score"], "answer": best["body"],
                     "answer_score": best["score"], "tags": ",".join(sorted(element["tags"]))})
    return rows


def run_baseline(path: str, workers: int = 1, double_clean: bool = False) -> dict:
    """Convert + clean + filter `path` the tutorial's way; returns seconds per step and row counts."""
    t0 = time.perf_counter()
    rows = convert(path)
    t_convert = time.perf_counter() - t0
    n_in = len(rows)
    t1 = time.perf_counter()
    if workers <= 1:
        kept, times = _curate_rows(rows, double_clean)
        n_kept = len(kept)
    else:
        import multiprocessing as mp

        size = max(1, -(-len(rows) // (workers * 8)))
        chunks = [(rows[i:i + size], double_clean) for i in range(0, len(rows), size)]
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_curate_chunk, chunks)
        n_kept = sum(r[0] for r in results)
        times = {k: sum(r[1][k] for r in results) for k in ("html", "ftfy", "filter")}  # CPU seconds
    t_curate = time.perf_counter() - t1
    return {"rows": n_in, "kept": n_kept, "convert_s": t_convert, "clean_filter_s": t_curate,
            "total_s": time.perf_counter() - t0, "workers": workers, "double_clean": double_clean,
            "step_cpu_s": times}


def main() -> None:
    ap = argparse.ArgumentParser(description="the tutorial's convert+clean+filter, timed")
    ap.add_argument("path")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--double-clean", action="store_true", help="clean HTML twice, as the tutorial did")
    a = ap.parse_args()
    print(json.dumps(run_baseline(a.path, a.workers, a.double_clean), indent=2))


if __name__ == "__main__":
    main()
