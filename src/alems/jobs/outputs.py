"""What a measurement job writes: its four files (:class:`RunPaths`), the record in its
``run.json`` (:class:`JobResult`), the clean-up of a killed attempt's temporary files, and
the share of the job's wall time inside attempt windows. :mod:`alems.session` writes the same
files for a user's own agent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alems.contracts import RUN_FILES


@dataclass(frozen=True)
class RunPaths:
    """Where one job writes. ``partial_events`` is the live event log (never an output)."""

    samples: Path
    events: Path
    goals: Path
    meta: Path
    calls: Path | None = None  # calls.csv (None: the caller writes none)

    @classmethod
    def in_dir(cls, out_dir: str | os.PathLike[str]) -> RunPaths:
        d = Path(out_dir)
        return cls(*(d / name for name in RUN_FILES))  # samples, events, goals, run.json, calls

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> RunPaths:
        calls = Path(m["calls"]) if m.get("calls") else None
        return cls(Path(m["samples"]), Path(m["events"]), Path(m["goals"]), Path(m["meta"]), calls)

    @property
    def partial_events(self) -> Path:
        return self.events.with_name(f".{self.events.name}.partial")

    def all(self) -> list[Path]:
        return [self.samples, self.events, self.goals, self.meta, *([self.calls] if self.calls else [])]


@dataclass
class JobResult:
    """What one job did, as written to ``run.json``."""

    family: str
    rep: int
    run_id: str
    modes: list[str]
    goals: int
    executions: int
    successes: int
    attempts: int
    wall_s: float
    in_window_s: float
    in_window_share: float
    framework_overhead_j: float
    overhead_s: float
    energy_source: str
    modeled: bool
    domains: list[dict[str, Any]]
    samples: int
    meter: str
    backend: str
    model: str
    threads: int
    host: str = ""
    flags: list[str] = field(default_factory=list)
    hashes: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    conservation_residual: float | None = (
        None  # largest relative residual of phases and calls (None: no energy)
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_partials(paths: RunPaths) -> None:
    """Remove what a killed earlier attempt of this job may have left (temporary files)."""
    for d in {p.parent for p in paths.all()}:
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.endswith(".partial")):
                p.unlink(missing_ok=True)


def window_share(goals: pd.DataFrame, wall_s: float) -> tuple[float, float]:
    """Seconds inside attempt windows (union, so overlaps never count twice) and their share of ``wall_s``."""
    spans = sorted(
        (float(a), float(b))
        for a, b in zip(goals.get("t0", []), goals.get("t1", []), strict=False)
        if pd.notna(a) and pd.notna(b) and b > a
    )
    total = 0.0
    cur: list[float] | None = None
    for a, b in spans:
        if cur is None or a > cur[1]:
            if cur is not None:
                total += cur[1] - cur[0]
            cur = [a, b]
        else:
            cur[1] = max(cur[1], b)
    if cur is not None:
        total += cur[1] - cur[0]
    share = total / wall_s if wall_s > 0 else float("nan")
    return total, share
