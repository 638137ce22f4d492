"""What each SDG call asks (pure functions, no I/O): the three list prompts, the reward and judge messages, each list
item's word range and each generation call's token budget.

A list prompt is one user message: the source text under a label, then a short instruction (measured on
SmolLM2-135M, bench/RESULTS.md: a long instruction, a system message or the text after the instruction made it talk
about the task instead of doing it). Titles are written from the question (a title written from the answer alone
may ask something the paired question does not). The instruction names the word range every question and
answer item must have: the filters' range (`--min-words`/`--max-words`, filters.FilterConfig), whose stage every
synthetic row passes after the reward, so an item outside it would only be dropped there; the most is also capped at
the source's own length (a paraphrase, not an expansion). The same range goes into the grammar or JSON schema of a
constrained call (structured.constraint_params) and into the item gates (sdg_parse: too_few_words, too_many_words).
"""
from __future__ import annotations

from sites import LAW_SUBJECT
from structured import JUDGE_ATTRIBUTES

PROMPT_KINDS = ("title", "question", "answer")  # one generation call each per source row
LABELS = {"title": "QUESTION", "question": "QUESTION", "answer": "ANSWER"}   # the source text's label in the prompt
# tokens per word a generation call may spend, and per item for the line's marker and end: English runs ~1.3
# tokens a word; the slack covers long legal terms and other scripts, never so tight that a full item is cut off
TOKENS_PER_WORD = 2
TOKENS_PER_ITEM = 16
TITLE_TOKENS = 64            # one title line (structured.TITLE_LINE_CHARS characters at most under the grammar)
MIN_LIST_TOKENS = 512        # a free-text answer may open with a preamble: never less than this


def bullets(n: int) -> str:
    """The form sentence of a list prompt (the JSON-schema mode swaps it for structured.json_instruction)."""
    return f'Write exactly {n} lines, each starting with "* ", and nothing else.'


def _length(words: tuple[int, int] | None) -> str:
    return "" if words is None else f"Each version has at least {words[0]} words. "


def _messages(kind: str, text: str, instruction: str) -> list[dict]:
    return [{"role": "user", "content": f"{LABELS[kind]}:\n{text.strip()}\n\n{instruction}"}]


def title_prompt(question: str, n: int, domain: str = LAW_SUBJECT, words: tuple[int, int] | None = None
                 ) -> list[dict]:
    """Titles for the source's question: short questions asking what it asks (a title written from the answer alone
    may ask something the paired question does not). `domain`: what the site's questions are (sites.site_subject,
    or --domain). `words` is unused (a title has its own bounds)."""
    return _messages("title", question, (
        f'Write {n} different short titles for the post above, in the style of {domain}: each one question that '
        f'asks what the post asks, ending with "?". ' + bullets(n)))


def question_prompt(question: str, n: int, domain: str = LAW_SUBJECT,
                    words: tuple[int, int] | None = None) -> list[dict]:
    """Paraphrases of the question text, each within `words` (least, most) words."""
    return _messages("question", question, (
        f"Rewrite the question above in your own words, in the style of {domain}, {n} times, keeping its facts. "
        + _length(words)
        + bullets(n)))


def answer_prompt(answer: str, n: int, domain: str = LAW_SUBJECT, words: tuple[int, int] | None = None) -> list[dict]:
    """Paraphrases of the answer text, each within `words` (least, most) words."""
    return _messages("answer", answer, (
        f"Rewrite the answer above in your own words, in the style of answers to {domain}, {n} times, keeping its "
        f"facts. " + _length(words)
        + bullets(n)))


PROMPTS = {"title": (title_prompt, "question"), "question": (question_prompt, "question"),
           "answer": (answer_prompt, "answer")}


def item_words(kind: str, source: str, words: tuple[int, int] | None) -> tuple[int, int] | None:
    """The (least, most) words of one list call's items: None for titles (or no range); else the range, its most
    capped at the source's length but never below its least."""
    if kind == "title" or words is None:
        return None
    least, most = int(words[0]), int(words[1])
    return least, max(least, min(most, len(source.split())))


def list_max_tokens(kind: str, n: int, words: tuple[int, int] | None) -> int:
    """A list call's max_tokens, from its item count and word range: room for n full items, never a cut-off one."""
    per_item = TITLE_TOKENS if kind == "title" or words is None else words[1] * TOKENS_PER_WORD + TOKENS_PER_ITEM
    return max(MIN_LIST_TOKENS, n * per_item)


def reward_messages(title: str, question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": f"{title}\n\n{question}"}, {"role": "assistant", "content": answer}]


def judge_prompt(title: str, question: str, answer: str, domain: str = LAW_SUBJECT) -> list[dict]:
    keys = ", ".join(JUDGE_ATTRIBUTES)
    return [{"role": "user", "content": (
        f"You rate answers to {domain}.\n\n"
        f"QUESTION TITLE: {title}\n\nQUESTION:\n{question}\n\nANSWER:\n{answer}\n\n"
        f"Rate the answer on five attributes, each an integer from 0 (worst) to 4 (best): {keys}. "
        "(complexity: intellectual depth needed to write it; verbosity: amount of detail relative to what was "
        'asked.) Return only a JSON object, e.g. {"helpfulness": 3, "correctness": 3, "coherence": 4, '
        '"complexity": 2, "verbosity": 2}.')}]
