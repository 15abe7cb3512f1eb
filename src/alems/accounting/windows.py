"""Energy of time windows: one run's counters (:class:`CounterSeries`) and the L0-L2 chain.

:class:`CounterSeries` reads the counters at any instant (exact at sample times, linear
between, clamped outside the sampled span; stepwise counters reconstructed first), and
:func:`window_energy` turns windows ``[t0, t1]`` into raw (L0), dynamic (L1) and
attributed (L2) energy with their coverage and flags. The package docstring
(:mod:`alems.accounting`) defines the layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alems.accounting.config import attribution_modes
from alems.accounting.errors import AccountingInputError
from alems.energy.procstat import USER_HZ
from alems.energy.stepwise import reconstruct

ALPHA_SLACK = 0.02
"""α up to 1 + this (or two CPU-time ticks of the window's net busy time) is clipped unflagged."""


# --------------------------------------------------------------------------- counters
def _check_columns(samples: pd.DataFrame, keys: Sequence[str]) -> None:
    """The columns :meth:`CounterSeries.from_samples` needs are there, and there are rows."""
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


def _sorted_by_time(samples: pd.DataFrame) -> pd.DataFrame:
    """Rows by time; rows sharing a ``t`` keep their order, with boundary reads last."""
    order_cols = ["t"]
    df = samples
    if "boundary" in samples.columns:
        df = samples.assign(_b=samples["boundary"].fillna(False).astype(bool))
        order_cols = ["t", "_b"]
    return df.sort_values(order_cols, kind="mergesort")


def _check_counters(t: np.ndarray, energy: np.ndarray, keys: Sequence[str]) -> None:
    """Times and counters are finite, and every cumulative counter is non-decreasing."""
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


def _reconstruct_stepwise(
    t: np.ndarray, energy: np.ndarray, keys: Sequence[str], stepwise: Iterable[str]
) -> np.ndarray:
    """Replace the ``stepwise`` columns of ``energy`` (in place) by their reconstruction.

    Returns the ``(d, 2)`` bracket: ``[tau_1, tau_K]`` of each stepwise key, ``(-inf, inf)``
    for the others (``(inf, -inf)`` for a stepwise key that never updated)."""
    steps = set(stepwise)
    bracket = np.tile([-np.inf, np.inf], (len(keys), 1))
    for i, k in enumerate(keys):
        if k in steps:
            rec = reconstruct(t, energy[:, i])
            energy[:, i] = rec.values
            bracket[i] = rec.span if rec.span is not None else (np.inf, -np.inf)
    return bracket


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
        _check_columns(samples, keys)
        df = _sorted_by_time(samples)
        t = df["t"].to_numpy(dtype=float)
        energy = df[list(keys)].to_numpy(dtype=float).reshape(len(df), len(keys)).copy()
        proc = df["proc_cpu_s"].to_numpy(dtype=float)
        sys_ = df["sys_cpu_s"].to_numpy(dtype=float)
        _check_counters(t, energy, keys)
        bracket = _reconstruct_stepwise(t, energy, keys, stepwise)
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
        return np.asarray(((t0[:, None] < lo[None, :]) | (t1[:, None] > hi[None, :])).any(axis=1))

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


# --------------------------------------------------------------------------- windows
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


def _cpu_share_alpha(
    dproc: np.ndarray, net_busy: np.ndarray, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(alpha, fell_back, clipped)``: α = Δproc / net busy CPU time, clipped to [0, 1].

    ``fallback`` stands in (flagged ``fell_back``) where the net busy time is not positive;
    ``clipped`` marks α outside [0, 1] beyond the CPU-time resolution."""
    fell_back = ~(net_busy > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(fell_back, fallback, dproc / np.where(fell_back, 1.0, net_busy))
    # CPU times are read in ticks: alpha above 1 by less than two ticks of the net busy
    # time (or 2 %) is resolution, not a fault; it is clipped without a flag
    with np.errstate(invalid="ignore", divide="ignore"):
        slack = np.maximum(ALPHA_SLACK, 2.0 / (USER_HZ * np.where(fell_back, 1.0, net_busy)))
    clipped = (~fell_back) & ((a < 0) | (a > 1.0 + slack))
    return np.clip(a, 0.0, 1.0), fell_back, clipped


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
    m = len(t0)
    cpu_mode, gpu_mode = attribution_modes(attribution)
    gpu = np.zeros(len(series.keys), dtype=bool) if gpu_mask is None else np.asarray(gpu_mask, dtype=bool)
    fb = np.broadcast_to(np.asarray(fallback_alpha, dtype=float), (m,))
    if cpu_mode == "none" and gpu_mode != "cpu_share":
        alpha, fell_back, clipped = np.ones(m), np.zeros(m, dtype=bool), np.zeros(m, dtype=bool)
    else:
        net_busy = (s1 - s0) - float(idle_busy_cpu_per_s) * dt_eff
        alpha, fell_back, clipped = _cpu_share_alpha(p1 - p0, net_busy, fb)
    alpha_cpu = np.ones(m) if cpu_mode == "none" else alpha
    alpha_gpu = alpha if gpu_mode == "cpu_share" else np.ones(m)
    attributed = alpha_cpu * dynamic_by_domain[:, ~gpu].sum(axis=1) + alpha_gpu * dynamic_by_domain[
        :, gpu
    ].sum(axis=1)
    shared = series.gpu_shared(t0, t1) if (gpu_mode == "exclusive" and gpu.any()) else np.zeros(m, dtype=bool)
    return WindowEnergy(
        raw_by_domain=raw_by_domain,
        raw_j=raw_by_domain.sum(axis=1),
        dynamic_j=dynamic_by_domain.sum(axis=1),
        alpha=alpha_cpu,
        attributed_j=attributed,
        coverage=series.coverage(t0, t1),
        outside=~(in0 & in1),
        alpha_fallback=fell_back,
        alpha_clipped=clipped,
        unbracketed=series.unbracketed(t0, t1),
        gpu_shared=shared,
    )
