"""Our HTML -> Markdown walk (mdtext) against markdownify and html2text: fidelity on real posts, and speed.

    PYTHONPATH=/somewhere/with/markdownify+html2text python bench/markdown_libraries.py dump.7z [dump.7z ...] \
        --corpus bench/corpora/lawqa-24370-s1.json

For each converter: the fidelity measures of bench/markdown_fidelity.py over every question and answer of the
dumps (fences, inline code in backticks, external link URLs, placeholder texts; each output Unicode-repaired as
the clean stage does), and CPU seconds to convert the dumps' posts and the bodies of --corpus's first 4,096
questions and their first answers (HTML -> Markdown only: no Unicode repair,
and for the libraries no visible text, which the pipeline needs as well). A library that is not installed is
skipped; neither is a dependency of the pipeline (the choice and why: ARCHITECTURE.md).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def converters(site: str) -> dict:
    """name -> html -> markdown, for what is installed."""
    from modifiers import _parse_fragment
    from mdtext import pre_languages, walk_markdown

    def ours(html: str) -> str:
        return walk_markdown(_parse_fragment(html), f"https://{site}/", pre_languages(html)) if html.strip() else ""

    out = {"mdtext (ours)": ours}
    try:
        import markdownify

        out[f"markdownify {markdownify.__version__ if hasattr(markdownify, '__version__') else ''}".strip()] = \
            lambda html: markdownify.markdownify(html, heading_style="ATX", code_language="")
    except ImportError:
        pass
    try:
        import html2text

        def h2t(html: str) -> str:
            h = html2text.HTML2Text(baseurl=f"https://{site}/", bodywidth=0)
            h.mark_code = False
            return h.handle(html)

        out[f"html2text {'.'.join(map(str, html2text.__version__))}"] = h2t
    except ImportError:
        pass
    return out


def fidelity(name: str, convert, posts: list[tuple[str, str]], site: str) -> tuple[dict, float]:
    from markdown_fidelity import check_post

    counts = {k: 0 for k in ("pre_question", "pre_question_kept", "pre_answer", "pre_answer_kept", "code",
                             "code_kept", "links", "links_kept", "placeholder", "images")}
    from textrepair import finish_text

    t0 = time.process_time()
    texts = [convert(html) for _, html in posts]
    seconds = time.process_time() - t0
    for (kind, html), md in zip(posts, texts):
        md = finish_text(md)  # Unicode repaired as the clean stage does; a library gives no visible text of its own
        check_post(html, md, md, site, counts, kind)
    return counts, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dumps", nargs="+", type=Path)
    parser.add_argument("--corpus", type=Path, help="a JSON dump (bench/run.py's corpus) for the speed column")
    args = parser.parse_args()
    from markdown_fidelity import pct, read_posts
    from sedump import input_format, site_from_path

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    print(f"cpu: {cpu}; load average (1 min): {os.getloadavg()[0]:.2f}")
    print("| converter | site | `<pre>` → fence (q / a) | inline code → backticks | external link URLs | "
          "placeholder texts | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for path in args.dumps:
        site = site_from_path(path, input_format(path)) or path.name
        posts = read_posts(path)
        for name, convert in converters(site).items():
            c, seconds = fidelity(name, convert, posts, site)
            print(f"| {name} | {site} | {pct(c['pre_question_kept'], c['pre_question'])} / "
                  f"{pct(c['pre_answer_kept'], c['pre_answer'])} | {pct(c['code_kept'], c['code'])} | "
                  f"{pct(c['links_kept'], c['links'])} | {c['placeholder']} | {seconds:.2f} |")
    if args.corpus:
        bodies = []
        for element in json.loads(args.corpus.read_text())[:4096]:
            bodies.append(element["question_body"])
            bodies.extend(a["body"] for a in element["answers"][:1])
        for name, convert in converters("law.stackexchange.com").items():
            t0 = time.process_time()
            for html in bodies:
                convert(html)
            print(f"{name}: {len(bodies):,} corpus bodies in {time.process_time() - t0:.2f} CPU s")


if __name__ == "__main__":
    main()
