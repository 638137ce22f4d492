"""HTML -> CommonMark, as a renderer shows the post the way the site does; and Markdown -> its visible words.

`html_to_markdown(root, ...)` walks the same lxml tree as modifiers' plain-text walk (parsed once for both) and
keeps what a fine-tuner wants from a post: fenced code blocks with the post's language, inline code in backticks,
`[text](url)` links (a bare `<url>` when the text is the URL; site-relative links made absolute with the site's
address), emphasis, headings, lists and quotes as the plain text has them, `<br>` as a hard line break, tables as
pipe tables, images as `![alt](src)` (never Stack Exchange's placeholder alt text), and LaTeX between `$` signs as
written. Characters of the post's own text that a renderer would read as markup are escaped (mdescape); others
are not.

`visible_text(markdown)` is the reverse direction, for the independent audit: the words a reader sees (no URLs,
no markup, escapes undone), so the audit re-checks word counts and duplicates on the same words the pipeline's
filters and dedup read (the plain walk's text; tests/test_markdown.py pins the two together on real posts).
"""
from __future__ import annotations

import re
from urllib.parse import urljoin

from lxml import etree

from mdescape import ASCII_PUNCT as _ASCII_PUNCT
from mdescape import MATH as _MATH
from mdescape import PLACEHOLDER, code_span, escape_line_start, escape_text, link_destination
from textrepair import collapse_spaces

_DROP_WITH_CONTENT = {"script", "style", "noscript", "template", "iframe", "object", "embed", "head", "title",
                      "svg", "math", "button", "select", "textarea"}
_PARAGRAPH_TAGS = {"p", "blockquote", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "details",
                   "section", "article", "aside", "header", "footer", "address"}
_LINE_TAGS = {"div", "li", "dt", "dd", "tr", "caption", "summary", "figcaption", "main", "nav", "form"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_EMPHASIS = {"em": "*", "i": "*", "strong": "**", "b": "**"}


def block_break(out, tag: str, paragraph_tags=_PARAGRAPH_TAGS, line_tags=_LINE_TAGS) -> None:
    """The line breaks a block element asks for where it opens and where it closes: one inside a list (items stay
    tight), two around a paragraph-like block, one around a line-like one. The plain walk (modifiers) passes its
    own tag sets (it breaks around `pre` and tables too)."""
    if tag in ("ul", "ol", "p") and out.lists:
        out.request_break(1)
    elif tag in paragraph_tags:
        out.request_break(2)
    elif tag in line_tags:
        out.request_break(1)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{1,31}:")
_AUTOLINK_OK = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>\x00-\x1f]*$")
_LANGUAGE_HINT = re.compile(r"<!--\s*language(-all)?:\s*([^\s>]+)\s*-->|<pre\b", re.I)


def resolve_url(href: str | None, base: str) -> str | None:
    """An href or src made absolute: `//host/...` with https, `/path` and other relative ones against the site's
    address `base` (https://site/). None for no link (empty, javascript:)."""
    href = (href or "").strip()
    if not href or href.lower().startswith("javascript:"):
        return None
    if href.startswith("//"):
        return "https:" + href
    if _SCHEME.match(href):
        return href
    return urljoin(base, href)


# ------------------------------------------------------------------------------------------------ the builder
class _MarkdownBuilder:
    """Lines of Markdown: container prefixes (quotes, list items), break requests, inline spans that are wrapped
    (emphasis, links) once their content is known."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: str | None = None
        self.pending_breaks = 0
        self.prefixes: list[str] = []  # per open container: "> " (quote) or the list item's indent
        self.lists: list[list] = []  # per open list: [ordered, next number]
        self.after_marker = False
        self.at_start = False  # the current line has no content yet (line-start escaping applies)
        self.hard_break = False  # a <br>: the line ends with a backslash if the next text is in the same block
        self.heading = ""  # "## " waiting for the heading's first text
        self.link_depth = 0

    def prefix(self) -> str:
        return "".join(self.prefixes)

    def request_break(self, n: int) -> None:
        if n > self.pending_breaks:
            self.pending_breaks = n

    def _content(self, line: str | None) -> bool:
        return line is not None and bool(line.strip(" >"))

    def _flush(self) -> None:
        self.lines.append(self.line.rstrip())
        self.line = None

    def _blank_line(self) -> str:
        """The blank line between two blocks: the containers both lines are in (a quote that starts after it
        does not mark it)."""
        previous = self.lines[-1]
        for k in range(len(self.prefixes), 0, -1):
            prefix = "".join(self.prefixes[:k])
            if previous.startswith(prefix):
                return prefix.rstrip()
        return ""

    def start_line(self) -> None:
        """Make the current line ready for content, honouring a pending break."""
        if self.line is None and not self.lines:
            self.line, self.pending_breaks, self.at_start = self.prefix(), 0, True
        elif self.pending_breaks and self.after_marker:
            self.pending_breaks = 0  # "- " then a <p>: the text goes on the bullet's line
        elif self.pending_breaks:
            if self._content(self.line):
                if self.hard_break and self.pending_breaks == 1:
                    self.line += "\\"
                self._flush()
            if self.pending_breaks == 2 and self.lines and self.lines[-1].strip(" >"):
                self.lines.append(self._blank_line())
            self.line, self.pending_breaks, self.at_start = self.prefix(), 0, True
        elif self.line is None:
            self.line, self.at_start = self.prefix(), True
        self.hard_break = False
        if self.heading and self.at_start:
            self.line += self.heading
            self.heading = ""

    def add_text(self, text: str) -> None:
        """Prose: whitespace collapsed (as the plain text), escaped."""
        if not text:
            return
        if text.isspace():
            line = self.line
            if not self.pending_breaks and line is not None and not line.endswith(" ") and self._content(line):
                self.line = line + " "
            return
        self.start_line()
        self.after_marker = False
        collapsed = collapse_spaces(text)
        if self.line.endswith(" ") or not self._content(self.line) or self.at_start:
            collapsed = collapsed.lstrip(" ")
            if not collapsed:
                return
        escaped = escape_text(collapsed, self.link_depth > 0)
        if self.at_start:
            escaped = escape_line_start(escaped)
            self.at_start = False
        self.line += escaped

    def add_raw(self, markup: str) -> None:
        """Markup made here (a code span, an image): no escaping."""
        self.start_line()
        self.after_marker = False
        self.at_start = False
        self.line += markup

    def add_top_block(self, markdown: str, heading: str) -> bool:
        """A block of one line outside any container (most of a post), after a blank line: what request_break(2),
        start_line() and the text would do there, without their checks. False (nothing done) elsewhere."""
        if self.prefixes or self.after_marker or self.heading:
            return False
        if self.line is not None and self.line.strip(" >"):
            self.lines.append(self.line.rstrip())
        if self.lines and self.lines[-1]:
            self.lines.append("")
        self.lines.append(heading + (markdown if heading else escape_line_start(markdown)))
        self.line, self.pending_breaks, self.hard_break, self.at_start = None, 2, False, False
        return True

    def add_marker(self, marker: str) -> None:
        """A list item's bullet or number: always a fresh line."""
        self.request_break(1)
        self.start_line()
        self.line += marker
        self.after_marker = True

    def add_lines(self, lines: list[str]) -> None:
        """Whole lines (a fence, a table) as written, each after the container prefix."""
        self.request_break(1)
        self.start_line()
        self.after_marker = False
        for i, line in enumerate(lines):
            if i:
                self._flush()
                self.line = self.prefix()
            self.line += line
        self.at_start = False
        self.request_break(1)

    def mark(self) -> tuple[int, int]:
        """Where an inline span starts: (line number, offset in the line)."""
        self.start_line()
        return len(self.lines), len(self.line)

    def span(self, mark: tuple[int, int]) -> str | None:
        """The span's content since `mark`, or None when it left the line (a break inside it)."""
        if mark[0] != len(self.lines) or self.line is None:
            return None
        return self.line[mark[1]:]

    def replace_span(self, mark: tuple[int, int], markup: str) -> None:
        self.line = self.line[:mark[1]] + markup

    def text(self) -> str:
        if self.line is not None:
            self._flush()
        return "\n".join(self.lines).strip("\n")


# ------------------------------------------------------------------------------------------------ the walk
class _Walk:
    """One post's walk: the builder plus the site's address and the languages of its code blocks."""

    def __init__(self, base: str, languages: list[str | None] | None) -> None:
        self.out = _MarkdownBuilder()
        self.base = base
        self.languages = languages
        self.pre_index = 0
        self.spans: dict[int, tuple] = {}  # id(element) -> (kind, mark, extra) of an open emphasis or link
        self.bare_items: set[int] = set()  # id(element) of each open <li> outside a list

    def start(self, tag: str, element) -> bool:
        """Start of an element; True when it was rendered whole (its subtree is to be skipped)."""
        out = self.out
        if tag in _FAST_BLOCKS and _inline_only(element):
            self._inline_block(tag, element)
            return True
        if tag == "pre":
            self._pre(element)
            return True
        if tag == "code":
            code = collapse_spaces(_text_of(element))
            if code.strip():
                out.add_raw(code_span(code))
            elif code:
                out.add_text(" ")
            return True
        if tag == "table":
            self._table(element)
            return True
        if tag == "img":
            self._image(element)
            return True
        if tag == "hr":
            out.request_break(2)
            out.add_lines(["---"])
            out.request_break(2)
            return True
        block_break(out, tag)
        if tag == "blockquote":
            out.prefixes.append("> ")
        elif tag in ("ul", "ol"):
            out.lists.append([tag == "ol", _list_start(element)])
            out.prefixes.append("")  # the list's items push their own indent
        elif tag == "li":
            if not _in_list(out):  # a bare <li>: a bullet of a list of its own
                out.lists.append([False, 1])
                out.prefixes.append("")
                self.bare_items.add(id(element))
            self._item()
        elif tag in _HEADINGS:
            out.heading = "#" * _HEADINGS[tag] + " "
        elif tag == "br":
            if out.heading or _in_heading(element):
                out.add_text(" ")
            elif out._content(out.line):
                out.hard_break = True
                out.request_break(1)
        elif tag in _EMPHASIS:
            self.spans[id(element)] = ("em", out.mark(), _EMPHASIS[tag])
        elif tag == "a":
            self._open_link(element)
        elif tag in ("td", "th"):
            out.add_text(" ")
        return False

    def end(self, tag: str, element) -> None:
        out = self.out
        if tag == "blockquote":
            out.request_break(2)
            out.prefixes.pop()
        elif tag in ("ul", "ol"):
            out.lists.pop()
            out.prefixes.pop()
        elif tag == "li":
            out.prefixes[-1] = ""
            if id(element) in self.bare_items:
                self.bare_items.discard(id(element))
                out.lists.pop()
                out.prefixes.pop()
        elif tag in _HEADINGS:
            out.heading = ""
        elif tag in _EMPHASIS:
            self._close_emphasis(element)
        elif tag == "a":
            self._close_link(element)
        block_break(out, tag)

    def _inline_block(self, tag: str, element) -> None:
        """A paragraph or heading of text and inline markup only (most of a post), rendered in one recursion
        instead of event by event; the same breaks as start() and end() would ask for."""
        out = self.out
        out.request_break(1 if tag == "p" and out.lists else 2)
        if len(element):
            markdown = collapse_spaces(inline_markdown(element, self.base)).strip(" ")
        else:  # text only: collapsed, trimmed, then escaped (escaping adds no space)
            markdown = escape_text(collapse_spaces(element.text or "").strip(" "))
        if markdown and out.add_top_block(markdown, "#" * _HEADINGS[tag] + " " if tag in _HEADINGS else ""):
            return
        if markdown:
            if tag in _HEADINGS:
                out.heading = "#" * _HEADINGS[tag] + " "
            out.start_line()
            out.after_marker = False
            if out.at_start:
                markdown = escape_line_start(markdown)
            out.line += markdown
            out.at_start = False
            out.heading = ""
        out.request_break(1 if tag == "p" and out.lists else 2)

    def _item(self) -> None:
        out = self.out
        ordered = out.lists and out.lists[-1][0]
        marker = f"{out.lists[-1][1]}. " if ordered else "- "
        if ordered:
            out.lists[-1][1] += 1
        if out.prefixes:
            out.prefixes[-1] = ""
        out.add_marker(marker)
        if out.prefixes:
            out.prefixes[-1] = " " * len(marker)

    def _close_emphasis(self, element) -> None:
        _, mark, marker = self.spans.pop(id(element), (None, None, None))
        content = self.out.span(mark) if mark else None
        if not content or not content.strip():
            return
        core = content.strip(" ")
        lead, trail = content[:len(content) - len(content.lstrip(" "))], content[len(content.rstrip(" ")):]
        self.out.replace_span(mark, f"{lead}{marker}{core}{marker}{trail}")

    def _open_link(self, element) -> None:
        out = self.out
        url = resolve_url(element.get("href"), self.base)
        if url is None:
            return
        out.start_line()
        if out.line.endswith("!") and not out.line.endswith("\\!"):
            out.line = out.line[:-1] + "\\!"  # "Wow!" + [link](url) is not an image
        out.link_depth += 1
        self.spans[id(element)] = ("a", out.mark(), url)

    def _close_link(self, element) -> None:
        out = self.out
        _, mark, url = self.spans.pop(id(element), (None, None, None))
        if mark is None:
            return
        out.link_depth -= 1
        content = out.span(mark)
        if content is None:  # the link's text broke the line: keep the text, then the address
            out.add_raw(f" <{url}>" if _AUTOLINK_OK.match(url) else f" [{url}]({link_destination(url)})")
            return
        core = content.strip(" ")
        if not core:
            return
        lead, trail = content[:len(content) - len(content.lstrip(" "))], content[len(content.rstrip(" ")):]
        shown = collapse_spaces(_text_of(element)).strip()
        if shown == url and _AUTOLINK_OK.match(url) and len(element) == 0:
            markup = f"<{url}>"
        else:
            markup = f"[{core}]({link_destination(url)})"
        out.replace_span(mark, f"{lead}{markup}{trail}")

    def _image(self, element) -> None:
        markup = image_markup(element, self.base)
        if markup.startswith("!["):
            self.out.add_raw(markup)
        else:
            self.out.add_text(markup)

    def _pre(self, element) -> None:
        language = None
        if self.languages is not None and self.pre_index < len(self.languages):
            language = self.languages[self.pre_index]
        self.pre_index += 1
        lines = fenced_code(element, language)
        if lines:
            out = self.out
            out.request_break(2)
            out.add_lines(lines)
            out.request_break(2)

    def _table(self, element) -> None:
        rows = []
        for tr in element.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr"):
            cells = [_cell_markdown(cell, self.base) for cell in tr.xpath("./td|./th")]
            if cells:
                rows.append(cells)
        if not rows:
            return
        width = max(len(r) for r in rows)
        lines = []
        for i, row in enumerate(rows):
            row = row + [""] * (width - len(row))
            lines.append("| " + " | ".join(row) + " |")
            if i == 0:
                lines.append("|" + " --- |" * width)
        out = self.out
        out.request_break(2)
        out.add_lines(lines)
        out.request_break(2)


_FAST_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}
_INLINE_TAGS = {"a", "em", "strong", "code", "b", "i", "u", "s", "strike", "del", "ins", "span", "sup", "sub", "kbd",
                "small", "big", "abbr", "cite", "q", "mark", "tt", "var", "samp", "dfn", "time", "font", "img"}


def inline_markdown(element, base: str, in_link: bool = False) -> str:
    """The Markdown of an inline-only element's content (spaces not yet collapsed); `base`: the site's address."""
    # spaces are collapsed before escaping, as add_text does: TeX between dollars is found on one line
    parts = [escape_text(collapse_spaces(element.text), in_link)] if element.text else []
    for child in element:
        tag = child.tag.lower()
        if tag == "code":
            code = collapse_spaces(_text_of(child))
            parts.append(code_span(code) if code.strip() else code)
        elif tag == "img":
            parts.append(image_markup(child, base))
        elif tag in _EMPHASIS:
            parts.append(_wrap(inline_markdown(child, base, in_link), _EMPHASIS[tag]))
        elif tag == "a":
            url = resolve_url(child.get("href"), base)
            if url is not None and parts and parts[-1].endswith("!") and not parts[-1].endswith("\\!"):
                parts[-1] = parts[-1][:-1] + "\\!"
            parts.append(_link_markup(child, url, inline_markdown(child, base, in_link or url is not None)))
        elif tag not in _DROP_WITH_CONTENT:
            parts.append(inline_markdown(child, base, in_link))
        if child.tail:
            parts.append(escape_text(collapse_spaces(child.tail), in_link))
    return "".join(parts)


def _link_markup(element, url: str | None, content: str) -> str:
    core = content.strip()
    if url is None or not core:
        return content
    lead, trail = content[:len(content) - len(content.lstrip())], content[len(content.rstrip()):]
    shown = collapse_spaces(_text_of(element)).strip()
    if shown == url and _AUTOLINK_OK.match(url) and len(element) == 0:
        return f"{lead}<{url}>{trail}"
    return f"{lead}[{core}]({link_destination(url)}){trail}"


def image_markup(element, base: str) -> str:
    """`![alt](src)`: alt text only where it says something (never the placeholder); the alt text alone
    (escaped) for an image without a source."""
    alt = collapse_spaces(element.get("alt") or "").strip()
    if alt.lower() == PLACEHOLDER:
        alt = ""
    src = resolve_url(element.get("src"), base)
    if src is None:
        return f" {escape_text(alt)} " if alt else ""
    return f"![{escape_text(alt, in_link=True)}]({link_destination(src)})"


def fenced_code(pre, language: str | None) -> list[str]:
    """A <pre>'s lines as a fenced code block (the fence outlasting any inside; the language of its class, else
    `language`, the post's comment for it); [] for a <pre> with no code."""
    language = _class_language(pre) or language
    lines = _pre_text(pre).split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return []
    longest = max((len(m) for line in lines for m in re.findall(r"^\s*(`{3,}|~{3,})", line)), default=2)
    fence = "`" * max(3, longest + 1)
    return [fence + (language or "")] + lines + [fence]


def _inline_only(element) -> bool:
    """Whether every element inside is inline markup (no <br>, no block, no comment)."""
    if not len(element):
        return True
    for child in element.iterdescendants():
        if child.tag not in _INLINE_TAGS:
            return False
    return True


def _wrap(content: str, marker: str) -> str:
    """Emphasis around `content`, its outer spaces moved outside (a renderer needs the marker next to text)."""
    core = content.strip()
    if not core:
        return content
    lead, trail = content[:len(content) - len(content.lstrip())], content[len(content.rstrip()):]
    return f"{lead}{marker}{core}{marker}{trail}"


def _cell_markdown(cell, base: str) -> str:
    """A table cell's Markdown on one line: its line breaks become spaces, its pipes escaped."""
    lines = [line.strip() for line in walk_markdown(cell, base, None).split("\n")]
    lines = [line[:-1].rstrip() if line.endswith("\\") and not line.endswith("\\\\") else line for line in lines]
    return " ".join(line for line in lines if line).replace("|", "\\|")


def _in_list(out: _MarkdownBuilder) -> bool:
    """Whether the innermost open container is a list (a quote pushes "> ", a list its items' indent)."""
    return bool(out.lists) and bool(out.prefixes) and out.prefixes[-1] != "> "


def _in_heading(element) -> bool:
    return any(parent.tag in _HEADINGS for parent in element.iterancestors())


def _text_of(element) -> str:
    return etree.tostring(element, method="text", encoding=str, with_tail=False)


def _pre_text(element) -> str:
    """A <pre>'s text as the plain walk keeps it: verbatim, <br> as a newline, scripts and the like left out."""
    parts, skip = [element.text or ""], 0
    for event, el in etree.iterwalk(element, events=("start", "end")):
        if el is element:
            continue
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if event == "start":
            if skip or tag in _DROP_WITH_CONTENT:
                skip += 1
                continue
            if tag == "br":
                parts.append("\n")
            parts.append(el.text or "")
        else:
            if skip:
                skip -= 1
                if skip:
                    continue
            else:
                parts.append("")
            parts.append(el.tail or "")
    return "".join(parts).replace("\r\n", "\n")


def _class_language(element) -> str | None:
    for el in (element, *element.iterchildren("code")):
        for name in (el.get("class") or "").split():
            for prefix in ("lang-", "language-"):
                if name.startswith(prefix) and len(name) > len(prefix):
                    lang = name[len(prefix):]
                    return None if lang in ("none", "default", "plaintext") else lang
    return None


def _list_start(element) -> int:
    try:
        return int(element.get("start", "1"))
    except ValueError:
        return 1


def pre_languages(html: str) -> list[str | None] | None:
    """The language each <pre> of the post is tagged with by a `<!-- language: X -->` comment right before it
    or a `<!-- language-all: X -->` before it anywhere (the comments lxml's parser drops); None when the post
    has no such comment."""
    if "language" not in html:
        return None
    languages, every, last = [], None, None
    for match in _LANGUAGE_HINT.finditer(html):
        if match.group(0).lower().startswith("<pre"):
            languages.append(last or every)
            last = None
        elif match.group(1):
            every = _bare_language(match.group(2))
        else:
            last = _bare_language(match.group(2))
    return languages if (every or any(languages)) else None


def _bare_language(name: str) -> str | None:
    lang = name.lower()
    lang = lang.removeprefix("lang-")
    return None if lang in ("none", "default", "plaintext", "") else lang


def walk_markdown(root, base: str, languages: list[str | None] | None) -> str:
    """The Markdown of a parsed fragment's container (see modifiers._parse_fragment), before Unicode repair."""
    walk = _Walk(base, languages)
    walk.out.add_text(root.text or "")
    for block in root:
        tag = block.tag.lower() if isinstance(block.tag, str) else ""
        if tag in _FAST_BLOCKS and _inline_only(block):  # most blocks of a post: no event walk
            walk._inline_block(tag, block)
        elif tag not in _DROP_WITH_CONTENT:
            _walk_events(walk, block)
        walk.out.add_text(block.tail or "")
    return walk.out.text()


def _walk_events(walk: _Walk, top) -> None:
    """The event walk of one block's subtree (not its tail)."""
    skip_depth = 0
    whole = None  # an element rendered whole at its start: its subtree is skipped, its end event adds its tail
    walker = etree.iterwalk(top, events=("start", "end"))
    for event, element in walker:
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if event == "start":
            if skip_depth or tag in _DROP_WITH_CONTENT:
                skip_depth += 1
                continue
            if walk.start(tag, element):
                whole = element
                walker.skip_subtree()
                continue
            walk.out.add_text(element.text or "")
        else:
            if skip_depth:
                skip_depth -= 1
                if skip_depth:
                    continue
            elif element is whole:
                whole = None
            else:
                walk.end(tag, element)
            if element is not top:
                walk.out.add_text(element.tail or "")


# ------------------------------------------------------------------------------------------------ visible text
_FENCE_OPEN = re.compile(r"^(`{3,}|~{3,})")
_HEADING = re.compile(r"^#{1,6}(?:[ \t]+|$)")
_RULE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})[ \t]*$")
_TABLE_DELIMITER = re.compile(r"^\|(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*$")
_CONTAINER = re.compile(r"^(?:[ \t]*>[ \t]?)*[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+)?")
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>")
# what a line's first character must be for _CONTAINER, _FENCE_OPEN, _HEADING, _RULE or _TABLE_DELIMITER to match
# there (and a digit: a numbered item)
_BLOCK_START = frozenset(" \t>-+*#`~_|")


def visible_text(markdown: str) -> str:
    """What a reader sees of Markdown made by `walk_markdown`: the words, list bullets and quote markers, with
    fences, heading marks, rules, table pipes, link and image addresses, emphasis marks and escapes removed
    (image alt text and code kept). Word for word the plain walk's text; spacing may differ."""
    out: list[tuple[str, int]] = []  # (line, quote depth of its container)
    fence, fence_depth = None, 0
    for line in markdown.split("\n"):
        if fence is None and (not line or line[0] not in _BLOCK_START and not line[0].isdigit()):
            # most lines: blank, or a paragraph's text with no container, block mark or fence in front of it
            out.append((_inline_visible(line).replace("\x00", "|"), 0))
            continue
        prefix = _CONTAINER.match(line).group()
        body = line[len(prefix):]
        if fence is not None:
            if body.strip().startswith(fence) and not body.strip().strip(fence[0]):
                fence = None
            elif body.strip():  # the plain text drops a code block's blank lines inside a quote
                out.append((line, fence_depth))
            continue
        depth = prefix.count(">")
        opened = _FENCE_OPEN.match(body)
        if opened or _RULE.match(body) or _TABLE_DELIMITER.match(body):
            if opened:
                fence, fence_depth = opened.group(1), depth
            if prefix.strip(" >"):  # a list item that starts with the block: its bullet stays
                out.append((prefix.rstrip(), depth))
            continue
        body = _HEADING.sub("", body, count=1)
        text = _inline_visible(body)
        if body.startswith("|"):
            text = text.replace("\x00", " ")
        out.append((prefix + text.replace("\x00", "|"), depth))
    return "\n".join(_merge_blank_lines(out))


def _merge_blank_lines(lines: list[tuple[str, int]]) -> list[str]:
    """One blank line between two blocks, quoted as the plain text quotes it (as deep as both neighbours are):
    where a block left no visible words (a rule, an image without alt text) its blank lines merge."""
    out: list[str] = []
    blank = False
    for line, depth in lines:
        if not line.strip(" >"):
            blank = blank or bool(out)
            continue
        if blank:
            while depth and not out[-1].startswith("> " * depth):
                depth -= 1
            out.append(("> " * depth).rstrip())
            blank = False
        out.append(line)
    return out


# where _inline_visible has something to decide; every other character is visible as it is
_INLINE_MARKUP = re.compile(r"[\\`$<\[\]*|]|!\[")


def _inline_visible(text: str) -> str:
    """The visible characters of one line's inline Markdown (unescaped pipes, a table's cell separators, come back
    as \\x00 for the caller). Jumps from one markup character to the next (a regex search) and copies the text
    between them whole."""
    found = _INLINE_MARKUP.search(text)
    if found is None:
        return text
    out: list[str] = []
    openers: list[int] = []
    i, n = 0, len(text)
    while found is not None:
        start = found.start()
        if start > i:
            out.append(text[i:start])
        i = _inline_markup(text, start, n, out, openers)
        found = _INLINE_MARKUP.search(text, i)
    if i < n:
        out.append(text[i:])
    return "".join(out)


def _inline_markup(text: str, i: int, n: int, out: list[str], openers: list[int]) -> int:
    """One markup character at text[i] (or `![`): its visible part appended to `out`; returns where to go on."""
    ch = text[i]
    if ch == "\\":
        if i + 1 < n and text[i + 1] in _ASCII_PUNCT:
            out.append(text[i + 1])
            return i + 2
        if i + 1 == n:
            return n  # a hard line break
        out.append(ch)
        return i + 1
    if ch == "`":
        j = i
        while j < n and text[j] == "`":
            j += 1
        run = text[i:j]
        close = re.compile(r"(?<!`)" + run + r"(?!`)").search(text, j)
        if close is None:
            out.append(run)
            return j
        code = text[j:close.start()]
        if len(code) > 2 and code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]
        out.append(code)
        return close.end()
    if ch == "$":
        math = _MATH.match(text, i)
        out.append(math.group() if math else ch)
        return math.end() if math else i + 1
    if ch == "<":
        link = _AUTOLINK.match(text, i)
        out.append(link.group(1) if link else ch)
        return link.end() if link else i + 1
    if ch == "!" or ch == "[":
        openers.append(len(out))
        out.append("![" if ch == "!" else "[")
        return i + (2 if ch == "!" else 1)
    if ch == "]" and openers:
        return _close_bracket(text, i, out, openers)
    if ch == "*":
        j = i
        while j < n and text[j] == "*":
            j += 1
        before, after = text[i - 1] if i else " ", text[j] if j < n else " "
        if before.isspace() and after.isspace():
            out.append(text[i:j])
        return j
    out.append("\x00" if ch == "|" else ch)  # "|", or "]" with no opener
    return i + 1


def _close_bracket(text: str, i: int, out: list[str], openers: list[int]) -> int:
    """A `]` closing the last `[` or `![`: with a `(destination)` after it the brackets and the destination go
    (an image's alt text set apart by spaces, as the plain text has it); without one the `]` stays."""
    opener = openers.pop()
    end = _destination_end(text, i + 1)
    if end is None:
        out.append("]")
        return i + 1
    image = out[opener] == "!["
    shown = image and "".join(out[opener + 1:]).strip()
    out[opener] = " " if shown else ""  # the plain text sets alt text apart: " alt "
    if shown:
        out.append(" ")
    return end


def _destination_end(text: str, i: int) -> int | None:
    """The index after `(destination)` starting at text[i], or None when no link destination starts there."""
    if i >= len(text) or text[i] != "(":
        return None
    i += 1
    if i < len(text) and text[i] == "<":
        close = text.find(">", i)
        if close < 0 or not text.startswith(")", close + 1):
            return None
        return close + 2
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch.isspace():
            return None
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    return None
