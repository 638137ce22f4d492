"""Split stage: train/val/test by a stable hash of the family key.

A family is a real record, every synthetic row derived from it, and any near-duplicates of it (dedup
finds those at a looser leak threshold and names one family key per cluster). Hashing the family key
(seeded) puts a whole family in one split, and a record's split never changes when other records are
added or removed, so a dataset can grow without rows moving between train and test.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd
import xxhash

SPLITS = ("train", "val", "test")


def parse_ratios(text: str) -> tuple[float, float, float]:
    """'80/10/10' or '0.8,0.1,0.1' -> fractions summing to 1. Raises ValueError with a readable message."""
    parts = [p for p in text.replace(",", "/").split("/") if p.strip()]
    if len(parts) != 3:
        raise ValueError(f"--split-ratios needs three numbers (train/val/test), got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--split-ratios needs three numbers (train/val/test), got {text!r}") from None
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"--split-ratios must be non-negative and not all zero, got {text!r}")
    total = sum(values)
    return tuple(v / total for v in values)  # type: ignore[return-value]


def split_of(family_key: str, seed: int, ratios: tuple[float, float, float]) -> str:
    """The split of a family: a seeded 64-bit hash of its key mapped onto the cumulative ratios."""
    position = xxhash.xxh64_intdigest(family_key.encode("utf-8"), seed=seed) / 2**64
    if position < ratios[0]:
        return "train"
    if position < ratios[0] + ratios[1]:
        return "val"
    return "test"


def assign_splits(df: pd.DataFrame, families: Mapping[str, str], seed: int,
                  ratios: tuple[float, float, float]) -> pd.DataFrame:
    """Fill the `split` column: a row's family is `families[source_id]`, else its `source_id`.

    Keyed by source_id, so synthetic rows follow the real row they came from into its family's split.
    """
    df = df.copy()
    keys = df["source_id"].map(families.get) if len(families) else pd.Series(None, index=df.index, dtype="object")
    keys = keys.where(keys.notna(), df["source_id"])
    df["split"] = [split_of(k, seed, ratios) for k in keys]
    return df


@dataclass(frozen=True)
class SplitConfig:
    """The requested train/val/test proportions (fractions summing to 1)."""

    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    text: str = "80/10/10"


def add_split_arguments(group) -> None:
    """The split flags."""
    group.add_argument("--split-ratios", default=SplitConfig.text, help="train/val/test proportions")


def split_config_from_args(args) -> SplitConfig:
    """The validated split settings; ValueError names the flag."""
    return SplitConfig(ratios=parse_ratios(args.split_ratios), text=args.split_ratios)
