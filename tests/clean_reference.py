"""The clean stage's HTML walk as it was before the fast path: the reference the fast path must match.

Kept verbatim (one element event at a time through a line builder) so tests/test_clean_regression.py can pin
`modifiers.html_to_text` to it byte for byte on generated posts.
"""
from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

_DROP_WITH_CONTENT = {"script", "style", "noscript", "template", "iframe", "object", "embed", "head", "title",
                      "svg", "math", "button", "select", "textarea"}
_PARAGRAPH_TAGS = {"p", "pre", "blockquote", "ul", "ol", "dl", "table", "h1", "h2", "h3", "h4", "h5", "h6",
                   "hr", "figure", "details", "section", "article", "aside", "header", "footer", "address"}
_LINE_TAGS = {"div", "li", "dt", "dd", "tr", "caption", "summary", "figcaption", "main", "nav", "form"}
_CELL_TAGS = {"td", "th"}
_SPACE_RUN_FAST = re.compile(r"[ \t\r\n\f\v]{2,}|[\t\r\n\f\v]")


class _TextBuilder:
    """Collects text and break requests into lines; knows quote depth and <pre> mode."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []
        self.pending_breaks = 0  # 0 = same line, 1 = new line, 2 = blank line first
        self.quote_depth = 0
        self.pre_depth = 0
        self.lists: list[list] = []  # per open list: [ordered, next number]
        self.after_marker = False

    def request_break(self, n: int) -> None:
        self.pending_breaks = max(self.pending_breaks, n)

    def _prefix(self) -> str:
        return "> " * self.quote_depth

    def _flush_line(self) -> None:
        line = "".join(self.current).rstrip()
        self.lines.append(line)
        self.current = []

    def _start_text(self) -> None:
        if not self.current and not self.lines:
            self.current = [self._prefix()]
            self.pending_breaks = 0
            return
        if self.pending_breaks and self.after_marker:
            self.pending_breaks = 0  # "- " then a <p>: the text goes on the bullet's line
        if self.pending_breaks:
            if self.current and "".join(self.current).strip(" >"):
                self._flush_line()
            else:
                self.current = []
            if self.pending_breaks == 2 and self.lines and self.lines[-1].strip(" >"):
                depth = self.quote_depth
                while depth and not self.lines[-1].startswith("> " * depth):
                    depth -= 1
                self.lines.append(("> " * depth).rstrip())
            self.current = [self._prefix()]
            self.pending_breaks = 0

    def add_text(self, text: str) -> None:
        if not text:
            return
        if self.pre_depth:
            parts = text.split("\n")
            for i, part in enumerate(parts):
                if i:
                    self.request_break(1)
                if part or i:
                    self._start_text()
                    self.after_marker = False
                    self.current.append(part)
            return
        collapsed = _SPACE_RUN_FAST.sub(" ", text)
        if not collapsed.strip():
            if self.current and "".join(self.current).strip(" >") and not self.pending_breaks:
                if not self.current[-1].endswith(" "):
                    self.current.append(" ")
            return
        self._start_text()
        self.after_marker = False
        line_so_far = "".join(self.current)
        if not line_so_far.strip(" >") or line_so_far.endswith(" "):
            collapsed = collapsed.lstrip(" ")
        self.current.append(collapsed)

    def add_marker(self, marker: str) -> None:
        """Text that starts a block (a list bullet): always begins a fresh line."""
        self.request_break(1)
        self._start_text()
        self.current.append(marker)
        self.after_marker = True

    def text(self) -> str:
        if self.current:
            self._flush_line()
        return "\n".join(line.rstrip() for line in self.lines).strip("\n")


def _on_start(builder: _TextBuilder, tag: str, element) -> None:
    if tag in ("ul", "ol", "p") and builder.lists:
        builder.request_break(1)  # a list or paragraph inside a list item stays tight
    elif tag in _PARAGRAPH_TAGS:
        builder.request_break(2)
    elif tag in _LINE_TAGS:
        builder.request_break(1)
    if tag == "blockquote":
        builder.quote_depth += 1
    elif tag == "pre":
        builder.pre_depth += 1
    elif tag in ("ul", "ol"):
        builder.lists.append([tag == "ol", _list_start(element)])
    elif tag == "li":
        indent = "  " * max(0, len(builder.lists) - 1)
        if builder.lists and builder.lists[-1][0]:
            builder.add_marker(indent + f"{builder.lists[-1][1]}. ")
            builder.lists[-1][1] += 1
        else:
            builder.add_marker(indent + "- ")
    elif tag == "br":
        if builder.pre_depth:
            builder.add_text("\n")
        else:
            builder.request_break(1)
    elif tag in _CELL_TAGS:
        builder.add_text(" ")
    elif tag == "img":
        alt = element.get("alt")
        if alt:
            builder.add_text(f" {alt} ")


def _on_end(builder: _TextBuilder, tag: str) -> None:
    if tag == "blockquote":
        builder.request_break(2)
        builder.quote_depth = max(0, builder.quote_depth - 1)
    elif tag == "pre":
        builder.pre_depth = max(0, builder.pre_depth - 1)
    elif tag in ("ul", "ol"):
        if builder.lists:
            builder.lists.pop()
    if tag in ("ul", "ol", "p") and builder.lists:
        builder.request_break(1)
    elif tag in _PARAGRAPH_TAGS:
        builder.request_break(2)
    elif tag in _LINE_TAGS:
        builder.request_break(1)


def _list_start(element) -> int:
    try:
        return int(element.get("start", "1"))
    except ValueError:
        return 1


_PARSER = lxml_html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, huge_tree=True,
                               default_doctype=False)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML fragment: paragraphs, lists, quotes and code kept."""
    if not html or not html.strip():
        return ""
    if "<" not in html and "&" not in html:
        return _SPACE_RUN_FAST.sub(" ", html).strip()
    try:
        root = lxml_html.fragment_fromstring(html, create_parent="div", parser=_PARSER)
    except (etree.ParserError, ValueError):
        return _strip_tags(html)
    builder = _TextBuilder()
    skip_depth = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.lower()
        if event == "start":
            if skip_depth or tag in _DROP_WITH_CONTENT:
                skip_depth += 1
                continue
            _on_start(builder, tag, element)
            builder.add_text(element.text or "")
        else:
            if skip_depth:
                skip_depth -= 1
                if skip_depth:
                    continue
            else:
                _on_end(builder, tag)
            if element is not root:
                builder.add_text(element.tail or "")
    text = builder.text()
    if not text:
        # libxml2 stops building the tree past ~2,000 levels of nesting and loses the text inside;
        # a flat tag strip keeps the words.
        return _strip_tags(html)
    return text


_TAG = re.compile(r"<[^>]*>")
_DROPPED_BLOCK = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _strip_tags(html: str) -> str:
    import html as html_lib

    return _SPACE_RUN_FAST.sub(" ", html_lib.unescape(_TAG.sub(" ", _DROPPED_BLOCK.sub(" ", html)))).strip()


