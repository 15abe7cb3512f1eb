"""The :class:`Session`: one measured run of a user's own goal executions, from the directory
lock and the meter to the accounting and the four contract files (rules: :mod:`alems.session`).

:class:`RunState` is what a run needs besides its recording to write its files; a session
keeps it in its spool header (:mod:`alems.session.spool`), so :func:`write_run` can write
the files of a killed run from the spool too (:mod:`alems.session.recover`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from alems.accounting import (
    AccountingConfig,
    AccountingResult,
    account,
    contains_modeled,
    empty_calls,
    events_calls,
    parse_events,
    write_calls,
)
from alems.agents.events import EventLog, read_events
from alems.agents.executors import AttemptOutcome
from alems.agents.runner import outcomes_frame
from alems.baseline import (
    Baseline,
    BaselineConfig,
    idle_busy_cpu_per_s,
    load_baseline,
    measure_baseline,
    this_host,
    write_baseline,
)
from alems.contracts import GOALS_COLUMNS, GOALS_EXTRA_COLUMNS, MODES
from alems.energy import open_meter
from alems.energy.base import Domain, Meter
from alems.energy.sampler import Sampler, write_samples
from alems.errors import ConfigError
from alems.io import atomic_path, atomic_write_json
from alems.jobs.outputs import RunPaths, window_share
from alems.provenance import HostPaths, cpu_power_state, fingerprint
from alems.session.lock import DirLock, SessionError
from alems.session.records import Goal, Recorder
from alems.session.signals import SignalGuard, fault_point, interrupt_for, signal_name
from alems.session.spool import Spool, write_outcomes

log = logging.getLogger("alems.session")

#: The idle protocol ``baseline="measure"`` uses unless ``baseline_config`` says otherwise
#: (the same short protocol as ``alems run``: about 4 s).
SESSION_BASELINE: dict[str, Any] = {"settle_s": 1.0, "windows": 3, "window_s": 1.0, "max_retries": 0}
METERS = ("auto", "rapl", "nvml", "model")


def _open_meter(meter: Any, powercap_root: str | None) -> tuple[Meter | None, bool]:
    """``(meter, owned)``: a meter kind is opened here (and closed by the session)."""
    if meter is None or not isinstance(meter, str):
        return meter, False
    if meter not in METERS:
        raise ConfigError(
            f"unknown meter {meter!r}", f"use one of {', '.join(METERS)}, or None for no energy"
        )
    return open_meter(meter, powercap_root=powercap_root), True


def _meter_name(meter: Any) -> str:
    return str(getattr(meter, "name", type(meter).__name__))


@dataclass
class SessionResult:
    """What a finished session wrote (also in ``run.json``)."""

    out_dir: Path
    run_id: str
    goals: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recording:
    """What a run recorded, once the sampler has stopped: the samples and the meter's
    domains (None without a meter), the event records and the end stamp."""

    samples: pd.DataFrame | None
    domains: list[Domain]
    events: list[dict[str, Any]]
    t_end: float


@dataclass
class RunState:
    """What a run's files need besides its recording (the spool header holds it).

    ``idle_w``: idle watts per domain key; ``baseline``: run.json's ``baseline`` record;
    ``meter``: the meter's name (None: no energy); ``extra``: more top-level run.json entries."""

    host: str
    pid: int
    started_unix: float
    t_start: float
    hashes: dict[str, Any]
    idle_w: dict[str, float]
    baseline: dict[str, Any]
    meter: str | None
    interval_ms: float
    accounting: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    #: busy CPU-seconds per second the idle baseline saw (its host_util x CPUs), so accounting
    #: does not remove a background the baseline already holds a second time (DESIGN.md, L2)
    idle_busy_cpu_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunState:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Ending:
    """How a run ended: ``status`` (``complete``, ``aborted`` or ``killed``), the exception type
    that ended it, the signal (``SIGTERM``/``SIGINT``), and the executions it cut short."""

    status: str = "complete"
    error: str | None = None
    signal: str | None = None
    interrupted: list[dict[str, Any]] = field(default_factory=list)


class Session:
    """Record goal executions of your own agent, with the pipeline's meter and accounting.

    ``meter``: ``"auto"``, ``"rapl"``, ``"nvml"``, ``"model"``, an open
    :class:`~alems.energy.base.Meter` (not closed by the session), or ``None`` (no energy).
    ``baseline``: ``"measure"``, ``"none"``, a path to an ``idle.json``, or a
    :class:`~alems.baseline.Baseline` (one measured on another host is refused).
    ``baseline_config`` overrides the idle protocol of ``"measure"`` (default
    :data:`SESSION_BASELINE`); ``baseline_out`` is where a measured baseline is stored
    (default ``DIR/idle.json``). ``clock`` is the sampler's (and so the events') clock: the
    monotonic clock unless a test injects one. ``hashes`` (a mapping with ``hw_hash``,
    ``env_hash``, ``config_hash``, ``run_id``) replaces the fingerprint taken at start.
    ``handle_signals``: from the main thread, SIGTERM and SIGINT end the session cleanly
    (:mod:`alems.session.signals`). See the module docstring for the rules.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        meter: Any = "auto",
        baseline: Any = "measure",
        interval_ms: float = 10.0,
        attribution: str = "cpu_share",
        min_coverage: float = 0.8,
        baseline_config: Mapping[str, Any] | None = None,
        baseline_out: str | os.PathLike[str] | None = None,
        powercap_root: str | None = None,
        hashes: Mapping[str, Any] | None = None,
        sampler_mode: str = "auto",
        clock: Any = time.monotonic,
        handle_signals: bool = True,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.paths = RunPaths.in_dir(self.out_dir)
        self.spool = Spool(self.out_dir)
        self.meter_arg = meter
        self.baseline_arg = baseline
        self.interval_s = float(interval_ms) / 1000.0
        if self.interval_s <= 0:
            raise ConfigError(
                f"interval_ms is {interval_ms!r}; it must be positive", "use e.g. interval_ms=10"
            )
        self.accounting = AccountingConfig(attribution=attribution, min_coverage=float(min_coverage))
        self.baseline_config = dict(SESSION_BASELINE if baseline_config is None else baseline_config)
        self.baseline_out = Path(baseline_out) if baseline_out is not None else self.out_dir / "idle.json"
        self.powercap_root = powercap_root
        self.hashes_arg = dict(hashes) if hashes is not None else None
        self.sampler_mode = sampler_mode
        self.clock = clock
        self.host = this_host()
        self._recorder = Recorder()
        self._dir_lock = DirLock(self.out_dir)
        self._signals = SignalGuard() if handle_signals else None
        self._sampler: Sampler | None = None
        self._meter: Meter | None = None
        self._own_meter = False
        self._state: RunState | None = None
        self._idle_busy: float | None = None  # the baseline's busy CPU-s per s (set with it)
        self._outcomes_fh: Any = None
        self._clock: Any = clock
        self.result: SessionResult | None = None
        self.started = False
        #: Extra top-level entries for run.json (e.g. ``alems track`` records its command here);
        #: what is set before :meth:`start` also reaches the spool header.
        self.meta_extra: dict[str, Any] = {}

    # ------------------------------------------------------------------ start
    def _check_empty(self) -> None:
        spool = self.spool.present()
        if spool and not self.paths.meta.exists():
            raise SessionError(
                f"{self.out_dir} holds a run that was killed before it wrote its files "
                f"({', '.join(p.name for p in spool)})",
                f"turn it into its four files (status killed) with `alems recover {self.out_dir}`, "
                "and give the new session another directory",
            )
        held = [p.name for p in [*self.paths.all(), *spool] if p.exists()]
        if held:
            raise SessionError(
                f"{self.out_dir} already holds a run ({', '.join(held)}); a new session would mix two runs",
                "give the session a new directory, or move the old run away",
            )

    def _measure_baseline(self, meter: Meter, hw_hash: str | None) -> Baseline:
        """The short idle protocol of ``baseline="measure"``, stored at ``baseline_out``."""
        governor, turbo = cpu_power_state(HostPaths())
        base = measure_baseline(
            meter,
            BaselineConfig.from_dict(self.baseline_config),
            hw_hash=hw_hash,
            governor=governor,
            turbo=turbo,
            host=self.host,
        )
        write_baseline(self.baseline_out, base)
        return base

    def _resolve_baseline(self, meter: Meter, hw_hash: str | None) -> tuple[dict[str, float], dict[str, Any]]:
        """The idle power per domain and the ``baseline`` record of run.json (before the sampler starts)."""
        domains = meter.domains()
        b = self.baseline_arg
        if isinstance(b, str) and b == "none":
            return {d.key: 0.0 for d in domains}, {
                "status": "none",
                "origin": "none",
                "note": "no idle baseline: dynamic_j = raw_j",
            }
        path: str | None
        if isinstance(b, str) and b == "measure":
            base, path, origin = self._measure_baseline(meter, hw_hash), str(self.baseline_out), "measured"
        elif isinstance(b, Baseline):
            base, path, origin = b, None, "given"
        elif isinstance(b, str | os.PathLike):
            base, path, origin = load_baseline(b), str(b), "file"
        else:
            raise ConfigError(
                f"baseline {b!r} is not understood",
                'use "measure", "none", a path to an idle.json, or an alems.baseline.Baseline',
            )
        check_baseline_host(base, self.host, path)
        missing = sorted({d.key for d in domains} - set(base.power_w))
        if missing:
            raise SessionError(
                f"the idle baseline ({path or base.baseline_id}) has no power for domain(s) {missing} of this meter",
                'measure a baseline with the same meter: baseline="measure"',
            )
        if not base.stable:
            log.warning(
                "the idle baseline %s is unstable (%s): dynamic and attributed energy are unreliable; "
                "quiet the machine and measure again",
                base.baseline_id,
                "; ".join(base.unstable_reasons) or base.status,
            )
        self._idle_busy = idle_busy_cpu_per_s(base)
        return dict(base.power_w), baseline_record(base, origin=origin, path=path)

    def _meter_label(self) -> str | None:
        """The meter as the config and run.json name it: its kind, or an open meter's name."""
        m = self.meter_arg
        return m if isinstance(m, str) or m is None else _meter_name(m)

    def _accounting_record(self) -> dict[str, Any]:
        return {"attribution": self.accounting.attribution, "min_coverage": self.accounting.min_coverage}

    def _session_config(self) -> dict[str, Any]:
        return {
            "session": {
                "meter": self._meter_label(),
                "interval_ms": self.interval_s * 1000.0,
                "accounting": self._accounting_record(),
            }
        }

    def _start_sampler(self, meter: Meter) -> Any:
        """Start the sampler (its rows journaled in the spool); return the events' clock (its boundary read)."""
        self._sampler = Sampler(
            meter,
            interval_s=self.interval_s,
            clock=self.clock,
            pid=os.getpid(),
            mode=self.sampler_mode,
            journal_dir=self.spool.sampler,
        )
        self._sampler.start()
        return self._sampler.boundary_t

    def start(self) -> Session:
        """Lock the directory, open the meter, take the baseline, write the spool header, start
        the sampler and the event log (and, from the main thread, take SIGTERM/SIGINT)."""
        if self.started:
            raise SessionError("this session was already started", "create a new Session for a new run")
        if self._signals is not None:
            self._signals.install()
        self._dir_lock.acquire()
        try:
            self._check_empty()
            hashes = dict(self.hashes_arg) if self.hashes_arg is not None else None
            if hashes is None:
                hashes = fingerprint(self._session_config()).hashes.to_dict()
            self._meter, self._own_meter = _open_meter(self.meter_arg, self.powercap_root)
            idle_w: dict[str, float] = {}
            base_info: dict[str, Any] = {"status": "none", "origin": "none", "note": "no meter"}
            if self._meter is not None:
                idle_w, base_info = self._resolve_baseline(self._meter, hashes.get("hw_hash"))
            self._state = RunState(
                host=self.host,
                pid=os.getpid(),
                started_unix=time.time(),
                t_start=0.0,
                hashes=hashes,
                idle_w=idle_w,
                baseline=base_info,
                meter=None if self._meter is None else _meter_name(self._meter),
                interval_ms=self.interval_s * 1000.0,
                accounting=self._accounting_record(),
                extra=self.meta_extra,
                idle_busy_cpu_per_s=self._idle_busy,
            )
            self.spool.write_header(self._state.to_dict())
            clock: Any = self.clock
            if self._meter is not None:
                clock = self._start_sampler(self._meter)
            self._state.t_start = float(clock())
            self.spool.write_header(self._state.to_dict())
            self._outcomes_fh = self.spool.open_outcomes()
            self._recorder.on_goal_end = lambda ended: write_outcomes(self._outcomes_fh, ended)
            self._recorder.log = EventLog(self.paths.events, clock=clock)
            self._clock = clock
        except BaseException:
            self._abort_start()
            raise
        self.started = True
        return self

    def _abort_start(self) -> None:
        if self._sampler is not None:
            with suppress(Exception):
                self._sampler.stop()
        if self._own_meter and self._meter is not None:
            self._meter.close()
        if self._outcomes_fh is not None:
            self._outcomes_fh.close()
        if self._state is not None:
            self.spool.remove()  # this start's own spool (never a killed run's): nothing was recorded yet
        self._dir_lock.release()
        if self._signals is not None:
            self._signals.close()

    # ------------------------------------------------------------------ goals
    def goal(self, goal_id: str, *, family: str, mode: str, rep: int = 0, expected: str = "") -> Goal:
        """A goal execution; ``mode`` is ``linear`` or ``agentic`` (the OOI compares the two)."""

        if not self.started:
            raise SessionError(
                "the session is not running", "use the session inside `with Session(...) as s:`"
            )
        if mode not in MODES:
            raise ConfigError(
                f"mode {mode!r} is not one of {list(MODES)}",
                "use mode='linear' or mode='agentic' (OOI = EpG agentic / EpG linear)",
            )
        if not str(goal_id) or not str(family):
            raise ConfigError(
                "goal_id and family must be non-empty", "pass e.g. s.goal('q1', family='support_bot', ...)"
            )
        return Goal(self._recorder, str(goal_id), str(family), mode, int(rep), expected)

    # ------------------------------------------------------------------ finish
    def finish(self, error: BaseException | None = None) -> SessionResult:
        """Stop the sampler, account and write the four files (goals.csv and run.json last).

        A SIGTERM or SIGINT that arrives meanwhile is held until the files are written."""
        if not self.started:
            raise SessionError("the session was never started", "use `with Session(...) as s:`")
        guard = self._signals
        if guard is not None:
            guard.hold()
        try:
            return self._finish(error)
        finally:
            self.started = False
            self._dir_lock.release()
            pending = guard.close() if guard is not None else None
            if pending is not None and error is None:
                raise interrupt_for(pending)  # the files are written: now the signal ends the process

    def _finish(self, error: BaseException | None) -> SessionResult:
        assert self._state is not None
        rec = self._stop_recording()
        fault_point("session.stopped")
        ending = Ending(
            status="complete" if error is None else "aborted",
            error=None if error is None else type(error).__name__,
            signal=signal_name(error),
            interrupted=[goal_record(g) for g in self._recorder.interrupted],
        )
        self.result = write_run(
            self.paths,
            self._state,
            rec,
            self._recorder.outcomes,
            ending,
            sampler_errors=0 if self._sampler is None else len(self._sampler.errors),
            dropped_llm_calls=sum(a.dropped for g in self._recorder.goals for a in g.attempts),
        )
        fault_point("session.written")
        self.spool.remove()
        return self.result

    def _stop_recording(self) -> Recording:
        """Stamp the end, stop the sampler, close the meter (if the session opened it) and the event log."""
        t_end = float(self._clock())
        samples: pd.DataFrame | None = None
        domains: list[Domain] = []
        try:
            if self._sampler is not None and self._meter is not None:
                self._sampler.stop()
                samples = self._sampler.frame()
                domains = list(self._meter.domains())
        finally:
            if self._own_meter and self._meter is not None:
                self._meter.close()
            with self._recorder.lock:
                if self._recorder.log is not None:
                    self._recorder.log.close()
            if self._outcomes_fh is not None:
                self._outcomes_fh.close()
        return Recording(samples, domains, read_events(self.paths.events), t_end)

    # ------------------------------------------------------------------ context
    def __enter__(self) -> Session:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.finish()
            return
        try:
            self.finish(exc)
        except Exception:
            log.exception("could not write the session's files after %s", type(exc).__name__)


def check_baseline_host(base: Baseline, host: str, path: str | None) -> None:
    """Refuse an idle baseline measured on another host (its idle power is not this host's)."""
    if base.host is not None and base.host != host:
        raise SessionError(
            f"the idle baseline {path or base.baseline_id} was measured on host {base.host}; this run is on "
            f"host {host}, whose idle power it does not measure",
            'measure this host\'s own baseline (baseline="measure", or `alems baseline` here)',
        )
    if base.host is None:
        log.warning(
            "the idle baseline %s records no host (an older file); it is used as this host's (%s)",
            path or base.baseline_id,
            host,
        )


def baseline_record(base: Baseline, *, origin: str, path: str | None) -> dict[str, Any]:
    """run.json's ``baseline`` entry: id, status, where it was measured, how old, where it came from."""
    return {
        "baseline_id": base.baseline_id,
        "status": base.status,
        "modeled": base.modeled,
        "path": path,
        "host": base.host,
        "hw_hash": base.hw_hash,
        "origin": origin,
        "created_unix": base.created_unix,
        "age_s": max(0.0, time.time() - base.created_unix),
        "power_w": dict(base.power_w),
    }


def goal_record(g: Goal) -> dict[str, Any]:
    """An interrupted execution as run.json lists it."""
    return {
        "goal_id": g.goal_id,
        "family": g.family,
        "mode": g.mode,
        "rep": g.rep,
        "attempts": len(g.attempts),
    }


def write_run(
    paths: RunPaths,
    state: RunState,
    rec: Recording,
    outcomes: list[AttemptOutcome],
    ending: Ending,
    *,
    sampler_errors: int = 0,
    dropped_llm_calls: int = 0,
) -> SessionResult:
    """Account a run and write its four files atomically (samples, events, goals.csv, run.json last)."""
    goals, acct = _account(state, rec, outcomes)
    meta = _run_meta(state, rec, goals, acct, ending, outcomes)
    meta["sampler_errors"] = sampler_errors
    meta["dropped_llm_calls"] = dropped_llm_calls
    if rec.samples is not None:
        with atomic_path(paths.samples) as tmp:
            write_samples(rec.samples, rec.domains, str(tmp))
    if not paths.events.exists():
        with atomic_path(paths.events) as tmp:
            tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in rec.events))
    if paths.calls is not None:
        write_calls(_calls(state, rec, acct, outcomes), paths.calls)
    with atomic_path(paths.goals) as tmp:
        goals.to_csv(tmp, index=False)
    atomic_write_json(paths.meta, meta)
    return SessionResult(paths.meta.parent, meta["run_id"], goals, meta)


def _account(
    state: RunState, rec: Recording, outcome_list: list[AttemptOutcome]
) -> tuple[pd.DataFrame, AccountingResult | None]:
    """goals.csv: the pipeline's accounting where there are samples and attempts, else the
    attempts' times and work with empty energy."""
    outcomes = outcomes_frame(outcome_list)
    run_id = str(state.hashes.get("run_id") or "")
    if rec.samples is not None and len(outcomes):
        acct = account(
            rec.samples,
            rec.domains,
            rec.events,
            outcomes,
            state.idle_w,
            attribution=state.accounting["attribution"],
            min_coverage=state.accounting["min_coverage"],
            run_id=run_id,
            idle_busy_cpu_per_s=state.idle_busy_cpu_per_s,
        )
        return acct.goals, acct
    source = "none" if rec.samples is None else "unknown"
    return _goals_without_energy(outcomes, parse_events(rec.events), run_id, source), None


def _calls(
    state: RunState, rec: Recording, acct: AccountingResult | None, outcome_list: list[AttemptOutcome]
) -> pd.DataFrame:
    """calls.csv: the accounting's calls, else the events' calls with empty energy."""
    if acct is not None:
        return acct.calls
    outcomes = outcomes_frame(outcome_list)
    if not len(outcomes):
        return empty_calls()
    source = "none" if rec.samples is None else "unknown"
    return events_calls(rec.events, outcomes, str(state.hashes.get("run_id") or ""), source)


def _run_meta(
    state: RunState,
    rec: Recording,
    goals: pd.DataFrame,
    acct: AccountingResult | None,
    ending: Ending,
    outcomes: list[AttemptOutcome],
) -> dict[str, Any]:
    """The ``run.json`` record of a run."""
    wall_s = rec.t_end - state.t_start
    in_s, share = window_share(goals, wall_s)
    final = goals[goals["final_attempt"].astype(bool)] if len(goals) else goals
    no_energy = rec.samples is None
    families = sorted({o.family for o in outcomes})
    return {
        "kind": "session",
        "status": ending.status,
        "error": ending.error,
        "signal": ending.signal,
        "interrupted": ending.interrupted,
        "run_id": str(state.hashes.get("run_id") or ""),
        "host": state.host,
        "family": ",".join(families),
        "families": families,
        "modes": sorted({o.mode for o in outcomes}),
        "goals": len({o.goal_id for o in outcomes}),
        "executions": len(final),
        "successes": int(final["success"].astype(bool).sum()) if len(final) else 0,
        "attempts": len(goals),
        "wall_s": wall_s,
        "in_window_s": in_s,
        "in_window_share": share,
        "framework_overhead_j": None if acct is None else float(acct.framework_overhead_j),
        "overhead_s": None if acct is None else float(acct.overhead_s),
        "energy_source": "none" if no_energy else (acct.energy_source if acct else "unknown"),
        "modeled": bool(acct is not None and contains_modeled(acct.energy_source)),
        "domains": [
            {"key": d.key, "kind": d.kind, "source": d.source, "meter": d.meter} for d in rec.domains
        ],
        "samples": 0 if rec.samples is None else len(rec.samples),
        "meter": state.meter,
        "interval_ms": state.interval_ms,
        "accounting": state.accounting,
        "flags": [] if acct is None else list(acct.flags),
        "conservation_residual": None if acct is None else float(acct.conservation_residual),
        "hashes": state.hashes,
        "baseline": state.baseline,
        **state.extra,
    }


def _goals_without_energy(
    outcomes: pd.DataFrame, windows: Mapping[Any, Any], run_id: str, source: str
) -> pd.DataFrame:
    """goals.csv rows with no energy (``meter=None``): times and work from the events, energy empty."""

    rows = []
    for o in outcomes.to_dict("records"):
        w = windows.get((str(o["goal_id"]), int(o["rep"]), str(o["mode"]), int(o["attempt"])))
        t0 = float(w.t0) if w is not None else float("nan")
        t1 = float(w.t1) if w is not None else float("nan")
        rows.append(
            {
                **o,
                "t0": t0,
                "t1": t1,
                "duration_s": t1 - t0,
                "llm_calls": w.llm_calls if w else 0,
                "tool_calls": w.tool_calls if w else 0,
                "tokens_in": w.tokens_in if w else 0,
                "tokens_out": w.tokens_out if w else 0,
                "energy_source": source,
                "run_id": run_id,
                "flags": ";".join(sorted({"no_energy", *(w.flags if w else {"no_window"})})),
            }
        )
    return pd.DataFrame(rows, columns=[*GOALS_COLUMNS, *GOALS_EXTRA_COLUMNS])
