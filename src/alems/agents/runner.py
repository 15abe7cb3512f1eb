"""Run a family's goals in both modes and collect per-attempt outcomes.

**Order.** For each goal the executions of all modes run back to back. Goal ``i``
(0-based position in the goal list) of repetition ``rep`` runs the modes in the given
order when ``i + rep`` is even and in reverse order when it is odd (:func:`mode_order`).
So with ``modes = (linear, agentic)``, rep 0 runs linear first on goals 0, 2, 4, ... and
agentic first on goals 1, 3, 5, ...; rep 1 swaps that. Slow drift (temperature, frequency,
background load) then hits both modes alike.

:func:`execute_family` is the unit the pipeline calls once per ``(family, rep)`` inside
its energy measurement; :func:`run_family` is the stand-alone driver of ``alems run``
(all reps, writes ``events.jsonl`` and ``attempts.csv``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alems.agents.config import AgentConfig
from alems.agents.events import EventLog
from alems.agents.executors import ATTEMPT_FIELDS, AttemptOutcome, run_execution
from alems.contracts import MODES
from alems.errors import ConfigError
from alems.io import atomic_write_json, atomic_write_with
from alems.llm.base import Backend
from alems.tasks import Family, Goal, get_family, materialise_db


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
        self._progress = None
        if enabled and total > 0:
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
    own = isinstance(progress, bool)
    bar = (
        GoalProgress(len(goals) * len(modes), f"{family.name} rep {rep}", enabled=progress)
        if own
        else progress
    )
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


def outcomes_frame(outcomes: Sequence[AttemptOutcome]):  # -> pandas.DataFrame
    """Outcomes as a DataFrame with the columns of :data:`~alems.agents.executors.ATTEMPT_FIELDS`, in order."""
    import pandas as pd

    return pd.DataFrame([asdict(o) for o in outcomes], columns=list(ATTEMPT_FIELDS))


def write_attempts_csv(outcomes: Sequence[AttemptOutcome], path: str | Path) -> None:
    """Write the per-attempt table atomically."""
    df = outcomes_frame(outcomes)
    atomic_write_with(path, lambda tmp: df.to_csv(tmp, index=False))


# --------------------------------------------------------------------------- stand-alone run
@dataclass
class CellSummary:
    mode: str
    executions: int
    successes: int
    attempts: int
    llm_calls: int
    tool_calls: int
    tokens_in: int
    tokens_out: int

    @property
    def success_rate(self) -> float:
        return self.successes / self.executions if self.executions else float("nan")


@dataclass
class RunSummary:
    family: str
    group: str
    out_dir: Path
    wall_s: float
    cells: list[CellSummary] = field(default_factory=list)
    outcomes: list[AttemptOutcome] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "group": self.group,
            "out_dir": str(self.out_dir),
            "wall_s": self.wall_s,
            "cells": [{**asdict(c), "success_rate": c.success_rate} for c in self.cells],
        }


def summarise(outcomes: Sequence[AttemptOutcome], modes: Sequence[str]) -> list[CellSummary]:
    cells = []
    for mode in modes:
        rows = [o for o in outcomes if o.mode == mode]
        finals = [o for o in rows if o.final_attempt]
        cells.append(
            CellSummary(
                mode=mode,
                executions=len(finals),
                successes=sum(o.success for o in finals),
                attempts=len(rows),
                llm_calls=sum(o.llm_calls for o in rows),
                tool_calls=sum(o.tool_calls for o in rows),
                tokens_in=sum(o.tokens_in for o in rows),
                tokens_out=sum(o.tokens_out for o in rows),
            )
        )
    return cells


def run_family(
    family_name: str,
    *,
    backend: Backend,
    out_dir: str | Path,
    modes: str | Sequence[str] = MODES,
    tasks: int = 10,
    reps: int = 1,
    seed: int = 0,
    cfg: AgentConfig | None = None,
    family_config: Mapping[str, Any] | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    run_info: Mapping[str, Any] | None = None,
) -> RunSummary:
    """Generate ``tasks`` goals of a family (seed ``seed``), run them ``reps`` times in
    ``modes``, and write ``out_dir/events.jsonl``, ``out_dir/attempts.csv`` and
    ``out_dir/run.json`` (settings and the per-mode summary)."""
    if tasks < 1 or reps < 1:
        raise ConfigError(
            f"tasks and reps must be >= 1 (got tasks={tasks}, reps={reps})",
            fix="pass --tasks N --reps R with N, R >= 1",
        )
    cfg = cfg or AgentConfig()
    modes_t = parse_modes(modes)
    family = get_family(family_name, family_config)
    goals = family.generate(seed, tasks)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / "work"
    t0 = time.monotonic()
    outcomes: list[AttemptOutcome] = []
    with (
        EventLog(out / "events.jsonl", clock=clock) as events,
        GoalProgress(len(goals) * len(modes_t) * reps, family.name, enabled=progress) as bar,
    ):
        for rep in range(reps):
            outcomes += execute_family(
                family,
                goals,
                modes=modes_t,
                rep=rep,
                backend=backend,
                events=events,
                cfg=cfg,
                workdir=workdir,
                progress=bar,
                sleep=sleep,
            )
    wall = time.monotonic() - t0
    write_attempts_csv(outcomes, out / "attempts.csv")
    summary = RunSummary(
        family=family.name,
        group=family.group,
        out_dir=out,
        wall_s=wall,
        cells=summarise(outcomes, modes_t),
        outcomes=outcomes,
    )
    info = {
        **summary.to_dict(),
        "tasks": tasks,
        "reps": reps,
        "seed": seed,
        "modes": list(modes_t),
        "agents": cfg.to_dict(),
        "backend": {
            "name": getattr(backend, "name", type(backend).__name__),
            "model": getattr(backend, "model", None),
        },
        **dict(run_info or {}),
    }
    atomic_write_json(out / "run.json", json.loads(json.dumps(info, default=str)))
    return summary


def load_run_config(path: str | Path | None) -> dict[str, Any]:
    """A YAML (or JSON) file with optional sections ``llm``, ``agents`` and ``user_families``
    (the workflow config works as is); ``{}`` when ``path`` is None."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found", fix="pass --config with an existing YAML file")
    import yaml

    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}", fix="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping", fix="write keys such as llm:, agents:")
    return data


def run_with_settings(
    family_name: str,
    *,
    out_dir: str | Path,
    modes: str | Sequence[str] = MODES,
    tasks: int = 10,
    reps: int = 1,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    llm_overrides: Mapping[str, Any] | None = None,
    agent_overrides: Mapping[str, Any] | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> RunSummary:
    """``alems run``: merge config file sections with command-line overrides, build the
    backend (``alems.llm.make_backend``) and the :class:`AgentConfig`, and :func:`run_family`."""
    from alems.config import deep_merge
    from alems.llm.config import LLMConfig
    from alems.llm.factory import backend_provenance, make_backend

    config = dict(config or {})
    llm_map = {
        **dict(config.get("llm") or {}),
        **{k: v for k, v in (llm_overrides or {}).items() if v is not None},
    }
    overrides = {k: v for k, v in (agent_overrides or {}).items() if v is not None}
    agent_map = deep_merge(config.get("agents") or {}, overrides)  # max_tokens merges per kind
    agent_map.setdefault("seed", seed)
    llm_map.setdefault("seed", seed)
    llm_cfg = LLMConfig.from_dict(llm_map)
    cfg = AgentConfig.from_dict(agent_map)
    backend = make_backend(llm_cfg, threads=threads)
    try:
        return run_family(
            family_name,
            backend=backend,
            out_dir=out_dir,
            modes=modes,
            tasks=tasks,
            reps=reps,
            seed=seed,
            cfg=cfg,
            family_config=config,
            progress=progress,
            run_info={"llm": {**llm_cfg.to_dict(), "provenance": backend_provenance(backend)}},
        )
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
