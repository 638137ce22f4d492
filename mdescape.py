"""A post's own text as Markdown that renders as these words: escaping where a renderer would read markup, code
spans, link destinations; and Stack Exchange's image placeholder, which never shows.

Escaping follows CommonMark's rules (mdtext's walk calls it on every text of a post): `*` unless between spaces, `_`
only where it could open or close emphasis, `` ` ``, `\\` before punctuation, `<` before a tag-like letter, `&` before
an entity, `]` before `(`, `!` before a link, block starts at the start of a line; TeX between dollars as written.
"""
from __future__ import annotations

import re

PLACEHOLDER = "enter image description here"  # Stack Exchange's default alt text: no description at all
# The placeholder as Markdown that reached the site unrendered, so the post's own text reads it (any case): a linked
# image `[![placeholder][1]][1]` or an image `![placeholder](url)` / `![placeholder][1]`, with a space on one side.
_TARGET = r"(?:\[[^\]\n]*\]|\([^)\n]*\))"
_PLACEHOLDER_MARKUP = re.compile(rf"( ?)(?:\[!\[{PLACEHOLDER}\]{_TARGET}\]{_TARGET}|!\[{PLACEHOLDER}\]{_TARGET}?)( ?)",
                                 re.I)


def drop_placeholder_markup(text: str) -> str:
    """`text` without the placeholder's unrendered Markdown (see above): neither the Markdown nor the visible text
    shows it (the plain format keeps today's literal text). Words on both sides stay one space apart."""
    if "![" not in text:
        return text
    return _PLACEHOLDER_MARKUP.sub(lambda m: " " if m.group(1) and m.group(2) else "", text)


# Inline TeX as pandoc's tex_math_dollars reads it: $$...$$, or $...$ with no space just inside either dollar and
# no digit right after the closing one ("costs $5 and $10" is money, not math). Passed through unescaped.
MATH = re.compile(r"\$\$[^$]+?\$\$|\$(?=[^\s$])[^$\n]*?[^\s$\\]\$(?!\d)|\$[^\s$]\$(?!\d)")
ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# "$" is not here: TeX is left as written, and a dollar needs no escape (the math split only runs where "$" is)
_NEEDS_ESCAPE = re.compile(r"[\\`*_\[\]<&]|!\[")
_LINE_START_HAZARD = re.compile(r"^(?:#{1,6}(?=\s|$)|[-+](?=\s|$)|\d{1,9}(?=[.)](?:\s|$))|>|=+\s*$|-{2,}\s*$|~~~|\|)")
_MAY_NEED_ESCAPE = re.compile(r"[\\`*_\[\]<&]").search
# The first characters a line start needs to be escaped (_LINE_START_HAZARD, _REFERENCE_DEF): a set test first.
LINE_START_FIRST_CHARS = frozenset("#-+0123456789>=~|[")
_ENTITY_LIKE = re.compile(r"&#?[A-Za-z0-9]+;")
_REFERENCE_DEF = re.compile(r"^\[[^\]]*\]:")


def _can_delimit_underscore(prev: str, nxt: str) -> bool:
    """Whether a `_` between `prev` and `nxt` could open or close emphasis (CommonMark's flanking rules; an
    unknown neighbour, at a text's edge, counts as a space, which only ever escapes more)."""
    prev_space, next_space = prev.isspace() or not prev, nxt.isspace() or not nxt
    prev_punct, next_punct = prev in ASCII_PUNCT, nxt in ASCII_PUNCT
    left = not next_space and (not next_punct or prev_space or prev_punct)
    right = not prev_space and (not prev_punct or next_space or next_punct)
    return (left and (not right or prev_punct)) or (right and (not left or next_punct))


def _escape_plain(text: str, in_link: bool) -> str:
    """Backslashes before the characters of `text` (no math in it) that a renderer would read as markup."""
    out, last, n = [], 0, len(text)
    for match in _NEEDS_ESCAPE.finditer(text):
        i = match.start()
        ch, prev, nxt = text[i], text[i - 1] if i else "", text[i + 1] if i + 1 < n else ""
        if ch == "\\":
            escape = not nxt or nxt in ASCII_PUNCT
        elif ch == "*":
            escape = not (prev.isspace() and nxt.isspace())
        elif ch == "_":
            escape = _can_delimit_underscore(prev, nxt)
        elif ch in "[]":
            escape = in_link or (ch == "]" and nxt in "([")
        elif ch == "<":
            escape = nxt.isalpha() or nxt in "/!?"
        elif ch == "&":
            escape = bool(_ENTITY_LIKE.match(text, i))
        elif ch == "!":  # "![" (the match), which would start an image
            escape = True
            if in_link:
                out.append(text[last:i])
                out.append("\\!\\")
                last = i + 1
                continue
        else:  # "`"
            escape = True
        if escape:
            out.append(text[last:i])
            out.append("\\")
            last = i
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def escape_text(text: str, in_link: bool = False) -> str:
    """`text` (a post's own words) as Markdown that renders as these words: markup characters escaped where a
    renderer would misread them, LaTeX between dollars left as written."""
    if not _MAY_NEED_ESCAPE(text) and "![" not in text:  # a character class: a faster scan than the alternatives
        return text
    if "![" in text:
        text = drop_placeholder_markup(text)
    if "$" not in text:
        return _escape_plain(text, in_link)
    out, last = [], 0
    for match in MATH.finditer(text):
        out.append(_escape_plain(text[last:match.start()], in_link))
        out.append(match.group())
        last = match.end()
    out.append(_escape_plain(text[last:], in_link))
    return "".join(out)


def escape_line_start(text: str) -> str:
    """`text` beginning a line: a backslash before what would start a block (heading, list item, quote, rule,
    setext underline, fence, table row, link reference definition)."""
    if text[:1] not in LINE_START_FIRST_CHARS:
        return text
    match = _LINE_START_HAZARD.match(text)
    if match:
        if text[0].isdigit():
            end = match.end()
            return text[:end] + "\\" + text[end:]
        return "\\" + text
    if text.startswith("[") and _REFERENCE_DEF.match(text):
        return "\\" + text
    return text


def code_span(code: str) -> str:
    """Inline code in a backtick run longer than any inside it (padded where the code starts or ends with one)."""
    runs = [len(r) for r in re.findall(r"`+", code)]
    fence = "`" * (max(runs, default=0) + 1)
    if code.startswith("`") or code.endswith("`") or (code.startswith(" ") and code.endswith(" ") and code.strip()):
        code = f" {code} "
    return f"{fence}{code}{fence}"


def link_destination(url: str) -> str:
    """A link destination as CommonMark reads it back: bare, or in <...> where it holds spaces or parentheses."""
    if url and not re.search(r"[\s<>()\\]", url):
        return url
    return "<" + url.replace("<", "%3C").replace(">", "%3E").replace("\n", "%0A").replace(" ", "%20") + ">"
