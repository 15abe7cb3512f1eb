"""One measurement job: run one ``(family, rep)`` inside a recording, then write its files.

The Snakemake ``run_family`` rule (:func:`run_family_job`) and ``alems run``
(:mod:`alems.jobs.standalone`) both run :func:`run_family`:

1. the recording starts (with the meter on, a :class:`~alems.energy.sampler.Sampler` for the
   whole job: :mod:`alems.jobs.recording`);
2. the LLM backend loads (inside the recorded span: it is framework overhead, never goal energy);
3. every goal of the family runs in all modes, back to back, the order alternating from
   goal to goal, with an :class:`~alems.agents.events.EventLog` on the recording's clock
   (the sampler's boundary read), so every attempt, LLM and tool edge has an exact counter read;
4. the recording stops and accounts (:func:`alems.accounting.account`) against the idle baseline;
5. ``samples.parquet``, ``events.jsonl``, ``goals.csv`` and ``run.json`` are written atomically,
   ``goals.csv`` and ``run.json`` last. A job killed at any point leaves no complete set
   of outputs, so Snakemake reruns it.

``run.json`` carries what the three contract files do not: the job's wall time, the
share of it inside attempt windows, the framework overhead energy, the meter's domains
and sources, and the provenance hashes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alems.accounting import write_calls
from alems.agents.events import EventLog, read_events
from alems.agents.executors import AttemptOutcome
from alems.agents.runner import execute_family
from alems.baseline import idle_busy_cpu_per_s, load_baseline, this_host
from alems.errors import ConfigError
from alems.io import atomic_path, atomic_write_json
from alems.jobs.baseline import host_hw_hash, job_baseline
from alems.jobs.outputs import JobResult, RunPaths, clean_partials, window_share
from alems.jobs.preflight import preflight_study
from alems.jobs.recording import MeterRecording, Recorded, Recording, open_study_meter
from alems.llm.base import Backend
from alems.llm.config import LLMConfig
from alems.llm.factory import close_backend, make_backend
from alems.llm.oracle import OracleBackend, uses_oracle
from alems.provenance import load_hashes
from alems.settings import StudySettings
from alems.tasks import Family, Goal, get_family

log = logging.getLogger("alems.jobs")


# --------------------------------------------------------------------------- the backend
def _job_llm(llm: LLMConfig, model_path: str | None) -> LLMConfig:
    """``llm`` with the job's model file (the workflow's fetched input) where the config names none."""
    if (
        model_path
        and llm.backend == "llamacpp"
        and not llm.model_path
        and Path(model_path).resolve() != (Path(llm.models_dir) / f"{llm.model}.gguf").resolve()
    ):
        return dataclasses.replace(llm, model_path=str(model_path))
    return llm


def study_backend(
    settings: StudySettings, goals: Sequence[Goal], *, threads: int | None, model_path: str | None = None
) -> Backend:
    """The backend the study's config names: the oracle policy (``scripted`` with no fixed
    ``script``, :mod:`alems.llm.oracle`) playing ``goals``, else :func:`alems.llm.factory.make_backend`."""
    if uses_oracle(settings.llm):
        return OracleBackend.from_config(goals, settings.oracle)
    return make_backend(_job_llm(settings.llm, model_path), threads=threads)


# --------------------------------------------------------------------------- the job's steps
def _family_goals(settings: StudySettings, family: str) -> tuple[Family, list[Goal]]:
    fam = get_family(family, settings.config)
    goals = fam.generate(settings.study.seed, settings.study.tasks)
    if not goals:
        raise ConfigError(f"family {family} produced no goals", "set study.tasks >= 1")
    return fam, goals


def _run_goals(
    settings: StudySettings,
    fam: Family,
    goals: Sequence[Goal],
    rep: int,
    events_path: Path,
    recording: Recording,
    *,
    backend: Backend | None,
    threads: int | None,
    model_path: str | None,
    progress: bool,
    workdir: Path,
    sleep: Callable[[float], None],
) -> tuple[list[AttemptOutcome], str, str, float]:
    """Steps 1-4 of the module docstring: the outcomes, the backend's name and model, the wall time.

    A backend passed in is the caller's to close; one built here is closed here."""
    own = backend is None
    recording.start()
    t_start = recording.clock()
    try:
        if backend is None:
            backend = study_backend(settings, goals, threads=threads, model_path=model_path)
        with EventLog(events_path, clock=recording.clock) as events_log:
            outcomes = execute_family(
                fam,
                goals,
                modes=settings.study.modes,
                rep=rep,
                backend=backend,
                events=events_log,
                cfg=settings.agents,
                workdir=workdir,
                progress=progress,
                sleep=sleep,
            )
        t_end = recording.clock()
    finally:
        recording.stop()
        if own:
            close_backend(backend)
    name = str(getattr(backend, "name", type(backend).__name__))
    return outcomes, name, str(getattr(backend, "model", "")), float(t_end - t_start)


def _job_result(
    settings: StudySettings,
    family: str,
    rep: int,
    n_goals: int,
    recorded: Recorded,
    *,
    wall_s: float,
    meter: str,
    backend: tuple[str, str],
    run_id: str,
    threads: int | None,
    hashes: Mapping[str, Any] | None,
    baseline_info: Mapping[str, Any] | None,
) -> JobResult:
    goals_df = recorded.goals
    in_s, share = window_share(goals_df, wall_s)
    final = goals_df[goals_df["final_attempt"].astype(bool)] if len(goals_df) else goals_df
    return JobResult(
        family=family,
        rep=int(rep),
        run_id=run_id,
        modes=list(settings.study.modes),
        goals=n_goals,
        executions=len(final),
        successes=int(final["success"].astype(bool).sum()) if len(final) else 0,
        attempts=len(goals_df),
        wall_s=wall_s,
        in_window_s=in_s,
        in_window_share=share,
        framework_overhead_j=recorded.framework_overhead_j,
        overhead_s=recorded.overhead_s,
        energy_source=recorded.energy_source,
        modeled=recorded.modeled,
        domains=recorded.domains,
        samples=recorded.samples,
        meter=meter,
        backend=backend[0],
        model=backend[1],
        threads=int(threads or 0),
        host=this_host(),
        flags=recorded.flags,
        hashes=dict(hashes or {}),
        baseline=dict(baseline_info or {}),
        conservation_residual=recorded.conservation_residual,
    )


def _write_outputs(paths: RunPaths, recording: Recording, recorded: Recorded, job: JobResult) -> None:
    """Step 5: the outputs, goals.csv and run.json last (until they exist the job is incomplete)."""
    recording.write_samples(paths.samples)
    if paths.calls is not None:
        write_calls(recorded.calls, paths.calls)
    with atomic_path(paths.goals) as tmp:
        recorded.goals.to_csv(tmp, index=False)
    atomic_write_json(paths.meta, job.to_dict())


# --------------------------------------------------------------------------- the job
def run_family(
    settings: StudySettings,
    family: str,
    rep: int,
    paths: RunPaths,
    recording: Recording,
    *,
    run_id: str = "",
    hashes: Mapping[str, Any] | None = None,
    baseline_info: Mapping[str, Any] | None = None,
    threads: int | None = 1,
    model_path: str | None = None,
    backend: Backend | None = None,
    progress: bool = False,
    workdir: str | os.PathLike[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobResult:
    """Run one ``(family, rep)`` inside ``recording`` and write its files. See the module docstring.

    ``recording`` is a :class:`~alems.jobs.recording.MeterRecording` (the meter on) or a
    :class:`~alems.jobs.recording.NullRecording` (none); it is closed when the job ends.
    ``backend`` overrides the configured one (the caller keeps it, and closes it).
    """
    try:
        clean_partials(paths)
        fam, goals = _family_goals(settings, family)
        work = Path(workdir) if workdir is not None else paths.goals.parent / "work"
        shutil.rmtree(work, ignore_errors=True)
        outcomes, name, model, wall_s = _run_goals(
            settings,
            fam,
            goals,
            rep,
            paths.events,
            recording,
            backend=backend,
            threads=threads,
            model_path=model_path,
            progress=progress,
            workdir=work,
            sleep=sleep,
        )
        recorded = recording.finish(read_events(paths.events), outcomes, run_id)
    finally:
        recording.close()
    job = _job_result(
        settings,
        family,
        rep,
        len(goals),
        recorded,
        wall_s=wall_s,
        meter=recording.meter_name,
        backend=(name, model),
        run_id=run_id,
        threads=threads,
        hashes=hashes,
        baseline_info=baseline_info,
    )
    _write_outputs(paths, recording, recorded, job)
    log.info(
        "%s rep%d: %d executions, %d successes, %.1f s wall, %.1f%% inside attempt windows",
        family,
        rep,
        job.executions,
        job.successes,
        wall_s,
        100 * job.in_window_share,
    )
    return job


def run_family_job(
    config: Mapping[str, Any],
    family: str,
    rep: int,
    outputs: Mapping[str, Any],
    *,
    hashes_path: str | os.PathLike[str],
    baseline_path: str | os.PathLike[str],
    threads: int,
    model_path: str | None = None,
    work_root: str | os.PathLike[str] = Path("logs") / "run_family",
) -> JobResult:
    """The Snakemake ``run_family`` job: the LLM preflight, provenance and this host's baseline
    (:func:`~alems.jobs.baseline.job_baseline`), then :func:`run_family` with the meter on.

    ``config`` holds the sections the rule passes (``study``, ``llm``, ``agents``, ...). The
    attempts' sandboxes go to ``work_root/work/{family}_rep{rep}`` (the rule's log folder: one
    per arm, so arms measured in parallel on a cluster never share one)."""
    settings = StudySettings.from_config(config)
    preflight_study(settings.llm, threads=threads)
    hashes = load_hashes(hashes_path)
    recorded = hashes.to_dict()
    hw = host_hw_hash()
    if hw is not None and hw != hashes.hw_hash:
        # On a cluster this job may land on another machine than the fingerprint: record the
        # host it measured, so the tables see the difference and refuse to mix silently.
        log.warning("this host's hw_hash %s differs from the fingerprint's %s", hw, hashes.hw_hash)
        recorded["hw_hash"] = hw
    meter = open_study_meter(settings.energy)
    try:
        base, info = job_baseline(
            load_baseline(baseline_path),
            settings.energy,
            host=this_host(),
            hw_hash=hw,
            meter=meter,
            config=settings.baseline,  # the current protocol and max_age_s judge this host's cache
        )
        recording = MeterRecording(
            meter,
            settings.energy,
            settings.accounting,
            idle_power_w=base.power_w,
            idle_busy_cpu_per_s=idle_busy_cpu_per_s(base),
        )
    except BaseException:
        meter.close()
        raise
    return run_family(
        settings,
        family,
        rep,
        RunPaths.from_mapping(outputs),
        recording,
        run_id=hashes.run_id or "",
        hashes=recorded,
        baseline_info=info,
        threads=threads,
        model_path=model_path,
        workdir=Path(work_root) / "work" / f"{family}_rep{rep}",
    )
