"""The clean stage's cost in both --text-format values against the clean stage before Markdown, in one process.

    python bench/clean_formats.py bench/corpora/lawqa-24370-s1.json --ref 5f55f71 --repeat 5 \
        --markdown-ref ../main-checkout

Loads the JSON dump's rows (question and chosen answer, as docbuilder converts them), then times
`modifiers.clean_partition` over partitions of 4,096 rows: the reference commit's (its modifiers.py, taken with
`git show REF:modifiers.py`; a commit from before Markdown, whose modifiers.py stands alone: 5f55f71 is the last),
this tree's with text_format="plain" and with "markdown". Each round runs the three in turn (so load on a shared
machine hits all alike) and prints its CPU seconds and ratios; the summary gives the best of --repeat rounds for
each and the median of the rounds' ratios (load that drifts between rounds moves the first, not the second).
Checks: plain's title, question and answer equal the reference's, string for string; with --markdown-ref (a
checkout of another commit, e.g. main), the sha256 of the Markdown and visible-text columns equals that
checkout's (run there in a subprocess).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MARKDOWN_COLUMNS = ("question", "answer", "question_visible", "answer_visible")
# Run in a checkout given by --markdown-ref (its own docbuilder and modifiers): the digest of its Markdown columns.
_DIGEST_THERE = f"""
import hashlib, sys
sys.path.insert(0, ".")
from docbuilder import iter_input_chunks, new_convert_stats
from modifiers import clean_partition
source = {{"path": sys.argv[1], "format": "json", "origin": "file"}}
digest = hashlib.sha256()
for chunk in iter_input_chunks(source, new_convert_stats(source), 4096, False, None):
    out = clean_partition(chunk.reset_index(drop=True), "markdown")
    for column in {MARKDOWN_COLUMNS!r}:
        for text in out[column]:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\\0")
print(digest.hexdigest())
"""


def load_rows(path: Path):
    import pandas as pd

    from docbuilder import iter_input_chunks, new_convert_stats

    source = {"path": str(path), "format": "json", "origin": "file"}
    chunks = list(iter_input_chunks(source, new_convert_stats(source), 4096, False, None))
    return [c.reset_index(drop=True) for c in chunks], sum(len(c) for c in chunks), pd


def reference_clean(ref: str):
    code = subprocess.run(["git", "show", f"{ref}:modifiers.py"], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="clean-ref-"))
    (folder / "ref_modifiers.py").write_text(code)
    spec = importlib.util.spec_from_file_location("ref_modifiers", folder / "ref_modifiers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.clean_partition


def timed(fn, chunks) -> tuple[float, list]:
    t0 = time.process_time()
    out = [fn(c) for c in chunks]
    return time.process_time() - t0, out


def markdown_digest(outputs: list) -> str:
    """sha256 of the Markdown and visible-text columns of clean_partition's outputs, as _DIGEST_THERE makes it."""
    digest = hashlib.sha256()
    for out in outputs:
        for column in MARKDOWN_COLUMNS:
            for text in out[column]:
                digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def digest_in(checkout: Path, corpus: Path) -> str:
    return subprocess.run([sys.executable, "-c", _DIGEST_THERE, str(corpus.resolve())], cwd=checkout, check=True,
                          capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--ref", default="5f55f71", help="the commit whose clean is the reference (default: 5f55f71, "
                        "the last before Markdown)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown-ref", type=Path, help="a checkout whose Markdown output ours must equal")
    args = parser.parse_args()

    from modifiers import clean_partition

    chunks, rows, _ = load_rows(args.corpus)
    runs = {"reference": reference_clean(args.ref),
            "plain": lambda df: clean_partition(df, "plain"),
            "markdown": lambda df: clean_partition(df, "markdown")}
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    print(f"cpu: {cpu}; {rows:,} rows; CPU seconds per round (reference, plain, markdown) and ratios")
    best = {name: float("inf") for name in runs}
    ratios = {"plain": [], "markdown": []}
    outputs = {}
    for round_no in range(1, args.repeat + 1):
        seconds = {}
        for name, fn in runs.items():
            seconds[name], outputs[name] = timed(fn, chunks)
            best[name] = min(best[name], seconds[name])
        for name in ratios:
            ratios[name].append(seconds[name] / seconds["reference"])
        print(f"  round {round_no}: load {os.getloadavg()[0]:.2f}; " + ", ".join(f"{s:.2f}" for s in seconds.values())
              + f"; plain {seconds['plain'] / seconds['reference']:.3f}x, markdown "
              f"{seconds['markdown'] / seconds['reference']:.3f}x")
    same = all(r[col].tolist() == p[col].tolist() for r, p in zip(outputs["reference"], outputs["plain"])
               for col in ("title", "question", "answer"))
    print(f"best of {args.repeat}; load average (1 min) now: {os.getloadavg()[0]:.2f}")
    for name in runs:
        median = f", median of rounds {statistics.median(ratios[name]):.3f}x" if name in ratios else ""
        print(f"  {name:<10} {best[name]:7.2f} s   {best[name] / best['reference']:.3f}x the reference ({args.ref})"
              + median)
    print(f"  plain's title/question/answer equal the reference's: {same}")
    ours = markdown_digest(outputs["markdown"])
    print(f"  markdown + visible columns sha256: {ours}")
    if args.markdown_ref:
        theirs = digest_in(args.markdown_ref, args.corpus)
        print(f"  {args.markdown_ref}'s: {theirs} ({'equal' if theirs == ours else 'DIFFERENT'})")


if __name__ == "__main__":
    main()
