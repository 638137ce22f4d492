"""Split stage: deterministic, family-preserving, stable as the dataset grows."""
import pandas as pd
import pytest

from split import assign_splits, parse_ratios, split_of


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
