"""partitions.Partitions: the record stages' rows as futures on a real LocalCluster, against the same work done
in pandas (drop, split, columns, counts, errors), and the dedup, leak check and decontamination run on them."""
import sys

import pandas as pd
import pytest

from cluster import count_values
from conftest import partitions_of
from records import drop_ids
from split import assign_splits
from test_dedup import copy_row, frame, make_rows, rows_with_near_copies, static_cfg

RATIOS = (0.8, 0.1, 0.1)


@pytest.fixture
def rows():
    return frame(make_rows(60, seed=9))


def test_maps_in_order_with_the_results_pandas_gives(cluster_client, rows):
    parts = partitions_of(cluster_client, rows, 4)
    gone = set(rows["id"].iloc[::7])
    families = {sid: rows["source_id"].iloc[0] for sid in rows["source_id"].iloc[:12]}
    split = parts.map_partitions(drop_ids, gone).map_partitions(assign_splits, families, 42, RATIOS).wait()
    expected = assign_splits(drop_ids(rows, gone), families, 42, RATIOS)
    pd.testing.assert_frame_equal(split.compute(), expected)
    assert split.npartitions == 4 and list(split.columns) == list(rows.columns)


UNPICKLED = []  # in a worker: one entry each time a CountedMap arrived there


def _rebuilt(items: dict) -> "CountedMap":
    UNPICKLED.append(len(items))
    return CountedMap(items)


class CountedMap(dict):
    """A family map that counts, in each worker, how many copies of it were unpickled there."""

    def __reduce__(self):
        return _rebuilt, (dict(self),)


def test_a_large_argument_goes_to_the_cluster_once(cluster_client, rows):
    parts = partitions_of(cluster_client, rows, 6)
    families = CountedMap({sid: rows["source_id"].iloc[0] for sid in rows["source_id"].iloc[:30]})
    split = parts.map_partitions(assign_splits, families, 42, RATIOS).wait()
    pd.testing.assert_frame_equal(split.compute(), assign_splits(rows, families, 42, RATIOS))
    copies = cluster_client.run(lambda: sum(1 for n in sys.modules["test_partitions"].UNPICKLED if n == 30))
    assert 1 <= sum(copies.values()) <= len(copies) < split.npartitions  # at most once a worker, not once a task


def test_columns_a_frame_more_lengths_and_value_counts(cluster_client, rows):
    parts = partitions_of(cluster_client, rows, 3)
    ids = parts[["id", "answer_score"]]
    assert list(ids.columns) == ["id", "answer_score"]
    pd.testing.assert_frame_equal(ids.compute(), rows[["id", "answer_score"]])
    more = parts.with_frame(rows.iloc[:5])
    assert more.npartitions == 4 and list(more.map_partitions(len).compute()) == [20, 20, 20, 5]
    scores = parts.map_partitions(lambda df: df["answer_score"].astype(str), meta=("answer_score", "object"))
    assert count_values(scores) == {str(k): int(v) for k, v in rows["answer_score"].value_counts().items()}


def test_a_failed_partition_raises_where_the_stage_waits(cluster_client, rows):
    def fails_on_the_third(df):
        if df.index[0] >= 40:
            raise ValueError("partition three")
        return df

    with pytest.raises(ValueError, match="partition three"):
        partitions_of(cluster_client, rows, 3).map_partitions(fails_on_the_third).wait()


def test_the_workers_never_import_dask_dataframe(cluster_client, rows):
    parts = partitions_of(cluster_client, rows, 2)
    parts.map_partitions(drop_ids, {rows["id"].iloc[0]}).map_partitions(assign_splits, {}, 1, RATIOS).compute()
    assert not any(cluster_client.run(lambda: "dask.dataframe" in sys.modules).values())


def test_dedup_on_partitions_matches_pandas(cluster_client, tmp_path):
    import dedup

    rows = make_rows(90, seed=2)
    rows += [copy_row(rows[1], 500), copy_row(rows[2], 501)]
    df = frame(rows)
    on_cluster = dedup.deduplicate(partitions_of(cluster_client, df, 4), static_cfg(str(tmp_path / "a")),
                                   client=cluster_client)
    local = dedup.deduplicate(df, static_cfg(str(tmp_path / "b")))
    assert len(local.removed) >= 2
    pd.testing.assert_frame_equal(on_cluster.removed, local.removed)
    assert list(on_cluster.kept.compute()["id"]) == list(local.kept["id"])
    assert on_cluster.families.to_dict() == local.families.to_dict()


def test_leak_check_on_partitions_matches_pandas(cluster_client, tmp_path):
    import dedup

    df = frame(rows_with_near_copies(60, copies=6, first_copy_id=500, edit_rate=0.03, seed=13))
    df["split"] = ["train" if i % 3 else "test" for i in range(len(df))]
    df.loc[df.index[:6], "split"] = "train"
    df.loc[df.index[-6:], "split"] = "test"
    local = dedup.cross_split_leaks(df, static_cfg(str(tmp_path / "a")))
    on_cluster = dedup.cross_split_leaks(partitions_of(cluster_client, df, 3), static_cfg(str(tmp_path / "b")),
                                         client=cluster_client)
    assert local["total"] > 0
    for key in ("rows", "exact_pairs", "jaccard_pairs", "cosine_pairs", "total", "examples"):
        assert on_cluster[key] == local[key], key


def test_decontamination_on_partitions_matches_pandas(cluster_client, tmp_path):
    import json

    from decontam import DecontamConfig, Decontaminator

    df = frame(make_rows(80, seed=21))
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps({"question": q}) + "\n" for q in df["question"].iloc[[3, 30, 61]]))
    dec = Decontaminator.from_config(DecontamConfig(files=(str(eval_file),)), static_cfg(str(tmp_path / "emb")))
    local = dec.run(df)
    on_cluster = dec.run(partitions_of(cluster_client, df, 4), cluster_client)
    assert len(local.removed) == 3
    pd.testing.assert_frame_equal(on_cluster.removed, local.removed)
    assert list(on_cluster.kept.compute()["id"]) == list(local.kept["id"])
    assert on_cluster.stats["rows_in"] == len(df)
