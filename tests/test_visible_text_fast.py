"""mdtext.visible_text's fast inline pass gives the same text, byte for byte, as the character-by-character walk it
replaced (kept below as the oracle): on every real post of tests/fixtures/real (ai.stackexchange.com) and every row
of a generated Law.SE corpus, both turned to Markdown by the clean stage, and on random lines dense with markup."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pandas as pd
import pytest

import mdtext
from mdtext import (_ASCII_PUNCT, _AUTOLINK, _CONTAINER, _FENCE_OPEN, _HEADING, _MATH, _RULE, _TABLE_DELIMITER,
                    _destination_end, _inline_visible, _merge_blank_lines, visible_text)
from modifiers import clean_partition

from conftest import REPO
from test_markdown import SITE, fixture_posts


def reference_inline_visible(text: str) -> str:
    """The character-by-character walk mdtext._inline_visible was before it jumped between markup characters."""
    out: list[str] = []
    openers: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in _ASCII_PUNCT:
            out.append("|" if text[i + 1] == "|" else text[i + 1])
            i += 2
        elif ch == "\\" and i + 1 == n:
            i += 1
        elif ch == "`":
            j = i
            while j < n and text[j] == "`":
                j += 1
            run = text[i:j]
            close = re.compile(r"(?<!`)" + run + r"(?!`)").search(text, j)
            if close is None:
                out.append(run)
                i = j
                continue
            code = text[j:close.start()]
            if len(code) > 2 and code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            out.append(code)
            i = close.end()
        elif ch == "$" and _MATH.match(text, i):
            math = _MATH.match(text, i).group()
            out.append(math)
            i += len(math)
        elif ch == "<" and _AUTOLINK.match(text, i):
            link = _AUTOLINK.match(text, i)
            out.append(link.group(1))
            i = link.end()
        elif ch == "!" and text.startswith("![", i):
            openers.append(len(out))
            out.append("![")
            i += 2
        elif ch == "[":
            openers.append(len(out))
            out.append("[")
            i += 1
        elif ch == "]" and openers:
            opener = openers.pop()
            end = _destination_end(text, i + 1)
            if end is None:
                out.append("]")
                i += 1
            else:
                image = out[opener] == "!["
                shown = image and "".join(out[opener + 1:]).strip()
                out[opener] = " " if shown else ""
                if shown:
                    out.append(" ")
                i = end
        elif ch == "*":
            j = i
            while j < n and text[j] == "*":
                j += 1
            before, after = text[i - 1] if i else " ", text[j] if j < n else " "
            if before.isspace() and after.isspace():
                out.append(text[i:j])
            i = j
        else:
            out.append("\x00" if ch == "|" else ch)
            i += 1
    return "".join(out)


def reference_visible_text(markdown: str) -> str:
    """visible_text as it was: every line through the container and block regexes, then the reference walk."""
    out: list[tuple[str, int]] = []
    fence, fence_depth = None, 0
    for line in markdown.split("\n"):
        prefix = _CONTAINER.match(line).group()
        body = line[len(prefix):]
        if fence is not None:
            if body.strip().startswith(fence) and not body.strip().strip(fence[0]):
                fence = None
            elif body.strip():
                out.append((line, fence_depth))
            continue
        depth = prefix.count(">")
        opened = _FENCE_OPEN.match(body)
        if opened or _RULE.match(body) or _TABLE_DELIMITER.match(body):
            if opened:
                fence, fence_depth = opened.group(1), depth
            if prefix.strip(" >"):
                out.append((prefix.rstrip(), depth))
            continue
        body = _HEADING.sub("", body, count=1)
        text = reference_inline_visible(body)
        if body.startswith("|"):
            text = text.replace("\x00", " ")
        out.append((prefix + text.replace("\x00", "|"), depth))
    return "\n".join(_merge_blank_lines(out))


def assert_same_visible_text(texts: list[str]) -> int:
    """Every text's visible_text equal to the reference's; returns how many texts held inline markup."""
    marked = 0
    for text in texts:
        assert visible_text(text) == reference_visible_text(text), text
        marked += bool(mdtext._INLINE_MARKUP.search(text))
    return marked


def markdown_of(frame: pd.DataFrame, site: str) -> list[str]:
    cleaned = clean_partition(frame, "markdown", site)
    return [t for column in ("question", "answer") for t in cleaned[column] if isinstance(t, str)]


def test_real_posts_same_visible_text():
    bodies = fixture_posts()
    frame = pd.DataFrame({"title": ["t"] * len(bodies), "question": bodies, "answer": [""] * len(bodies)})
    texts = markdown_of(frame, SITE)
    assert assert_same_visible_text(texts) > 500  # 594 of 847 posts hold inline markup


def test_generated_corpus_same_visible_text(tmp_path):
    path = tmp_path / "corpus.json"
    subprocess.run([sys.executable, str(REPO / "data" / "make_sample.py"), "--questions", "400", "--seed", "1",
                    "--out", str(path)], check=True, cwd=tmp_path, capture_output=True)
    rows = json.loads(path.read_text())
    questions = [r["question_body"] for r in rows]
    answers = [a["body"] for r in rows for a in r["answers"]]
    frame = pd.DataFrame({"title": ["t"] * len(answers), "question": (questions * 20)[:len(answers)],
                          "answer": answers})
    texts = markdown_of(frame, "law.stackexchange.com")
    assert len(texts) > 1000 and assert_same_visible_text(texts) > 300


@pytest.mark.parametrize("seed", range(4))
def test_random_markup_same_visible_text(seed):
    """Lines made of markup pieces in random order (unclosed brackets and backticks, escapes at the line's end,
    images inside links, math next to money, pipes, lone and doubled stars), alone and behind block marks: quotes,
    bullets, numbered items (also in other scripts' digits), headings, fences, rules, table rows."""
    pieces = ["a", "b c", " ", "\\", "\\|", "\\*", "\\[", "\\a", "`", "``", "` x `", "$", "$x$", "$$y$$", "$5", "<",
              "<https://x.org/a>", "<b>", "!", "![", "[", "]", "](https://u.v/w)", "](<a b>)", "](x(y)z)", "]( x)",
              "(", ")", "*", "**", " * ", "|", "é", "\t", "_"]
    starts = ["", "", "", " ", "  ", "\t", "> ", ">", "> > ", "- ", "* ", "+ ", "1. ", "12) ", "\u0663. ", "# ", "### ",
              "```", "```py", "~~~", "---", "***", "___", "| a | b |", "| --- | --- |", "|", "   - ", "> 1. "]
    rng = random.Random(seed)
    for _ in range(3000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert _inline_visible(line) == reference_inline_visible(line), repr(line)
        text = "\n".join(rng.choice(starts) + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
                         for _ in range(rng.randint(1, 8)))
        assert visible_text(text) == reference_visible_text(text), repr(text)
