"""Clean stage: raw Law.SE HTML and titles -> readable plain text.

The tutorial ran BeautifulSoup `get_text()` and collapsed every whitespace run, which glued paragraphs,
list items and code into one line. Here paragraphs stay separated by a blank line, list items stay one per
line, quotes keep a `> ` prefix, `<pre>` code is kept verbatim, and scripts/styles are dropped. Parsing is
lxml's HTML parser with network access off; the tree is walked iteratively (no recursion), so 10,000
levels of nesting cannot blow the stack. A paragraph or heading that holds only inline markup (most of a
post) goes to the line builder as one text instead of element by element (tests/test_clean_regression.py pins
it). Unicode repair and whitespace tidying are textrepair's.

With --text-format markdown the same parse feeds mdtext's walk as well; a post made only of simple blocks (most)
gets both texts block by block instead (`_simple_post`: `_simple_visible`, then `_simple_markdown`; tests/
test_markdown.py pins it to the walks), and the plain text of such a post is its visible text. With a `keep_row`
(the clean + filter task), the Markdown is made only for the rows the filter keeps.

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
    # A simple post (most) holds no image, so the placeholder changes nothing there; _simple_visible is its one
    # pass over the blocks (tests/test_markdown.py pins it to the walk)
    text = _simple_visible(root) or _walk_text(root, skip_placeholder)
    if not text:
        # libxml2 stops building the tree past ~2,000 levels of nesting and loses the text inside;
        # a flat tag strip keeps the words.
        return _strip_tags(html)
    return text


def html_to_markdown(html: str, base: str) -> tuple[str, str]:
    """(Markdown, visible text) of an HTML fragment, parsed once: mdtext's walk and the plain walk without the
    image placeholder. `base` is the site's address (https://site/) for its relative links."""
    root, pair = _parse_body(html)
    return pair if root is None else _markdown_pair(root, base, html)


def _parse_body(html: str) -> tuple:
    """(the body's parsed container, None), or (None, its (Markdown, visible text)) where html_to_markdown walks no
    tree: an empty body, one without markup, one lxml cannot parse."""
    if not html or not html.strip():
        return None, ("", "")
    if "<" not in html and "&" not in html:
        text = drop_placeholder_markup(collapse_spaces(html).strip())
        return None, (escape_line_start(escape_text(text)), text)
    try:
        return _parse_fragment(html), None
    except (etree.ParserError, ValueError):
        text = drop_placeholder_markup(_strip_tags(html))
        return None, (escape_line_start(escape_text(text)), text)


def _markdown_pair(root, base: str, html: str) -> tuple[str, str]:
    """html_to_markdown of a parsed body (`root`, from `_parse_body`)."""
    visible, how = _tree_visible(root, html)
    return _tree_markdown(root, base, html, how, visible), visible


def _tree_visible(root, html: str) -> tuple[str, bool | None]:
    """The visible text of a parsed body, and how _tree_markdown makes its Markdown: True _simple_markdown (a
    simple post that shows something), False mdtext's walk, None from the visible text itself (the tags stripped:
    libxml2 lost the text of a tree nested too deep, see html_to_text)."""
    visible = _simple_visible(root)
    if visible:
        return drop_placeholder_markup(visible), True
    visible = _walk_text(root, True)
    if visible:
        return drop_placeholder_markup(visible), False
    return drop_placeholder_markup(_strip_tags(html)), None


def _tree_markdown(root, base: str, html: str, how: bool | None, visible: str) -> str:
    """The Markdown of a parsed body, made as `_tree_visible` said (`visible`: the text it gave)."""
    if how:
        return _simple_markdown(root, base, html)
    if how is None:
        return escape_line_start(escape_text(visible))
    return walk_markdown(root, base, pre_languages(html))


_HEADING_MARKS = {f"h{level}": "#" * level + " " for level in range(1, 7)}
_MARKDOWN_PARAGRAPHS = {"p", *_HEADING_MARKS}
_SIMPLE_BLOCKS = _MARKDOWN_PARAGRAPHS | {"blockquote", "ul", "ol", "pre", "hr"} | _DROP_WITH_CONTENT


def _simple_post(root, base: str, html: str) -> tuple[str, str] | None:
    """(Markdown, visible text) of a container whose blocks are all simple (most posts): paragraphs and headings
    of inline markup, quotes of such paragraphs, lists of text-only items, <pre><code> blocks, rules, and blocks
    dropped with their content, separated by whitespace. Each block rendered whole for both texts (the visible
    text first: it decides whether the post is simple); blocks are a blank line apart in both, and a block with
    nothing to show is left out: what the two builders' walks reduce to there (tests/test_markdown.py pins them
    together). None for any other container."""
    visible = _simple_visible(root)
    if visible is None:
        return None
    return _simple_markdown(root, base, html), visible


def _simple_visible(root) -> str | None:
    """The visible text of a simple post (see _simple_post), None for any other container."""
    if root.text and not root.text.isspace():
        return None
    blocks = list(root)
    tags = [block.tag for block in blocks]  # lxml makes a new string at each .tag
    for block, tag in zip(blocks, tags):
        if tag not in _SIMPLE_BLOCKS or (block.tail and not block.tail.isspace()):
            return None
    texts, quotes = [], 0
    for block, tag in zip(blocks, tags):
        if tag in _MARKDOWN_PARAGRAPHS:
            text = _paragraph_visible(block)
            if text is None and tag == "p" and _only_breaks(block):
                text = _broken_visible(block)
        elif tag == "blockquote":
            text = _quote_visible(block)
            quotes += 1
        elif tag in ("ul", "ol"):
            text = _list_visible(block)
        elif tag == "pre":
            text = _pre_visible(block)
        elif tag == "hr":
            text = "" if not len(block) and not block.text else None
        else:
            continue  # dropped with its content (a script, a style)
        if text is None:
            return None
        texts.append(text)
    return _join_blocks(texts, quotes)


def _simple_markdown(root, base: str, html: str) -> str:
    """The Markdown of a post _simple_visible found simple: each block's, through the same choice of renderer (a
    paragraph it could not take whole is one of lines split by <br>: the only other way a simple post's is)."""
    texts, languages, pres, quotes = [], None, 0, 0
    for block in root:
        tag = block.tag
        if tag in _MARKDOWN_PARAGRAPHS:
            if tag == "p" and len(block) and _only_breaks(block):
                text = _broken_markdown(block)
            else:
                text = _paragraph_markdown(block, base)
                if text:
                    heading = _HEADING_MARKS.get(tag)
                    if heading:
                        text = heading + text
                    elif text[0] in LINE_START_FIRST_CHARS:
                        text = escape_line_start(text)
        elif tag == "blockquote":
            text = _quote_markdown(block, base)
            quotes += 1
        elif tag in ("ul", "ol"):
            text = _list_markdown(block)
        elif tag == "pre":
            if pres == 0:
                languages = pre_languages(html)
            language = languages[pres] if languages is not None and pres < len(languages) else None
            pres += 1
            text = "\n".join(line.rstrip() for line in fenced_code(block, language))
        elif tag == "hr":
            text = "---"
        else:
            continue
        texts.append(text)
    return _join_blocks(texts, quotes)


def _only_breaks(block) -> bool:
    """Whether every child of the paragraph is an empty <br> (true of one with no children)."""
    return all(br.tag == "br" and not len(br) and not br.text for br in block)


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


def _paragraph_visible(block) -> str | None:
    """The visible text of a paragraph of inline markup (no image) on one line and trimmed, "" where it shows
    nothing; None for any other paragraph.

    A paragraph of one text node is one add_text for the plain builder: its text collapsed and trimmed, whatever
    spaces it holds, unless that leaves only ">" and spaces (a line the builder counts as empty)."""
    if len(block):
        text = _inline_plain_text(block)
        if text is None:
            return None
    else:
        text = block.text
        if not text:
            return ""
    if text.isspace():
        return ""
    visible = collapse_spaces(text).lstrip(" ").rstrip()
    if visible[:1] == ">" and not visible.strip(" >"):
        return None
    return visible


def _paragraph_markdown(block, base: str) -> str:
    """The Markdown of a paragraph _paragraph_visible takes, on one line and trimmed, before its line start is
    escaped."""
    if len(block):
        return collapse_spaces(inline_markdown(block, base)).strip(" ")
    text = block.text
    return escape_text(collapse_spaces(text).strip(" ")) if text else ""


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


def _broken_visible(block) -> str | None:
    """A paragraph of text lines split by <br> (no other markup): a line each. None when a line is empty or holds
    other markup."""
    visible_lines = []
    for segment in [block.text] + [br.tail for br in block]:
        if not segment or segment.isspace():
            return None
        visible = collapse_spaces(segment).lstrip(" ").rstrip()
        if not visible.strip(" >"):
            return None
        visible_lines.append(visible)
    return "\n".join(visible_lines)


def _broken_markdown(block) -> str:
    """The Markdown of a paragraph _broken_visible takes: a line each, ending in a backslash (a hard break) but the
    last."""
    lines = [escape_line_start(escape_text(collapse_spaces(segment).lstrip(" ")))
             for segment in [block.text] + [br.tail for br in block]]
    return "\n".join([(line + "\\").rstrip() for line in lines[:-1]] + [lines[-1].rstrip()])


def _quote_visible(quote) -> str | None:
    """A quote of simple paragraphs: each a "> " line, a ">" line between them."""
    if quote.text and not quote.text.isspace():
        return None
    lines = []
    for paragraph in quote:
        if paragraph.tag != "p" or (paragraph.tail and not paragraph.tail.isspace()):
            return None
        text = _paragraph_visible(paragraph)
        if text is None:
            return None
        if text:
            lines.append("> " + text)
    return "\n>\n".join(lines)


def _quote_markdown(quote, base: str) -> str:
    """The Markdown of a quote _quote_visible takes."""
    lines = []
    for paragraph in quote:
        text = _paragraph_markdown(paragraph, base)
        if text:
            lines.append(("> " + escape_line_start(text)).rstrip())
    return "\n>\n".join(lines)


def _list_visible(block) -> str | None:
    """A list of text-only items: a bullet or number line each."""
    if block.text and not block.text.isspace():
        return None
    ordered, number = block.tag == "ol", _list_start(block)
    lines = []
    for item in block:
        text = item.text
        if item.tag != "li" or len(item) or not text or text.isspace() or (item.tail and not item.tail.isspace()):
            return None
        marker = f"{number}. " if ordered else "- "
        number += 1
        lines.append((marker + collapse_spaces(text).lstrip(" ")).rstrip())
    return "\n".join(lines)


def _list_markdown(block) -> str:
    """The Markdown of a list _list_visible takes."""
    ordered, number = block.tag == "ol", _list_start(block)
    lines = []
    for item in block:
        marker = f"{number}. " if ordered else "- "
        number += 1
        lines.append((marker + escape_line_start(escape_text(collapse_spaces(item.text).lstrip(" ")))).rstrip())
    return "\n".join(lines)


def _pre_visible(pre) -> str | None:
    """A <pre><code> of text only: its lines that hold more than spaces and ">" (the plain walk's lines; blank ones
    vanish there). Its Markdown is a fenced block (_simple_markdown)."""
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
    return "\n".join(visible_lines)


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


def clean_partition(df: pd.DataFrame, text_format: str = "plain", site: str | None = None,
                    keep_row=None) -> pd.DataFrame:
    """Clean stage over one partition: title to one line of plain text, question and answer to `text_format`
    ("plain": today's text; "markdown": mdtext's), each with its visible text in records.VISIBLE's working
    columns (what the filters, dedup, decontamination read: the same in both formats).

    `keep_row` (filters.RowKeep: called with a row's values by column, question and answer their visible text,
    says whether the filter keeps it; `.columns`: those it reads): the Markdown is made only for the rows it keeps,
    the others' question and answer hold their visible text; the WRITTEN working column says which rows hold
    `text_format`'s text (all of them in plain, whose text is its visible text's first step anyway)."""
    from records import VISIBLE

    if text_format not in TEXT_FORMATS:
        raise ValueError(f"text format {text_format!r} is not one of {', '.join(TEXT_FORMATS)}")
    df = df.copy()
    df["title"] = TITLE_CLEANER.modify_series(df["title"])
    base = site_address(site)
    if keep_row is not None and text_format == "markdown":
        columns = _markdown_of_kept_rows(df, base, keep_row)
    else:
        columns = {}
        for column in ("question", "answer"):
            columns[column], columns[VISIBLE[column]] = _clean_bodies(df[column], text_format, base)
        if keep_row is not None:
            columns[WRITTEN] = [True] * len(df)
    for column, values in columns.items():
        df[column] = pd.Series(values, index=df.index, dtype=bool if column == WRITTEN else object)
    return df


WRITTEN = "_written"  # working column of clean_partition(keep_row=...): the row's texts are in the asked format


def _markdown_of_kept_rows(df: pd.DataFrame, base: str, keep_row) -> dict[str, list]:
    """Question and answer columns, their visible ones and WRITTEN, of a partition whose titles are clean: each body
    parsed once, its visible text made first; the Markdown (and its Unicode repair) only where `keep_row` keeps the
    row (about half of them), from the same tree and with the same per-post memo as _clean_bodies."""
    from records import VISIBLE

    judged = {column: df[column].tolist() for column in keep_row.columns if column not in VISIBLE}
    out = {column: [] for column in ("question", "answer", VISIBLE["question"], VISIBLE["answer"], WRITTEN)}
    for i, (question, answer) in enumerate(zip(df["question"], df["answer"])):
        bodies = (_VisibleFirst(question), _VisibleFirst(answer))
        values = {column: judged[column][i] for column in judged}
        values["question"], values["answer"] = bodies[0].visible, bodies[1].visible
        written = keep_row(values)
        out[WRITTEN].append(written)
        for column, body in zip(("question", "answer"), bodies):
            out[column].append(body.markdown(base) if written else body.visible)
            out[VISIBLE[column]].append(body.visible)
    return out


class _VisibleFirst:
    """One post body for _markdown_of_kept_rows: parsed and its visible text finished at once, its Markdown on
    demand; both as _clean_bodies makes them (html_to_markdown's steps, split between the two texts)."""

    __slots__ = ("html", "root", "pair", "how", "shown", "memo", "visible")

    def __init__(self, html: str) -> None:
        self.html = html
        self.root, self.pair = _parse_body(html)
        if self.root is None:
            self.shown, self.how = self.pair[1], None
        else:
            self.shown, self.how = _tree_visible(self.root, html)
        self.memo: dict = {}
        self.visible = finish_text(self.shown, self.memo)

    def markdown(self, base: str) -> str:
        """The finished Markdown: what _clean_bodies writes for this body."""
        if self.root is None:
            markdown = self.pair[0]
        else:
            markdown = _tree_markdown(self.root, base, self.html, self.how, self.shown)
        return self.visible if markdown == self.shown else finish_text(markdown, self.memo)
