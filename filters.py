"""Filter stage: keep the records a fine-tuner wants, and name the reason for every drop.

Interface as NeMo Curator's DocumentFilter: `score_document(text) -> score`, `keep_document(score) -> bool`.
`score_series` scores a whole column at once (word counts and emptiness with one str method call per row, no
regex). A ScoreFilter binds a filter to a column and a drop-reason name; `filter_partition` applies a list of
them in order and records the first failing one per row.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from records import visible

DROP_REASON = "drop_reason"  # column added by filter_partition; "" for kept rows


class DocumentFilter:
    """Scores a text and decides from the score whether to keep it."""

    def score_document(self, text: str) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def keep_document(self, score: float) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def score_series(self, values: pd.Series) -> pd.Series:
        """Scores for a whole column."""
        return values.map(self.score_document)

    def keep_series(self, scores: pd.Series) -> pd.Series:
        """Boolean keep mask for a column of scores."""
        return scores.map(self.keep_document).astype(bool)

    def drop_reason(self, score: float) -> str:
        """The named reason for dropping a document with this score."""
        return "filtered"


def count_words(values: pd.Series) -> pd.Series:
    """Whitespace-separated word counts of a text column (the tutorial's `len(text.split())`; 0 for a missing text).

    str.split() in a list comprehension: its C loop beats pandas' `.str.count(r"\\S+")`, which builds a list of
    matches per row, and both split at the same (Unicode) whitespace.
    """
    return pd.Series([len(text.split()) if isinstance(text, str) else 0 for text in values], index=values.index,
                     dtype="int64")


class WordCountFilter(DocumentFilter):
    """Keeps texts with min_words <= words <= max_words (inclusive; the tutorial used 50-500)."""

    def __init__(self, min_words: int = 50, max_words: int = 500, field: str = "text") -> None:
        self.min_words, self.max_words, self.field = min_words, max_words, field

    def score_document(self, text: str) -> int:
        return len(text.split())

    def score_series(self, values: pd.Series) -> pd.Series:
        return count_words(values)

    def keep_document(self, score: int) -> bool:
        return self.min_words <= score <= self.max_words

    def keep_series(self, scores: pd.Series) -> pd.Series:
        return scores.between(self.min_words, self.max_words)

    def drop_reason(self, score: int) -> str:
        return f"{self.field}_too_short" if score < self.min_words else f"{self.field}_too_long"


class MinScoreFilter(DocumentFilter):
    """Keeps records whose vote score is at least `min_score`."""

    def __init__(self, min_score: int = 0, field: str = "score") -> None:
        self.min_score, self.field = min_score, field

    def score_document(self, score: int) -> int:
        return int(score)

    def score_series(self, values: pd.Series) -> pd.Series:
        return values.astype("int64")

    def keep_document(self, score: int) -> bool:
        return score >= self.min_score

    def keep_series(self, scores: pd.Series) -> pd.Series:
        return scores >= self.min_score

    def drop_reason(self, score: int) -> str:
        return f"{self.field}_below_min"


class NonEmptyFilter(DocumentFilter):
    """Drops records whose text is empty after cleaning (e.g. an answer that was only an image)."""

    def __init__(self, field: str = "text") -> None:
        self.field = field

    def score_document(self, text: str) -> int:
        return int(bool(text and text.strip()))

    def score_series(self, values: pd.Series) -> pd.Series:
        # "not text.isspace()" is "text.strip() is not empty" for a non-empty text, without copying it
        return pd.Series([int(isinstance(text, str) and text != "" and not text.isspace()) for text in values],
                         index=values.index, dtype="int64")

    def keep_document(self, score: int) -> bool:
        return score > 0

    def keep_series(self, scores: pd.Series) -> pd.Series:
        return scores > 0

    def drop_reason(self, score: int) -> str:
        return f"{self.field}_empty"


@dataclass(frozen=True)
class ScoreFilter:
    """A DocumentFilter applied to one column of the record: for question and answer, their visible text
    (records.visible: the same words whatever --text-format wrote, so the format changes no drop)."""

    document_filter: DocumentFilter
    column: str

    def apply(self, df: pd.DataFrame, scores: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
        """(keep mask, drop reasons) for a partition; `scores`, if given, are this filter's scores of its rows."""
        if scores is None:
            scores = self.document_filter.score_series(visible(df, self.column))
        keep = self.document_filter.keep_series(scores)
        reasons = pd.Series("", index=df.index, dtype="object")
        if (~keep).any():
            reasons[~keep] = scores[~keep].map(self.document_filter.drop_reason)
        return keep, reasons


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the default filter chain (flags in main.py)."""

    min_words: int = 50
    max_words: int = 500
    min_question_score: int = 0
    min_answer_score: int = 0

    def word_range(self) -> tuple[int, int]:
        """(least, most) words of a question or answer: also what SDG asks of its items (synthetic rows pass
        this stage too)."""
        return self.min_words, self.max_words


def default_filters(cfg: FilterConfig) -> list[ScoreFilter]:
    """The filter chain in the order drops are attributed: emptiness, word counts, then scores."""
    return [
        ScoreFilter(NonEmptyFilter("title"), "title"),
        ScoreFilter(NonEmptyFilter("question"), "question"),
        ScoreFilter(NonEmptyFilter("answer"), "answer"),
        ScoreFilter(WordCountFilter(cfg.min_words, cfg.max_words, "question"), "question"),
        ScoreFilter(WordCountFilter(cfg.min_words, cfg.max_words, "answer"), "answer"),
        ScoreFilter(MinScoreFilter(cfg.min_question_score, "question_score"), "question_score"),
        ScoreFilter(MinScoreFilter(cfg.min_answer_score, "answer_score"), "answer_score"),
    ]


class RowKeep:
    """filter_partition's keep decision for one row, from its values by column (question and answer: their visible
    text), for the clean to skip work on rows the filter will drop (modifiers.clean_partition's `keep_row`): each
    filter's score_document and keep_document, which agree with its column methods on the clean stage's texts. A
    value a filter cannot judge alone counts as kept (filter_partition decides). The word counts it makes are kept
    (`counts`, in call order) for filter_partition and the summarizers: the words are counted once."""

    def __init__(self, filters: list[ScoreFilter]) -> None:
        self.judges = [(f.column, f.document_filter) for f in filters]
        self.columns = {f.column for f in filters}  # the values a call reads
        self.counts: dict[str, list[int]] = {f.column: [] for f in filters if isinstance(f.document_filter,
                                                                                       WordCountFilter)}

    def __call__(self, values: dict) -> bool:
        words = {}
        for column, counts in self.counts.items():
            text = values[column]
            words[column] = len(text.split()) if isinstance(text, str) else 0  # count_words' count
            counts.append(words[column])
        try:
            for column, judge in self.judges:
                if isinstance(judge, WordCountFilter):
                    score = words[column]
                else:
                    score = judge.score_document(values[column])
                if not judge.keep_document(score):
                    return False
        except (TypeError, ValueError, AttributeError):
            pass
        return True

    def counted(self, index: pd.Index) -> dict[str, pd.Series] | None:
        """The word counts made for the rows of `index` (filters.word_counts' result), None unless every row was
        judged."""
        if any(len(counts) != len(index) for counts in self.counts.values()):
            return None
        return {column: pd.Series(counts, index=index, dtype="int64") for column, counts in self.counts.items()}


def word_counts(df: pd.DataFrame, filters: list[ScoreFilter]) -> dict[str, pd.Series]:
    """The word counts of every column a WordCountFilter of `filters` judges (its visible text), over all rows:
    counted once per partition for the filters and for whoever summarizes the partition (the card's
    histograms)."""
    return {f.column: count_words(visible(df, f.column)) for f in filters
            if isinstance(f.document_filter, WordCountFilter)}


def filter_partition(df: pd.DataFrame, filters: list[ScoreFilter],
                     counts: dict[str, pd.Series] | None = None) -> pd.DataFrame:
    """Adds a `drop_reason` column: the first failing filter's reason, "" for rows that pass all. `counts`
    (from `word_counts`) spares the word-count filters their counting."""
    df = df.copy()
    reasons = pd.Series("", index=df.index, dtype="object")
    for score_filter in filters:
        undecided = reasons == ""
        if not undecided.any():
            break
        known = None
        if counts and isinstance(score_filter.document_filter, WordCountFilter) and score_filter.column in counts:
            known = counts[score_filter.column][undecided]
        _, filter_reasons = score_filter.apply(df[undecided], known)
        reasons[undecided] = filter_reasons
    df[DROP_REASON] = reasons
    return df


def apply_filters(df: pd.DataFrame, filters: list[ScoreFilter]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Kept rows and drop counts by reason (for callers that hold a pandas frame, e.g. synthetic rows)."""
    marked = filter_partition(df, filters)
    dropped = marked[DROP_REASON][marked[DROP_REASON] != ""].value_counts()
    kept = marked[marked[DROP_REASON] == ""].drop(columns=[DROP_REASON])
    return kept, {str(k): int(v) for k, v in sorted(dropped.items())}


def clean_and_filter_partition(raw: pd.DataFrame, filters: list[ScoreFilter], *summarizers,
                               text_format: str = "plain", site: str | None = None) -> tuple:
    """Clean, then filter one raw partition in one task: (kept rows, drop counts by reason, *summaries).

    Fusing the two stages means a worker never holds the cleaned text of rows the filter drops (about half of
    them by default) and never keeps an all-rows "marked" copy next to the kept one; the clean makes the Markdown
    only for the rows RowKeep keeps (the others' question and answer are their visible text in `marked`). Each
    `summarizer(marked, DROP_REASON, counts)` sees every row with its drop reason ("" = kept) and the word counts
    by column (see `word_counts`) while the cleaned text is still in the worker's memory (the card's word-count
    histograms, dedup's per-row features: both read only the kept rows' texts); its result follows the drop
    counts.
    """
    from modifiers import ANSWER_IMAGE, WRITTEN, clean_partition

    keep_row = RowKeep(filters)
    cleaned = clean_partition(raw, text_format, site, keep_row=keep_row)
    cleaned[ANSWER_IMAGE] = [isinstance(html, str) and "<img" in html for html in raw["answer"]]
    counts = keep_row.counted(cleaned.index) or word_counts(cleaned, filters)
    marked = filter_partition(cleaned, filters, counts)
    reasons = marked[DROP_REASON]
    unwritten = (reasons == "") & ~marked[WRITTEN]
    if unwritten.any():  # RowKeep said drop where the filters keep: make those rows' texts as a plain clean does
        again = clean_partition(raw[unwritten.to_numpy()], text_format, site)
        for column in ("question", "answer"):
            marked.loc[unwritten, column] = again[column]
    del raw
    dropped = {str(k): int(v) for k, v in sorted(reasons[reasons != ""].value_counts().items())}
    summaries = tuple(summarize(marked, DROP_REASON, counts) for summarize in summarizers)
    kept = marked[reasons == ""].drop(columns=[DROP_REASON, ANSWER_IMAGE, WRITTEN])
    return (kept, dropped, *summaries)


def image_answers(marked: pd.DataFrame, drop_col: str, counts=None) -> int:
    """How many kept rows' answers show an image (a summarizer of clean_and_filter_partition: the answer relies
    on what a text-only model cannot see)."""
    from modifiers import ANSWER_IMAGE

    return int((marked[ANSWER_IMAGE] & (marked[drop_col] == "")).sum())
