"""Split stage: train/val/test by a stable hash of the family key.

A family is a real record, every synthetic row derived from it, and any near-duplicates of it (dedup
finds those at a looser leak threshold and names one family key per cluster). Hashing the family key
(seeded) puts a whole family in one split, and a record's split never changes when other records are
added or removed, so a dataset can grow without rows moving between train and test.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields
from typing import Mapping

import pandas as pd
import xxhash

SPLITS = ("train", "val", "test")


class SplitError(ValueError):
    """The split does not hold its ratios, or one family is too large (a one-line message)."""


@dataclass
class SplitConfig:
    ratios_text: str = "80/10/10"
    seed: int = 0
    allow_unbalanced: bool = False  # accept a split that fails check_split (a warning instead of an error)
    max_deviation: float = 0.03  # a split's share may be this far off its ratio ...
    hash_noise_sigmas: float = 4.0  # ... or this many standard errors of a row-by-row hash split (tiny inputs)
    max_family_share: float = 0.01  # no family above this share of the rows ...
    min_family_limit: int = 20  # ... nor, on tiny inputs, above this many rows

    @property
    def ratios(self) -> tuple[float, float, float]:
        return parse_ratios(self.ratios_text)


def _default(name: str):
    return next(f.default for f in fields(SplitConfig) if f.name == name)


def add_split_arguments(group: argparse._ActionsContainer) -> None:
    """Add the split flags (defaults live in SplitConfig)."""
    group.add_argument("--split-ratios", default=None,
                       help=f"train/val/test ratios, e.g. 80/10/10 or 0.8,0.1,0.1 (default {_default('ratios_text')})")
    group.add_argument("--allow-unbalanced-split", action="store_true",
                       help=f"accept a split more than {_default('max_deviation') * 100:g} points off its ratios or "
                            f"a family above {_default('max_family_share') * 100:g}%% of the rows (default: stop with an "
                            "error)")


def split_config_from_args(args: argparse.Namespace) -> SplitConfig:
    """A validated SplitConfig; raises ValueError("--split-ratios: why") on a bad value."""
    cfg = SplitConfig(seed=int(args.seed), allow_unbalanced=bool(args.allow_unbalanced_split))
    if args.split_ratios is not None:
        cfg.ratios_text = args.split_ratios
    cfg.ratios  # validates
    return cfg


def check_split(counts: Mapping[str, int], largest_family: int, cfg: SplitConfig,
                family_size_squares: int | None = None) -> dict:
    """Check the rows per split against the requested ratios and the largest family against the row count.
    `family_size_squares` (the sum of each family's size squared; default: every row its own family) sets how far
    a hash split of these families may stray by chance: whole families move together, so a few large ones on a
    tiny input may leave a split empty without anything being wrong.
    Returns {"ok", "shares", "problems"}; raises SplitError (one line) unless cfg.allow_unbalanced."""
    n = sum(int(counts.get(s, 0)) for s in SPLITS)
    squares = family_size_squares if family_size_squares is not None else n
    problems = []
    shares = {s: (int(counts.get(s, 0)) / n if n else 0.0) for s in SPLITS}
    for s, want in zip(SPLITS, cfg.ratios):
        # the standard error of a share when families of these sizes are hashed to splits independently
        noise = cfg.hash_noise_sigmas * math.sqrt(want * (1 - want) * squares) / n if n else 1.0
        if abs(shares[s] - want) > max(cfg.max_deviation, noise):
            problems.append(f"{s} {shares[s]:.1%} (asked {want:.1%})")
    family_limit = max(cfg.max_family_share * n, cfg.min_family_limit)
    if largest_family > family_limit:
        problems.append(f"largest family {largest_family:,} rows > {family_limit:,.0f} "
                        f"({cfg.max_family_share:.0%} of {n:,})")
    result = {"ok": not problems, "rows": n, "shares": {s: round(v, 4) for s, v in shares.items()},
              "largest_family": int(largest_family), "problems": problems}
    if problems and not cfg.allow_unbalanced:
        raise SplitError("split: " + "; ".join(problems) + " -- near-duplicate families are too large for "
                         "these ratios; lower --family-max-share or raise --leak-cosine/--leak-jaccard, or "
                         "pass --allow-unbalanced-split to accept it")
    return result


def parse_ratios(text: str) -> tuple[float, float, float]:
    """'80/10/10' or '0.8,0.1,0.1' -> fractions summing to 1. Raises ValueError with a readable message."""
    parts = [p for p in text.replace(",", "/").split("/") if p.strip()]
    if len(parts) != 3:
        raise ValueError(f"--split-ratios: needs three numbers (train/val/test), got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--split-ratios: not numbers, got {text!r}") from None
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"--split-ratios: must be non-negative and not all zero, got {text!r}")
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


def split_counts(family_sizes: Mapping[str, int], seed: int, ratios: tuple[float, float, float]) -> dict[str, int]:
    """Rows per split from the rows per family: a family's rows all go to `split_of` its key."""
    counts = dict.fromkeys(SPLITS, 0)
    for family, size in family_sizes.items():
        counts[split_of(family, seed, ratios)] += size
    return counts


def family_keys(df: pd.DataFrame, families: Mapping[str, str]) -> pd.Series:
    """Each row's family key: `families[source_id]`, else its own source_id."""
    keys = df["source_id"].map(families.get) if len(families) else pd.Series(None, index=df.index, dtype="object")
    return keys.where(keys.notna(), df["source_id"]).rename("family")


def assign_splits(df: pd.DataFrame, families: Mapping[str, str], seed: int,
                  ratios: tuple[float, float, float]) -> pd.DataFrame:
    """Fill the `split` column: a row's family is `families[source_id]`, else its `source_id`.

    Keyed by source_id, so synthetic rows follow the real row they came from into its family's split.
    """
    df = df.copy()
    df["split"] = [split_of(k, seed, ratios) for k in family_keys(df, families)]
    return df
