"""The :class:`Session`: one measured run of a user's own goal executions, from the directory
lock and the meter to the accounting and the four contract files (rules: :mod:`alems.session`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
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
from alems.agents.runner import outcomes_frame
from alems.baseline import Baseline, BaselineConfig, load_baseline, measure_baseline, write_baseline
from alems.contracts import GOALS_COLUMNS, GOALS_EXTRA_COLUMNS, MODES
from alems.energy import open_meter
from alems.energy.base import Domain, Meter
from alems.energy.sampler import Sampler, write_samples
from alems.errors import ConfigError
from alems.io import atomic_path, atomic_write_json
from alems.jobs.outputs import RunPaths, clean_partials, window_share
from alems.provenance import HostPaths, cpu_power_state, fingerprint
from alems.session.lock import DirLock, SessionError
from alems.session.records import Goal, Recorder

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
class _Recording:
    """What the session recorded, once the sampler has stopped: the samples and the meter's
    domains (None without a meter), the event records and the end stamp."""

    samples: pd.DataFrame | None
    domains: list[Domain]
    events: list[dict[str, Any]]
    t_end: float


class Session:
    """Record goal executions of your own agent, with the pipeline's meter and accounting.

    ``meter``: ``"auto"``, ``"rapl"``, ``"nvml"``, ``"model"``, an open
    :class:`~alems.energy.base.Meter` (not closed by the session), or ``None`` (no energy).
    ``baseline``: ``"measure"``, ``"none"``, a path to an ``idle.json``, or a
    :class:`~alems.baseline.Baseline`. ``baseline_config`` overrides the idle protocol of
    ``"measure"`` (default :data:`SESSION_BASELINE`); ``baseline_out`` is where a measured
    baseline is stored (default ``DIR/idle.json``). ``clock`` is the sampler's (and so the
    events') clock: the monotonic clock unless a test injects one. ``hashes`` (a mapping with ``hw_hash``,
    ``env_hash``, ``config_hash``, ``run_id``) replaces the fingerprint taken at start.
    See the module docstring for the rules.
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
    ) -> None:
        self.out_dir = Path(out_dir)
        self.paths = RunPaths.in_dir(self.out_dir)
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
        self._recorder = Recorder()
        self._dir_lock = DirLock(self.out_dir)
        self._sampler: Sampler | None = None
        self._meter: Meter | None = None
        self._own_meter = False
        self._idle_w: dict[str, float] = {}
        self._baseline_info: dict[str, Any] = {}
        self._hashes: dict[str, Any] = {}
        self._clock: Any = clock
        self._t_start = 0.0
        self.result: SessionResult | None = None
        self.started = False
        #: Extra top-level entries for run.json (e.g. ``alems track`` records its command here).
        self.meta_extra: dict[str, Any] = {}

    # ------------------------------------------------------------------ start
    def _check_empty(self) -> None:
        held = [p.name for p in self.paths.all() if p.exists()]
        if held:
            raise SessionError(
                f"{self.out_dir} already holds a run ({', '.join(held)}); a new session would mix two runs",
                "give the session a new directory, or move the old run away",
            )

    def _measure_baseline(self, meter: Meter) -> Baseline:
        """The short idle protocol of ``baseline="measure"``, stored at ``baseline_out``."""
        governor, turbo = cpu_power_state(HostPaths())
        base = measure_baseline(
            meter,
            BaselineConfig.from_dict(self.baseline_config),
            hw_hash=self._hashes.get("hw_hash"),
            governor=governor,
            turbo=turbo,
        )
        write_baseline(self.baseline_out, base)
        return base

    def _resolve_baseline(self, meter: Meter) -> tuple[dict[str, float], dict[str, Any]]:
        """The idle power per domain and the ``baseline`` record of run.json (before the sampler starts)."""
        domains = meter.domains()
        b = self.baseline_arg
        if isinstance(b, str) and b == "none":
            return {d.key: 0.0 for d in domains}, {
                "status": "none",
                "note": "no idle baseline: dynamic_j = raw_j",
            }
        path: str | None
        if isinstance(b, str) and b == "measure":
            base, path = self._measure_baseline(meter), str(self.baseline_out)
        elif isinstance(b, Baseline):
            base, path = b, None
        elif isinstance(b, str | os.PathLike):
            base, path = load_baseline(b), str(b)
        else:
            raise ConfigError(
                f"baseline {b!r} is not understood",
                'use "measure", "none", a path to an idle.json, or an alems.baseline.Baseline',
            )
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
        info = {"baseline_id": base.baseline_id, "status": base.status, "modeled": base.modeled, "path": path}
        return dict(base.power_w), info

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
        """Take the baseline, then start the sampler; return the events' clock (its boundary read)."""
        self._idle_w, self._baseline_info = self._resolve_baseline(meter)
        self._sampler = Sampler(
            meter, interval_s=self.interval_s, clock=self.clock, pid=os.getpid(), mode=self.sampler_mode
        )
        self._sampler.start()
        return self._sampler.boundary_t

    def start(self) -> Session:
        """Lock the directory, open the meter, take the baseline, start the sampler and the event log."""
        if self.started:
            raise SessionError("this session was already started", "create a new Session for a new run")
        self._dir_lock.acquire()
        try:
            self._check_empty()
            clean_partials(self.paths)
            if self.hashes_arg is not None:
                self._hashes = dict(self.hashes_arg)
            else:
                self._hashes = fingerprint(self._session_config()).hashes.to_dict()
            self._meter, self._own_meter = _open_meter(self.meter_arg, self.powercap_root)
            clock: Any = self.clock
            if self._meter is not None:
                clock = self._start_sampler(self._meter)
            else:
                self._idle_w, self._baseline_info = {}, {"status": "none", "note": "no meter"}
            self._t_start = float(clock())
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
        self._dir_lock.release()

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
        """Stop the sampler, account and write the four files (goals.csv and run.json last)."""
        if not self.started:
            raise SessionError("the session was never started", "use `with Session(...) as s:`")
        try:
            return self._finish(error)
        finally:
            self.started = False
            self._dir_lock.release()

    def _finish(self, error: BaseException | None) -> SessionResult:
        rec = self._stop_recording()
        goals, acct = self._account(rec)
        meta = self._run_meta(rec, goals, acct, error)
        if rec.samples is not None:
            with atomic_path(self.paths.samples) as tmp:
                write_samples(rec.samples, rec.domains, str(tmp))
        if self.paths.calls is not None:
            write_calls(self._calls(rec, acct, goals), self.paths.calls)
        with atomic_path(self.paths.goals) as tmp:
            goals.to_csv(tmp, index=False)
        atomic_write_json(self.paths.meta, meta)
        self.result = SessionResult(self.out_dir, meta["run_id"], goals, meta)
        return self.result

    def _stop_recording(self) -> _Recording:
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
        return _Recording(samples, domains, read_events(self.paths.events), t_end)

    def _account(self, rec: _Recording) -> tuple[pd.DataFrame, AccountingResult | None]:
        """goals.csv: the pipeline's accounting where there are samples and attempts, else the
        attempts' times and work with empty energy."""
        outcomes = outcomes_frame(self._recorder.outcomes)
        run_id = str(self._hashes.get("run_id") or "")
        if rec.samples is not None and len(outcomes):
            acct = account(
                rec.samples,
                rec.domains,
                rec.events,
                outcomes,
                self._idle_w,
                attribution=self.accounting.attribution,
                min_coverage=self.accounting.min_coverage,
                run_id=run_id,
            )
            return acct.goals, acct
        source = "none" if rec.samples is None else "unknown"
        return _goals_without_energy(outcomes, parse_events(rec.events), run_id, source), None

    def _calls(self, rec: _Recording, acct: AccountingResult | None, goals: pd.DataFrame) -> pd.DataFrame:
        """calls.csv: the accounting's calls, else the events' calls with empty energy."""
        if acct is not None:
            return acct.calls
        if not len(goals):
            return empty_calls()
        outcomes = outcomes_frame(self._recorder.outcomes)
        source = "none" if rec.samples is None else "unknown"
        return events_calls(rec.events, outcomes, str(self._hashes.get("run_id") or ""), source)

    def _run_meta(
        self, rec: _Recording, goals: pd.DataFrame, acct: AccountingResult | None, error: BaseException | None
    ) -> dict[str, Any]:
        """The ``run.json`` record of the finished session."""
        executed = self._recorder.goals
        wall_s = rec.t_end - self._t_start
        in_s, share = window_share(goals, wall_s)
        final = goals[goals["final_attempt"].astype(bool)] if len(goals) else goals
        no_energy = rec.samples is None
        return {
            "kind": "session",
            "status": "complete" if error is None else "aborted",
            "error": None if error is None else type(error).__name__,
            "run_id": str(self._hashes.get("run_id") or ""),
            "family": ",".join(sorted({g.family for g in executed})),
            "families": sorted({g.family for g in executed}),
            "modes": sorted({g.mode for g in executed}),
            "goals": len({g.goal_id for g in executed}),
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
            "meter": None if self._meter is None else _meter_name(self._meter),
            "interval_ms": self.interval_s * 1000.0,
            "accounting": self._accounting_record(),
            "flags": [] if acct is None else list(acct.flags),
            "conservation_residual": None if acct is None else float(acct.conservation_residual),
            "sampler_errors": 0 if self._sampler is None else len(self._sampler.errors),
            "dropped_llm_calls": sum(a.dropped for g in executed for a in g.attempts),
            "hashes": self._hashes,
            "baseline": self._baseline_info,
            **self.meta_extra,
        }

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
