"""Run a family's goals in both modes and collect per-attempt outcomes.

**Order.** For each goal the executions of all modes run back to back. Goal ``i``
(0-based position in the goal list) of repetition ``rep`` runs the modes in the given
order when ``i + rep`` is even and in reverse order when it is odd (:func:`mode_order`).
So with ``modes = (linear, agentic)``, rep 0 runs linear first on goals 0, 2, 4, ... and
agentic first on goals 1, 3, 5, ...; rep 1 swaps that. Slow drift (temperature, frequency,
background load) then hits both modes alike.

:func:`execute_family` is the unit the measurement job (:func:`alems.jobs.run_family.run_family`,
also behind ``alems run``) calls once per ``(family, rep)`` inside its recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from alems.agents.config import AgentConfig
from alems.agents.events import EventLog
from alems.agents.executors import ATTEMPT_FIELDS, AttemptOutcome, run_execution
from alems.contracts import MODES
from alems.errors import ConfigError
from alems.io import atomic_write_with
from alems.llm.base import Backend
from alems.tasks import Family, Goal, materialise_db


def parse_modes(modes: str | Sequence[str]) -> tuple[str, ...]:
    """``"linear,agentic"`` or a sequence -> a validated tuple without duplicates."""
    items = [m.strip() for m in (modes.split(",") if isinstance(modes, str) else modes) if m.strip()]
    if not items:
        raise ConfigError("no modes given", fix="use --modes linear,agentic (or one of them)")
    bad = [m for m in items if m not in MODES]
    if bad:
        raise ConfigError(f"unknown mode(s): {', '.join(bad)}", fix=f"modes are: {', '.join(MODES)}")
    if len(set(items)) != len(items):
        raise ConfigError(f"mode listed twice in {items}", fix="list each mode once")
    return tuple(items)


def mode_order(index: int, rep: int, modes: Sequence[str]) -> list[str]:
    """Modes in the given order when ``index + rep`` is even, reversed when odd."""
    return list(modes) if (index + rep) % 2 == 0 else list(reversed(modes))


# --------------------------------------------------------------------------- progress
class GoalProgress:
    """A rich progress bar over goal executions: done, left, running success rate."""

    def __init__(self, total: int, description: str = "goals", *, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.success = 0
        self.by_mode: dict[str, list[int]] = {}
        self._progress: Any = None
        if enabled and total > 0:
            # rich only when a bar is shown: alems doctor and measure import the agents (through
            # alems.proxy) and must run with the core dependencies only (tests/test_energy_cli.py)
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} done, {task.fields[left]} left"),
                TextColumn("success {task.fields[rate]}"),
                TextColumn("{task.fields[modes]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, left=total, rate="-", modes="")
            self._progress.start()

    def advance(self, mode: str, success: bool) -> None:
        self.done += 1
        self.success += int(success)
        s, n = self.by_mode.setdefault(mode, [0, 0])
        self.by_mode[mode] = [s + int(success), n + 1]
        if self._progress is not None:
            modes = "  ".join(f"{m} {s}/{n}" for m, (s, n) in self.by_mode.items())
            self._progress.update(
                self._task,
                advance=1,
                left=self.total - self.done,
                rate=f"{100.0 * self.success / self.done:.0f}%",
                modes=modes,
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> GoalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- one (family, rep)
def execute_family(
    family: Family,
    goals: Sequence[Goal],
    *,
    modes: Sequence[str],
    rep: int,
    backend: Backend,
    events: EventLog,
    cfg: AgentConfig,
    workdir: str | Path,
    progress: bool | GoalProgress = True,
    sleep: Callable[[float], None] = time.sleep,
) -> list[AttemptOutcome]:
    """Run every goal in every mode (alternating order, see :func:`mode_order`).

    Returns the per-attempt outcomes in execution order. ``progress`` is ``True`` for a
    bar of this call's own, ``False`` for none, or a shared :class:`GoalProgress`.
    """
    modes = parse_modes(modes)
    workdir = Path(workdir)
    if isinstance(progress, GoalProgress):
        bar, own = progress, False
    else:
        bar, own = GoalProgress(len(goals) * len(modes), f"{family.name} rep {rep}", enabled=progress), True
    outcomes: list[AttemptOutcome] = []
    try:
        for i, goal in enumerate(goals):
            master = None
            if goal.has_db:  # harness set-up, outside every measured window
                master = materialise_db(goal, workdir / goal.goal_id / "db.sqlite")
            for mode in mode_order(i, rep, modes):
                rows = run_execution(
                    family,
                    goal,
                    mode,
                    rep=rep,
                    backend=backend,
                    events=events,
                    cfg=cfg,
                    workdir=workdir,
                    master_db=master,
                    sleep=sleep,
                )
                outcomes.extend(rows)
                bar.advance(mode, rows[-1].success)
    finally:
        if own:
            bar.close()
    return outcomes


def outcomes_frame(outcomes: Sequence[AttemptOutcome]) -> pd.DataFrame:
    """Outcomes as a DataFrame with the columns of :data:`~alems.agents.executors.ATTEMPT_FIELDS`, in order."""
    return pd.DataFrame([asdict(o) for o in outcomes], columns=list(ATTEMPT_FIELDS))


def write_attempts_csv(outcomes: Sequence[AttemptOutcome], path: str | Path) -> None:
    """Write the per-attempt table atomically."""
    df = outcomes_frame(outcomes)
    atomic_write_with(path, lambda tmp: df.to_csv(tmp, index=False))
