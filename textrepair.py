"""Unicode repair and whitespace tidying of the clean stage's texts, and the one pass that does both.

`repair_unicode` is ftfy.fix_text (byte for byte) plus the removal of lone surrogates, control and zero-width
characters; `normalise_whitespace` trims line ends and blank-line runs. `finish_text` is the two in a row, the
clean stage's last step for every body, through shortcuts that prove most texts need little or nothing: one
check of the characters for printable ASCII (a C scan), one pass over the non-ASCII characters a post holds,
and substring tests that say the whitespace is already tidy. Texts the shortcuts cannot prove take the full
path; a `memo` shared by the texts of one post (its visible text and its Markdown) runs ftfy once per line.
tests/test_clean_fastpath.py checks the shortcuts against ftfy and finish_text against the two functions.
"""
from __future__ import annotations

import re

import ftfy

# The same collapse as re.sub(r"[ \t\r\n\f\v]+", " ", text) without a match per single space: only runs of
# two or more and lone tabs/newlines/etc. are replaced (a lone " " maps to itself).
_SPACE_RUN_FAST = re.compile(r"[ \t\r\n\f\v]{2,}|[\t\r\n\f\v]")


def collapse_spaces(text: str) -> str:
    """re.sub(r"[ \\t\\r\\n\\f\\v]+", " ", text). Most texts have nothing to collapse, and six substring
    tests (C scans) say so several times faster than the regex can."""
    if "  " in text or "\n" in text or "\t" in text or "\r" in text or "\f" in text or "\v" in text:
        return _SPACE_RUN_FAST.sub(" ", text)
    return text


# Invisible or space-like characters that survive ftfy but break word counts and dedup hashing.
_ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACE_LIKE = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
# A line made only of printable ASCII, tabs and its newline is a fixed point of ftfy.fix_text (every ftfy step
# either needs a non-ASCII character, a control character, \r or ESC, or - when unescaping - an "&").
_FTFY_SENSITIVE = re.compile(r"[^\t\n\x20-\x7e]")
# The non-ASCII characters most posts carry (curly quotes, no-break space, dashes, ellipsis, bullet, section
# and paragraph signs, euro/pound/rupee, zero-width space) cannot make ftfy's mojibake detector fire on their own or beside ASCII, and the only
# ftfy step that touches them is uncurl_quotes. A line of printable ASCII plus these comes out of fix_text as the line with quotes
# straightened; tests/test_clean_fastpath.py checks this against ftfy exhaustively on short strings.
_FTFY_SIMPLE_EXTRA = "\u2018\u2019\u201c\u201d\u00a0\u2013\u2014\u2026\u2022\u00a7\u00b6\u20ac\u00a3\u20b9\u200b"
# ... except a section or paragraph sign right before a closing double quote, and a euro or pound sign next to
# any non-ASCII character (badness patterns pair currency and law signs with punctuation).
# Accented Latin letters (precomposed, so NFC leaves them be) are simple too when both neighbours are ASCII: mojibake
# of a UTF-8 character is always two or more non-ASCII characters in a row, and no other ftfy step touches such a
# letter. Left out: the letters whose byte, followed by a space, ftfy reads as UTF-8 with a lost no-break space
# (\u00c2 \u00c3 \u00c5 \u00ce \u00d0 \u00d9, \u00e2 \u00e3), and all other capitals.
_FTFY_LETTERS = "\u00e9\u00e8\u00ea\u00eb\u00e1\u00e0\u00e4\u00ed\u00ec\u00ee\u00ef\u00f3\u00f2\u00f4\u00f6\u00fa\u00f9\u00fb\u00fc\u00e7\u00f1\u00c9"
_FTFY_SIMPLE_CHARS = frozenset(_FTFY_SIMPLE_EXTRA + _FTFY_LETTERS)
_FTFY_ASCII_NEIGHBOURS_ONLY = frozenset("\u20ac\u00a3" + _FTFY_LETTERS)


def _needs_ftfy(text: str) -> bool:
    """Whether `text` holds a character outside the simple set, or a simple one in a context named above.

    One pass over the characters _FTFY_SENSITIVE finds (a few per post) instead of a regex of six alternatives
    tried at every position (the same rules: tests/test_clean_fastpath.py checks both against ftfy)."""
    for match in _FTFY_SENSITIVE.finditer(text):
        ch, i = match.group(), match.start()
        if ch not in _FTFY_SIMPLE_CHARS:
            return True
        if ch in "\u00a7\u00b6":
            if text[i + 1:i + 2] == "\u201d":
                return True
        elif ch in _FTFY_ASCII_NEIGHBOURS_ONLY and not (text[i + 1:i + 2].isascii() and text[i - 1:i].isascii()):
            return True
    return False


def _uncurl(text: str) -> str:
    """ftfy's uncurl_quotes restricted to the four quotes in _FTFY_SIMPLE_EXTRA (str.replace beats translate)."""
    return text.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')


def _fix_shortcut(text: str, unescape_html: bool | str) -> str | None:
    """ftfy.fix_text(text) where the shortcuts above prove it (the text as it is, or with quotes straightened);
    None where ftfy has to look. A printable-ASCII text (no "&" to unescape) comes back as it is."""
    if unescape_html is not False and "&" in text:
        return None
    if not _FTFY_SENSITIVE.search(text):
        return text
    return None if _needs_ftfy(text) else _uncurl(text)


def _fix_line(line: str, unescape_html: bool | str, memo: dict | None = None) -> str:
    """ftfy.fix_text of one line, through the exact shortcuts above where they apply. `memo` (line -> fixed
    line, for one unescape_html value) keeps ftfy's answers for the next text of the same post."""
    fixed = _fix_shortcut(line, unescape_html)
    if fixed is not None:
        return fixed
    if memo is None:
        return ftfy.fix_text(line, unescape_html=unescape_html, normalization="NFC")
    fixed = memo.get(line)
    if fixed is None:
        fixed = memo[line] = ftfy.fix_text(line, unescape_html=unescape_html, normalization="NFC")
    return fixed


def _fix_text(text: str, unescape_html: bool | str, memo: dict | None = None) -> str:
    """ftfy.fix_text, byte-identical, but only doing ftfy's work on the lines that need it.

    fix_text already fixes each line (segment up to and including "\n") independently; its one cross-line
    state is unescape_html="auto" turning off for good at the first line containing "<". Lines made of
    printable ASCII pass through, lines with only common punctuation get their quotes straightened, and only
    the rest go through ftfy's per-line fixed-point loop.
    """
    fixed = _fix_shortcut(text, unescape_html)
    if fixed is not None:
        return fixed
    if "\n" not in text:
        return _fix_line(text, unescape_html, memo)
    out = []
    pos, end = 0, len(text)
    while pos < end:
        nl = text.find("\n", pos) + 1 or end
        line = text[pos:nl]
        out.append(_fix_line(line, unescape_html, memo))
        if unescape_html == "auto" and "<" in line:
            unescape_html = False  # as fix_text does: for this line's later segments and all later lines
        pos = nl
    return "".join(out)


def repair_unicode(text: str, unescape_html: bool | str = False, memo: dict | None = None) -> str:
    """Fix mojibake and odd Unicode (ftfy), drop lone surrogates, control and zero-width characters. `memo`: see
    _fix_line."""
    if not text:
        return ""
    if text.isascii():
        if _fix_shortcut(text, unescape_html) is not None:
            return text  # printable ASCII, tabs and newlines: ftfy and every removal below leave it as it is
    else:
        text = _LONE_SURROGATE.sub("", text)
    text = _fix_text(text, unescape_html, memo)
    if not text.isascii():  # the zero-width and space-like characters are all non-ASCII
        text = _ZERO_WIDTH_RE.sub("", text)
        text = _SPACE_LIKE.sub(" ", text)
    return _CONTROL.sub("", text)


def normalise_whitespace(text: str, keep_lines: bool = True) -> str:
    """Collapse spaces within lines, trim line ends, at most one blank line; or one line if not keep_lines."""
    if not keep_lines:
        return collapse_spaces(text).strip()
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join([line.rstrip() for line in text.split("\n")])
    if "\n\n\n" in text:  # the substring test is a C scan; the regex search alone costs 3x the whole function
        text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()


_PRINTABLE_ASCII = bytes([9, 10]) + bytes(range(0x20, 0x7F))  # as bytes: what _FTFY_SENSITIVE does not match


def finish_text(text: str, memo: dict | None = None) -> str:
    """normalise_whitespace(repair_unicode(text)), byte for byte, for a body's text (lines kept).

    Printable ASCII (with tabs and newlines) is a fixed point of the repair: bytes.translate deleting those bytes
    says so in one C pass (a regex takes several times longer). Text whose non-ASCII characters are all simple
    (see _needs_ftfy) only has its quotes straightened, zero-width spaces dropped and no-break spaces made
    spaces: the only ones of the removals' characters in the simple set. Anything else takes the full path,
    `memo` (one per post) sparing ftfy a line it already fixed in the post's other text.
    """
    if not text:
        return ""
    if text.isascii():
        if text.encode("ascii").translate(None, _PRINTABLE_ASCII):
            return normalise_whitespace(repair_unicode(text, False, memo))  # a control character
        fixed = text
    elif _needs_ftfy(text):
        return normalise_whitespace(repair_unicode(text, False, memo))
    else:
        fixed = _uncurl(text)
        if "\u200b" in fixed:
            fixed = fixed.replace("\u200b", "")
        if "\u00a0" in fixed:
            fixed = fixed.replace("\u00a0", " ")
    # Its only whitespace is now " ", "\t" and "\n": tidy unless a line ends in a space or a tab, blank lines
    # run to three or more, or the text starts or ends with whitespace.
    if " \n" in fixed or "\t\n" in fixed or "\n\n\n" in fixed or fixed[:1].isspace() or fixed[-1:].isspace():
        return normalise_whitespace(fixed)
    return fixed
