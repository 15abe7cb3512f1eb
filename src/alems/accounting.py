"""Energy accounting: samples + events + idle baseline -> per-attempt energy (layers L0-L4).

This module owns the temporal boundary model of DESIGN.md. It is pure: every function
works on its arguments (a ``samples`` frame, the domain list, the event records, the
per-attempt outcomes and the idle power) and does no I/O, except :func:`write_goals`,
which writes a finished table atomically for the workflow scripts.

The chain, per window ``[t0, t1]`` (an attempt, an LLM call, a tool call, a gap, or a
stretch of framework overhead):

- **L0** ``raw_j``: for every summable domain (:func:`alems.energy.base.summable_keys`)
  the cumulative, wrap-corrected counter is read at ``t0`` and ``t1`` and differenced;
  the per-domain differences are summed. A counter value at an instant where a sample
  exists (the sampler's exact boundary reads at event edges) is that sample's value,
  bit for bit; between samples it is interpolated linearly between the two neighbours.
  Instants before the first or after the last sample are **not** extrapolated: they are
  clamped to the sampled span and the window is flagged ``outside_samples`` (its
  ``coverage`` drops below 1 accordingly). A **stepwise** domain (NVML energy, updated
  about every 100 ms; :func:`alems.energy.stepwise.is_stepwise`) is first reconstructed
  from its update instants; a window edge outside its first and last update is
  extrapolated and flagged ``unbracketed``.
- **L1** ``dynamic_j`` = Σ_domain (raw_d − P_idle,d · Δt), where Δt is the part of the
  window inside the sampled span (the part whose raw energy was measured). A negative
  result is kept as computed and flagged ``negative_dynamic``; it is never clipped.
- **L2** ``attributed_j`` = α_cpu · Σ_CPU-side dynamic + α_gpu · Σ_GPU dynamic, per
  domain kind (:func:`attribution_modes`). With the CPU mode ``cpu_share``,
  α_cpu = Δproc_cpu_s / (Δsys_cpu_s − b · Δt), where b (``idle_busy_cpu_per_s``) is the
  busy CPU-seconds per second of the idle baseline: a steady background load is already
  inside P_idle, so it is not removed a second time (DESIGN.md has the derivation). Where
  that net busy time is not positive (a window shorter than the CPU-time tick) α falls
  back to the enclosing window's α (phase and gap windows: the attempt's; attempts and
  overhead: the whole run's; the run: 1) and the window is flagged ``alpha_fallback``.
  α outside [0, 1] is clipped, and flagged ``alpha_clipped`` beyond the CPU-time
  resolution (:data:`ALPHA_SLACK`). GPU mode ``exclusive`` (the default): α_gpu = 1, and
  a window during which the sampler saw another process on a GPU (``gpu_foreign``
  column) is flagged ``gpu_shared``. ``attribution="none"``: α = 1 everywhere.
- **L3** ``llm_j`` and ``tool_j``: the L0-L2 chain applied to every LLM and tool window
  of the attempt (clipped to the attempt window), summed; ``orchestration_j`` is the
  residual ``energy_j - llm_j - tool_j``, so the three phases always sum to the attempt.
- **L4** ``energy_j`` = ``attributed_j``: the number EpG uses.

``gap_j`` is the attributed energy between the end of attempt k-1 and the start of
attempt k of the same execution; it is written on the row of the **later** attempt
(attempt k), and is 0 on an execution's first attempt. ``coverage`` is the span covered
by samples inside the window (last sample time minus first sample time, both inside
``[t0, t1]``) divided by the window length: 1 where the sampler made boundary reads at
both edges. Attempts under ``min_coverage`` are flagged ``low_coverage``.

Everything inside the sampled span that is in no attempt window and no gap (set-up,
teardown, time between goals, between ``goal_start`` and the first attempt) is the run's
``framework_overhead_j``, accounted the same way and never added to a goal.

Output: :attr:`AccountingResult.goals` has the ``goals.csv`` contract columns in contract
order (:data:`GOALS_COLUMNS`), followed by the extra columns (:data:`GOALS_EXTRA_COLUMNS`):
``alpha`` (the attempt window's CPU α), ``flags`` (``;``-separated, sorted, empty when
none), and ``gap_raw_j`` / ``gap_dynamic_j`` (the gap in layers L0 / L1, for the metrics'
``total`` and ``dynamic`` layers). Flags on a goal row: ``low_coverage``,
``outside_samples``, ``negative_dynamic``, ``unbracketed``, ``gpu_shared``,
``alpha_fallback``, ``alpha_clipped``, ``phase_alpha_fallback``, ``gap_alpha_fallback``,
``gap_outside_samples``, ``phase_outside_attempt``, ``overlapping_phases``,
``overlapping_attempts``, ``unclosed_attempt``, ``unclosed_phase``, ``no_window``
(the outcome has no attempt events; its energies are NaN). When the outcomes carry them,
the task columns :data:`GOALS_TASK_COLUMNS` (``check_reason``, ``truncated``, ``steps``,
``template``) follow.

``energy_source`` per row is ``measured`` when every summed domain is measured,
``modeled`` when every one is modeled, ``mixed`` otherwise; :func:`contains_modeled`
tells tables and figures when to say so.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from alems.contracts import (
    EVENT_KINDS,
    GOALS_COLUMNS,
    GOALS_EXTRA_COLUMNS,
    GOALS_TASK_COLUMNS,
    OUTCOME_COLUMNS,
    WINDOW_EVENT_KINDS,
)
from alems.energy.base import Domain, summable_keys
from alems.energy.procstat import USER_HZ
from alems.energy.stepwise import is_stepwise, reconstruct
from alems.errors import AlemsError, ConfigError
from alems.io import atomic_write_with

ATTRIBUTIONS: tuple[str, ...] = ("cpu_share", "none")
GPU_ATTRIBUTIONS: tuple[str, ...] = ("exclusive", "cpu_share", "none")
ALPHA_SLACK = 0.02
"""α up to 1 + this (or two CPU-time ticks of the window's net busy time) is clipped unflagged."""


class AccountingInputError(AlemsError):
    """The samples, events or outcomes handed to accounting break their data contract."""


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class AccountingConfig:
    """Accounting settings; the workflow config's ``accounting:`` block mirrors it."""

    attribution: str | Mapping[str, str] = "cpu_share"
    min_coverage: float = 0.8
    gpu_study_processes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        attribution_modes(self.attribution)
        cov = float(self.min_coverage)
        if not (0.0 <= cov <= 1.0) or math.isnan(cov):
            raise ConfigError(
                f"accounting.min_coverage is {self.min_coverage!r}; it must be in [0, 1]",
                "set `accounting: {min_coverage: 0.8}` in the config",
            )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> AccountingConfig:
        data = dict(mapping or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown accounting config key(s): {unknown}",
                f"use only {sorted(known)} under `accounting:`",
            )
        if "min_coverage" in data:
            data["min_coverage"] = float(data["min_coverage"])
        if "gpu_study_processes" in data:
            data["gpu_study_processes"] = tuple(str(n) for n in data["gpu_study_processes"] or ())
        if isinstance(data.get("attribution"), Mapping):
            data["attribution"] = dict(data["attribution"])
        return cls(**data)

    @property
    def modes(self) -> tuple[str, str]:
        """``(cpu, gpu)`` attribution modes (:func:`attribution_modes`)."""
        return attribution_modes(self.attribution)


def attribution_modes(attribution: str | Mapping[str, str]) -> tuple[str, str]:
    """``(cpu, gpu)`` modes from ``accounting.attribution``: a single switch or one per domain kind.

    The single switch keeps its old meaning for the CPU: ``cpu_share`` is
    ``{cpu: cpu_share, gpu: exclusive}`` (a GPU goes whole to the study that alone uses
    it), ``none`` is ``{cpu: none, gpu: none}`` (α = 1 everywhere). The mapping form names
    ``cpu`` (package, dram, psys, cpu-model: ``cpu_share`` | ``none``) and ``gpu``
    (``exclusive`` | ``cpu_share`` | ``none``); a kind left out takes the default.
    """
    fix = (
        "set `accounting: {attribution: cpu_share}` (or `none`), or per domain kind "
        "`accounting: {attribution: {cpu: cpu_share, gpu: exclusive}}`"
    )
    if isinstance(attribution, str):
        if attribution not in ATTRIBUTIONS:
            raise ConfigError(
                f"accounting.attribution is {attribution!r}; it must be one of {list(ATTRIBUTIONS)} "
                "or a mapping {cpu: ..., gpu: ...}",
                fix,
            )
        return (attribution, "exclusive" if attribution == "cpu_share" else "none")
    if not isinstance(attribution, Mapping):
        raise ConfigError(f"accounting.attribution is {attribution!r}; it must be a string or a mapping", fix)
    unknown = sorted(set(attribution) - {"cpu", "gpu"})
    cpu = attribution.get("cpu", "cpu_share")
    gpu = attribution.get("gpu", "exclusive")
    if unknown or cpu not in ATTRIBUTIONS or gpu not in GPU_ATTRIBUTIONS:
        raise ConfigError(
            f"accounting.attribution is {dict(attribution)!r}; keys are cpu ({list(ATTRIBUTIONS)}) "
            f"and gpu ({list(GPU_ATTRIBUTIONS)})",
            fix,
        )
    return (str(cpu), str(gpu))


# --------------------------------------------------------------------------- sources
def combine_sources(sources: Iterable[str]) -> str:
    """``measured`` / ``modeled`` when all agree, ``mixed`` otherwise (``mixed`` is sticky)."""
    seen = {str(s) for s in sources if isinstance(s, str) and s}
    if not seen:
        return "unknown"
    if seen == {"measured"}:
        return "measured"
    if seen == {"modeled"}:
        return "modeled"
    return "mixed"


def contains_modeled(sources: str | Iterable[str]) -> bool:
    """True when any of ``sources`` (labels as in ``energy_source``) involves modeled energy."""
    if isinstance(sources, str):
        sources = [sources]
    return any(s in ("modeled", "mixed") for s in sources)


def energy_source_of(domains: Sequence[Domain], keys: Sequence[str] | None = None) -> str:
    """The ``energy_source`` label of a sum over ``keys`` (default: the summable keys)."""
    keys = list(summable_keys(domains) if keys is None else keys)
    by_key = {d.key: d for d in domains}
    return combine_sources(by_key[k].source for k in keys)


# --------------------------------------------------------------------------- counters
@dataclass(frozen=True)
class CounterSeries:
    """Cumulative counters of one run, sorted by time, ready for interpolation.

    ``energy`` has one column per key in ``keys``. Rows sharing a ``t`` are ordered with
    boundary reads last, and a query at that ``t`` returns the last one.
    """

    t: np.ndarray
    energy: np.ndarray
    proc: np.ndarray
    sys: np.ndarray
    keys: tuple[str, ...]
    bracket: np.ndarray | None = None  # (d, 2): [tau_1, tau_K] of stepwise keys; (-inf, inf) else
    foreign: np.ndarray | None = None  # processes on the GPUs not the study's, per row (NaN: unchecked)

    @classmethod
    def from_samples(
        cls, samples: pd.DataFrame, keys: Sequence[str], stepwise: Iterable[str] = ()
    ) -> CounterSeries:
        """Sorted counters from a ``samples`` frame; ``stepwise`` keys are reconstructed
        from their update instants (:mod:`alems.energy.stepwise`)."""
        needed = ["t", *keys, "proc_cpu_s", "sys_cpu_s"]
        missing = [c for c in needed if c not in samples.columns]
        if missing:
            raise AccountingInputError(
                f"samples lack column(s) {missing} (have {list(samples.columns)})",
                "pass the frame from alems.energy.sampler (Sampler.frame() or read_samples) "
                "together with the same run's domain list",
            )
        if len(samples) == 0:
            raise AccountingInputError(
                "samples are empty: no counter was read during the run",
                "check the run's samples.parquet; rerun the (family, rep) job",
            )
        order_cols = ["t"]
        df = samples
        if "boundary" in samples.columns:
            df = samples.assign(_b=samples["boundary"].fillna(False).astype(bool))
            order_cols = ["t", "_b"]
        df = df.sort_values(order_cols, kind="mergesort")
        t = df["t"].to_numpy(dtype=float)
        energy = df[list(keys)].to_numpy(dtype=float).reshape(len(df), len(keys)).copy()
        proc = df["proc_cpu_s"].to_numpy(dtype=float)
        sys_ = df["sys_cpu_s"].to_numpy(dtype=float)
        if not np.all(np.isfinite(t)) or not np.all(np.isfinite(energy)):
            raise AccountingInputError(
                "samples hold NaN/inf times or counter values",
                "a failed counter read must raise upstream, never become a number; "
                "rerun the job and check the sampler log",
            )
        drops = np.diff(energy, axis=0) < 0
        if drops.any():
            col = int(np.argwhere(drops)[0][1])
            raise AccountingInputError(
                f"cumulative counter {keys[col]!r} decreases in the samples; the contract "
                "says wrap-corrected and non-decreasing",
                "counters must be wrap-corrected by the sampler (Domain.max_range_j); "
                "rerun the job with the fixed sampler",
            )
        steps = set(stepwise)
        bracket = np.tile([-np.inf, np.inf], (len(keys), 1))
        for i, k in enumerate(keys):
            if k in steps:
                rec = reconstruct(t, energy[:, i])
                energy[:, i] = rec.values
                bracket[i] = rec.span if rec.span is not None else (np.inf, -np.inf)
        foreign = df["gpu_foreign"].to_numpy(dtype=float) if "gpu_foreign" in df.columns else None
        return cls(
            t=t, energy=energy, proc=proc, sys=sys_, keys=tuple(keys), bracket=bracket, foreign=foreign
        )

    @property
    def span(self) -> tuple[float, float]:
        return float(self.t[0]), float(self.t[-1])

    def _interp(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Values at ``x`` (already clamped to the span): exact at sample times, else linear."""
        t = self.t
        j = np.searchsorted(t, x, side="right") - 1  # last sample with t <= x
        j = np.clip(j, 0, len(t) - 1)
        exact = t[j] == x
        k = np.minimum(j + 1, len(t) - 1)
        dt = t[k] - t[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(dt > 0, (x - t[j]) / np.where(dt > 0, dt, 1.0), 0.0)
        if values.ndim == 2:
            frac = frac[:, None]
            exact = exact[:, None]
        lo, hi = values[j], values[k]
        return np.where(exact, lo, lo + frac * (hi - lo))

    def at(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Counters at instants ``x``: ``(energy (m, d), proc (m,), sys (m,), inside (m,))``.

        ``inside`` is False where ``x`` lies outside the sampled span; there the value is
        the nearest edge's (clamped, not extrapolated).
        """
        x = np.asarray(x, dtype=float)
        lo, hi = self.span
        inside = (x >= lo) & (x <= hi)
        xc = np.clip(x, lo, hi)
        return self._interp(self.energy, xc), self._interp(self.proc, xc), self._interp(self.sys, xc), inside

    def coverage(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Span covered by samples inside each window, divided by the window length."""
        t0 = np.asarray(t0, dtype=float)
        t1 = np.asarray(t1, dtype=float)
        i0 = np.searchsorted(self.t, t0, side="left")
        i1 = np.searchsorted(self.t, t1, side="right") - 1
        has = i1 >= i0
        first = self.t[np.clip(i0, 0, len(self.t) - 1)]
        last = self.t[np.clip(i1, 0, len(self.t) - 1)]
        covered = np.where(has, last - first, 0.0)
        length = t1 - t0
        lo, hi = self.span
        zero_len_cov = ((t0 >= lo) & (t0 <= hi)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = np.where(length > 0, covered / np.where(length > 0, length, 1.0), zero_len_cov)
        return np.clip(cov, 0.0, 1.0)

    def unbracketed(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Windows with an edge outside some stepwise counter's update instants (extrapolated)."""
        if self.bracket is None or not np.isfinite(self.bracket).any():
            return np.zeros(len(t0), dtype=bool)
        lo, hi = self.bracket[:, 0], self.bracket[:, 1]
        return ((t0[:, None] < lo[None, :]) | (t1[:, None] > hi[None, :])).any(axis=1)

    def gpu_shared(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Windows during which a GPU check saw a process that is not the study's.

        A check's count holds until the next check, so the one before ``t0`` counts too.
        """
        if self.foreign is None:
            return np.zeros(len(t0), dtype=bool)
        f = np.where(np.isnan(self.foreign), 0.0, self.foreign)
        i0 = np.clip(np.searchsorted(self.t, t0, side="right") - 1, 0, len(self.t) - 1)
        i1 = np.searchsorted(self.t, t1, side="right")
        csum = np.concatenate([[0.0], np.cumsum(f)])
        return (csum[np.maximum(i1, i0 + 1)] - csum[i0]) > 0


@dataclass(frozen=True)
class WindowEnergy:
    """The L0-L2 chain for ``m`` windows (arrays of length ``m``; ``raw_by_domain`` is (m, d))."""

    raw_by_domain: np.ndarray
    raw_j: np.ndarray
    dynamic_j: np.ndarray
    alpha: np.ndarray
    attributed_j: np.ndarray
    coverage: np.ndarray
    outside: np.ndarray
    alpha_fallback: np.ndarray
    alpha_clipped: np.ndarray
    unbracketed: np.ndarray | None = None
    gpu_shared: np.ndarray | None = None


def window_energy(
    series: CounterSeries,
    t0: np.ndarray,
    t1: np.ndarray,
    idle_w: np.ndarray,
    attribution: str | Mapping[str, str],
    fallback_alpha: float | np.ndarray = 1.0,
    *,
    gpu_mask: Sequence[bool] | np.ndarray | None = None,
    idle_busy_cpu_per_s: float = 0.0,
) -> WindowEnergy:
    """L0 (raw), L1 (minus idle), L2 (per domain kind) for windows ``[t0[i], t1[i]]``.

    ``idle_w`` holds the idle watts per key of ``series.keys``; ``gpu_mask`` marks the GPU
    keys (default none). ``attribution`` is :func:`attribution_modes`' input. The CPU
    share is α = Δproc / (Δsys − b·Δt), with ``b`` = ``idle_busy_cpu_per_s``, the busy
    CPU-seconds per second the idle baseline saw (so a steady background load already
    inside P_idle is not removed a second time, see DESIGN.md). ``fallback_alpha`` is used
    (and flagged) where the window has no net busy CPU time to divide by.
    """
    t0 = np.atleast_1d(np.asarray(t0, dtype=float))
    t1 = np.atleast_1d(np.asarray(t1, dtype=float))
    e0, p0, s0, in0 = series.at(t0)
    e1, p1, s1, in1 = series.at(t1)
    raw_by_domain = e1 - e0
    lo, hi = series.span
    dt_eff = np.clip(t1, lo, hi) - np.clip(t0, lo, hi)
    dynamic_by_domain = raw_by_domain - dt_eff[:, None] * np.asarray(idle_w, dtype=float)[None, :]
    raw = raw_by_domain.sum(axis=1)
    dynamic = dynamic_by_domain.sum(axis=1)
    m = len(t0)
    cpu_mode, gpu_mode = attribution_modes(attribution)
    gpu = np.zeros(len(series.keys), dtype=bool) if gpu_mask is None else np.asarray(gpu_mask, dtype=bool)
    fb = np.broadcast_to(np.asarray(fallback_alpha, dtype=float), (m,))
    if cpu_mode == "none" and gpu_mode != "cpu_share":
        alpha = np.ones(m)
        fell_back = np.zeros(m, dtype=bool)
        clipped = np.zeros(m, dtype=bool)
    else:
        dproc = p1 - p0
        net_busy = (s1 - s0) - float(idle_busy_cpu_per_s) * dt_eff
        fell_back = ~(net_busy > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(fell_back, fb, dproc / np.where(fell_back, 1.0, net_busy))
        # CPU times are read in ticks: alpha above 1 by less than two ticks of the net busy
        # time (or 2 %) is resolution, not a fault; it is clipped without a flag
        with np.errstate(invalid="ignore", divide="ignore"):
            slack = np.maximum(ALPHA_SLACK, 2.0 / (USER_HZ * np.where(fell_back, 1.0, net_busy)))
        clipped = (~fell_back) & ((a < 0) | (a > 1.0 + slack))
        alpha = np.clip(a, 0.0, 1.0)
    alpha_cpu = np.ones(m) if cpu_mode == "none" else alpha
    alpha_gpu = alpha if gpu_mode == "cpu_share" else np.ones(m)
    attributed = alpha_cpu * dynamic_by_domain[:, ~gpu].sum(axis=1) + alpha_gpu * dynamic_by_domain[
        :, gpu
    ].sum(axis=1)
    shared = series.gpu_shared(t0, t1) if (gpu_mode == "exclusive" and gpu.any()) else np.zeros(m, dtype=bool)
    return WindowEnergy(
        raw_by_domain=raw_by_domain,
        raw_j=raw,
        dynamic_j=dynamic,
        alpha=alpha_cpu,
        attributed_j=attributed,
        coverage=series.coverage(t0, t1),
        outside=~(in0 & in1),
        alpha_fallback=fell_back,
        alpha_clipped=clipped,
        unbracketed=series.unbracketed(t0, t1),
        gpu_shared=shared,
    )


# --------------------------------------------------------------------------- events
AttemptKey = tuple[str, int, str, int]  # (goal_id, rep, mode, attempt)


@dataclass
class AttemptWindows:
    """What the event log says about one attempt."""

    t0: float | None = None
    t1: float | None = None
    first_t: float = math.inf
    last_t: float = -math.inf
    llm: list[tuple[float, float]] = field(default_factory=list)
    tool: list[tuple[float, float]] = field(default_factory=list)
    llm_calls: int = 0
    tool_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    flags: set[str] = field(default_factory=set)
    open_llm: list[dict[str, Any]] = field(default_factory=list)
    open_tool: list[dict[str, Any]] = field(default_factory=list)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _tokens(start: Mapping[str, Any] | None, end: Mapping[str, Any] | None, name: str) -> int:
    """Token count of one call: the end event's value if it has one, else the start's."""
    for ev in (end, start):
        if ev is not None and not _is_missing(ev.get(name)):
            return int(ev[name])
    return 0


def as_bool(values: Any) -> np.ndarray:
    """Booleans from bools, 0/1, or the strings ``True``/``False`` (as read back from CSV)."""
    s = pd.Series(values)
    if s.dtype == bool:
        return s.to_numpy()
    return s.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes")).to_numpy(dtype=bool)


def _records(events: Any) -> list[dict[str, Any]]:
    if isinstance(events, pd.DataFrame):
        recs = events.to_dict("records")
    else:
        recs = [dict(e) for e in events]
    out = []
    for i, r in enumerate(recs):
        if r.get("kind") not in WINDOW_EVENT_KINDS:
            continue  # goal_start/goal_end and kinds this module does not use
        for k in ("t", "goal_id", "rep", "mode"):
            if _is_missing(r.get(k)):
                raise AccountingInputError(
                    f"event #{i} ({r['kind']}) lacks {k!r}: {r}",
                    "events.jsonl records need t, goal_id, rep, mode, attempt, kind (DESIGN.md); "
                    "write them with alems.agents.events.EventLog",
                )
        out.append(r)
    return out


def unknown_kinds(events: Any) -> list[str]:
    """Event kinds outside the DESIGN.md list (they are ignored; :func:`account` flags them)."""
    kinds = events["kind"] if isinstance(events, pd.DataFrame) else [dict(e).get("kind") for e in events]
    return sorted({str(k) for k in kinds if k not in EVENT_KINDS})


def parse_events(events: Any) -> dict[AttemptKey, AttemptWindows]:
    """Group event records into attempt windows with their LLM and tool windows.

    Starts and ends pair up in order (an end closes the latest open start of its kind).
    LLM/tool events without an ``attempt`` go to the attempt open for their execution.
    """
    recs = _records(events)
    order = sorted(range(len(recs)), key=lambda i: (float(recs[i]["t"]), i))
    out: dict[AttemptKey, AttemptWindows] = {}
    open_attempt: dict[tuple[str, int, str], int] = {}
    for i in order:
        ev = recs[i]
        kind = ev["kind"]
        ex = (str(ev["goal_id"]), int(ev["rep"]), str(ev["mode"]))
        att = ev.get("attempt")
        if _is_missing(att):
            if ex not in open_attempt:
                continue  # an LLM/tool call outside every attempt: framework overhead
            att = open_attempt[ex]
        key: AttemptKey = (*ex, int(att))
        w = out.setdefault(key, AttemptWindows())
        t = float(ev["t"])
        w.first_t = min(w.first_t, t)
        w.last_t = max(w.last_t, t)
        if kind == "attempt_start":
            if w.t0 is not None:
                w.flags.add("unclosed_attempt")
            w.t0 = t
            open_attempt[ex] = int(att)
        elif kind == "attempt_end":
            w.t1 = t
            open_attempt.pop(ex, None)
        elif kind in ("llm_start", "tool_start"):
            (w.open_llm if kind == "llm_start" else w.open_tool).append(ev)
            if kind == "llm_start":
                w.llm_calls += 1
            else:
                w.tool_calls += 1
        else:  # llm_end / tool_end
            is_llm = kind == "llm_end"
            stack = w.open_llm if is_llm else w.open_tool
            start = stack.pop() if stack else None
            if start is None:
                w.flags.add("unclosed_phase")
                if is_llm:
                    w.llm_calls += 1
                else:
                    w.tool_calls += 1
            else:
                (w.llm if is_llm else w.tool).append((float(start["t"]), t))
            if is_llm:
                w.tokens_in += _tokens(start, ev, "tokens_in")
                w.tokens_out += _tokens(start, ev, "tokens_out")
    for w in out.values():
        if w.t0 is None or w.t1 is None:
            w.flags.add("unclosed_attempt")
            w.t0 = w.first_t if w.t0 is None else w.t0
            w.t1 = w.last_t if w.t1 is None else w.t1
        for stack, windows in ((w.open_llm, w.llm), (w.open_tool, w.tool)):
            for start in stack:
                w.flags.add("unclosed_phase")
                windows.append((float(start["t"]), float(w.t1)))
                if start["kind"] == "llm_start":
                    w.tokens_in += _tokens(start, None, "tokens_in")
                    w.tokens_out += _tokens(start, None, "tokens_out")
            stack.clear()
        for windows in (w.llm, w.tool):
            clipped = [(max(a, w.t0), min(b, w.t1)) for a, b in windows]
            if clipped != windows:
                w.flags.add("phase_outside_attempt")
            windows[:] = [(a, max(a, b)) for a, b in clipped]
        both = sorted(w.llm + w.tool)
        if any(b[0] < a[1] for a, b in itertools.pairwise(both)):
            w.flags.add("overlapping_phases")
    return out


# --------------------------------------------------------------------------- result
@dataclass
class AccountingResult:
    """One run's accounting.

    ``goals``: the goals.csv rows (contract columns, then :data:`GOALS_EXTRA_COLUMNS`).
    ``framework_overhead_j``: attributed energy in the sampled span outside every attempt
    and gap window; ``overhead_raw_j`` / ``overhead_dynamic_j`` are its L0 / L1 values and
    ``overhead_s`` its duration. ``flags``: run-level flags
    (``events_without_outcome:N``, ``unknown_event_kinds:a,b``, ``run_alpha_fallback``).
    """

    goals: pd.DataFrame
    framework_overhead_j: float
    overhead_raw_j: float
    overhead_dynamic_j: float
    overhead_s: float
    run_alpha: float
    energy_source: str
    span: tuple[float, float]
    flags: list[str] = field(default_factory=list)

    @property
    def contains_modeled(self) -> bool:
        return contains_modeled(self.energy_source)

    def summary(self) -> dict[str, Any]:
        """Run-level numbers as a JSON-ready dict (for a per-run summary file)."""
        g = self.goals
        return {
            "attempts": len(g),
            "goal_energy_j": float((g["energy_j"] + g["gap_j"]).sum(min_count=1)) if len(g) else 0.0,
            "framework_overhead_j": self.framework_overhead_j,
            "overhead_raw_j": self.overhead_raw_j,
            "overhead_dynamic_j": self.overhead_dynamic_j,
            "overhead_s": self.overhead_s,
            "run_alpha": self.run_alpha,
            "span": list(self.span),
            "energy_source": self.energy_source,
            "flags": list(self.flags),
            "flagged_attempts": int((g["flags"] != "").sum()),
        }


def _idle_vector(idle_power_w: Mapping[str, float], keys: Sequence[str]) -> np.ndarray:
    missing = [k for k in keys if k not in idle_power_w]
    if missing:
        raise ConfigError(
            f"the idle baseline has no power for domain(s) {missing} (has {sorted(idle_power_w)})",
            "run `alems baseline` on this host (or rerun the workflow's baseline rule) so "
            "results/baseline/idle.json covers every domain the meter reports",
        )
    return np.array([float(idle_power_w[k]) for k in keys], dtype=float)


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _outcome_frame(outcomes: Any) -> pd.DataFrame:
    if isinstance(outcomes, pd.DataFrame):
        df = outcomes
    else:
        df = pd.DataFrame([o if isinstance(o, Mapping) else asdict(o) for o in outcomes])
    missing = [c for c in OUTCOME_COLUMNS if c not in df.columns]
    if missing:
        raise AccountingInputError(
            f"outcomes lack column(s) {missing}",
            f"the agents' outcomes need columns {list(OUTCOME_COLUMNS)}",
        )
    return df.reset_index(drop=True)


def account(
    samples_df: pd.DataFrame,
    domains: Sequence[Domain],
    events: Any,
    outcomes_df: Any,
    idle_power_w: Mapping[str, float],
    *,
    attribution: str | Mapping[str, str] = "cpu_share",
    min_coverage: float = 0.8,
    run_id: str = "",
    idle_busy_cpu_per_s: float | None = None,
) -> AccountingResult:
    """Account one run: one ``goals.csv`` row per outcome row (per attempt), in outcome order.

    ``events`` is a list of event dicts or a DataFrame (events.jsonl); ``outcomes_df`` the
    agents' per-attempt outcomes; ``idle_power_w`` the baseline's mean idle watts per domain
    key (every summable key must be present); ``idle_busy_cpu_per_s`` the busy CPU-seconds
    per second the idle baseline saw (``host_util`` x CPUs; ``None``: unknown, taken as 0).
    See the module docstring for the layers.
    """
    cfg = AccountingConfig(attribution=attribution, min_coverage=float(min_coverage))
    keys = summable_keys(domains)
    if not keys:
        raise AccountingInputError(
            f"no summable energy domain among {[d.key for d in domains]}",
            "pass the run's domain list (read_samples returns it with the samples)",
        )
    by_key = {d.key: d for d in domains}
    series = CounterSeries.from_samples(samples_df, keys, [k for k in keys if is_stepwise(by_key[k])])
    gpu_mask = np.array([by_key[k].kind == "gpu" for k in keys], dtype=bool)
    idle = _idle_vector(idle_power_w, keys)
    busy_b = float(idle_busy_cpu_per_s or 0.0)

    def energy(a: np.ndarray, b: np.ndarray, fallback: float | np.ndarray) -> WindowEnergy:
        return window_energy(
            series, a, b, idle, cfg.attribution, fallback, gpu_mask=gpu_mask, idle_busy_cpu_per_s=busy_b
        )

    source = energy_source_of(domains, keys)
    outcomes = _outcome_frame(outcomes_df)
    windows = parse_events(events)
    lo, hi = series.span
    run_flags: list[str] = []

    # the whole run's alpha: the last-resort fallback
    run_w = energy(np.array([lo]), np.array([hi]), 1.0)
    run_alpha = float(run_w.alpha[0])
    if cfg.modes[0] == "cpu_share" and bool(run_w.alpha_fallback[0]):
        run_flags.append("run_alpha_fallback")

    n = len(outcomes)
    okeys: list[AttemptKey] = [
        (str(g), int(r), str(m), int(a))
        for g, r, m, a in zip(
            outcomes["goal_id"], outcomes["rep"], outcomes["mode"], outcomes["attempt"], strict=True
        )
    ]
    if len(set(okeys)) != n:
        dup = pd.Series(okeys)[pd.Series(okeys).duplicated()].iloc[0]
        raise AccountingInputError(
            f"outcomes hold the attempt (goal_id, rep, mode, attempt)={dup} more than once",
            "account one run's outcomes at a time (one (family, rep) job)",
        )
    extra = [k for k in windows if k not in set(okeys)]
    if extra:
        run_flags.append(f"events_without_outcome:{len(extra)}")
    odd = unknown_kinds(events)
    if odd:
        run_flags.append(f"unknown_event_kinds:{','.join(odd)}")

    flags: list[set[str]] = [set() for _ in range(n)]
    has = np.array([k in windows for k in okeys], dtype=bool)
    t0 = np.array([windows[k].t0 if k in windows else np.nan for k in okeys], dtype=float)
    t1 = np.array([windows[k].t1 if k in windows else np.nan for k in okeys], dtype=float)
    for i, k in enumerate(okeys):
        if k in windows:
            flags[i] |= windows[k].flags
        else:
            flags[i].add("no_window")

    nan = np.full(n, np.nan)
    raw, dyn, alpha, attr, cov = nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy()
    llm_j, tool_j, gap_j = nan.copy(), nan.copy(), nan.copy()
    gap_raw, gap_dyn = nan.copy(), nan.copy()
    idx = np.flatnonzero(has)
    if len(idx):
        aw = energy(t0[idx], t1[idx], run_alpha)
        raw[idx], dyn[idx], alpha[idx] = aw.raw_j, aw.dynamic_j, aw.alpha
        attr[idx], cov[idx] = aw.attributed_j, aw.coverage
        for j, i in enumerate(idx):
            if aw.coverage[j] < cfg.min_coverage:
                flags[i].add("low_coverage")
            if aw.outside[j]:
                flags[i].add("outside_samples")
            if aw.dynamic_j[j] < 0:
                flags[i].add("negative_dynamic")
            if aw.alpha_fallback[j]:
                flags[i].add("alpha_fallback")
            if aw.alpha_clipped[j]:
                flags[i].add("alpha_clipped")
            if aw.unbracketed is not None and aw.unbracketed[j]:
                flags[i].add("unbracketed")
            if aw.gpu_shared is not None and aw.gpu_shared[j]:
                flags[i].add("gpu_shared")

        # L3: LLM and tool windows, each with its own L1/L2, falling back to the attempt's alpha
        for phase, out in (("llm", llm_j), ("tool", tool_j)):
            owner: list[int] = []
            p0: list[float] = []
            p1: list[float] = []
            for i in idx:
                for a, b in getattr(windows[okeys[i]], phase):
                    owner.append(i)
                    p0.append(a)
                    p1.append(b)
            out[idx] = 0.0
            if owner:
                own = np.array(owner)
                pw = energy(np.array(p0), np.array(p1), alpha[own])
                np.add.at(out, own, pw.attributed_j)
                for i in own[pw.alpha_fallback]:
                    flags[i].add("phase_alpha_fallback")
                for i in own[pw.alpha_clipped]:
                    flags[i].add("alpha_clipped")

    # gaps: from attempt k-1's end to attempt k's start, on attempt k's row
    gap_windows: list[tuple[float, float]] = []
    gap_owner: list[int] = []
    gap_j[idx] = 0.0
    gap_raw[idx] = 0.0
    gap_dyn[idx] = 0.0
    by_exec: dict[tuple[str, int, str], list[int]] = {}
    for i in idx:
        by_exec.setdefault(okeys[i][:3], []).append(int(i))
    for members in by_exec.values():
        members.sort(key=lambda i: okeys[i][3])
        for prev, cur in itertools.pairwise(members):
            a, b = t1[prev], t0[cur]
            if b < a:
                flags[cur].add("overlapping_attempts")
                continue
            gap_windows.append((a, b))
            gap_owner.append(cur)
    if gap_owner:
        own = np.array(gap_owner)
        gw = energy(np.array([g[0] for g in gap_windows]), np.array([g[1] for g in gap_windows]), alpha[own])
        np.add.at(gap_j, own, gw.attributed_j)
        np.add.at(gap_raw, own, gw.raw_j)
        np.add.at(gap_dyn, own, gw.dynamic_j)
        for i in own[gw.alpha_fallback]:
            flags[i].add("gap_alpha_fallback")
        for i in own[gw.outside]:
            flags[i].add("gap_outside_samples")

    # framework overhead: the sampled span outside every attempt and gap window
    covered = _merge(
        [(max(lo, float(a)), min(hi, float(b))) for a, b in zip(t0[idx], t1[idx], strict=True)]
        + [(max(lo, a), min(hi, b)) for a, b in gap_windows]
    )
    covered = [(a, b) for a, b in covered if b > a]
    free: list[tuple[float, float]] = []
    cursor = lo
    for a, b in covered:
        if a > cursor:
            free.append((cursor, a))
        cursor = max(cursor, b)
    if hi > cursor:
        free.append((cursor, hi))
    if free:
        ow = energy(np.array([f[0] for f in free]), np.array([f[1] for f in free]), run_alpha)
        overhead = (float(ow.attributed_j.sum()), float(ow.raw_j.sum()), float(ow.dynamic_j.sum()))
    else:
        overhead = (0.0, 0.0, 0.0)

    tokens = {
        "llm_calls": [windows[k].llm_calls if k in windows else 0 for k in okeys],
        "tool_calls": [windows[k].tool_calls if k in windows else 0 for k in okeys],
        "tokens_in": [windows[k].tokens_in if k in windows else 0 for k in okeys],
        "tokens_out": [windows[k].tokens_out if k in windows else 0 for k in okeys],
    }
    goals = pd.DataFrame(
        {
            "family": outcomes["family"].astype(str).to_numpy(),
            "mode": outcomes["mode"].astype(str).to_numpy(),
            "goal_id": outcomes["goal_id"].to_numpy(),
            "rep": outcomes["rep"].astype(int).to_numpy(),
            "attempt": outcomes["attempt"].astype(int).to_numpy(),
            "success": as_bool(outcomes["success"]),
            "final_attempt": as_bool(outcomes["final_attempt"]),
            "t0": t0,
            "t1": t1,
            "duration_s": t1 - t0,
            "raw_j": raw,
            "dynamic_j": dyn,
            "attributed_j": attr,
            "energy_j": attr.copy(),
            "llm_j": llm_j,
            "tool_j": tool_j,
            "orchestration_j": attr - llm_j - tool_j,
            "gap_j": gap_j,
            "coverage": cov,
            **{k: np.array(v, dtype=np.int64) for k, v in tokens.items()},
            "energy_source": source,
            "answer": outcomes["answer"].to_numpy(),
            "expected": outcomes["expected"].to_numpy(),
            "error": outcomes["error"].to_numpy(),
            "run_id": str(run_id),
            "alpha": alpha,
            "flags": [";".join(sorted(f)) for f in flags],
            "gap_raw_j": gap_raw,
            "gap_dynamic_j": gap_dyn,
        },
        columns=[*GOALS_COLUMNS, *GOALS_EXTRA_COLUMNS],
    )
    for col in GOALS_TASK_COLUMNS:
        if col in outcomes.columns:
            goals[col] = outcomes[col].to_numpy()
    return AccountingResult(
        goals=goals,
        framework_overhead_j=overhead[0],
        overhead_raw_j=overhead[1],
        overhead_dynamic_j=overhead[2],
        overhead_s=float(sum(b - a for a, b in free)),
        run_alpha=run_alpha,
        energy_source=source,
        span=(lo, hi),
        flags=run_flags,
    )


def account_config(
    samples_df: pd.DataFrame,
    domains: Sequence[Domain],
    events: Any,
    outcomes_df: Any,
    idle_power_w: Mapping[str, float],
    cfg: AccountingConfig,
    *,
    run_id: str = "",
    idle_busy_cpu_per_s: float | None = None,
) -> AccountingResult:
    """:func:`account` with settings from an :class:`AccountingConfig`."""
    return account(
        samples_df,
        domains,
        events,
        outcomes_df,
        idle_power_w,
        attribution=cfg.attribution,
        min_coverage=cfg.min_coverage,
        run_id=run_id,
        idle_busy_cpu_per_s=idle_busy_cpu_per_s,
    )


def write_goals(goals: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a goals table atomically as CSV (contract columns first, as given)."""
    atomic_write_with(path, lambda tmp: goals.to_csv(tmp, index=False))
