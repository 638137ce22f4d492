"""The one record type every stage reads and writes (ARCHITECTURE.md, "The record contract").

A record is a row of a pandas DataFrame (one Dask partition) or a line of JSONL. Stages keep these
columns and their dtypes; a stage that drops rows reports a named reason per dropped row.
"""
from __future__ import annotations

import json

import pandas as pd

ID_PREFIX = "law-stackexchange-qa-"

# column -> pandas dtype. `reward` is a JSON object string ("" for real rows) so partitions stay
# flat and parquet-friendly; the writer turns it back into an object (null for real rows).
SCHEMA: dict[str, str] = {
    "id": "object",
    "source_id": "object",
    "title": "object",
    "question": "object",
    "answer": "object",
    "question_score": "int64",
    "answer_score": "int64",
    "tags": "object",
    "link": "object",
    "license": "object",
    "file_name": "object",
    "split": "object",
    "synthetic": "bool",
    "round": "int64",
    "reward": "object",
}
COLUMNS = list(SCHEMA)  # the columns written
# Working columns, never written: the visible text of question and answer (the plain walk's words without URLs,
# markup or image placeholders), which the filters, dedup, decontamination and the leak check read, so that
# --text-format changes no drop or removal. Rows that never were HTML (synthetic ones) have their text here.
VISIBLE = {"question": "question_visible", "answer": "answer_visible"}
WORK_SCHEMA: dict[str, str] = {**SCHEMA, **{column: "object" for column in VISIBLE.values()}}
WORK_COLUMNS = list(WORK_SCHEMA)

# The columns the NeMo Curator tutorial wrote (id, title, question, question_score, answer, answer_score, tags,
# file_name) keep their names and meaning, so its users read our output unchanged.


def record_id(question_id: int) -> str:
    """The id of the real record for a Law.SE question."""
    return f"{ID_PREFIX}{question_id}"


def synthetic_id(source_id: str, round_no: int, k: int) -> str:
    """The id of synthetic pair `k` generated from `source_id` in round `round_no`."""
    return f"{source_id}-synth-r{round_no}-{k}"


def empty_frame() -> pd.DataFrame:
    """A zero-row DataFrame with the record schema and the working columns (the Dask `meta` of every stage)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in WORK_SCHEMA.items()})


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in contract order with contract dtypes (missing optional columns filled; missing visible text is
    the text itself, as for rows that never were HTML)."""
    df = df.copy()
    defaults = {"split": "", "synthetic": False, "round": 0, "reward": ""}
    for col, default in defaults.items():
        if col not in df.columns:
            df[col] = default
    for col, work in VISIBLE.items():
        if work not in df.columns:
            df[work] = df[col]
    df = df[WORK_COLUMNS]
    return df.astype(WORK_SCHEMA)


def visible(df: pd.DataFrame, column: str) -> pd.Series:
    """The visible text of `column` (question or answer): its working column where the frame has one, else the
    column itself (a frame read back from JSONL, or built before cleaning)."""
    work = VISIBLE.get(column)
    return df[work] if work is not None and work in df.columns else df[column]


def to_json_columns(columns: dict[str, list]) -> dict[str, list]:
    """Records as written to JSONL, column by column: from {column: values}, the `reward` column as objects (null
    for real rows) and the scores, `round` and `synthetic` as plain ints and bools."""
    return {"reward": [json.loads(r) if r else None for r in columns["reward"]],
            "question_score": [int(v) for v in columns["question_score"]],
            "answer_score": [int(v) for v in columns["answer_score"]],
            "round": [int(v) for v in columns["round"]],
            "synthetic": [bool(v) for v in columns["synthetic"]]}


def drop_ids(df: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
    """The partition without the rows whose id is in `ids` (order kept)."""
    if not ids:
        return df
    return df[~df["id"].isin(ids)]
