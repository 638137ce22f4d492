"""Training formats (tutorial jsonl, chat, nemo): streamed, atomic, and loadable with `datasets`."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from outputs import (FORMATS, chat_jsonl_bytes, encode_partition, nemo_jsonl_bytes, parse_formats, write_final,
                     write_removed)
from records import COLUMNS, conform, empty_frame

SPLITS = ("train", "val", "test")


def frame(ids, split_of, synthetic=False) -> pd.DataFrame:
    rows = []
    if not len(ids):
        return empty_frame()
    for i in ids:
        rows.append({"id": f"law-stackexchange-qa-{i}", "source_id": f"law-stackexchange-qa-{i}",
                     "title": f"Title {i}?", "question": f"Question {i} with \"quotes\" and ünïcode",
                     "answer": f"Answer {i}\n\nsecond paragraph", "question_score": i, "answer_score": 2 * i,
                     "tags": "contract,tort", "link": f"https://law.stackexchange.com/questions/{i}/q",
                     "license": "CC BY-SA 4.0" if i % 2 else "CC BY-SA 3.0", "file_name": "dump.json",
                     "split": split_of(i), "synthetic": synthetic, "round": 1 if synthetic else 0,
                     "reward": json.dumps({"helpfulness": 3.0 + i / 100}) if synthetic else ""})
    return conform(pd.DataFrame(rows))


def split_of(i: int) -> str:
    return SPLITS[0] if i % 5 < 3 else SPLITS[i % 5 - 2]


@pytest.fixture
def partitions():
    return [frame(range(0, 40), split_of), frame(range(40, 45), split_of), frame([], split_of),
            frame(range(45, 70), split_of)]


def expected_counts(parts) -> dict[str, int]:
    return {s: sum(int((p["split"] == s).sum()) for p in parts) for s in SPLITS}


def load(path):
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train")


def test_every_format_loads_with_datasets_and_round_trips_counts(tmp_path, partitions):
    final = tmp_path / "final"
    written = write_final(final, iter(partitions), FORMATS, system_prompt="You are a careful legal assistant.")
    counts = expected_counts(partitions)
    assert written["rows"] == counts
    assert set(written["files"]) == {"jsonl", "chat", "nemo"}
    for split in SPLITS:
        tutorial = load(final / f"law-qa-{split}.jsonl")
        chat = load(final / "chat" / f"{split}.jsonl")
        nemo = load(final / "nemo" / f"{split}.jsonl")
        assert len(tutorial) == len(chat) == len(nemo) == counts[split]
        for col in ("id", "title", "question", "question_score", "answer", "answer_score", "tags", "file_name",
                    "link", "license", "split"):
            assert col in tutorial.column_names
        assert chat.column_names == ["messages"]
        assert sorted(nemo.column_names) == ["input", "output"]
        for row, c, n in zip(tutorial, chat, nemo):
            user = f"{row['title']}\n\n{row['question']}"
            assert [m["role"] for m in c["messages"]] == ["system", "user", "assistant"]
            assert c["messages"][0]["content"] == "You are a careful legal assistant."
            assert c["messages"][1]["content"] == user and c["messages"][2]["content"] == row["answer"]
            assert n["input"] == user and n["output"] == row["answer"]
            assert row["split"] == split


def test_no_system_message_without_a_system_prompt():
    df = frame(range(3), split_of)
    lines = [json.loads(line) for line in chat_jsonl_bytes(df).splitlines()]
    assert [[m["role"] for m in x["messages"]] for x in lines] == [["user", "assistant"]] * 3
    assert chat_jsonl_bytes(df.iloc[:0]) == b"" and nemo_jsonl_bytes(df.iloc[:0]) == b""


def test_rows_keep_partition_order_in_every_format(tmp_path, partitions):
    write_final(tmp_path, iter(partitions))
    ids = [json.loads(x)["id"] for x in (tmp_path / "law-qa-train.jsonl").read_text().splitlines()]
    expected = [r for p in partitions for r in p.loc[p["split"] == "train", "id"]]
    assert ids == expected
    outputs = [json.loads(x)["output"] for x in (tmp_path / "nemo" / "train.jsonl").read_text().splitlines()]
    assert outputs == [r for p in partitions for r in p.loc[p["split"] == "train", "answer"]]


def test_partitions_are_consumed_lazily_one_at_a_time(tmp_path, partitions):
    seen = []

    def stream():
        for p in partitions:
            seen.append(len(p))
            yield p
    write_final(tmp_path, stream())
    assert seen == [len(p) for p in partitions]


def test_a_failure_mid_stream_leaves_the_previous_files(tmp_path, partitions):
    write_final(tmp_path, iter(partitions))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.jsonl")}

    def broken():
        yield partitions[0]
        raise RuntimeError("worker died")
    with pytest.raises(RuntimeError):
        write_final(tmp_path, broken())
    after = {p: p.read_bytes() for p in tmp_path.rglob("*.jsonl")}
    assert after == before
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_formats_selection_and_stale_files(tmp_path, partitions):
    write_final(tmp_path, iter(partitions))
    assert (tmp_path / "nemo" / "train.jsonl").exists()
    written = write_final(tmp_path, iter(partitions), formats=("chat",))
    assert set(written["files"]) == {"jsonl", "chat"}
    assert not (tmp_path / "nemo" / "train.jsonl").exists()  # an older run's format would mislead
    assert (tmp_path / "chat" / "train.jsonl").exists()
    counts = write_final(tmp_path / "tut", iter(partitions), formats=(), remove_stale=False)["rows"]
    assert counts == expected_counts(partitions)
    assert not (tmp_path / "tut" / "chat").exists()


def test_parse_formats():
    assert parse_formats("all") == tuple(FORMATS) == parse_formats(None) == parse_formats("")
    assert parse_formats("nemo,chat") == ("chat", "nemo")
    assert parse_formats("none") == ()
    assert parse_formats("jsonl") == ()
    with pytest.raises(ValueError, match="alpaca"):
        parse_formats("chat,alpaca")


def test_licenses_and_synthetic_rows_are_counted(tmp_path):
    parts = [frame(range(1, 5), lambda i: "train"), frame(range(5, 8), lambda i: "train", synthetic=True)]
    written = write_final(tmp_path, iter(parts))
    assert written["licenses"] == {"CC BY-SA 3.0": 3, "CC BY-SA 4.0": 4}
    assert written["synthetic"] == {"rows": 3, "by_round": {"1": 3}}
    assert [r["helpfulness"] for r in written["synthetic_rewards"]] == [3.05, 3.06, 3.07]
    rows = [json.loads(x) for x in (tmp_path / "law-qa-train.jsonl").read_text().splitlines()]
    assert rows[0]["reward"] is None and rows[-1]["reward"] == {"helpfulness": 3.07}


def test_write_removed(tmp_path):
    removed = pd.DataFrame([{"id": "a", "kind": "exact", "duplicate_of": "b", "similarity": 1.0}])
    assert write_removed(tmp_path / "removed.jsonl", removed) == 1
    assert json.loads((tmp_path / "removed.jsonl").read_text()) == removed.iloc[0].to_dict()


def test_partitions_encoded_elsewhere_write_the_same_files_and_counts(tmp_path, partitions):
    """The pipeline's workers encode their partitions (encode_partition) and the driver writes the bytes: the
    files and counts must be those of writing the frames themselves, synthetic rows and empty partitions included."""
    parts = partitions + [frame(range(70, 74), lambda i: "train", synthetic=True)]
    prompt = "You are a careful legal assistant."
    from_frames = write_final(tmp_path / "frames", iter(parts), FORMATS, system_prompt=prompt)
    encoded = [encode_partition(p, tuple(FORMATS), prompt) for p in parts]
    from_bytes = write_final(tmp_path / "encoded", iter(encoded), FORMATS, system_prompt=prompt)
    assert from_bytes == from_frames and from_frames["synthetic"]["rows"] == 4
    files = sorted(p.relative_to(tmp_path / "frames") for p in (tmp_path / "frames").rglob("*.jsonl"))
    assert len(files) == 3 * (1 + len(FORMATS))
    for rel in files:
        assert (tmp_path / "encoded" / rel).read_bytes() == (tmp_path / "frames" / rel).read_bytes()
    assert list(encoded[0].keys.columns) == ["source_id", "license"] and len(encoded[0].keys) == 40


def test_a_partition_encoded_for_other_formats_is_refused(tmp_path, partitions):
    encoded = encode_partition(partitions[0], ("chat",))
    with pytest.raises(ValueError, match="encoded for"):
        write_final(tmp_path, iter([encoded]), FORMATS)
    assert not list(tmp_path.rglob("*.jsonl"))
    with pytest.raises(ValueError, match="unknown split"):
        encode_partition(frame(range(3), lambda i: "dev"))


def _jsonl_bytes_per_row(df: pd.DataFrame) -> bytes:
    """The writer as it was, one pandas row dict at a time: what the column-wise jsonl_bytes must reproduce."""
    import orjson

    def to_json_dict(row: dict) -> dict:
        out = dict(row)
        out["reward"] = json.loads(row["reward"]) if row.get("reward") else None
        out["question_score"] = int(out["question_score"])
        out["answer_score"] = int(out["answer_score"])
        out["round"] = int(out["round"])
        out["synthetic"] = bool(out["synthetic"])
        return out

    lines = [orjson.dumps(to_json_dict(row)) for row in df[COLUMNS].to_dict("records")]
    return b"\n".join(lines) + (b"\n" if lines else b"")


@pytest.mark.parametrize("storage", ["pyarrow", "python", "object"])
def test_column_wise_jsonl_equals_the_per_row_writer(storage):
    import numpy as np

    from outputs import jsonl_bytes

    df = pd.concat([frame(range(0, 30), split_of), frame(range(30, 40), split_of, synthetic=True)],
                   ignore_index=True)
    df.loc[3, "tags"], df.loc[5, "link"], df.loc[7, "title"] = None, np.nan, "\u00e9\u2028\U0001F600 \"q\"\n"
    df.loc[8, "reward"] = None  # a real row whose reward column is missing, not ""
    text_columns = [c for c, t in df.dtypes.items() if not pd.api.types.is_numeric_dtype(t) and c != "synthetic"]
    dtype = object if storage == "object" else pd.StringDtype(storage)
    df = df.astype({c: dtype for c in text_columns})
    df["question_score"] = df["question_score"].astype("int32")  # what a partition read back may carry
    assert jsonl_bytes(df) == _jsonl_bytes_per_row(df)
    assert jsonl_bytes(df.iloc[:0]) == _jsonl_bytes_per_row(df.iloc[:0]) == b""
    assert jsonl_bytes(df.iloc[::-3]) == _jsonl_bytes_per_row(df.iloc[::-3])  # any index, any order
