"""``alems run``: one family outside Snakemake, with the ``run_family`` job's own code.

:func:`plan_standalone` merges ``--config`` and the command line once into a
:class:`~alems.settings.StudySettings`; :func:`run_standalone` runs
:func:`alems.jobs.run_family.run_family` once per rep into ``DIR/rep{R}/``, then writes
``DIR/attempts.csv`` (every rep's rows), ``DIR/events.jsonl`` (every rep's events, in order)
and ``DIR/run.json`` (the settings and the per-mode summary).

* The meter on (the default): the four contract files per rep, ``attempts.csv`` with the
  ``goals.csv`` columns (energy included), an idle baseline first (the host's cached one
  when it may be reused, else measured with ``--config``'s ``baseline`` settings, or a
  short protocol when it gives none), and EpG per mode (no bootstrap) in the summary.
* The null meter (``--no-energy``): no baseline, no samples, and ``attempts.csv`` with the
  attempt outcomes' columns only. Nothing is measured, so one backend serves every rep.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alems.agents.runner import parse_modes
from alems.baseline import Baseline, BaselineConfig, idle_busy_cpu_per_s
from alems.config import deep_merge
from alems.contracts import MODES, family_group, hashed_config
from alems.errors import ConfigError
from alems.io import atomic_path, atomic_write_json
from alems.jobs.baseline import measure_idle_baseline
from alems.jobs.outputs import JobResult, RunPaths
from alems.jobs.recording import MeterRecording, NullRecording, Recording, open_study_meter
from alems.jobs.run_family import run_family, study_backend
from alems.llm.base import Backend
from alems.llm.factory import backend_provenance, close_backend
from alems.metrics import MetricsConfig, compute_tables
from alems.provenance import Fingerprint, fingerprint
from alems.settings import StudySettings
from alems.tasks import get_family

#: ``alems run``'s idle baseline when --config gives none: short, so a one-off run starts fast.
RUN_BASELINE = {"settle_s": 1.0, "windows": 3, "window_s": 1.0, "max_retries": 0}
#: The sections of ``--config`` that ``alems run`` reads (the command line gives the study).
RUN_SECTIONS = ("llm", "agents", "user_families", "energy", "baseline", "accounting")


# --------------------------------------------------------------------------- the summary
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
    """What ``alems run`` prints. ``epg``: the EpG rows of the family (meter on; ``None`` without)."""

    family: str
    group: str
    out_dir: Path
    wall_s: float
    cells: list[CellSummary] = field(default_factory=list)
    epg: pd.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "group": self.group,
            "out_dir": str(self.out_dir),
            "wall_s": self.wall_s,
            "cells": [{**asdict(c), "success_rate": c.success_rate} for c in self.cells],
        }


def summarise(attempts: pd.DataFrame, modes: Sequence[str]) -> list[CellSummary]:
    """Per mode: executions (final attempts), successes, attempts, calls and tokens."""
    cells = []
    for mode in modes:
        rows = attempts[attempts["mode"] == mode]
        finals = rows[rows["final_attempt"].astype(bool)]
        cells.append(
            CellSummary(
                mode=mode,
                executions=len(finals),
                successes=int(finals["success"].astype(bool).sum()),
                attempts=len(rows),
                llm_calls=int(rows["llm_calls"].sum()),
                tool_calls=int(rows["tool_calls"].sum()),
                tokens_in=int(rows["tokens_in"].sum()),
                tokens_out=int(rows["tokens_out"].sum()),
            )
        )
    return cells


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class StandaloneRun:
    """One ``alems run``: the settings (``--config`` under the command line, merged once), the
    family, where it writes, and the idle-baseline protocol and cache it uses with the meter on."""

    settings: StudySettings
    family: str
    out_dir: Path
    baseline: BaselineConfig
    baseline_cache: Path


def _given(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options the command line set (``None`` = not given)."""
    return {k: v for k, v in dict(overrides or {}).items() if v is not None}


def _require_replies(config_llm: Mapping[str, Any], llm: Mapping[str, Any]) -> None:
    """A scripted run needs replies: ``--script``, ``llm.script``, or ``llm.oracle`` in ``--config``."""
    if llm.get("backend", config_llm.get("backend")) == "scripted" and not (
        llm.get("script") or config_llm.get("script") or config_llm.get("oracle")
    ):
        raise ConfigError(
            "llm.backend is scripted but llm.script is empty",
            fix="set llm.script to a list of replies (used in order, cycling), or an llm.oracle section "
            "in --config for the oracle policy",
        )


def plan_standalone(
    family: str,
    *,
    out_dir: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
    modes: str | Sequence[str] = MODES,
    tasks: int = 10,
    reps: int = 1,
    seed: int = 0,
    llm_overrides: Mapping[str, Any] | None = None,
    agent_overrides: Mapping[str, Any] | None = None,
    energy_overrides: Mapping[str, Any] | None = None,
) -> StandaloneRun:
    """``--config``'s :data:`RUN_SECTIONS` with the command line on top (``seed`` seeds the goals,
    the LLM and the agents), validated against the schema once.

    ``*_overrides`` map config keys of ``llm``, ``agents`` and ``energy`` to the options' values;
    ``None`` means not given. ``agents`` merges per key (``max_tokens`` per kind)."""
    if tasks < 1 or reps < 1:
        raise ConfigError(
            f"tasks and reps must be >= 1 (got tasks={tasks}, reps={reps})",
            fix="pass --tasks N --reps R with N, R >= 1",
        )
    base = {k: v for k, v in dict(config or {}).items() if k in RUN_SECTIONS}
    llm, agents, energy = _given(llm_overrides), _given(agent_overrides), _given(energy_overrides)
    if "script" in llm:
        llm["script"] = list(llm["script"])
    _require_replies(base.get("llm") or {}, llm)
    get_family(family, base)  # an unknown family fails here, naming the family
    study = {"families": [family], "modes": list(parse_modes(modes)), "tasks": tasks, "reps": reps}
    over: dict[str, Any] = {
        "study": {**study, "seed": seed},
        "llm": {"seed": seed, **llm},
        "agents": {"seed": seed, **agents},
    }
    if energy:
        over["energy"] = energy
    settings = StudySettings.from_config(deep_merge(base, over))
    if "baseline" in base:
        return StandaloneRun(
            settings, family, Path(out_dir), settings.baseline, Path("resources/baseline/idle.json")
        )
    # Without a baseline section in --config, a short protocol (about 4 s) and its own host cache.
    quick = BaselineConfig.from_dict({**settings.config["baseline"], **RUN_BASELINE})
    return StandaloneRun(settings, family, Path(out_dir), quick, Path("resources/baseline/idle-run.json"))


# --------------------------------------------------------------------------- the run
@dataclass
class _Measured:
    """The meter-on extras of a run: its provenance and its idle baseline."""

    fingerprint: Fingerprint
    baseline: Baseline

    @property
    def run_id(self) -> str:
        return self.fingerprint.hashes.run_id or ""

    def job_record(self) -> dict[str, Any]:
        """What each rep's ``run.json`` records of them (``run_family``'s keyword arguments)."""
        base = self.baseline
        return {
            "run_id": self.run_id,
            "hashes": self.fingerprint.hashes.to_dict(),
            "baseline_info": {"baseline_id": base.baseline_id, "status": base.status, "host": base.host},
        }


def _measure_baseline(plan: StandaloneRun) -> _Measured:
    """Fingerprint the run (``hashes.json``), then its idle baseline (``idle.json``)."""
    out = plan.out_dir
    fp = fingerprint(hashed_config(plan.settings.config))
    atomic_write_json(out / "hashes.json", fp.hashes.to_dict())
    base = measure_idle_baseline(
        plan.settings.energy,
        plan.baseline,
        out / "idle.json",
        hashes_path=out / "hashes.json",
        cache_path=plan.baseline_cache,
    )
    return _Measured(fp, base)


def _recording(plan: StandaloneRun, measured: _Measured | None, clock: Callable[[], float]) -> Recording:
    if measured is None:
        return NullRecording(clock)
    energy = plan.settings.energy
    return MeterRecording(
        open_study_meter(energy),
        energy,
        plan.settings.accounting,
        idle_power_w=measured.baseline.power_w,
        idle_busy_cpu_per_s=idle_busy_cpu_per_s(measured.baseline),
    )


def _rep_paths(plan: StandaloneRun, rep: int, measured: _Measured | None) -> RunPaths:
    paths = RunPaths.in_dir(plan.out_dir / f"rep{rep}")
    # without a meter the table is the attempts' outcomes, not the goals.csv contract
    return (
        paths
        if measured is not None
        else dataclasses.replace(paths, goals=paths.goals.with_name("attempts.csv"))
    )


def _combine(out: Path, reps: Sequence[RunPaths]) -> pd.DataFrame:
    """``attempts.csv``, ``events.jsonl`` and ``calls.csv`` of all reps, in order (the rows as each rep wrote them)."""
    frames = [pd.read_csv(p.goals, dtype=str, keep_default_na=False) for p in reps]
    with atomic_path(out / "attempts.csv") as tmp:
        pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
    with atomic_path(out / "events.jsonl") as tmp:
        tmp.write_text("".join(p.events.read_text() for p in reps))
    calls = [
        pd.read_csv(p.calls, dtype=str, keep_default_na=False) for p in reps if p.calls and p.calls.is_file()
    ]
    if calls:
        with atomic_path(out / "calls.csv") as tmp:
            pd.concat(calls, ignore_index=True).to_csv(tmp, index=False)
    return pd.read_csv(out / "attempts.csv", keep_default_na=False, na_values=[""])


def _run_record(
    plan: StandaloneRun,
    summary: RunSummary,
    jobs: Sequence[JobResult],
    measured: _Measured | None,
    backend: Backend | None,
) -> dict[str, Any]:
    """``DIR/run.json``: the summary, the settings, and what the meter measured (or the backend used)."""
    s = plan.settings
    info: dict[str, Any] = {
        **summary.to_dict(),
        "tasks": s.study.tasks,
        "reps": s.study.reps,
        "seed": s.study.seed,
        "modes": list(s.study.modes),
        "agents": s.agents.to_dict(),
        "llm": s.llm.to_dict(),
    }
    if measured is None:
        info["backend"] = {
            "name": getattr(backend, "name", type(backend).__name__),
            "model": getattr(backend, "model", None),
        }
        info["llm"]["provenance"] = backend_provenance(backend)
        return info
    return {
        **info,
        "run_id": measured.run_id,
        "energy": s.config["energy"],
        "jobs": [j.to_dict() for j in jobs],
        "epg": [] if summary.epg is None else json.loads(summary.epg.to_json(orient="records")),
        "baseline": measured.baseline.to_dict(),
    }


def run_standalone(
    plan: StandaloneRun,
    *,
    energy: bool = True,
    threads: int | None = None,
    progress: bool = True,
    backend: Backend | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Run ``plan``: with the meter on (``energy``) or the null meter. See the module docstring.

    ``backend`` replaces the configured one (tests; the caller closes it); ``clock`` is the
    null meter's event clock and ``sleep`` the executors' pause between attempts (tests)."""
    s, out = plan.settings, plan.out_dir
    out.mkdir(parents=True, exist_ok=True)
    measured = _measure_baseline(plan) if energy else None
    own = backend is None and measured is None  # nothing measured: one backend serves every rep
    if own:
        goals = get_family(plan.family, s.config).generate(s.study.seed, s.study.tasks)
        backend = study_backend(s, goals, threads=threads)
    t0 = time.monotonic()
    reps = [_rep_paths(plan, rep, measured) for rep in range(s.study.reps)]
    try:
        jobs = [
            run_family(
                s,
                plan.family,
                rep,
                paths,
                _recording(plan, measured, clock),
                **(measured.job_record() if measured else {}),
                threads=threads,
                backend=backend,
                progress=progress,
                workdir=out / "work" / f"rep{rep}",
                sleep=sleep,
            )
            for rep, paths in enumerate(reps)
        ]
    finally:
        if own:
            close_backend(backend)
    attempts = _combine(out, reps)
    group = family_group(plan.family, s.config)
    epg = None
    if measured is not None:
        table, _ = compute_tables(attempts, MetricsConfig(bootstrap=0), {plan.family: group})
        epg = table[table["family"] == plan.family]
    cells = summarise(attempts, s.study.modes)
    summary = RunSummary(plan.family, group, out, time.monotonic() - t0, cells, epg)
    record = _run_record(plan, summary, jobs, measured, backend)
    atomic_write_json(out / "run.json", json.loads(json.dumps(record, default=str)))
    return summary
