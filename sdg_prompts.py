"""What each SDG call asks (pure functions, no I/O): the three list prompts, the reward and judge messages, each list
item's word range and each generation call's token budget.

A list prompt is a system message (what the model writes about, and that it never talks about itself or the task)
and one user message: the instruction first, then the source text under a label, last, right before the answer
(a small model stays closer to the text it read last). The instruction names the word range every question and
answer item must have: the filters' range (`--min-words`/`--max-words`, filters.FilterConfig), whose stage every
synthetic row passes after the reward, so an item outside it would only be dropped there; the most is also capped at
the source's own length (a paraphrase, not an expansion). The same range goes into the grammar or JSON schema of a
constrained call (structured.constraint_params) and into the item gates (sdg_parse: too_few_words, too_many_words).
"""
from __future__ import annotations

from sites import LAW_SUBJECT
from structured import JUDGE_ATTRIBUTES

PROMPT_KINDS = ("title", "question", "answer")  # one generation call each per source row
LABELS = {"title": "ANSWER", "question": "QUESTION", "answer": "ANSWER"}   # the source text's label in the prompt
# tokens per word a generation call may spend, and per item for the line's marker and end: English runs ~1.3
# tokens a word; the slack covers long legal terms and other scripts, never so tight that a full item is cut off
TOKENS_PER_WORD = 2
TOKENS_PER_ITEM = 16
TITLE_TOKENS = 64            # one title line (structured.TITLE_LINE_CHARS characters at most under the grammar)
MIN_LIST_TOKENS = 512        # a free-text answer may open with a preamble: never less than this


def system_message(domain: str) -> dict:
    return {"role": "system", "content": (
        f"You write clear, factual text for {domain}. You answer with the requested lines only, and you never "
        "talk about yourself, the instructions, the task or the text you were given.")}


def bullets(n: int) -> str:
    """The form sentence of a list prompt (the JSON-schema mode swaps it for structured.json_instruction)."""
    return (f'Write exactly {n} lines, one item per line, each starting with "* ", and nothing else: '
            f"no introduction, no numbering, no closing remarks. Exactly {n} items.")


def _length(words: tuple[int, int] | None) -> str:
    if words is None:
        return ""
    return f"Each item is one paragraph of {words[0]} to {words[1]} words. "


def _messages(kind: str, text: str, instruction: str, domain: str) -> list[dict]:
    return [system_message(domain), {"role": "user", "content": f"{instruction}\n\n{LABELS[kind]}:\n{text.strip()}"}]


def title_prompt(answer: str, n: int, domain: str = LAW_SUBJECT, words: tuple[int, int] | None = None) -> list[dict]:
    """Questions the answer text answers; they become titles. `domain`: what the site's questions are
    (sites.site_subject, or --domain). `words` is unused (a title is no question or answer body)."""
    return _messages("title", answer, (
        f"Write exactly {n} questions, in the style of {domain}, that the answer below answers. Each question must "
        f"use the answer's own key words, must be answerable from it, must be one complete sentence ending in "
        f'"?", and must be concise. ' + bullets(n)), domain)


def question_prompt(question: str, n: int, domain: str = LAW_SUBJECT,
                    words: tuple[int, int] | None = None) -> list[dict]:
    """Paraphrases of the question text, each within `words` (least, most) words."""
    return _messages("question", question, (
        f"Rewrite the question below in other words, exactly {n} times, in the style of {domain}: the same person "
        f"asking the same thing, with the same facts, names and numbers. " + _length(words) + bullets(n)), domain)


def answer_prompt(answer: str, n: int, domain: str = LAW_SUBJECT, words: tuple[int, int] | None = None) -> list[dict]:
    """Paraphrases of the answer text, each within `words` (least, most) words."""
    return _messages("answer", answer, (
        f"Rewrite the answer below in other words, exactly {n} times, in the style of answers to {domain}: the same "
        f"advice, with the same facts, names and numbers. " + _length(words) + bullets(n)), domain)


PROMPTS = {"title": (title_prompt, "answer"), "question": (question_prompt, "question"),
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
