"""One run's accounting: samples + events + outcomes + idle baseline -> :class:`AccountingResult`.

:func:`account` is a chain of small pure steps, each named for what it accounts: the
run's counters and baseline, the attempts the outcomes name, the attempt windows (L0-L2,
coverage and flags), their LLM and tool phases (L3), the gaps between attempts, and the
framework overhead outside them all; :func:`alems.accounting.goals.goals_table` lays the
rows out. The package docstring (:mod:`alems.accounting`) defines the layers and flags.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alems.accounting.calls import calls_table, conservation_residual, empty_calls
from alems.accounting.config import DEFAULT_ATTRIBUTION, DEFAULT_MIN_COVERAGE, AccountingConfig
from alems.accounting.errors import AccountingInputError
from alems.accounting.events import (
    AttemptKey,
    AttemptWindows,
    CallInfo,
    ExecutionKey,
    parse_events,
    unknown_kinds,
)
from alems.accounting.goals import AttemptRows, goals_table, outcome_frame
from alems.accounting.sources import contains_modeled, energy_source_of
from alems.accounting.windows import CounterSeries, WindowEnergy, window_energy
from alems.energy.base import Domain, summable_keys
from alems.energy.stepwise import is_stepwise
from alems.errors import ConfigError

Interval = tuple[float, float]
RowFlag = tuple[int, str]  # (outcome row, flag)


@dataclass
class AccountingResult:
    """One run's accounting.

    ``goals``: the goals.csv rows (contract columns, then :data:`GOALS_EXTRA_COLUMNS`).
    ``framework_overhead_j``: attributed energy in the sampled span outside every attempt
    and gap window; ``overhead_raw_j`` / ``overhead_dynamic_j`` are its L0 / L1 values and
    ``overhead_s`` its duration. ``flags``: run-level flags
    (``events_without_outcome:N``, ``unknown_event_kinds:a,b``, ``run_alpha_fallback``).
    ``calls``: the calls.csv rows (one per LLM or tool call window);
    ``conservation_residual``: :func:`~alems.accounting.calls.conservation_residual` of
    the goals and calls (the largest relative residual of phases and calls, every layer).
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
    calls: pd.DataFrame = field(default_factory=empty_calls)
    conservation_residual: float = 0.0

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
            "calls": len(self.calls),
            "conservation_residual": self.conservation_residual,
        }


# --------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class _RunEnergy:
    """One run's counters and idle baseline: the L0-L2 chain for any of its windows."""

    series: CounterSeries
    idle_w: np.ndarray
    gpu_mask: np.ndarray
    attribution: str | Mapping[str, str]
    idle_busy_cpu_per_s: float

    def of(self, t0: np.ndarray, t1: np.ndarray, fallback: float | np.ndarray) -> WindowEnergy:
        """:func:`window_energy` of the windows ``[t0[i], t1[i]]``, α falling back to ``fallback``."""
        return window_energy(
            self.series,
            t0,
            t1,
            self.idle_w,
            self.attribution,
            fallback,
            gpu_mask=self.gpu_mask,
            idle_busy_cpu_per_s=self.idle_busy_cpu_per_s,
        )


def _idle_vector(idle_power_w: Mapping[str, float], keys: Sequence[str]) -> np.ndarray:
    missing = [k for k in keys if k not in idle_power_w]
    if missing:
        raise ConfigError(
            f"the idle baseline has no power for domain(s) {missing} (has {sorted(idle_power_w)})",
            "run `alems baseline` on this host (or rerun the workflow's baseline rule) so "
            "results/baseline/idle.json covers every domain the meter reports",
        )
    return np.array([float(idle_power_w[k]) for k in keys], dtype=float)


def _run_energy(
    samples_df: pd.DataFrame,
    domains: Sequence[Domain],
    idle_power_w: Mapping[str, float],
    attribution: str | Mapping[str, str],
    idle_busy_cpu_per_s: float | None,
) -> _RunEnergy:
    """The run's summable counters (stepwise ones reconstructed) and their idle power."""
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
    return _RunEnergy(series, idle, gpu_mask, attribution, float(idle_busy_cpu_per_s or 0.0))


# --------------------------------------------------------------------------- attempts
def _attempt_keys(outcomes: pd.DataFrame) -> list[AttemptKey]:
    """Each outcome row's (goal_id, rep, mode, attempt); a repeated attempt is an input error."""
    keys: list[AttemptKey] = [
        (str(g), int(r), str(m), int(a))
        for g, r, m, a in zip(
            outcomes["goal_id"], outcomes["rep"], outcomes["mode"], outcomes["attempt"], strict=True
        )
    ]
    if len(set(keys)) != len(keys):
        dup = pd.Series(keys)[pd.Series(keys).duplicated()].iloc[0]
        raise AccountingInputError(
            f"outcomes hold the attempt (goal_id, rep, mode, attempt)={dup} more than once",
            "account one run's outcomes at a time (one (family, rep) job)",
        )
    return keys


def _run_flags(
    run_window: WindowEnergy,
    cpu_mode: str,
    keys: Sequence[AttemptKey],
    windows: Mapping[AttemptKey, AttemptWindows],
    events: Any,
) -> list[str]:
    """Run-level flags: the run's α fell back, events of no outcome, unknown event kinds."""
    flags: list[str] = []
    if cpu_mode == "cpu_share" and bool(run_window.alpha_fallback[0]):
        flags.append("run_alpha_fallback")
    known = set(keys)
    extra = [k for k in windows if k not in known]
    if extra:
        flags.append(f"events_without_outcome:{len(extra)}")
    odd = unknown_kinds(events)
    if odd:
        flags.append(f"unknown_event_kinds:{','.join(odd)}")
    return flags


def _window_flags(keys: Sequence[AttemptKey], windows: Mapping[AttemptKey, AttemptWindows]) -> list[set[str]]:
    """Each row's flags from the event log (``no_window`` where it has no attempt events)."""
    return [set(windows[k].flags) if k in windows else {"no_window"} for k in keys]


def _energy_flags(w: WindowEnergy, rows: np.ndarray, min_coverage: float) -> list[RowFlag]:
    """Flags of the attempt windows ``w`` of outcome rows ``rows``."""
    checks = [
        ("low_coverage", w.coverage < min_coverage),
        ("outside_samples", w.outside),
        ("negative_dynamic", w.dynamic_j < 0),
        ("alpha_fallback", w.alpha_fallback),
        ("alpha_clipped", w.alpha_clipped),
        ("unbracketed", w.unbracketed),
        ("gpu_shared", w.gpu_shared),
    ]
    return [
        (int(row), name)
        for j, row in enumerate(rows)
        for name, hit in checks
        if hit is not None and bool(hit[j])
    ]


@dataclass(frozen=True)
class _AttemptEnergy:
    """The attempt windows' L0-L2 per outcome row (NaN where the row has no window)."""

    raw_j: np.ndarray
    dynamic_j: np.ndarray
    alpha: np.ndarray
    attributed_j: np.ndarray
    coverage: np.ndarray
    flags: list[RowFlag]


def _attempt_energy(
    run: _RunEnergy, t0: np.ndarray, t1: np.ndarray, rows: np.ndarray, run_alpha: float, min_coverage: float
) -> _AttemptEnergy:
    """L0-L2 of the attempt windows of ``rows``, α falling back to the run's."""
    nan = np.full(len(t0), np.nan)
    raw, dyn, alpha, attr, cov = nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy()
    if not len(rows):
        return _AttemptEnergy(raw, dyn, alpha, attr, cov, [])
    aw = run.of(t0[rows], t1[rows], run_alpha)
    raw[rows], dyn[rows], alpha[rows] = aw.raw_j, aw.dynamic_j, aw.alpha
    attr[rows], cov[rows] = aw.attributed_j, aw.coverage
    return _AttemptEnergy(raw, dyn, alpha, attr, cov, _energy_flags(aw, rows, min_coverage))


@dataclass(frozen=True)
class _PhaseEnergy:
    """L3: every ``phase`` ("llm"/"tool") call window of the rows, and their energy summed per
    row in each layer (0 for a row with no such call, NaN for a row with no attempt window)."""

    kind: str  # "llm" | "tool"
    owner: np.ndarray  # outcome row of each call window
    windows: list[Interval]
    energy: WindowEnergy | None  # of the call windows (None when there are none)
    raw_j: np.ndarray
    dynamic_j: np.ndarray
    attributed_j: np.ndarray
    flags: list[RowFlag]


def _phase_energy(
    run: _RunEnergy,
    keys: Sequence[AttemptKey],
    windows: Mapping[AttemptKey, AttemptWindows],
    rows: np.ndarray,
    alpha: np.ndarray,
    phase: str,
) -> _PhaseEnergy:
    """L3 of every ``phase`` window, each with its own L0-L2, α falling back to its attempt's."""
    sums = [np.full(len(keys), np.nan) for _ in range(3)]
    for arr in sums:
        arr[rows] = 0.0
    owner: list[int] = []
    spans: list[Interval] = []
    for i in rows:
        for a, b in getattr(windows[keys[i]], phase):
            owner.append(int(i))
            spans.append((a, b))
    if not owner:
        return _PhaseEnergy(phase, np.zeros(0, dtype=int), [], None, sums[0], sums[1], sums[2], [])
    own = np.array(owner)
    pw = run.of(np.array([w[0] for w in spans]), np.array([w[1] for w in spans]), alpha[own])
    for arr, per_call in zip(sums, (pw.raw_j, pw.dynamic_j, pw.attributed_j), strict=True):
        np.add.at(arr, own, per_call)
    flags = [(int(i), "phase_alpha_fallback") for i in own[pw.alpha_fallback]]
    flags += [(int(i), "alpha_clipped") for i in own[pw.alpha_clipped]]
    return _PhaseEnergy(phase, own, spans, pw, sums[0], sums[1], sums[2], flags)


# --------------------------------------------------------------------------- gaps
@dataclass(frozen=True)
class _Gaps:
    """The gaps between consecutive attempts of an execution, each owned by the later attempt's row."""

    windows: list[Interval]
    owner: list[int]
    overlapping: list[int]  # rows whose attempt starts before the previous one ends (no gap)


def _gap_windows(keys: Sequence[AttemptKey], rows: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> _Gaps:
    """From attempt k-1's end to attempt k's start, per execution, on attempt k's row."""
    by_exec: dict[ExecutionKey, list[int]] = {}
    for i in rows:
        by_exec.setdefault(keys[i][:3], []).append(int(i))
    gaps = _Gaps([], [], [])
    for members in by_exec.values():
        members.sort(key=lambda i: keys[i][3])
        for prev, cur in itertools.pairwise(members):
            a, b = t1[prev], t0[cur]
            if b < a:
                gaps.overlapping.append(cur)
                continue
            gaps.windows.append((a, b))
            gaps.owner.append(cur)
    return gaps


def _gap_energy(
    run: _RunEnergy, gaps: _Gaps, alpha: np.ndarray, rows: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[RowFlag]]:
    """``(gap_j, gap_raw_j, gap_dynamic_j, flags)`` per row: L2, L0, L1 of the gap before it.

    A gap's α falls back to its later attempt's. 0 for a row with no gap before it (an
    execution's first attempt), NaN for a row with no attempt window."""
    gap_j, gap_raw, gap_dyn = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    gap_j[rows] = 0.0
    gap_raw[rows] = 0.0
    gap_dyn[rows] = 0.0
    flags = [(i, "overlapping_attempts") for i in gaps.overlapping]
    if not gaps.owner:
        return gap_j, gap_raw, gap_dyn, flags
    own = np.array(gaps.owner)
    gw = run.of(np.array([g[0] for g in gaps.windows]), np.array([g[1] for g in gaps.windows]), alpha[own])
    np.add.at(gap_j, own, gw.attributed_j)
    np.add.at(gap_raw, own, gw.raw_j)
    np.add.at(gap_dyn, own, gw.dynamic_j)
    flags += [(int(i), "gap_alpha_fallback") for i in own[gw.alpha_fallback]]
    flags += [(int(i), "gap_outside_samples") for i in own[gw.outside]]
    return gap_j, gap_raw, gap_dyn, flags


# --------------------------------------------------------------------------- overhead
def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _free_windows(span: Interval, t0: np.ndarray, t1: np.ndarray, gaps: Sequence[Interval]) -> list[Interval]:
    """The stretches of the sampled ``span`` outside every attempt ``[t0[i], t1[i]]`` and gap."""
    lo, hi = span
    covered = _merge(
        [(max(lo, float(a)), min(hi, float(b))) for a, b in zip(t0, t1, strict=True)]
        + [(max(lo, a), min(hi, b)) for a, b in gaps]
    )
    covered = [(a, b) for a, b in covered if b > a]
    free: list[Interval] = []
    cursor = lo
    for a, b in covered:
        if a > cursor:
            free.append((cursor, a))
        cursor = max(cursor, b)
    if hi > cursor:
        free.append((cursor, hi))
    return free


def _overhead_energy(
    run: _RunEnergy, free: Sequence[Interval], run_alpha: float
) -> tuple[float, float, float]:
    """``(attributed, raw, dynamic)`` energy of the framework overhead windows, α the run's."""
    if not free:
        return (0.0, 0.0, 0.0)
    ow = run.of(np.array([f[0] for f in free]), np.array([f[1] for f in free]), run_alpha)
    return (float(ow.attributed_j.sum()), float(ow.raw_j.sum()), float(ow.dynamic_j.sum()))


# --------------------------------------------------------------------------- account
def _row_flags(base: list[set[str]], *found: list[RowFlag]) -> list[set[str]]:
    """``base`` (one set per row) with every ``(row, flag)`` of ``found`` added."""
    flags = [set(f) for f in base]
    for row, name in itertools.chain(*found):
        flags[row].add(name)
    return flags


def _attempt_rows(
    run: _RunEnergy,
    keys: Sequence[AttemptKey],
    windows: Mapping[AttemptKey, AttemptWindows],
    rows: np.ndarray,
    run_alpha: float,
    min_coverage: float,
) -> tuple[AttemptRows, _Phases]:
    """Every per-row number of the goals table: the attempt window (``rows`` are the rows that
    have one), its phases in every layer, the gap before it and the flags; and the gap and
    call windows."""
    t0 = np.array([windows[k].t0 if k in windows else np.nan for k in keys], dtype=float)
    t1 = np.array([windows[k].t1 if k in windows else np.nan for k in keys], dtype=float)
    att = _attempt_energy(run, t0, t1, rows, run_alpha, min_coverage)
    llm = _phase_energy(run, keys, windows, rows, att.alpha, "llm")
    tool = _phase_energy(run, keys, windows, rows, att.alpha, "tool")
    gaps = _gap_windows(keys, rows, t0, t1)
    gap_j, gap_raw, gap_dyn, gap_flags = _gap_energy(run, gaps, att.alpha, rows, len(keys))
    flags = _row_flags(_window_flags(keys, windows), att.flags, llm.flags, tool.flags, gap_flags)
    return AttemptRows(
        t0=t0,
        t1=t1,
        raw_j=att.raw_j,
        dynamic_j=att.dynamic_j,
        alpha=att.alpha,
        attributed_j=att.attributed_j,
        coverage=att.coverage,
        llm_j=llm.attributed_j,
        tool_j=tool.attributed_j,
        gap_j=gap_j,
        gap_raw_j=gap_raw,
        gap_dynamic_j=gap_dyn,
        flags=flags,
        llm_raw_j=llm.raw_j,
        tool_raw_j=tool.raw_j,
        llm_dynamic_j=llm.dynamic_j,
        tool_dynamic_j=tool.dynamic_j,
    ), _Phases(gaps.windows, llm, tool)


@dataclass(frozen=True)
class _Phases:
    """What :func:`_attempt_rows` measured besides the rows: the gap windows and the calls."""

    gaps: list[Interval]
    llm: _PhaseEnergy
    tool: _PhaseEnergy


# --------------------------------------------------------------------------- calls
def _split_energy(
    run: _RunEnergy, phase: _PhaseEnergy, infos: Sequence[CallInfo]
) -> tuple[np.ndarray, np.ndarray]:
    """``(prefill_j, decode_j)`` of each call (attributed layer): the energy of
    ``[t0, t0 + prefill_s]`` and of ``[t0 + prefill_s, min(t1, t0 + prefill_s + decode_s)]``
    on the power timeline; NaN where the backend gave no timings."""
    n = len(infos)
    pre, dec = np.full(n, np.nan), np.full(n, np.nan)
    if phase.energy is None:
        return pre, dec
    p = np.array([c.prefill_s for c in infos], dtype=float)
    d = np.array([c.decode_s for c in infos], dtype=float)
    has = np.flatnonzero(np.isfinite(p) & np.isfinite(d))
    if not len(has):
        return pre, dec
    t0 = np.array([phase.windows[i][0] for i in has])
    t1 = np.array([phase.windows[i][1] for i in has])
    mid = np.minimum(t1, t0 + np.maximum(p[has], 0.0))
    end = np.minimum(t1, mid + np.maximum(d[has], 0.0))
    alpha = phase.energy.alpha[has]
    pre[has] = run.of(t0, mid, alpha).attributed_j
    dec[has] = run.of(mid, end, alpha).attributed_j
    return pre, dec


def _phase_calls(
    run: _RunEnergy,
    keys: Sequence[AttemptKey],
    windows: Mapping[AttemptKey, AttemptWindows],
    phase: _PhaseEnergy,
) -> pd.DataFrame:
    """One row per call window of ``phase`` (the identity columns come later)."""
    if phase.energy is None:
        return pd.DataFrame()
    seen: dict[int, int] = {}
    infos: list[CallInfo] = []
    for row in phase.owner:
        k = keys[int(row)]
        j = seen.get(int(row), 0)
        seen[int(row)] = j + 1
        w = windows[k]
        infos.append((w.llm_info if phase.kind == "llm" else w.tool_info)[j])
    pre, dec = _split_energy(run, phase, infos)
    e = phase.energy
    return pd.DataFrame(
        {
            "_row": phase.owner,
            "kind": [c.kind for c in infos],
            "role": [c.role for c in infos],
            "t0": [w[0] for w in phase.windows],
            "t1": [w[1] for w in phase.windows],
            "tokens_in": [c.tokens_in for c in infos],
            "tokens_out": [c.tokens_out for c in infos],
            "raw_j": e.raw_j,
            "dynamic_j": e.dynamic_j,
            "attributed_j": e.attributed_j,
            "prefill_s": [c.prefill_s for c in infos],
            "decode_s": [c.decode_s for c in infos],
            "prefill_j": pre,
            "decode_j": dec,
            "tokens_estimated": [c.tokens_estimated for c in infos],
            "error": [c.error for c in infos],
            "_alpha_fallback": e.alpha_fallback,
        }
    )


def account(
    samples_df: pd.DataFrame,
    domains: Sequence[Domain],
    events: Any,
    outcomes_df: Any,
    idle_power_w: Mapping[str, float],
    *,
    attribution: str | Mapping[str, str] = DEFAULT_ATTRIBUTION,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    run_id: str = "",
    idle_busy_cpu_per_s: float | None = None,
) -> AccountingResult:
    """Account one run: one ``goals.csv`` row per outcome row (per attempt), in outcome order.

    ``events`` is a list of event dicts or a DataFrame (events.jsonl); ``outcomes_df`` the
    agents' per-attempt outcomes; ``idle_power_w`` the baseline's mean idle watts per domain
    key (every summable key must be present); ``idle_busy_cpu_per_s`` the busy CPU-seconds
    per second the idle baseline saw (``host_util`` x CPUs; ``None``: unknown, taken as 0).
    See the package docstring (:mod:`alems.accounting`) for the layers.
    """
    cfg = AccountingConfig(attribution=attribution, min_coverage=float(min_coverage))
    run = _run_energy(samples_df, domains, idle_power_w, cfg.attribution, idle_busy_cpu_per_s)
    source = energy_source_of(domains, run.series.keys)
    outcomes = outcome_frame(outcomes_df)
    windows = parse_events(events)
    span = run.series.span
    # the whole run's alpha: the last-resort fallback
    run_window = run.of(np.array([span[0]]), np.array([span[1]]), 1.0)
    run_alpha = float(run_window.alpha[0])
    keys = _attempt_keys(outcomes)
    run_flags = _run_flags(run_window, cfg.modes[0], keys, windows, events)

    rows = np.flatnonzero(np.array([k in windows for k in keys], dtype=bool))
    attempt_rows, phases = _attempt_rows(run, keys, windows, rows, run_alpha, cfg.min_coverage)
    free = _free_windows(span, attempt_rows.t0[rows], attempt_rows.t1[rows], phases.gaps)
    overhead = _overhead_energy(run, free, run_alpha)
    goals = goals_table(outcomes, keys, windows, attempt_rows, source, run_id)
    calls = calls_table(
        outcomes,
        keys,
        [_phase_calls(run, keys, windows, p) for p in (phases.llm, phases.tool)],
        source,
        run_id,
    )
    return AccountingResult(
        goals=goals,
        calls=calls,
        conservation_residual=conservation_residual(goals, calls),
        framework_overhead_j=overhead[0],
        overhead_raw_j=overhead[1],
        overhead_dynamic_j=overhead[2],
        overhead_s=float(sum(b - a for a, b in free)),
        run_alpha=run_alpha,
        energy_source=source,
        span=span,
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
