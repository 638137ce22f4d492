"""Clean stage: raw Law.SE HTML and titles -> readable plain text.

The tutorial ran BeautifulSoup `get_text()` and collapsed every whitespace run, which glued paragraphs,
list items and code into one line. Here paragraphs stay separated by a blank line, list items stay one per
line, quotes keep a `> ` prefix, `<pre>` code is kept verbatim, and scripts/styles are dropped. Parsing is
lxml's HTML parser with network access off; the tree is walked iteratively (no recursion), so 10,000
levels of nesting cannot blow the stack. A paragraph or heading that holds only inline markup (most of a
post) goes to the line builder as one text instead of element by element (tests/test_clean_regression.py pins
it). Unicode repair and whitespace tidying are textrepair's.

With --text-format markdown the same parse feeds mdtext's walk as well; a post made only of simple blocks (most)
gets both texts in one pass over its blocks instead (`_simple_post`; tests/test_markdown.py pins it to the walks).

Interface as NeMo Curator's DocumentModifier: `modify_document(text) -> text`.
"""
from __future__ import annotations

import re

import pandas as pd
from lxml import etree
from lxml import html as lxml_html

from mdescape import LINE_START_FIRST_CHARS, PLACEHOLDER, drop_placeholder_markup, escape_line_start, escape_text
from mdtext import block_break, fenced_code, inline_markdown, pre_languages, walk_markdown
from textrepair import collapse_spaces, finish_text, normalise_whitespace, repair_unicode


class DocumentModifier:
    """A text -> text transformation, applied to a column of every record (NeMo Curator's interface)."""

    def modify_document(self, text: str) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def modify_series(self, texts: pd.Series) -> pd.Series:
        """Apply to a whole column (subclasses may vectorise). The result keeps the record contract's object
        dtype: Series.map would infer pandas' Arrow-backed str dtype, and every later pass over the column (the
        filters, the histograms, dedup's features) would decode each text from Arrow again."""
        return pd.Series([self.modify_document(text) for text in texts], index=texts.index, dtype=object)


_DROP_WITH_CONTENT = {"script", "style", "noscript", "template", "iframe", "object", "embed", "head", "title",
                      "svg", "math", "button", "select", "textarea"}
_PARAGRAPH_TAGS = {"p", "pre", "blockquote", "ul", "ol", "dl", "table", "h1", "h2", "h3", "h4", "h5", "h6",
                   "hr", "figure", "details", "section", "article", "aside", "header", "footer", "address"}
_LINE_TAGS = {"div", "li", "dt", "dd", "tr", "caption", "summary", "figcaption", "main", "nav", "form"}
_CELL_TAGS = {"td", "th"}
class _TextBuilder:
    """Collects text and break requests into lines; knows quote depth and <pre> mode.

    The line being built is one string (`line`, None before its first text) rather than a list of pieces joined
    at every check: most checks ask whether it holds anything besides quote markers and spaces, or how it ends.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: str | None = None
        self.pending_breaks = 0  # 0 = same line, 1 = new line, 2 = blank line first
        self.quote_depth = 0
        self.pre_depth = 0
        self.lists: list[list] = []  # per open list: [ordered, next number]
        self.after_marker = False
        self.skip_placeholder = False  # leave out Stack Exchange's placeholder alt text (the visible text)

    def request_break(self, n: int) -> None:
        if n > self.pending_breaks:
            self.pending_breaks = n

    def _flush_line(self) -> None:
        self.lines.append(self.line.rstrip())
        self.line = None

    def _start_text(self) -> None:
        if self.line is None and not self.lines:
            self.line = "> " * self.quote_depth
            self.pending_breaks = 0
            return
        if self.pending_breaks and self.after_marker:
            self.pending_breaks = 0  # "- " then a <p>: the text goes on the bullet's line
        if self.pending_breaks:
            if self.line is not None and self.line.strip(" >"):
                self._flush_line()
            if self.pending_breaks == 2 and self.lines and self.lines[-1].strip(" >"):
                depth = self.quote_depth
                while depth and not self.lines[-1].startswith("> " * depth):
                    depth -= 1
                self.lines.append(("> " * depth).rstrip())
            self.line = "> " * self.quote_depth
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
                    self.line = (self.line or "") + part
            return
        if text.isspace():  # collapses to " ", or (no-break space, ...) strips to ""
            line = self.line
            if not self.pending_breaks and line is not None and not line.endswith(" ") and line.strip(" >"):
                self.line = line + " "
            return
        self._start_text()
        self.after_marker = False
        collapsed = collapse_spaces(text)
        line = self.line or ""
        if line.endswith(" ") or not line.strip(" >"):
            collapsed = collapsed.lstrip(" ")
        self.line = line + collapsed

    def add_marker(self, marker: str) -> None:
        """Text that starts a block (a list bullet): always begins a fresh line."""
        self.request_break(1)
        self._start_text()
        self.line = (self.line or "") + marker
        self.after_marker = True

    def text(self) -> str:
        if self.line is not None:
            self._flush_line()
        return "\n".join(self.lines).strip("\n")  # every line is already right-stripped


def _on_start(builder: _TextBuilder, tag: str, element) -> None:
    block_break(builder, tag, _PARAGRAPH_TAGS, _LINE_TAGS)
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
        if alt and not (builder.skip_placeholder and collapse_spaces(alt).strip().lower() == PLACEHOLDER):
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
    block_break(builder, tag, _PARAGRAPH_TAGS, _LINE_TAGS)


def _list_start(element) -> int:
    try:
        return int(element.get("start", "1"))
    except ValueError:
        return 1


_PARSER_OPTIONS = dict(remove_comments=True, remove_pis=True, no_network=True, huge_tree=True, default_doctype=False)
_PARSER = lxml_html.HTMLParser(**_PARSER_OPTIONS)
_ETREE_PARSER = etree.HTMLParser(**_PARSER_OPTIONS)
_FULL_DOCUMENT = re.compile(r"^\s*<(?:html|!doctype)", re.I).match  # as lxml.html: such input is not wrapped


def html_to_text(html: str, skip_placeholder: bool = False) -> str:
    """Readable plain text of an HTML fragment: paragraphs, lists, quotes and code kept. `skip_placeholder`:
    leave out Stack Exchange's placeholder alt text (the visible text; without it, today's plain text)."""
    if not html or not html.strip():
        return ""
    if "<" not in html and "&" not in html:
        return collapse_spaces(html).strip()
    try:
        root = _parse_fragment(html)
    except (etree.ParserError, ValueError):
        return _strip_tags(html)
    text = _walk_text(root, skip_placeholder)
    if not text:
        # libxml2 stops building the tree past ~2,000 levels of nesting and loses the text inside;
        # a flat tag strip keeps the words.
        return _strip_tags(html)
    return text


def html_to_markdown(html: str, base: str) -> tuple[str, str]:
    """(Markdown, visible text) of an HTML fragment, parsed once: mdtext's walk and the plain walk without the
    image placeholder. `base` is the site's address (https://site/) for its relative links."""
    if not html or not html.strip():
        return "", ""
    if "<" not in html and "&" not in html:
        text = drop_placeholder_markup(collapse_spaces(html).strip())
        return escape_line_start(escape_text(text)), text
    try:
        root = _parse_fragment(html)
    except (etree.ParserError, ValueError):
        text = drop_placeholder_markup(_strip_tags(html))
        return escape_line_start(escape_text(text)), text
    pair = _simple_post(root, base, html)
    if pair is not None and pair[1]:
        markdown, visible = pair
    else:
        visible = _walk_text(root, True)
        if not visible:  # see html_to_text
            text = drop_placeholder_markup(_strip_tags(html))
            return escape_line_start(escape_text(text)), text
        markdown = walk_markdown(root, base, pre_languages(html))
    return markdown, drop_placeholder_markup(visible)


_HEADING_MARKS = {f"h{level}": "#" * level + " " for level in range(1, 7)}
_MARKDOWN_PARAGRAPHS = {"p", *_HEADING_MARKS}
_SIMPLE_BLOCKS = _MARKDOWN_PARAGRAPHS | {"blockquote", "ul", "ol", "pre", "hr"} | _DROP_WITH_CONTENT


def _simple_post(root, base: str, html: str) -> tuple[str, str] | None:
    """(Markdown, visible text) of a container whose blocks are all simple (most posts): paragraphs and headings
    of inline markup, quotes of such paragraphs, lists of text-only items, <pre><code> blocks, rules, and blocks
    dropped with their content, separated by whitespace. One pass over the blocks, each rendered whole for both
    texts; blocks are a blank line apart in both, and a block with nothing to show is left out: what the two
    builders' walks reduce to there (tests/test_markdown.py pins them together). None for any other container."""
    if root.text and not root.text.isspace():
        return None
    blocks = list(root)
    tags = [block.tag for block in blocks]  # lxml makes a new string at each .tag
    for block, tag in zip(blocks, tags):
        if tag not in _SIMPLE_BLOCKS or (block.tail and not block.tail.isspace()):
            return None
    markdown_blocks, visible_blocks = [], []
    languages, pres, quotes = None, 0, 0
    for block, tag in zip(blocks, tags):
        if tag in _MARKDOWN_PARAGRAPHS:
            pair = _simple_paragraph(block, base)
            if pair is None and tag == "p" and all(br.tag == "br" and not len(br) and not br.text for br in block):
                pair = _broken_paragraph(block)
            elif pair is not None and pair[0]:
                heading = _HEADING_MARKS.get(tag)
                if heading:
                    pair = (heading + pair[0], pair[1])
                elif pair[0][0] in LINE_START_FIRST_CHARS:
                    pair = (escape_line_start(pair[0]), pair[1])
        elif tag == "blockquote":
            pair = _simple_quote(block, base)
            quotes += 1
        elif tag in ("ul", "ol"):
            pair = _simple_list(block)
        elif tag == "pre":
            if pres == 0:
                languages = pre_languages(html)
            language = languages[pres] if languages is not None and pres < len(languages) else None
            pres += 1
            pair = _simple_pre(block, language)
        elif tag == "hr":
            pair = ("---", "") if not len(block) and not block.text else None
        else:
            continue  # dropped with its content (a script, a style)
        if pair is None:
            return None
        markdown_blocks.append(pair[0])
        visible_blocks.append(pair[1])
    return _join_blocks(markdown_blocks, quotes), _join_blocks(visible_blocks, quotes)


def _join_blocks(texts: list[str], quotes: int) -> str:
    """Blocks a blank line apart, those with nothing to show left out; the blank line is quoted (">") where a
    quote follows a line in a quote, as both builders merge them."""
    if quotes < 2:
        return "\n\n".join([text for text in texts if text])
    out = []
    for text in texts:
        if text:
            if out:
                quoted = text.startswith("> ") and out[-1][out[-1].rfind("\n") + 1:].startswith("> ")
                out.append("\n>\n" if quoted else "\n\n")
            out.append(text)
    return "".join(out)


def _simple_paragraph(block, base: str) -> tuple[str, str] | None:
    """(Markdown, visible text) of a paragraph of inline markup (no image), each on one line and trimmed, "" where
    it shows nothing; the Markdown before its line start is escaped. None for any other paragraph.

    A paragraph of one text node is one add_text for the plain builder: its text collapsed and trimmed, whatever
    spaces it holds, unless that leaves only ">" and spaces (a line the builder counts as empty)."""
    if len(block):
        text = _inline_plain_text(block)
        if text is None:
            return None
        collapsed = collapse_spaces(text)
        markdown = collapse_spaces(inline_markdown(block, base)).strip(" ")
    else:
        text = block.text
        if not text:
            return "", ""
        collapsed = collapse_spaces(text)
        markdown = escape_text(collapsed.strip(" "))
    if text.isspace():
        return markdown, ""
    visible = collapsed.lstrip(" ").rstrip()
    if visible[:1] == ">" and not visible.strip(" >"):
        return None
    return markdown, visible


def _inline_plain_text(block) -> str | None:
    """_plain_text, less strict about Unicode spaces: a text with one counts for a single add_text unless a text
    node of it is only spaces and holds one (the builder makes such a node " "; the collapse keeps it)."""
    for element in block.iterdescendants():
        if element.tag not in _INLINE_TAGS:
            return None
    text = etree.tostring(block, method="text", encoding=str, with_tail=False)
    if _QUOTE_START.match(text):
        return None
    if _UNICODE_ONLY_SPACE.search(text):
        nodes = [block.text] + [node for element in block.iterdescendants() for node in (element.text, element.tail)]
        if any(node and node.isspace() and node.strip(" \t\r\n\f\v") for node in nodes):
            return None
    return text


def _broken_paragraph(block) -> tuple[str, str] | None:
    """A paragraph of text lines split by <br> (no other markup): a line each in both texts, the Markdown's ending
    in a backslash (a hard break) but the last. None when a line is empty or holds other markup."""
    markdown_lines, visible_lines = [], []
    for segment in [block.text] + [br.tail for br in block]:
        if not segment or segment.isspace():
            return None
        collapsed = collapse_spaces(segment).lstrip(" ")
        visible = collapsed.rstrip()
        if not visible.strip(" >"):
            return None
        if markdown_lines:
            markdown_lines[-1] = (markdown_lines[-1] + "\\").rstrip()
        markdown_lines.append(escape_line_start(escape_text(collapsed)))
        visible_lines.append(visible)
    markdown_lines[-1] = markdown_lines[-1].rstrip()
    return "\n".join(markdown_lines), "\n".join(visible_lines)


def _simple_quote(quote, base: str) -> tuple[str, str] | None:
    """A quote of simple paragraphs: each a "> " line, a ">" line between them (both texts)."""
    if quote.text and not quote.text.isspace():
        return None
    markdown_lines, visible_lines = [], []
    for paragraph in quote:
        if paragraph.tag != "p" or (paragraph.tail and not paragraph.tail.isspace()):
            return None
        pair = _simple_paragraph(paragraph, base)
        if pair is None:
            return None
        if pair[0]:
            markdown_lines.append(("> " + escape_line_start(pair[0])).rstrip())
        if pair[1]:
            visible_lines.append("> " + pair[1])
    return "\n>\n".join(markdown_lines), "\n>\n".join(visible_lines)


def _simple_list(block) -> tuple[str, str] | None:
    """A list of text-only items: a bullet or number line each (both texts)."""
    if block.text and not block.text.isspace():
        return None
    ordered, number = block.tag == "ol", _list_start(block)
    markdown_lines, visible_lines = [], []
    for item in block:
        text = item.text
        if item.tag != "li" or len(item) or not text or text.isspace() or (item.tail and not item.tail.isspace()):
            return None
        marker = f"{number}. " if ordered else "- "
        number += 1
        collapsed = collapse_spaces(text).lstrip(" ")
        visible_lines.append((marker + collapsed).rstrip())
        markdown_lines.append((marker + escape_line_start(escape_text(collapsed))).rstrip())
    return "\n".join(markdown_lines), "\n".join(visible_lines)


def _simple_pre(pre, language: str | None) -> tuple[str, str] | None:
    """A <pre><code> of text only: a fenced block in Markdown; in the visible text its lines that hold more than
    spaces and ">" (the plain walk's lines; blank ones vanish there)."""
    if pre.text or len(pre) != 1 or pre[0].tag != "code" or len(pre[0]) or pre[0].tail:
        return None
    code = pre[0].text or ""
    if "\r" in code:
        return None
    visible_lines = []
    for part in code.split("\n"):
        if not part.strip(" >"):
            if ">" in part:
                return None  # kept by the plain walk as the post's last line only
            continue
        line = part.rstrip()
        if not line:
            return None  # a line of tabs: an empty line of its own in the plain walk
        visible_lines.append(line)
    return "\n".join(line.rstrip() for line in fenced_code(pre, language)), "\n".join(visible_lines)


def _parse_fragment(html: str):
    """The fragment's container element: lxml.html.fragment_fromstring(create_parent=...)'s tree, built cheaper.

    lxml.html wraps the fragment in <html><body>, parses it with a parser that makes an HtmlElement proxy per
    element, and moves the body's children under a new <div>. The plain etree parser with the same options
    builds the same tree without the proxy classes; the <body> itself serves as the container (the walk gives
    a container's own start and end no text).
    """
    if not _FULL_DOCUMENT(html):
        doc = etree.fromstring(f"<html><body>{html}</body></html>", _ETREE_PARSER)
        if doc is not None and doc.tag == "html":
            bodies = [child for child in doc if child.tag == "body"]
            if len(bodies) == 1:
                return bodies[0]
    return lxml_html.fragment_fromstring(html, create_parent="div", parser=_PARSER)


def _walk_text(root, skip_placeholder: bool = False) -> str:
    """The container's text: at once if it holds only paragraphs (_paragraphs_text); else each top-level block
    through _add_plain_block if it can, else through _walk. `skip_placeholder`: images whose alt text is Stack
    Exchange's placeholder add nothing (the visible text; the plain text keeps today's)."""
    text = _paragraphs_text(root)
    if text is not None:
        return text
    builder = _TextBuilder()
    builder.skip_placeholder = skip_placeholder
    _on_start(builder, root.tag.lower(), root)
    builder.add_text(root.text or "")
    for child in root:
        if not _add_plain_block(builder, child):
            _walk(builder, child)
        builder.add_text(child.tail or "")
    return builder.text()


def _paragraphs_text(root) -> str | None:
    """The text of a container holding only paragraph-like plain blocks (see below) separated by whitespace, as
    the builder makes it: each block's text with its spaces collapsed and trimmed, a blank line between blocks,
    blocks with no text left out. None for any other container (most posts are the former).

    Outside quotes, lists and <pre>, such a block is: a break of two lines, one add_text of its whole text, a
    break of two lines; whitespace between blocks adds nothing after a pending break. So the builder's line
    bookkeeping reduces to a join.
    """
    if root.text and not root.text.isspace():
        return None
    blocks = list(root)
    for block in blocks:  # the cheap test first: a post with a list or a quote costs no text extraction here
        if block.tag not in _TOP_PARAGRAPHS or (block.tail and not block.tail.isspace()):
            return None
    texts = []
    for block in blocks:
        text = _plain_text(block)
        if text is None:
            return None
        if text and not text.isspace():
            texts.append(collapse_spaces(text).lstrip(" ").rstrip())
    return "\n\n".join(texts)


def _walk(builder: _TextBuilder, top) -> None:
    """The general walk of one subtree (not its tail): one start and one end event per element, except that a
    plain block inside (a paragraph in a list item or a quote) goes to the builder whole."""
    skip_depth = 0
    plain = None  # a plain block already fed whole: its subtree is skipped, its end event only adds its tail
    walker = etree.iterwalk(top, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.lower()
        if event == "start":
            if skip_depth or tag in _DROP_WITH_CONTENT:
                skip_depth += 1
                continue
            if _add_plain_block(builder, element):
                plain = element
                walker.skip_subtree()
                continue
            _on_start(builder, tag, element)
            builder.add_text(element.text or "")
        else:
            if skip_depth:
                skip_depth -= 1
                if skip_depth:
                    continue
            elif element is plain:
                plain = None
            else:
                _on_end(builder, tag)
            if element is not top:
                builder.add_text(element.tail or "")


# Most blocks of a post are a paragraph or heading holding text and inline markup only (<a>, <em>, <code>...).
# Inline elements have no start or end behaviour, and for such a block the builder's per-text-node add_text calls
# give what one add_text of the block's whole text gives (lxml's C text serialiser joins it), except where
# add_text's str.strip() sees whitespace the collapse keeps (no-break space, ...) or a line begins with ">" (a
# line of only "> " counts as empty). Those blocks, and every other kind, take _walk; the walk as it was is kept
# in tests/clean_reference.py and tests/test_clean_regression.py pins the two together.
_PLAIN_BLOCKS = (_PARAGRAPH_TAGS | _LINE_TAGS) - {"pre", "blockquote", "ul", "ol", "li"}
_INLINE_TAGS = {"a", "em", "strong", "code", "b", "i", "u", "s", "strike", "del", "ins", "span", "sup", "sub",
                "kbd", "small", "big", "abbr", "cite", "q", "mark", "tt", "var", "samp", "dfn", "time", "font"}
_UNICODE_ONLY_SPACE = re.compile("[\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_QUOTE_START = re.compile(r"[ \t\r\n\f\v]*>")
# plain blocks whose start and end both ask for a blank line when outside a list (see _on_start, _on_end)
_TOP_PARAGRAPHS = _PLAIN_BLOCKS & _PARAGRAPH_TAGS


def _plain_text(block) -> str | None:
    """A block's whole text if it holds inline markup only and add_text of that text is what the per-node walk
    would give (see above); None otherwise."""
    if len(block):
        for element in block.iterdescendants():
            if element.tag not in _INLINE_TAGS:
                return None
        text = etree.tostring(block, method="text", encoding=str, with_tail=False)
    else:
        text = block.text or ""
    if _UNICODE_ONLY_SPACE.search(text) or _QUOTE_START.match(text):
        return None
    return text


def _add_plain_block(builder: _TextBuilder, block) -> bool:
    """Feed a plain block (see above) to the builder in one add_text; False, having done nothing, if not plain."""
    tag = block.tag
    if tag not in _PLAIN_BLOCKS or builder.pre_depth:
        return False
    text = _plain_text(block)
    if text is None:
        return False
    _on_start(builder, tag, block)
    builder.add_text(text)
    _on_end(builder, tag)
    return True


_TAG = re.compile(r"<[^>]*>")
_DROPPED_BLOCK = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _strip_tags(html: str) -> str:
    import html as html_lib

    return collapse_spaces(html_lib.unescape(_TAG.sub(" ", _DROPPED_BLOCK.sub(" ", html)))).strip()


class HtmlToText(DocumentModifier):
    """HTML fragment -> structured plain text."""

    def modify_document(self, text: str) -> str:
        return html_to_text(text)


class UnicodeRepair(DocumentModifier):
    """ftfy repair plus removal of invisible/control characters."""

    def __init__(self, unescape_html: bool | str = False) -> None:
        self.unescape_html = unescape_html

    def modify_document(self, text: str) -> str:
        return repair_unicode(text, self.unescape_html)


class WhitespaceNormaliser(DocumentModifier):
    """Tidy whitespace; keeps paragraph and line structure unless `keep_lines=False`."""

    def __init__(self, keep_lines: bool = True) -> None:
        self.keep_lines = keep_lines

    def modify_document(self, text: str) -> str:
        return normalise_whitespace(text, self.keep_lines)


class Sequential(DocumentModifier):
    """Several modifiers in order."""

    def __init__(self, *modifiers: DocumentModifier) -> None:
        self.modifiers = modifiers

    def modify_document(self, text: str) -> str:
        for modifier in self.modifiers:
            text = modifier.modify_document(text)
        return text


BODY_CLEANER = Sequential(HtmlToText(), UnicodeRepair(), WhitespaceNormaliser())
# Titles are plain text on Law.SE but may carry entities (&quot;) and mojibake; they stay one line.
TITLE_CLEANER = Sequential(UnicodeRepair(unescape_html="auto"), WhitespaceNormaliser(keep_lines=False))


TEXT_FORMATS = ("markdown", "plain")
ANSWER_IMAGE = "_answer_image"  # a working column of the clean + filter task: the answer shows an image


def _clean_bodies(htmls: pd.Series, text_format: str, base: str) -> tuple[list, list]:
    """(written texts, visible texts) of a column of post bodies. The visible text is the plain text without
    Stack Exchange's image placeholder; where the two agree it is the same string object (no copy)."""
    texts, visible = [], []
    if text_format == "plain":
        for html in htmls:
            text = finish_text(html_to_text(html))  # BODY_CLEANER's text
            texts.append(text)
            visible.append(_visible_text(html) if _may_show_placeholder(html or "", text) else text)
        return texts, visible
    for html in htmls:
        markdown, shown = html_to_markdown(html, base)
        memo = {}
        shown_text = finish_text(shown, memo)
        texts.append(shown_text if markdown == shown else finish_text(markdown, memo))  # memo: one per post
        visible.append(shown_text)
    return texts, visible


def _may_show_placeholder(html: str, text: str) -> bool:
    """Whether the plain text may show Stack Exchange's image placeholder: an image's alt text, or unrendered
    Markdown in the post's text (both any case; see mdtext.drop_placeholder_markup)."""
    return "<img" in html or "<IMG" in html or "![" in text


def _visible_text(html: str) -> str:
    """The plain text without the image placeholder: what the filters read in either format."""
    return finish_text(drop_placeholder_markup(html_to_text(html, True)))


def site_address(site: str | None) -> str:
    """https://site/ of a site name (law.stackexchange.com for the JSON dump): the base of relative links."""
    return f"https://{site or 'law.stackexchange.com'}/"


def clean_partition(df: pd.DataFrame, text_format: str = "plain", site: str | None = None) -> pd.DataFrame:
    """Clean stage over one partition: title to one line of plain text, question and answer to `text_format`
    ("plain": today's text; "markdown": mdtext's), each with its visible text in records.VISIBLE's working
    columns (what the filters, dedup, decontamination read: the same in both formats)."""
    from records import VISIBLE

    if text_format not in TEXT_FORMATS:
        raise ValueError(f"text format {text_format!r} is not one of {', '.join(TEXT_FORMATS)}")
    df = df.copy()
    df["title"] = TITLE_CLEANER.modify_series(df["title"])
    base = site_address(site)
    for column in ("question", "answer"):
        texts, visible = _clean_bodies(df[column], text_format, base)
        df[column] = pd.Series(texts, index=df.index, dtype=object)
        df[VISIBLE[column]] = pd.Series(visible, index=df.index, dtype=object)
    return df
