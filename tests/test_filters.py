"""Filter stage: boundary word counts, score thresholds, named drop reasons."""
import pandas as pd

from filters import (DROP_REASON, FilterConfig, MinScoreFilter, NonEmptyFilter, WordCountFilter, apply_filters,
                     count_words, default_filters, filter_partition)


def frame(q_words, a_words, q_score=0, a_score=0):
    return pd.DataFrame({
        "title": ["t"] * len(q_words),
        "question": [" ".join(["w"] * n) for n in q_words],
        "answer": [" ".join(["w"] * n) for n in a_words],
        "question_score": [q_score] * len(q_words),
        "answer_score": [a_score] * len(q_words),
    })


def test_word_count_boundaries_inclusive():
    df = frame([49, 50, 500, 501], [60, 60, 60, 60])
    out = filter_partition(df, default_filters(FilterConfig()))
    assert out[DROP_REASON].tolist() == ["question_too_short", "", "", "question_too_long"]


def test_answer_filter_and_first_failure_wins():
    df = frame([10, 60], [10, 600])
    out = filter_partition(df, default_filters(FilterConfig()))
    assert out[DROP_REASON].tolist() == ["question_too_short", "answer_too_long"]


def test_score_filters():
    df = pd.concat([frame([60], [60], q_score=-1), frame([60], [60], a_score=-1), frame([60], [60])],
                   ignore_index=True)
    kept, dropped = apply_filters(df, default_filters(FilterConfig()))
    assert len(kept) == 1
    assert dropped == {"answer_score_below_min": 1, "question_score_below_min": 1}


def test_thresholds_are_configurable():
    df = frame([5], [5], q_score=-3, a_score=-3)
    kept, dropped = apply_filters(df, default_filters(FilterConfig(1, 10, -5, -5)))
    assert len(kept) == 1 and dropped == {}


def test_empty_text_has_its_own_reason():
    df = frame([60], [60])
    df.loc[0, "answer"] = "   "
    _, dropped = apply_filters(df, default_filters(FilterConfig()))
    assert dropped == {"answer_empty": 1}


def test_vectorised_counts_match_document_interface():
    texts = pd.Series(["a b  c", "\n x \t y\n", "", "one"])
    wc = WordCountFilter(1, 2, "question")
    assert count_words(texts).tolist() == [wc.score_document(t) for t in texts] == [3, 2, 0, 1]
    assert [wc.keep_document(s) for s in [0, 1, 2, 3]] == [False, True, True, False]
    assert MinScoreFilter(0).keep_document(-1) is False


def test_column_scores_match_per_document_scores_on_unicode_whitespace_and_missing_values():
    texts = pd.Series(["a\u00a0b\u2003c", "\u3000", "x\x1cy", None, "  ", "\u2028"], index=[5, 3, 9, 1, 2, 0])
    assert count_words(texts).tolist() == [3, 0, 2, 0, 0, 0]
    assert count_words(texts).index.tolist() == [5, 3, 9, 1, 2, 0]
    nonempty = NonEmptyFilter("answer")
    assert nonempty.score_series(texts).tolist() == [1, 0, 1, 0, 0, 0]
    assert [nonempty.score_document(t) for t in texts if isinstance(t, str)] == [1, 0, 1, 0, 0]


def test_clean_and_filter_partition_keeps_only_passing_rows_and_counts_the_rest():
    from filters import clean_and_filter_partition
    from modifiers import clean_partition

    raw = frame([60, 10, 60], [60, 60, 700])
    raw["question"] = "<p>" + raw["question"] + "</p>"
    kept, dropped, summary, kept_count = clean_and_filter_partition(
        raw, default_filters(FilterConfig()), lambda marked, col, counts: len(marked),
        lambda marked, col, counts: (int((marked[col] == "").sum()), counts["question"].tolist()))
    expected, expected_dropped = apply_filters(clean_partition(raw), default_filters(FilterConfig()))
    pd.testing.assert_frame_equal(kept, expected)
    assert dropped == expected_dropped == {"answer_too_long": 1, "question_too_short": 1}
    assert summary == 3 and kept_count[0] == 1 and DROP_REASON not in kept.columns
    assert kept_count[1] == count_words(clean_partition(raw)["question"]).tolist()  # counted once, shared
