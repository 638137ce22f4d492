"""The strict parser and gates for generated lists (pure functions, no I/O).

A generation answer is read in this order:
1. reasoning set aside: `<think>...</think>` (also `<thinking>`, `<reasoning>`), reasoning whose opening tag was in
   the chat template (text up to a lone `</think>`), and an unclosed `<think>` (everything after it);
2. code fences unwrapped (a model that fences its whole list);
3. lines read as list items: `* `, `- `, `+ `, `• `, `1.`, `1)`, `(1)`, `**1.**`, `Paraphrase 2:` labels. Lines before
   the first item are a preamble and never become items, whatever they end in. A wrapped line joins its item. A
   bullet indented under an item (or a `-` under a numbered item) is a sub-bullet and belongs to that item. A
   paragraph after a blank line belongs to the item above when it is indented or when another item follows it;
   after the last item it is a closing remark unless the answer's variants are multi-paragraph ones;
4. closing remarks dropped, also when glued to the last item without a blank line ("Q3? I hope these help!");
5. without any list marker: exactly n paragraphs or n lines, once preamble, closing and refusal lines are removed;
6. markup removed: bold, a leading "Question 1:" label, quotes or italics only when they wrap the whole item.

A json-schema answer ({"items": [...]}) is read by `parse_schema_items` instead of steps 1-5: strictly one JSON object
(`invalid_json`, `not_an_object`, `not_a_string`, `no_items` otherwise), each string cleaned as in step 6.

Then the response gates (the caller re-asks): `empty`, `reasoning_only`, `truncated` (finish_reason "length": the last
item may be cut off, so it is never used), `refusal`, `no_items`, `wrong_count`. Then the item gates (the pair is
dropped): `refusal`, `not_a_question` and `title_length` (a title is one line, one question ending in "?",
TITLE_MIN_CHARS..TITLE_MAX_CHARS characters), `echo` (near-verbatim copy of its source text, or a verbatim excerpt of it),
`repeated` (the same item again in one list: small models loop). With the word range of a question or answer list:
`too_few_words`, `too_many_words`. Junk a small model writes in a well-formed line: `escaped_markup` (an escape
written out: "\\n", "\\*"), `about_the_task` (talk of the rewriting, the lines, "the original text", or to the one
who asked), `repetitive` (a loop on one phrase, or words run together), and, given the text the prompt showed,
`off_topic` (under MIN_TOPIC_SHARE of the item's content words are the text's) and `new_facts` (a number or a name
the text does not have).
"""
from __future__ import annotations

import collections
import functools
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from structured import schema_items

# response-level reasons (the whole answer is unusable: re-ask) and item-level ones (that pair is dropped)
RESPONSE_REASONS = ("empty", "reasoning_only", "truncated", "refusal", "no_items", "wrong_count")
SCHEMA_REASONS = ("invalid_json", "not_an_object", "not_a_string")   # response-level, json-schema answers only
ITEM_REASONS = ("refusal", "not_a_question", "title_length", "echo", "repeated", "too_short", "too_few_words",
                "too_many_words", "escaped_markup", "about_the_task", "repetitive", "off_topic", "new_facts")
TITLE_MIN_CHARS = 10
TITLE_MAX_CHARS = 150     # a Stack Exchange title is at most 150 characters
# word-sequence similarity (difflib ratio) at or above which an item is an echo of its source: about one word in
# fifty changed. Real paraphrases sit far below; a model that returns its input with a word dropped sits above.
ECHO_MIN_SIMILARITY = 0.98
QUESTION_MARKS = "?\uff1f\u061f"   # ASCII, full-width (CJK), Arabic
# an item this long (words) of which one verbatim run of its source makes up this share is an excerpt, not a
# paraphrase: an echo too
EXCERPT_MIN_WORDS = 8
EXCERPT_MIN_SHARE = 0.9


@dataclass
class ParseResult:
    """What one generation answer yielded. `items` has one slot per item (None where an item gate rejected it);
    `ok` is False when the whole answer is rejected (`reason` says why, `detail` adds numbers)."""
    items: list
    ok: bool
    reason: str | None
    raw: str
    detail: str | None = None
    rejected: list = field(default_factory=list)    # (slot, reason, item text) for item-level rejections
    reasoning: str = ""                             # the reasoning text set aside

    @property
    def accepted(self) -> list[str]:
        return [i for i in self.items if i is not None]


# ---- patterns -------------------------------------------------------------------------------------------------------
_THINK_TAGS = r"(?:think|thinking|reasoning)"
_THINK_BLOCK = re.compile(rf"<({_THINK_TAGS})>.*?</\1>", re.S | re.I)
_THINK_OPEN = re.compile(rf"<{_THINK_TAGS}>", re.I)
_THINK_CLOSE = re.compile(rf"</{_THINK_TAGS}>", re.I)
_RULE = re.compile(r"^\s*([*\-_])(?:\s*\1){2,}\s*$")  # "***", "---", "_ _ _": a horizontal rule
_FENCE = re.compile(r"^\s*(?:```|~~~)[\w+-]*\s*$")

_SYM = r"[*\-\u2022+\u2013]"
_NUM = r"(?:\(\d{1,3}\)|\d{1,3}[.)]|\*\*\d{1,3}[.)]\*\*|#{1,4}\s*\d{1,3}[.):]?)"
_LABEL_WORDS = r"(?:question|paraphrase|variant|version|option|title|answer|item|text)"
_LABEL = rf"(?:\*\*)?{_LABEL_WORDS}\s*#?\s*\d{{1,3}}\s*(?:\*\*)?\s*[:.)\-\u2013](?:\*\*)?"
_BULLET = re.compile(rf"^(?P<indent>[ \t]*)(?:(?P<sym>{_SYM})[ \t]+|(?P<num>{_NUM})[ \t]+|(?P<label>{_LABEL})"
                     rf"(?:[ \t]+|$))(?P<text>.*)$", re.I)
_LEADING_LABEL = re.compile(rf"^(?:{_LABEL_WORDS})\s*#?\s*\d*\s*[:.\-\u2013]\s+", re.I)

_PREAMBLE = re.compile(
    r"^\W*(?:(?:sure|certainly|of course|okay|ok|absolutely|great|alright|gladly)\b"
    r"|here(?:'s|\u2019s| is| are)\b|below (?:is|are)\b|the following\b|these are\b"
    r"|i(?:'ve|\u2019ve| have) (?:generated|written|created|paraphrased|come up)"
    r"|(?:\w+\s+){0,4}(?:questions|paraphrases|variants|versions|titles)\b\s*(?:of|for|based|that|:|$))", re.I)
# phrases that only a remark about the list itself uses (searched anywhere in a sentence), and remark openers
_CLOSING = re.compile(
    r"let me know|feel free to (?:ask|reach|let|request|tell)|i hope (?:this|these|that|it) (?:helps?|is|are|was|were)"
    r"|hope (?:this|these|that|it) helps?|happy to help|glad to help|(?:is there|if you need|need) anything else"
    r"|would you like me|do you want me|need more (?:variants|questions|paraphrases)"
    r"|(?:these|the above|all of these|each of these) (?:\d+ |three |five )?(?:questions|paraphrases|variants|"
    r"versions|titles|options|rephrasings)|^\W*(?:thank you|thanks|good luck|cheers)\b"
    r"|^\W*note:?\s.*\b(?:these|paraphras|variant|versions?|shorter|original)")   # searched in lower case
_REFUSAL_START = re.compile(
    r"^\W*(?:i['\u2019]?m sorry|i am sorry|sorry,|i apologi[sz]e|my apologies|i must decline|i (?:do not|don['\u2019]t) "
    r"feel comfortable|i can(?:no|['\u2019])?t (?:help|assist|provide|comply|fulfil|do that|generate|create|write|"
    r"paraphrase|answer|complete|support|give|offer)|i can not (?:help|assist|provide)|i(?:['\u2019]m| am) (?:unable|"
    r"not able) to|i (?:won['\u2019]t|will not) (?:help|assist|provide|generate|write)|unfortunately,? i (?:can|am|"
    r"cannot|won)|as an ai\b|as a (?:large )?language model\b)", re.I)
# anywhere in the text: only the assistant speaking of itself ("as an AI" alone also names AI tools in questions)
_REFUSAL_ANYWHERE = re.compile(r"\bas an ai (?:language model|assistant|model)\b|\bas a (?:large )?language model\b"
                               r"|\bi['\u2019]m (?:just )?an ai\b|\bi am (?:just )?an ai\b", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?\uff1f\u061f\u3002])\s+(?=\S)")
_WRAPS = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb", "\u300c": "\u300d",
          "'": "'", "\u2018": "\u2019", "`": "`", "*": "*", "_": "_"}


def is_refusal(text: str) -> bool:
    """A model declining the task ("I'm sorry, I can't...", "As an AI...")."""
    return bool(_REFUSAL_START.search(text) or _REFUSAL_ANYWHERE.search(text))


def is_closing(text: str) -> bool:
    """A remark about the list itself ("I hope these help!", "Let me know if you need more")."""
    return bool(_CLOSING.search(text.replace("**", "").lower()))


def is_preamble(text: str) -> bool:
    """An introduction to the list ("Sure! Here are three questions", anything ending in ':')."""
    s = text.replace("**", "").strip()
    return s.endswith(":") or bool(_PREAMBLE.search(s))


# ---- step 1-2: reasoning and fences ------------------------------------------------------------------------------
def split_reasoning(text: str) -> tuple[str, str]:
    """(answer, reasoning): reasoning blocks set aside; an unclosed block runs to the end of the text."""
    taken: list[str] = []

    def take(m: re.Match) -> str:
        taken.append(m.group(0))
        return ""
    s = _THINK_BLOCK.sub(take, text)
    closes = list(_THINK_CLOSE.finditer(s))
    if closes:    # the opening tag was in the chat template: everything up to the last close is reasoning
        taken.append(s[:closes[-1].end()])
        s = s[closes[-1].end():]
    opened = _THINK_OPEN.search(s)
    if opened:    # never closed (cut off, or a model that forgot): from there on it is reasoning
        taken.append(s[opened.start():])
        s = s[:opened.start()]
    return s.strip(), "".join(taken)


def _lines(text: str) -> list[str]:
    return [line.expandtabs(4).rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            if not _FENCE.match(line)]


# ---- step 3-4: the list -------------------------------------------------------------------------------------------
@dataclass
class _Item:
    lines: list[str]                                   # the first paragraph's lines
    paragraphs: list[str] = field(default_factory=list)
    subs: list[str] = field(default_factory=list)

    def text(self) -> str:
        parts = [" ".join(x.strip() for x in self.lines if x.strip())]
        parts += [p for p in self.paragraphs if p]
        body = "\n\n".join(p for p in parts if p)
        if self.subs:
            body += "".join(f"\n- {s}" for s in self.subs)
        return body.strip()


def _ends_sentence(item: _Item) -> bool:
    """Whether the item's text so far ends a sentence (a wrapped line continues one; a remark starts one)."""
    last = (item.paragraphs[-1] if item.paragraphs else item.lines[-1]).rstrip().rstrip("*_\"'\u201d)")
    return last[-1:] in ".!?\uff1f\u3002:;"


def _bullet(line: str):
    m = _BULLET.match(line)
    if not m:
        return None
    family = "sym" if m.group("sym") else "num"
    return len(m.group("indent")), family, m.group("text").strip()


def _read_list(lines: list[str], kind: str | None) -> tuple[list[_Item], list[str]]:
    """(items, lines that were not part of any item) from marker lines; no items when there are no markers."""
    marks = [_bullet(x) for x in lines]
    indents = [m[0] for m in marks if m]
    if not indents:
        return [], lines
    top = min(indents)
    top_family = next(m[1] for m in marks if m and m[0] == top)
    items: list[_Item] = []
    outside: list[str] = []
    loose: list[str] = []            # paragraphs after a blank line, not yet known to belong to an item
    blank = False
    multi_paragraph = False
    for line, mark in zip(lines, marks):
        if not line.strip():
            blank = True
            continue
        cur = items[-1] if items else None
        if mark and cur is not None and (mark[0] >= top + 2 or (mark[1] != top_family and top_family == "num")):
            cur.subs.append(mark[2])                     # a sub-bullet belongs to its parent item
        elif mark and mark[0] <= top + 1:
            if loose and cur is not None:               # a paragraph between two items is the first one's
                cur.paragraphs += loose
                multi_paragraph = True
            loose = []
            items.append(_Item([mark[2]]))
        elif cur is None:
            outside.append(line)                         # the preamble
        elif blank and len(line) - len(line.lstrip()) >= top + 2:
            cur.paragraphs.append(line.strip())          # an indented paragraph of the item above
            multi_paragraph = True
        elif blank:
            loose.append(line.strip())
        elif loose:
            loose[-1] += " " + line.strip()
        elif is_closing(line) and _ends_sentence(cur):
            loose.append(line.strip())                   # a remark right under the last item
        elif cur.paragraphs:
            cur.paragraphs[-1] += " " + line.strip()
        else:
            cur.lines.append(line)                       # a wrapped line
        blank = False
    trailing = [p for p in loose if not is_closing(p)]
    if items and trailing and multi_paragraph and kind != "title":
        items[-1].paragraphs += trailing                 # the answer's variants are multi-paragraph ones
    else:
        outside += loose
    return items, outside


def _without_marker(lines: list[str], n: int | None) -> list[str]:
    """Items from text with no list marker: exactly n paragraphs or n lines, once meta lines are removed."""
    if not n:
        return []
    text = "\n".join(lines)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    plain = [x.strip() for x in lines if x.strip()]
    for candidates in (paragraphs, plain):
        kept = [c for c in candidates if not (is_preamble(c) or is_closing(c) or is_refusal(c))]
        if len(kept) == n:
            return kept
    return []


# ---- step 6: one item ------------------------------------------------------------------------------------------
def _unwrap(s: str) -> str:
    """Quotes (or italics, backticks) removed only when they wrap the whole item."""
    while len(s) >= 2 and s[0] in _WRAPS and s.endswith(_WRAPS[s[0]]):
        opener, closer, inner = s[0], _WRAPS[s[0]], s[1:-1]
        inner_marks = [i for i, ch in enumerate(inner) if ch in (opener, closer)]
        if opener in "'\u2019":   # apostrophes inside words (can't, tenant's) are not quotes
            inner_marks = [i for i in inner_marks
                           if not (0 < i < len(inner) - 1 and inner[i - 1].isalpha() and inner[i + 1].isalpha())]
        if inner_marks or not inner.strip():
            break
        s = inner.strip()
    return s


def _strip_closing(text: str) -> str:
    """Closing remarks glued to an item (no line break before them) removed, sentence by sentence from the end."""
    sentences = _SENTENCE_END.split(text)
    while len(sentences) > 1 and is_closing(sentences[-1]):
        sentences.pop()
    return " ".join(sentences) if len(sentences) > 1 or "\n" not in text else text


def clean_item(text: str) -> str:
    """One item's text without markup: bold, a leading label, wrapping quotes; spaces collapsed within lines."""
    out = []
    for para in text.split("\n"):
        s = re.sub(r"\*\*|__", "", para).strip()
        s = re.sub(r"[ \t\u00a0]+", " ", s)
        out.append(s)
    s = "\n".join(out).strip()
    s = _LEADING_LABEL.sub("", s).strip()
    if not s.endswith(("*", "_")):  # an emphasis marker opened and never closed ("*The term ..."): markup, not text
        s = re.sub(r"^[*_]+(?=\S)", "", s)
    if "\n" not in s:
        s = _strip_closing(s)
    else:
        head, _, last = s.rpartition("\n")
        last = _strip_closing(last)
        s = (head + "\n" + last).strip() if not is_closing(last) else head.strip()
    return _unwrap(s)


# ---- gates --------------------------------------------------------------------------------------------------------
# talk about the task instead of the task done: phrases a paraphrase or a question of the site never needs ("variation"
# alone is a contract-law term, "this answer" and "the task of" appear in real answers: only the list's own words)
# searched in lower case: an ignore-case search of these many alternatives costs three times as much
_ABOUT_THE_TASK = re.compile(
    r"\b(?:paraphras\w*|rephras\w*|reword\w*)"
    r"|\bthe original (?:text|question|answer|sentence|paragraph|wording|version|post|one)\b"
    r"|\b(?:the|this) (?:text|passage|question|answer) above\b|\bthe (?:above|given|following) (?:text|passage)\b"
    r"|\bthe (?:rewritten|revised|paraphrased|requested) (?:answer|question|text|version|lines?)\b"
    r"|\bwhat you asked\b|\bthe prompt\b|\bi am not a human\b|\b(?:my|this|the|a) legal question\b"
    r"|\b(?:my|our) (?:responses|services|team|website|blog)\b|\b(?:this|the) answer (?:includes|contains)\b"
    r"|\b(?:this|the|that) (?:question|answer) is an? (?:legal|important|good|complex|difficult|interesting) one\b"
    r"|\b(?:this|it) is an? (?:legal|important) question (?:that|which|about|requiring)\b"
    r"|\bthis (?:response|rewrite|variant|version|item|line)\b|\b(?:this|the above) post\b|\bthe post above\b"
    r"|\b(?:these|the following|two|three|four|five|\d|each|other|different) (?:variants|variations|versions|"
    r"rewrites|lines|items|bullet points|bullets)\b|\b(?:one|each) (?:item|rewrite|question|variant) per line\b"
    r"|\b(?:at least|at most|fewer than|more than|less than|no more than) (?:\d+|\w+) (?:words|sentences|lines)\b"
    r"|\b(?:question|answer|text|title)\s*\d*\s*:\s"
    # the assistant speaking to whoever asked (a closing remark it could not be cut from, is_closing, also counts)
    r"|\b(?:your|the|this) request (?:has been|is|was) (?:accepted|received|completed|done)\b"
    r"|\bthank you for (?:asking|your (?:question|request|patience))\b|\b(?:ready|here|happy|glad) to help\b"
    r"|\bi(?:'ll|\u2019ll| will| can) (?:help you|assist you|give you|provide you)\b")
_ESCAPE = re.compile(r"\\[nrt*_\"'`#\\]|\\u[0-9a-fA-F]{4}")    # a JSON or Markdown escape written out literally
_LONGEST_WORD = 40          # a "word" longer than this (no URL) is words run together: "andtheresnomore..."
_STOPWORDS = frozenset("""the a an and or but nor of to in on for with at by from as is are was were be been being it its
this that these those i you he she we they my your our their me him her us them do does did doing have has had not no
yes can could would should will shall may might must if then than so such there here what which who whom whose when
where why how all any each some more most other into about over under after before between out up down off also just
only very too own same both few many much get got one two said says say like""".split())
# share of an item's content words (stems: first STEM_CHARS letters) that its source text also uses, below which the
# item is about something else: a paraphrase reuses most of its source's names and terms (SmolLM2-135M's faithful
# lines: 47-89%); its lines about something else, or generic filler, shared 0-29% (bench/RESULTS.md, issue 19)
MIN_TOPIC_SHARE = 0.3
MIN_TOPIC_WORDS = 2         # ...and at least this many shared content words
STEM_CHARS = 5


# the gates compare each of a call's items with the same source texts: what they read of a source is kept (cached)
_SOURCE_CACHE = 1024


@functools.lru_cache(maxsize=_SOURCE_CACHE)
def content_stems(text: str) -> frozenset[str]:
    """The content words of a text (no stopwords, 3+ letters), cut to STEM_CHARS letters (tenant, tenancy)."""
    return frozenset(w[:STEM_CHARS] for w in re.findall(r"[^\W\d_]{3,}", text.lower()) if w not in _STOPWORDS)


def topic_share(item: str, topic: str) -> tuple[float, int]:
    """(share of the item's content stems the topic text uses, how many it shares)."""
    mine = content_stems(item)
    shared = len(mine & content_stems(topic))
    return (shared / len(mine) if mine else 0.0), shared


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"(?<=[\w,;] )[A-Z][\w'\u2019-]*")    # a capitalised word inside a sentence


def new_facts(item: str, source: str) -> list[str]:
    """Numbers and names (capitalised words inside a sentence) the item states and its source does not: a
    paraphrase or a title keeps the source's facts, a small model invents others ("Marta Patel from Dayton",
    "$1,910", "The Law of Tort")."""
    numbers, words = _stated_facts(source)
    new = [n for n in _NUMBER.findall(item) if n.replace(",", "") not in numbers]
    new += [w for w in _NAME.findall(item) if w != "I" and not w.startswith(("I'", "I\u2019"))
            and w.lower().rstrip("'\u2019s") not in words and w.lower() not in words]
    return new


@functools.lru_cache(maxsize=_SOURCE_CACHE)
def _stated_facts(source: str) -> tuple[frozenset[str], frozenset[str]]:
    """(the numbers, the lower-cased words) a source states."""
    return (frozenset(n.replace(",", "") for n in _NUMBER.findall(source)),
            frozenset(w.lower() for w in re.findall(r"\w+", source)))


def is_about_the_task(text: str) -> bool:
    """Meta talk: the item speaks of the paraphrasing, the lines, the original text, its own length, or to the one
    who asked for it."""
    return bool(_ABOUT_THE_TASK.search(text.lower())) or is_closing(text)


def is_repetitive(text: str) -> bool:
    """A loop: one four-word phrase three times, or one word three times in a row."""
    words = re.findall(r"\w+", text.lower())
    if len(words) >= 4 and max(collections.Counter(zip(words, words[1:], words[2:], words[3:])).values()) >= 3:
        return True
    return any(a == b == c for a, b, c in zip(words, words[1:], words[2:]))


def is_garbled(text: str) -> bool:
    """Words run together past _LONGEST_WORD characters (a URL or a path is not that)."""
    return any(len(w) > _LONGEST_WORD and not re.match(r"(?:https?://|www\.|/)", w) for w in text.split())


def words_problem(item: str, words: tuple[int, int] | None) -> str | None:
    """`too_few_words` / `too_many_words` outside the (least, most) whitespace-word range (the filters' count)."""
    if words is None:
        return None
    n = len(item.split())
    return "too_few_words" if n < words[0] else "too_many_words" if n > words[1] else None


@functools.lru_cache(maxsize=_SOURCE_CACHE)
def _tokens(text: str) -> tuple[str, ...]:
    words = re.findall(r"\w+", text.lower())
    if len(text) >= 20 and len(words) * 20 < len(text):     # a script written without spaces: compare characters
        return tuple(re.sub(r"\W+", "", text.lower()))
    return tuple(words)


@functools.lru_cache(maxsize=_SOURCE_CACHE)
def _excerpt_matcher(source: str) -> SequenceMatcher:
    """A matcher holding the source's tokens as its second sequence (indexed once; set_seq1 per item)."""
    return SequenceMatcher(None, (), _tokens(source), autojunk=False)


def similarity(a: str, b: str) -> float:
    """Word-sequence similarity in [0, 1] (difflib's ratio), cheap when the lengths alone rule out an echo."""
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    bound = 2 * min(len(ta), len(tb)) / (len(ta) + len(tb))
    if bound < ECHO_MIN_SIMILARITY:
        return bound       # an upper bound of the ratio, already below the echo line
    return SequenceMatcher(None, ta, tb, autojunk=False).ratio()


def is_echo(item: str, source: str) -> bool:
    """A near-verbatim copy of the source (similarity), or a verbatim excerpt of it: one run of the source's words
    that makes up EXCERPT_MIN_SHARE of the item (a paraphrase cut down to the source's first sentences)."""
    if similarity(item, source) >= ECHO_MIN_SIMILARITY:
        return True
    ti, ts = _tokens(item), _tokens(source)
    if len(ti) < EXCERPT_MIN_WORDS:
        return False
    matcher = _excerpt_matcher(source)
    matcher.set_seq1(ti)
    run = matcher.find_longest_match(0, len(ti), 0, len(ts)).size
    return run >= EXCERPT_MIN_SHARE * len(ti)


# a sentence ends inside a title ("... yet. How does it work?", "Thank you! Is ..."), not after an initial ("U.S. law")
_SENTENCE_INSIDE = re.compile(r"(?<![A-Z])(?<!\b[a-z])[.!]\s+[A-Z]")


def title_problem(title: str) -> str | None:
    """Why a title is not one question, or None."""
    if "\n" in title or title[-1:] not in QUESTION_MARKS:
        return "not_a_question"
    if re.search(rf"[{QUESTION_MARKS}]\s+\S", title) or _SENTENCE_INSIDE.search(title):
        return "not_a_question"          # two questions, or a remark and a question, in one title
    if not TITLE_MIN_CHARS <= len(title) <= TITLE_MAX_CHARS:
        return "title_length"
    return None


def item_problem(item: str, kind: str | None, sources: list[str], words: tuple[int, int] | None = None,
                 topic: str | None = None) -> str | None:
    """The item gate's reason for rejecting one item, or None. `words`: the (least, most) words of a question or
    answer item; `topic`: the text the item must stay on (None: not checked)."""
    if not re.search(r"\w", item):
        return "too_short"          # a stray marker ("*", "- -"): no letter or digit, nothing to train on
    if is_refusal(item):
        return "refusal"
    if _ESCAPE.search(item):
        return "escaped_markup"
    if is_about_the_task(item):
        return "about_the_task"
    problem = title_problem(item) if kind == "title" else words_problem(item, words)
    if problem:
        return problem
    if is_repetitive(item) or is_garbled(item):
        return "repetitive"
    if any(s and is_echo(item, s) for s in sources):
        return "echo"
    if topic is not None:
        share, shared = topic_share(item, topic)
        if share < MIN_TOPIC_SHARE or shared < MIN_TOPIC_WORDS:
            return "off_topic"
        if new_facts(item, topic):
            return "new_facts"
    return None


# ---- the parser -----------------------------------------------------------------------------------------------------
def _candidates(body: str, n: int | None, kind: str | None) -> tuple[list[str], bool]:
    """(cleaned item texts, whether a refusal was among the text that is not an item)."""
    lines = [line for line in _lines(body) if not _RULE.match(line)]  # a markdown rule separates, it is no item
    items, outside = _read_list(lines, kind)
    texts = [clean_item(_unmark(i.text())) for i in items]     # "* 2. Paraphrase..": the marker inside the line
    if not items:
        texts = [clean_item(t) for t in _without_marker(lines, n)]
    texts = [t for t in texts if t]
    # an item line that is itself a preamble or a closing remark ("* Here are the questions:", "* Hope this helps!")
    if n is not None and len(texts) > n:
        while texts and len(texts) > n and (is_preamble(texts[0]) or is_closing(texts[0])):
            texts.pop(0)
        while texts and len(texts) > n and is_closing(texts[-1]):
            texts.pop()
    texts = [t for t in texts if not (t.endswith(":") and is_preamble(t))]
    refused = any(is_refusal(x) for x in outside) or (not items and is_refusal(body))
    return texts, refused


def parse_items(text: str | None, n: int | None = None, kind: str | None = None,
                finish_reason: str | None = None, sources: list[str] | tuple = (),
                words: tuple[int, int] | None = None, topic: str | None = None) -> ParseResult:
    """Parse a generation answer into items and gate them (see the module docstring).

    `n`: the number of items asked for (None: any number); `kind`: "title", "question" or "answer" (None: no
    kind-specific gate); `finish_reason`: the choice's finish_reason ("length" = cut off); `sources`: texts an item
    must not echo; `words`, `topic`: see item_problem. `ok` is False with a response-level `reason`; otherwise `items` has n slots, None where an item
    gate rejected that item (`rejected` lists them with their reason)."""
    raw = text or ""
    body, reasoning = split_reasoning(raw)
    truncated = finish_reason == "length"

    def fail(reason: str, detail: str | None = None, items: list | None = None) -> ParseResult:
        return ParseResult(items or [], False, reason, raw, detail, reasoning=reasoning)
    if not body.strip():
        if truncated:
            return fail("truncated", "cut off before any item")
        return fail("reasoning_only" if reasoning else "empty")
    texts, refused = _candidates(body, n, kind)
    if truncated and texts:
        texts = texts[:-1]      # the last item may be cut off mid-word: never used
    if not texts or (n is not None and len(texts) != n):
        if truncated:
            return fail("truncated", f"cut off after {len(texts)} complete item(s)", texts)
        if refused or (texts and all(is_refusal(t) for t in texts)) or (not texts and is_refusal(body)):
            return fail("refusal", None, texts)
        if not texts:
            return fail("no_items")
        return fail("wrong_count", f"expected {n} items, got {len(texts)}", texts)
    return gate_items(texts, kind, sources, raw, reasoning, words, topic)


def gate_items(texts: list[str], kind: str | None, sources: list[str] | tuple, raw: str,
               reasoning: str = "", words: tuple[int, int] | None = None, topic: str | None = None) -> ParseResult:
    """The item gates over a list of the right count, however it was read (free text or a schema answer): all
    refusals reject the answer; otherwise one slot per item, None where a gate rejected it."""
    if all(is_refusal(t) for t in texts):
        return ParseResult(texts, False, "refusal", raw, None, reasoning=reasoning)
    items: list = []
    rejected: list = []
    seen: set[str] = set()
    for slot, t in enumerate(texts):
        key = " ".join(_tokens(t))
        problem = "repeated" if key in seen else item_problem(t, kind, list(sources), words, topic)
        seen.add(key)
        items.append(None if problem else t)
        if problem:
            rejected.append((slot, problem, t))
    return ParseResult(items, True, None, raw, None, rejected, reasoning)


def parse_schema_items(text: str | None, n: int, kind: str | None = None, finish_reason: str | None = None,
                       sources: list[str] | tuple = (), words: tuple[int, int] | None = None,
                       topic: str | None = None) -> ParseResult:
    """Parse a json-schema answer ({"items": [n strings]}, see structured.schema_items) as strictly as free text:
    cut off (finish_reason "length"), not the object asked for, or the wrong count is a response-level failure;
    each string is cleaned like a list item (markup, a list marker or label inside the string, a glued closing
    remark) and passes the same item gates."""
    raw = text or ""
    body, reasoning = split_reasoning(raw)

    def fail(reason: str, detail: str | None = None, items: list | None = None) -> ParseResult:
        return ParseResult(items or [], False, reason, raw, detail, reasoning=reasoning)
    if not body.strip():
        return fail("truncated", "cut off before any item") if finish_reason == "length" else \
            fail("reasoning_only" if reasoning else "empty")
    strings, why = schema_items(body)
    if finish_reason == "length":
        return fail("truncated", "the JSON answer was cut off" if strings is None else "cut off at max_tokens")
    if strings is None:
        return fail(why)
    texts = [clean_item(_unmark(s)) for s in strings]
    texts = [t for t in texts if t]
    if not texts and any(is_refusal(s) for s in strings):
        return fail("refusal")
    if not texts:
        return fail("no_items")
    if len(texts) != n:
        return fail("wrong_count", f"expected {n} items, got {len(texts)}", texts)
    return gate_items(texts, kind, sources, raw, reasoning, words, topic)


_LETTER_MARK = re.compile(r"^(?:[A-H][.)]|\([a-hA-H]\)|[a-h]\))[ \t]+(?=\S)")


def _unmark(item: str) -> str:
    """A list marker or label inside an item ("* What...", "1. What...", "A. What..." in a JSON string or after a
    "* " line's own marker) removed."""
    s = item.strip()
    mark = _bullet(s)
    s = mark[2] if mark and mark[2] else s
    return _LETTER_MARK.sub("", s, count=1)
