"""Split stage: deterministic, family-preserving, stable as the dataset grows."""
import pandas as pd
import pytest

from split import SPLITS, assign_splits, family_keys, parse_ratios, split_counts, split_of


def frame(ids, source_ids=None):
    return pd.DataFrame({"id": ids, "source_id": source_ids or ids, "split": ""})


def test_ratios_are_close_and_deterministic():
    ids = [f"law-stackexchange-qa-{i}" for i in range(20_000)]
    a = assign_splits(frame(ids), {}, 7, (0.8, 0.1, 0.1))
    b = assign_splits(frame(ids), {}, 7, (0.8, 0.1, 0.1))
    assert a["split"].tolist() == b["split"].tolist()
    share = a["split"].value_counts(normalize=True)
    assert abs(share["train"] - 0.8) < 0.02 and abs(share["val"] - 0.1) < 0.02


def test_a_record_never_moves_when_others_are_added_or_removed():
    ids = [f"r{i}" for i in range(1000)]
    full = assign_splits(frame(ids), {}, 0, (0.8, 0.1, 0.1)).set_index("id")["split"]
    part = assign_splits(frame(ids[::3]), {}, 0, (0.8, 0.1, 0.1)).set_index("id")["split"]
    assert (full.loc[part.index] == part).all()


def test_families_share_a_split():
    ids = [f"r{i}" for i in range(300)] + [f"r{i}-synth-r1-0" for i in range(300)]
    sources = [f"r{i}" for i in range(300)] * 2
    families = {f"r{i}": "r0" for i in range(0, 300, 50)}  # near-duplicate cluster keyed by r0
    out = assign_splits(frame(ids, sources), families, 1, (0.8, 0.1, 0.1)).set_index("id")["split"]
    for i in range(300):
        assert out[f"r{i}"] == out[f"r{i}-synth-r1-0"]
    assert len({out[f"r{i}"] for i in range(0, 300, 50)}) == 1


def test_split_counts_from_family_sizes_equal_the_assigned_column():
    ids = [f"r{i}" for i in range(500)] + [f"r{i}-synth-r1-0" for i in range(0, 500, 3)]
    sources = [f"r{i}" for i in range(500)] + [f"r{i}" for i in range(0, 500, 3)]
    families = {f"r{i}": "r7" for i in range(0, 500, 40)}
    df = assign_splits(frame(ids, sources), families, 3, (0.7, 0.2, 0.1))
    sizes = family_keys(df, families).value_counts().to_dict()
    assert split_counts(sizes, 3, (0.7, 0.2, 0.1)) == {s: int((df["split"] == s).sum()) for s in SPLITS}


def test_seed_changes_assignment():
    assert [split_of(f"k{i}", 1, (0.8, 0.1, 0.1)) for i in range(50)] != \
        [split_of(f"k{i}", 2, (0.8, 0.1, 0.1)) for i in range(50)]


@pytest.mark.parametrize("text, expected", [("80/10/10", (0.8, 0.1, 0.1)), ("8,1,1", (0.8, 0.1, 0.1))])
def test_parse_ratios(text, expected):
    assert parse_ratios(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["80/20", "a/b/c", "-1/1/1", "0/0/0"])
def test_parse_ratios_rejects_bad_input(text):
    with pytest.raises(ValueError):
        parse_ratios(text)


# ------------------------------------------------------------------------------- the split check
import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from split import SplitConfig, SplitError, add_split_arguments, check_split, split_config_from_args  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "law-stackexchange-questions-answers.json"


def split_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_split_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    return p


def test_split_flags_build_a_validated_config():
    cfg = split_config_from_args(split_parser().parse_args([]))
    assert cfg == SplitConfig() and cfg.ratios == pytest.approx((0.8, 0.1, 0.1))
    cfg = split_config_from_args(split_parser().parse_args(["--split-ratios", "70/20/10", "--allow-unbalanced-split",
                                                           "--seed", "3"]))
    assert cfg.ratios == pytest.approx((0.7, 0.2, 0.1)) and cfg.allow_unbalanced and cfg.seed == 3
    for bad in ("80/10", "a/b/c", "0/0/0"):
        with pytest.raises(ValueError, match=r"^--split-ratios: "):
            split_config_from_args(split_parser().parse_args(["--split-ratios", bad]))


def test_check_split_passes_a_balanced_split_and_stops_a_collapsed_one():
    ok = check_split({"train": 8_010, "val": 1_000, "test": 990}, 12, SplitConfig())
    assert ok["ok"] and ok["problems"] == []
    with pytest.raises(SplitError) as err:  # the collapsed split
        check_split({"train": 16_584, "val": 9, "test": 3}, 16_000, SplitConfig())
    msg = str(err.value)
    assert "\n" not in msg and "val 0.1% (asked 10.0%)" in msg and "--allow-unbalanced-split" in msg
    assert "largest family 16,000 rows" in msg
    with pytest.raises(SplitError, match="train 85.0%"):  # 5 points off on 20,000 rows
        check_split({"train": 17_000, "val": 1_500, "test": 1_500}, 3, SplitConfig())
    accepted = check_split({"train": 16_584, "val": 9, "test": 3}, 16_000, SplitConfig(allow_unbalanced=True))
    assert not accepted["ok"] and len(accepted["problems"]) == 4


def chain_corpus(n: int, pool_size: int = 12, per_post: int = 8) -> pd.DataFrame:
    """Posts built from a small pool of real legal sentences: every post shares most of its sentences (and
    its vocabulary) with every other, so near-duplicate links chain through the whole corpus."""
    from records import conform, record_id

    els = json.loads(SAMPLE.read_text())
    text = " ".join(re.sub("<[^>]+>", " ", a["body"]) for e in els[:30] for a in e["answers"])
    pool = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if len(s.split()) > 6][:pool_size]
    rng = random.Random(0)
    rows = []
    for i in range(1, n + 1):
        sents = rng.sample(pool, per_post)
        rows.append(dict(id=record_id(i), source_id=record_id(i), title=f"Question {i}", question=sents[0],
                         answer=" ".join(sents[1:]), question_score=1, answer_score=1, synthetic=False, tags="t",
                         link="l", license="CC BY-SA 4.0", file_name="f", round=0, reward=""))
    return conform(pd.DataFrame(rows))


def split_of_dedup(df, cfg, ratios=(0.8, 0.1, 0.1)):
    import dedup

    res = dedup.deduplicate(df, cfg)
    out = assign_splits(res.kept, res.families.to_dict(), 0, ratios)
    return res, out["split"].value_counts().to_dict()


def test_a_corpus_built_to_chain_still_splits_within_3_points_or_stops(tmp_path):
    import dedup

    df = chain_corpus(1000)
    res, counts = split_of_dedup(df, dedup.DedupConfig(embedding_cache=str(tmp_path)))
    assert res.stats["families"]["links"] > 10 * len(df)  # the corpus does chain: many links per row
    # every row is close to every other: the default semantic threshold rose to the corpus floor, so dedup did
    # not call the rows copies of each other
    model = res.stats["model"]
    assert model["corpus_floor"]["median_nearest"] > model["calibrated_threshold"]
    assert model["threshold"] > model["calibrated_threshold"] and len(res.removed) < 0.05 * len(df)
    largest = res.stats["families"]["kept_rows"]["largest"]
    try:
        checked = check_split(counts, largest, SplitConfig())
    except SplitError as err:  # stopping with the reason is the other acceptable outcome
        assert "family" in str(err) or "asked" in str(err)
    else:
        n = sum(counts.values())
        for s, want in zip(SPLITS, (0.8, 0.1, 0.1)):
            assert abs(counts.get(s, 0) / n - want) <= 0.03, checked
    # single linkage (no cap) chains this corpus into one family: the check stops it
    res, counts = split_of_dedup(df, dedup.DedupConfig(embedding_cache=str(tmp_path), family_max_share=1.0))
    with pytest.raises(SplitError):
        check_split(counts, res.stats["families"]["kept_rows"]["largest"], SplitConfig())


def test_a_few_large_families_on_a_tiny_input_are_chance_not_an_error():
    """Ten rows in one family all land in one split by design; ten unrelated rows all in test is not chance."""
    from split import SplitConfig, SplitError, check_split

    one_family = check_split({"train": 0, "val": 0, "test": 10}, 10, SplitConfig(), family_size_squares=100)
    assert one_family["ok"]
    with pytest.raises(SplitError, match="test 100.0%"):
        check_split({"train": 0, "val": 0, "test": 10}, 1, SplitConfig(), family_size_squares=10)
