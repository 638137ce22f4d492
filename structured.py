"""Constrained generation (`--structured-output`): the request parameters of each mode and the checks that an answer
really follows them (pure functions, no I/O).

Modes:
- `json-schema`: `response_format: {"type": "json_schema", ...}` (OpenAI, vLLM, SGLang, llama.cpp's own server,
  Ollama): a generation call gets an object `{"items": [n non-empty strings]}`, the judge its five integer scores;
- `grammar`: llama.cpp's `grammar` request field (GBNF; llama-cpp-python's server honours it): a generation call
  gets exactly n lines starting with "* " (a title line ends in "?"), the judge its JSON object of five 0-4 digits;
- `off`: no constraint, today's text format and strict parser.
`auto` is no mode of its own: the preflight tries json-schema, then grammar, and keeps the first whose answers
conform (see synthetic_gen.choose_structured_output).

Every constraint is a request parameter of the call (`constraint_params`), never transport magic: the response
cache key covers it (a cached free-text answer is never served to a constrained call) and a batch request built as
`{"model", "messages", **params}` carries it unchanged.
"""
from __future__ import annotations

import json
import re

MODES = ("json-schema", "grammar", "off")
CHOICES = ("auto", *MODES)
AUTO_ORDER = ("json-schema", "grammar")      # what `auto` tries, in order; `off` when neither conforms
LIST_KINDS = ("title", "question", "answer")
JUDGE_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
ITEMS_KEY = "items"
# the JSON-schema prompt asks for this instead of "* " lines (the builders' bullet sentence is swapped for it)
JSON_INSTRUCTION = ('Return only a JSON object {{"{key}": [...]}} whose "{key}" array holds exactly {n} strings, '
                    "one item each, and nothing else. Exactly {n} items.")


# ---- schemas and grammars ---------------------------------------------------------------------------------------
def items_schema(n: int, words: tuple[int, int] | None = None) -> dict:
    """An object with an array of exactly n non-empty strings; with `words` (least, most), each string is that many
    space-separated words (a `pattern`)."""
    item: dict = {"type": "string", "minLength": 1}
    if words is not None:
        least, most = _word_bounds(words)
        item["pattern"] = f"^\\S+(?: \\S+){{{least - 1},{most - 1}}}$"
    return {"type": "object", "additionalProperties": False, "required": [ITEMS_KEY],
            "properties": {ITEMS_KEY: {"type": "array", "minItems": n, "maxItems": n, "items": item}}}


def _word_bounds(words: tuple[int, int]) -> tuple[int, int]:
    least = max(1, int(words[0]))
    return least, max(least, int(words[1]))


def judge_schema() -> dict:
    """The judge's five integer scores, 0-4."""
    return {"type": "object", "additionalProperties": False, "required": list(JUDGE_ATTRIBUTES),
            "properties": {a: {"type": "integer", "minimum": 0, "maximum": 4} for a in JUDGE_ATTRIBUTES}}


# a title line opens with a question word, or with an auxiliary and its subject ("Can I", "Is it", "Does the"): a
# small model that must start a question writes one, and ends it in "?" soon; an auxiliary alone ("Is ...") it ran on
# into a statement ("Is not going to the law, but ..."), and "If", "In", "Under" into a paragraph
QUESTION_WORDS = ("What", "How", "Why", "When", "Where", "Which", "Who")
AUXILIARIES = ("Can", "Could", "Should", "Must", "May", "Will", "Would", "Do", "Does", "Did", "Has", "Have")
BE_OPENERS = ("Is it", "Is there", "Was it", "Are there", "Am I")    # "Is the husband of ...": a statement again
SUBJECTS = ("I", "a", "an", "the", "my", "it", "we", "you", "they", "he", "she", "this", "that", "there", "someone",
            "anyone", "your", "our", "their", "his", "her", "police", "employers", "landlords", "courts")
# the most characters a title line may run to before its "?": past the parser's TITLE_MAX_CHARS (150), so a line
# the bound closed is rejected (title_length), never kept cut short; it spares the tokens of a rambling line
TITLE_LINE_CHARS = 160


# the longest word a grammar line may hold: a longer run of characters without a space is words run together
WORD_MAX_CHARS = 40
# what a line ends in: a question paraphrase may end in its question or in a sentence, an answer in a sentence
LINE_ENDS = {"question": "[.?]", "answer": "[.!]"}


def items_grammar(n: int, kind: str, words: tuple[int, int] | None = None) -> str:
    """GBNF: exactly n lines "* <text>", nothing before or after, no "*" or backslash inside a line (markup and
    written-out escapes are no text). A title line is one question: a question word (or an auxiliary and its
    subject), then no "?" until the one that ends it, within TITLE_LINE_CHARS. A question or answer line starts with a capitalised word of letters (no
    list marker: "1.", "A.", "-"), ends a sentence, and holds `words` (least, most) words of at most WORD_MAX_CHARS
    characters each; without `words` its length is left to max_tokens and the parser's gates."""
    if kind == "title":
        body = [f'item ::= "* " qword " " [^\\n?*\\\\]{{4,{TITLE_LINE_CHARS}}} "?\\n"',
                f'qword ::= {_one_of(QUESTION_WORDS + BE_OPENERS)} | ({_one_of(AUXILIARIES)}) " " '
                f'({_one_of(SUBJECTS)})']
    elif words is None:
        body = ['item ::= "* " [^ \\n*\\\\] [^\\n*\\\\]* "\\n"']
    else:
        least, most = _word_bounds(words)
        middle = f'(" " word){{{max(0, least - 2)},{max(0, most - 2)}}}'
        body = [f'item ::= "* " first {middle} " " last "\\n"' if most >= 2 else 'item ::= "* " first "\\n"',
                f"first ::= [A-Z] [a-zA-Z'\u2019-]{{0,{WORD_MAX_CHARS - 2}}} \",\"?",
                f"word ::= [^ \\n*\\\\]{{1,{WORD_MAX_CHARS}}}",
                f"last ::= [^ \\n*\\\\]{{1,{WORD_MAX_CHARS - 1}}} {LINE_ENDS.get(kind, '[.?!]')}"]
    return "\n".join([f"root ::= {' '.join(['item'] * n)}", *body])


def _one_of(literals: tuple[str, ...]) -> str:
    """A GBNF alternation of string literals."""
    return " | ".join(f'"{literal}"' for literal in literals)


def judge_grammar() -> str:
    """GBNF: {"helpfulness": D, "correctness": D, ...} with D one digit 0-4, in the prompt's order."""
    fields = ' ", " '.join(f'"\\"{a}\\": " score' for a in JUDGE_ATTRIBUTES)
    return "\n".join([f'root ::= "{{" {fields} "}}"', "score ::= [0-4]"])


def constraint_params(mode: str, kind: str, n: int | None = None, words: tuple[int, int] | None = None) -> dict:
    """The request parameters that constrain one call: kind is "title", "question", "answer" (n items of `words`
    (least, most) words each when given) or "judge"; {} for mode "off"."""
    if mode == "off":
        return {}
    if kind not in (*LIST_KINDS, "judge"):
        raise ValueError(f"unknown call kind {kind!r}")
    if kind != "judge" and (not isinstance(n, int) or n < 1):
        raise ValueError("a list call needs n >= 1")
    if mode == "json-schema":
        schema, name = (judge_schema(), "scores") if kind == "judge" else (items_schema(n, words),
                                                                                   f"{kind}_items")
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": name, "strict": True, "schema": schema}}}
    if mode == "grammar":
        return {"grammar": judge_grammar() if kind == "judge" else items_grammar(n, kind, words)}
    raise ValueError(f"unknown structured-output mode {mode!r}; choose from {', '.join(MODES)}")


def json_instruction(n: int) -> str:
    return JSON_INSTRUCTION.format(key=ITEMS_KEY, n=n)


# ---- reading a constrained answer ----------------------------------------------------------------------------------
def schema_items(text: str | None) -> tuple[list[str] | None, str | None]:
    """(the strings of a json-schema answer, None) or (None, why): strict — the whole answer must be one JSON object
    {"items": [strings]} (a code fence around it is allowed); anything else is a named failure: `invalid_json` (not
    JSON, e.g. cut off mid-string), `not_an_object`, `no_items` (no "items" array), `not_a_string` (an item that is
    not a string)."""
    body = (text or "").strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.S)
    if fence:
        body = fence.group(1)
    try:
        obj = json.loads(body)
    except ValueError:
        return None, "invalid_json"
    if not isinstance(obj, dict):
        return None, "not_an_object"
    items = obj.get(ITEMS_KEY)
    if not isinstance(items, list):
        return None, "no_items"
    if not all(isinstance(i, str) for i in items):
        return None, "not_a_string"
    return items, None


_GRAMMAR_LINE = re.compile(r"\* \S[^\n]*")


def conforms(mode: str, kind: str, n: int | None, text: str | None) -> tuple[bool, str]:
    """Whether an answer follows the constraint `constraint_params(mode, kind, n)` asked for: (ok, why not / "ok").
    The preflight asks for a count the prompt does not (see synthetic_gen.choose_structured_output), so a server
    that accepts a constraint and ignores it fails here even when its free text looks right."""
    raw = (text or "").strip()
    if mode == "json-schema" and kind != "judge":
        items, why = schema_items(raw)
        if items is None:
            return False, why
        if len(items) != n or not all(i.strip() for i in items):
            return False, f"{len(items)} item(s), asked for {n}"
        return True, "ok"
    if kind == "judge":
        try:
            obj = json.loads(raw)
        except ValueError:
            return False, "invalid_json"
        ok = (isinstance(obj, dict) and set(obj) == set(JUDGE_ATTRIBUTES)
              and all(type(v) is int and 0 <= v <= 4 for v in obj.values()))
        return (True, "ok") if ok else (False, "not five 0-4 integer scores")
    lines = raw.split("\n")
    if len(lines) != n or not all(_GRAMMAR_LINE.fullmatch(x) for x in lines):
        return False, f"not exactly {n} '* ' lines"
    if kind == "title" and not all(x.endswith("?") for x in lines):
        return False, "a title line does not end in '?'"
    return True, "ok"


class StructuredChoice:
    """The mode the loop uses and why (what the preflight's probes found), for the console, report and card."""

    def __init__(self, mode: str, why: str, requested: str = "auto", probes: list | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown structured-output mode {mode!r}")
        self.mode, self.why, self.requested, self.probes = mode, why, requested, list(probes or [])

    def as_dict(self) -> dict:
        return {"mode": self.mode, "requested": self.requested, "why": self.why, "probes": self.probes}

    def line(self) -> str:
        return f"structured output: {self.mode} ({self.why})"

    def __repr__(self) -> str:
        return f"StructuredChoice({self.mode!r}, {self.why!r})"
