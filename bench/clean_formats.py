"""The clean stage's cost in both --text-format values against a reference commit's clean, in one process and run.

    python bench/clean_formats.py bench/corpora/lawqa-24370-s1.json --ref main --repeat 3

Loads the JSON dump's rows (question and chosen answer, as docbuilder converts them), then times
`modifiers.clean_partition` over partitions of 4,096 rows: the reference commit's (its modifiers.py, taken with
`git show REF:modifiers.py`), this tree's with text_format="plain" and with "markdown". Rounds alternate the three
(best of --repeat each), so load on a shared machine hits all alike. It also checks that plain's question and
answer columns equal the reference's, string for string.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--ref", default="main", help="the commit whose clean is today's (default: main)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from modifiers import clean_partition

    chunks, rows, _ = load_rows(args.corpus)
    runs = {"reference": reference_clean(args.ref),
            "plain": lambda df: clean_partition(df, "plain"),
            "markdown": lambda df: clean_partition(df, "markdown")}
    best = {name: float("inf") for name in runs}
    outputs = {}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            seconds, out = timed(fn, chunks)
            best[name] = min(best[name], seconds)
            outputs[name] = out
    same = all(r[col].tolist() == p[col].tolist() for r, p in zip(outputs["reference"], outputs["plain"])
               for col in ("title", "question", "answer"))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    print(f"cpu: {cpu}; load average (1 min): {os.getloadavg()[0]:.2f}; {rows:,} rows; CPU seconds, best of "
          f"{args.repeat}")
    for name in runs:
        print(f"  {name:<10} {best[name]:7.2f} s   {best[name] / best['reference']:.3f}x the reference ({args.ref})")
    print(f"  plain's title/question/answer equal the reference's: {same}")


if __name__ == "__main__":
    main()
