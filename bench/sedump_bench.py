"""Stack Exchange dump conversion benchmark: time and peak RSS of sedump on a generated site of N posts.

    python bench/sedump_bench.py --posts 1000000            # Posts.xml folder (+ the same as .7z: --seven-zip)
    python bench/sedump_bench.py --posts 20000 100000 --seven-zip --json-questions 2000

Each size gets a generated site under bench/corpora/ (git-ignored; reused): Posts.xml with ~40% questions, ~55%
answers (posted a few posts after their question, as on a real site) and ~5% other post types, plus
PostLinks.xml. Bodies are cycled from data/make_sample.py's generated text (never real posts), so a post is
about the size of a real Law.SE post. The conversion runs in a child process (its peak RSS is the child's
ru_maxrss) and consumes the record chunks the way main.py does, one at a time, keeping none.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CORPORA = REPO / "bench" / "corpora"


def _bodies(k: int = 400) -> tuple[list[str], list[str], list[str]]:
    """Escaped question bodies, answer bodies and titles from the generator (a pool that is cycled)."""
    sys.path.insert(0, str(REPO / "data"))
    import make_sample

    rng = random.Random(5)
    qs, ans, titles = [], [], []
    for _ in range(k):
        doc = make_sample.make_doc(rng)
        qs.append(make_sample._xml_attr(make_sample.blocks_html(doc["q"], doc, rng)))
        titles.append(make_sample._xml_attr(make_sample._title_text(doc, rng)))
        for a in doc["answers"]:
            ans.append(make_sample._xml_attr(make_sample.blocks_html(a["blocks"], doc, rng)))
    return qs, ans, titles


def make_site(posts: int, seed: int = 0, out_dir: Path = CORPORA) -> Path:
    """bench/corpora/bench<posts>.stackexchange.com/ with Posts.xml and PostLinks.xml (reused if present)."""
    folder = out_dir / f"bench{posts}.stackexchange.com"
    if (folder / "Posts.xml").exists() and (folder / "PostLinks.xml").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    qs, ans, titles = _bodies()
    rng = random.Random(seed)
    pending: list[tuple[int, int]] = []  # (due post number, parent id)
    questions: list[int] = []
    tmp = folder / "Posts.xml.tmp"
    with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        for pid in range(1, posts + 1):
            if pending and pending[0][0] <= pid:
                _due, parent = pending.pop(0)
                f.write(f'  <row Id="{pid}" PostTypeId="2" ParentId="{parent}" Score="{int(rng.expovariate(0.3))}" '
                        f'Body="{ans[pid % len(ans)]}" ContentLicense="CC BY-SA 4.0" />\n')
            elif rng.random() < 0.05:
                f.write(f'  <row Id="{pid}" PostTypeId="{rng.choice((4, 5))}" Score="0" Body="" />\n')
            else:
                k = pid % len(qs)
                f.write(f'  <row Id="{pid}" PostTypeId="1" Score="{int(rng.expovariate(0.3))}" Body="{qs[k]}" '
                        f'Title="{titles[k]}" Tags="|contract|tag{pid % 97}|" ContentLicense="CC BY-SA 4.0" />\n')
                questions.append(pid)
                for _ in range(rng.choices((0, 1, 2, 3), (8, 50, 30, 12))[0]):
                    pending.append((pid + 1 + int(rng.expovariate(0.2)), pid))
                pending.sort()
        f.write("</posts>\n")
    tmp.replace(folder / "Posts.xml")
    with open(folder / "PostLinks.xml", "w") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<postlinks>\n')
        for k in range(len(questions) // 50):
            a, b = rng.sample(questions, 2)
            f.write(f'  <row Id="{k + 1}" PostId="{a}" RelatedPostId="{b}" LinkTypeId="{rng.choice((1, 3))}" />\n')
        f.write("</postlinks>\n")
    return folder


def make_7z(folder: Path) -> Path:
    """The folder packed as <folder>.7z (LZMA2 preset 1: a fast pack; the dumps use a stronger one)."""
    import py7zr

    archive = folder.with_name(folder.name + ".7z")
    if not archive.exists():
        tmp = archive.with_name(archive.name + ".tmp")
        with py7zr.SevenZipFile(tmp, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as z:
            for name in ("PostLinks.xml", "Posts.xml"):
                z.write(folder / name, name)
        tmp.replace(archive)
    return archive


def make_json(questions: int, seed: int = 1, out_dir: Path = CORPORA) -> Path:
    """The JSON array of data/make_sample.py (as bench/dedup_bench.py names it; reused if present)."""
    out = out_dir / f"sample-{questions}-s{seed}.json"
    if not out.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(REPO / "data" / "make_sample.py"), "--questions", str(questions),
                        "--seed", str(seed), "--out", str(out),
                        "--truth", str(out.with_name(out.stem + "-duplicates.jsonl"))], check=True)
    return out


def convert_child(path: str) -> None:
    """In the child: convert, keep no chunk, print one JSON line of timings and counts."""
    from docbuilder import ConvertStats, iter_record_chunks
    from sedump import DumpStats, iter_dump_chunks, input_format

    is_json = input_format(Path(path)) == "json"
    stats = ConvertStats() if is_json else DumpStats()
    chunks = (iter_record_chunks(Path(path), stats, chunk_rows=4096, progress=False) if is_json else
              iter_dump_chunks(Path(path), stats, chunk_rows=4096, progress=False))
    t0 = time.perf_counter()
    first = None
    rows = 0
    for chunk in chunks:
        if first is None:
            first = time.perf_counter() - t0  # both passes are done before the first chunk
        rows += len(chunk)
    total = time.perf_counter() - t0
    print(json.dumps({"seconds": round(total, 2), "passes_seconds": round(first or total, 2),
                      "emit_seconds": round(total - (first or total), 2), "records": rows,
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "questions": stats.elements,
                      "dump": stats.section() if not is_json else {"duplicate_links": {"pairs": 0}}}))


def measure(path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--convert-child", str(path)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                    "unknown")
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, nargs="+", default=[1_000_000], help="site sizes in posts")
    ap.add_argument("--seven-zip", action="store_true", help="also pack each site as .7z and convert that")
    ap.add_argument("--json-questions", type=int, default=24370,
                    help="also convert data/make_sample.py's JSON array of this many questions (the JSON path, "
                         "for comparison; 0: skip)")
    ap.add_argument("--convert-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.convert_child:
        convert_child(args.convert_child)
        return 0
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; load average at start: {os.getloadavg()[0]:.1f}")
    print("| posts | input | input MiB | questions | records | dup links | passes s | emit s | total s | "
          "peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    if args.json_questions:
        path = make_json(args.json_questions)
        r = measure(path)
        print(f"| - | JSON array | {path.stat().st_size / 2**20:,.0f} | {r['questions']:,} | {r['records']:,} | - | "
              f"- | - | {r['seconds']} | {r['peak_rss_mib']:,} |", flush=True)
    for posts in args.posts:
        t = time.perf_counter()
        folder = make_site(posts)
        gen = time.perf_counter() - t
        inputs = [("folder", folder, (folder / "Posts.xml").stat().st_size)]
        if args.seven_zip:
            t = time.perf_counter()
            archive = make_7z(folder)
            print(f"(packed {archive.name} in {time.perf_counter() - t:.0f} s)", file=sys.stderr)
            inputs.append(("7z", archive, archive.stat().st_size))
        print(f"(generated {posts:,} posts in {gen:.0f} s)", file=sys.stderr)
        for kind, path, size in inputs:
            r = measure(path)
            d = r["dump"]
            print(f"| {posts:,} | {kind} | {size / 2**20:,.0f} | {r['questions']:,} | {r['records']:,} | "
                  f"{d['duplicate_links']['pairs']:,} | {r['passes_seconds']} | {r['emit_seconds']} | "
                  f"{r['seconds']} | {r['peak_rss_mib']:,} |", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
