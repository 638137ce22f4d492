"""Run report: per-stage counts and seconds, the source, the splits; printed as a table, saved as JSON.

Invariant checked for every stage: rows_in = rows_out + sum(dropped).
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from outputs import atomic_write


@dataclass
class StageReport:
    """One stage's accounting."""

    name: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def check(self) -> None:
        """Raise AssertionError if rows went missing without a reason."""
        lost = self.rows_in - self.rows_out - sum(self.dropped.values())
        if lost:
            raise AssertionError(f"stage {self.name}: {lost} rows unaccounted for "
                                 f"(in {self.rows_in}, out {self.rows_out}, dropped {self.dropped})")


@dataclass
class RunReport:
    """Everything a run did, in the shape written to report.json."""

    source: dict = field(default_factory=dict)
    stages: list[StageReport] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    sections: dict[str, object] = field(default_factory=dict)  # dedup, sdg, args, versions, ...

    def add_stage(self, name: str, rows_in: int, rows_out: int, dropped: dict[str, int] | None = None,
                  seconds: float = 0.0) -> StageReport:
        """Record a stage; its invariant is checked at once."""
        stage = StageReport(name, int(rows_in), int(rows_out),
                            {k: int(v) for k, v in sorted((dropped or {}).items()) if v}, round(seconds, 3))
        stage.check()
        self.stages.append(stage)
        return stage

    def to_dict(self) -> dict:
        out = {"source": self.source, "stages": [asdict(s) for s in self.stages], "splits": self.splits}
        out.update(self.sections)
        return out

    def write(self, path: Path) -> None:
        """report.json, written atomically."""
        with atomic_write(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=False, ensure_ascii=False, default=str)
            f.write("\n")

    def table(self) -> str:
        """The console summary: one line per stage, then the splits."""
        lines = [f"{'stage':<12}{'in':>9}{'out':>9}{'dropped':>9}{'seconds':>9}  reasons"]
        for s in self.stages:
            reasons = ", ".join(f"{k}={v}" for k, v in s.dropped.items())
            lines.append(f"{s.name:<12}{s.rows_in:>9}{s.rows_out:>9}{sum(s.dropped.values()):>9}"
                         f"{s.seconds:>9.2f}  {reasons}")
        if self.splits:
            lines.append("splits: " + ", ".join(f"{k}={v}" for k, v in self.splits.items()))
        origin = self.source.get("origin")
        if origin:
            note = "  <- BUNDLED SAMPLE (generated data), not the real dump" if self.source.get("sample") else ""
            lines.append(f"source: {origin} {self.source.get('path', '')}{note}")
        return "\n".join(lines)


@contextmanager
def timed() -> Iterator[dict]:
    """`with timed() as t: ...` then t["seconds"]."""
    box = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start
