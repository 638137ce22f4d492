"""How much of a real post's structure the Markdown text keeps, on Stack Exchange dumps the tests never see.

    python bench/markdown_fidelity.py path/to/cardano.stackexchange.com.7z path/to/other.stackexchange.com.7z

For every question and answer of each dump (Posts.xml, read from the .7z, a folder or the file), the clean stage's
Markdown text (modifiers.clean_partition, text_format="markdown", the site from the dump's name) is checked against
the post's HTML:

  fences        each non-empty <pre> has a fenced code block holding its first line (questions; answers apart)
  inline code   each non-empty <code> outside <pre> appears in backticks
  link URLs     each external link's URL (http/https, another host than the site's) appears in the text
  placeholder   posts whose Markdown or visible text still holds "enter image description here" (must be 0)
  visible words texts whose mdtext.visible_text has other words than the visible text the filters read

Prints one table per dump and a Markdown table for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def read_posts(path: Path) -> list[tuple[str, str]]:
    """(post type "question" | "answer", body HTML) of every question and answer of a dump."""
    from lxml import etree

    from sedump import _stream_7z, input_format

    fmt = input_format(path)
    if fmt == "7z":
        data = b"".join(block for _, block in _stream_7z(path, {"Posts.xml": "Posts.xml"}))
    else:
        data = (path / "Posts.xml" if fmt == "folder" else path).read_bytes()
    posts = []
    for _, row in etree.iterparse(io.BytesIO(data), tag="row"):
        kind = {"1": "question", "2": "answer"}.get(row.get("PostTypeId"))
        if kind and row.get("Body"):
            posts.append((kind, row.get("Body")))
        row.clear()
    return posts


def _first_code_line(pre) -> str:
    from mdtext import _pre_text

    return next((line.strip() for line in _pre_text(pre).split("\n") if line.strip()), "")


def _fenced_lines(markdown: str) -> set[str]:
    """The stripped lines inside fenced code blocks (the fence line's quote and list prefix taken off)."""
    inside, fence, width = set(), None, 0
    for line in markdown.split("\n"):
        if fence is None:
            opened = re.match(r"^((?:[ \t]*>[ \t]?)*[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+)?)(`{3,}|~{3,})", line)
            if opened:
                fence, width = opened.group(2), len(opened.group(1))
            continue
        body = line[width:] if len(line) >= width and not line[:width].strip(" >") else line.lstrip(" >")
        if body.strip().startswith(fence) and not body.strip().strip(fence[0]):
            fence = None
        else:
            inside.add(body.strip())
    return inside


def check_post(html: str, markdown: str, shown: str, site: str, counts: dict, kind: str) -> None:
    """Add one post's checks to `counts` (totals and hits per measure)."""
    from lxml import html as lxml_html

    from mdtext import PLACEHOLDER, code_span, collapse_spaces, link_destination, resolve_url
    from modifiers import repair_unicode

    root = lxml_html.fragment_fromstring(html, create_parent="div")
    fenced = None
    for pre in root.iter("pre"):
        first = repair_unicode(_first_code_line(pre)).strip()
        if not first or any(p.tag == "pre" for p in pre.iterancestors()):
            continue
        fenced = _fenced_lines(markdown) if fenced is None else fenced
        counts[f"pre_{kind}"] += 1
        counts[f"pre_{kind}_kept"] += first in fenced
    for code in root.iter("code"):
        if any(p.tag == "pre" for p in code.iterancestors()):
            continue
        text = collapse_spaces(code.text_content())
        if not text.strip():
            continue
        counts["code"] += 1
        counts["code_kept"] += code_span(repair_unicode(text)) in markdown
    for a in root.iter("a"):
        url = resolve_url(a.get("href"), f"https://{site}/")
        if not url or urlparse(url).scheme not in ("http", "https") or urlparse(url).netloc.endswith(site):
            continue
        counts["links"] += 1
        counts["links_kept"] += url in markdown or link_destination(url) in markdown
    counts["placeholder"] += PLACEHOLDER in markdown.lower() or PLACEHOLDER in shown.lower()
    counts["images"] += "<img" in html


def measure(path: Path) -> dict:
    import pandas as pd

    from mdtext import visible_text
    from modifiers import clean_partition
    from sedump import input_format, site_from_path

    site = site_from_path(path, input_format(path)) or path.name
    posts = read_posts(path)
    frame = pd.DataFrame({"title": [""] * len(posts), "question": [html for _, html in posts],
                          "answer": [""] * len(posts)})
    t0 = time.process_time()
    cleaned = clean_partition(frame, "markdown", site)
    seconds = time.process_time() - t0
    counts = {k: 0 for k in ("pre_question", "pre_question_kept", "pre_answer", "pre_answer_kept", "code",
                             "code_kept", "links", "links_kept", "placeholder", "images", "visible_differs")}
    for (kind, html), markdown, shown in zip(posts, cleaned["question"], cleaned["question_visible"]):
        check_post(html, markdown, shown, site, counts, kind)
        counts["visible_differs"] += visible_text(markdown).split() != shown.split()
    return {"site": site, "posts": len(posts), "questions": sum(k == "question" for k, _ in posts),
            "clean_cpu_s": round(seconds, 2), **counts}


def pct(hit: int, total: int) -> str:
    return f"{100 * hit / total:.1f}% ({hit}/{total})" if total else "n/a (0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dumps", nargs="+", type=Path, help="Stack Exchange dumps (.7z, folder or Posts.xml)")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    print(f"cpu: {cpu}; load average (1 min): {os.getloadavg()[0]:.2f}")
    print("| site | posts (questions) | `<pre>` → fence, questions (≥ 98%) | answers | inline code → backticks "
          "(≥ 95%) | external link URLs (≥ 95%) | placeholder texts (0) | posts with images | visible words "
          "differ | clean CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in args.dumps:
        r = measure(path)
        print(f"| {r['site']} | {r['posts']:,} ({r['questions']:,}) | {pct(r['pre_question_kept'], r['pre_question'])} "
              f"| {pct(r['pre_answer_kept'], r['pre_answer'])} | {pct(r['code_kept'], r['code'])} "
              f"| {pct(r['links_kept'], r['links'])} | {r['placeholder']} | {r['images']} | {r['visible_differs']} "
              f"| {r['clean_cpu_s']} |")


if __name__ == "__main__":
    main()
