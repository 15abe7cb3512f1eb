"""The bootstrap method: strata of goal-level units, their resampled totals, BCa and
percentile intervals (read at an expanded level), p-values by inverting the interval, and
Holm's adjustment.

Nothing here knows what a goal, a mode or a table is: a statistic maps totals to a number,
and :class:`BootstrapResult` carries what a table needs to report it (the package docstring
of :mod:`alems.metrics` describes the method as the tables use it).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import t as student_t

MAX_DEGENERATE_SHARE = 0.05  # more degenerate resamples than this: no interval (insufficient_data)
_BLOCK_ELEMENTS = 4_000_000  # resample-weight cells per block (bounds memory for big strata)


@dataclass(frozen=True)
class BootstrapResult:
    """One scope's estimate and interval.

    ``theta`` holds the sorted statistics of the *defined* resamples: degenerate ones (a
    mode without success, see :func:`bootstrap_strata`) and NaN are left out, and only
    counted in ``n_degenerate``;
    ``z0`` and ``accel`` are the BCa bias correction and acceleration (0 for a
    percentile interval), so the interval can be read at other levels
    (:func:`interval_at`) and inverted into a p-value (:func:`p_value`).
    """

    estimate: float
    ci_low: float
    ci_high: float
    method: str  # "BCa" | "percentile" | "none"
    n_resamples: int
    n_degenerate: int
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    z0: float = 0.0
    accel: float = 0.0
    n_min: int = 0  # smallest stratum (goals); with df > 0 the interval is expanded (see expanded_level)
    df: int = 0


@dataclass(frozen=True)
class Stratum:
    """One stratum's units: ``values`` (n, k) per-unit columns; ``boot`` (B, k) resampled totals."""

    name: str
    values: np.ndarray
    boot: np.ndarray


def stratum_rng(seed: int, tag: str) -> np.random.Generator:
    """The generator of one stratum: seeded by the config seed and a stable hash of ``tag``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(tag.encode("utf-8"))]))


def resample_totals(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Column totals of ``n_resamples`` with-replacement resamples of the rows of ``values``.

    Returns (B, k). Each block of resamples draws an index matrix, turns it into a count
    matrix with one ``bincount``, and takes weighted column sums with ``einsum``'s own loop
    (no BLAS, whose summation order may depend on threading), so reruns are bit-for-bit equal.
    """
    values = np.asarray(values, dtype=float)
    n, k = values.shape
    out = np.zeros((n_resamples, k))
    if n == 0 or n_resamples == 0:
        return out
    block = max(1, min(n_resamples, _BLOCK_ELEMENTS // n))
    values_t = np.ascontiguousarray(values.T)
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        idx += (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(float)
        out[start : start + b] = np.einsum("bn,kn->bk", counts, values_t)
    return out


def make_stratum(name: str, values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> Stratum:
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    return Stratum(name=name, values=values, boot=resample_totals(values, n_resamples, rng))


def _quantile(sorted_x: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile (NumPy's default rule) that is exact across ``inf`` ties."""
    n = len(sorted_x)
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    a, b = float(sorted_x[lo]), float(sorted_x[hi])
    if a == b or h == lo:
        return a
    if math.isinf(a) or math.isinf(b):
        return a if math.isinf(a) else b  # the limit of interpolating towards an infinity
    return a + (h - lo) * (b - a)


def _acceleration(
    strata: Sequence[Stratum], total: np.ndarray, stat: Callable[[np.ndarray], np.ndarray]
) -> float:
    """BCa acceleration of a statistic of the summed totals (see :func:`_grouped_acceleration`)."""
    return _grouped_acceleration(strata, lambda t: stat(t.sum(axis=-2)))


def _grouped_acceleration(
    strata: Sequence[Stratum],
    stat: Callable[[np.ndarray], np.ndarray],
    degenerate: Callable[[np.ndarray], np.ndarray] | None = None,
) -> float:
    """BCa acceleration from a stratified jackknife (leave one unit out of its stratum).

    ``stat`` maps per-stratum totals (..., S, k) to the statistic. A unit is a goal
    (all its reps), so this is the grouped (leave-one-goal-out) jackknife.
    a = Σ_s Σ_i (u_si / n_s)^3 / (6 (Σ_s Σ_i (u_si / n_s)^2)^(3/2)), with
    u_si = (n_s - 1)(mean_i θ_(-si) - θ_(-si)); single-stratum it is the usual formula.
    NaN where undefined: a leave-one-goal-out value that is degenerate (by ``degenerate``:
    leaving that goal out leaves a mode without success) or not finite, or all of them
    equal. The jackknife needs every unit's value, so an undefined one is not dropped (that
    would bias ``a``); the caller then falls back to the percentile interval.
    """
    totals = np.stack([s.values.sum(axis=0) for s in strata]) if strata else np.zeros((0, 0))
    num = 0.0
    den = 0.0
    for j, s in enumerate(strata):
        n = len(s.values)
        if n < 2:
            continue
        loo = np.repeat(totals[None, :, :], n, axis=0)
        loo[:, j, :] -= s.values
        with np.errstate(all="ignore"):
            theta = stat(loo)
        if not np.all(np.isfinite(theta)) or (degenerate is not None and bool(np.any(degenerate(loo)))):
            return math.nan
        u = (n - 1) * (theta.mean() - theta) / n
        num += float(np.sum(u**3))
        den += float(np.sum(u**2))
    if not den > 0:
        return math.nan
    return num / (6.0 * den**1.5)


def bootstrap_scope(
    strata: Sequence[Stratum],
    stat: Callable[[np.ndarray], np.ndarray],
    degenerate: Callable[[np.ndarray], np.ndarray],
    level: float,
) -> BootstrapResult:
    """Estimate and BCa (else percentile) interval of ``stat`` of the totals summed over ``strata``.

    ``stat`` maps totals (..., k) to the statistic; ``degenerate`` marks resample totals to
    count as degenerate. Strata must share B.
    """
    return bootstrap_strata(
        strata, lambda t: stat(t.sum(axis=-2)), lambda t: degenerate(t.sum(axis=-2)), level
    )


def bootstrap_strata(
    strata: Sequence[Stratum],
    stat: Callable[[np.ndarray], np.ndarray],
    degenerate: Callable[[np.ndarray], np.ndarray],
    level: float,
) -> BootstrapResult:
    """Estimate and BCa (else percentile) interval of a statistic of per-stratum totals.

    ``stat`` maps per-stratum totals (..., S, k) to the statistic (S = len(strata));
    ``degenerate`` marks the resamples in which the statistic is undefined (a mode with no
    success: EpG would be ``inf``, an OOI ``0`` or ``inf``). They give no value: they are
    counted in ``n_degenerate`` and left out of ``theta``, so every interval endpoint, the
    BCa bias correction and the p-value come from defined resamples only (above
    :data:`MAX_DEGENERATE_SHARE` of them :func:`sufficient_interval` withholds the interval).
    When a leave-one-goal-out value is degenerate the BCa acceleration is undefined and the
    interval is the percentile one (:func:`_grouped_acceleration`). Strata must share B.
    """
    k = strata[0].values.shape[1] if strata else 0
    n_units = sum(len(s.values) for s in strata)
    if n_units == 0:
        return BootstrapResult(math.nan, math.nan, math.nan, "none", 0, 0)
    total = np.stack([s.values.sum(axis=0) for s in strata])
    with np.errstate(all="ignore"):
        estimate = float(stat(total[None, :, :])[0])
    b = strata[0].boot.shape[0]
    if b == 0:
        return BootstrapResult(estimate, math.nan, math.nan, "none", 0, 0)
    boot_total = np.stack([s.boot for s in strata], axis=1) if k else np.zeros((b, len(strata), 0))
    with np.errstate(all="ignore"):
        theta = stat(boot_total)
    deg = np.asarray(degenerate(boot_total), dtype=bool)
    n_degenerate = int(np.count_nonzero(deg))
    theta = np.sort(theta[~deg & ~np.isnan(theta)])
    if len(theta) == 0:
        return BootstrapResult(estimate, math.nan, math.nan, "none", b, n_degenerate)

    z0, accel, method = 0.0, 0.0, "percentile"
    if math.isfinite(estimate):
        share_below = float(np.count_nonzero(theta < estimate)) / len(theta)
        a = _grouped_acceleration(strata, stat, degenerate)
        if 0.0 < share_below < 1.0 and math.isfinite(a):
            z0, accel, method = float(ndtri(share_below)), a, "BCa"
    res = BootstrapResult(estimate, math.nan, math.nan, method, b, n_degenerate, theta, z0, accel)
    lo, hi, method = _interval(res, level)
    return BootstrapResult(
        estimate,
        lo,
        hi,
        method,
        b,
        n_degenerate,
        theta,
        res.z0 if method == "BCa" else 0.0,
        res.accel if method == "BCa" else 0.0,
    )


def _bca_quantile(z0: float, accel: float, z: float) -> float:
    return float(ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z))))


def _expansion(n_min: int) -> float:
    return math.sqrt(n_min / (n_min - 1.0))


def expanded_level(level: float, n_min: int, df: int) -> float:
    """The level at which a bootstrap interval is read so that it is as wide as
    ``sqrt(n/(n-1)) * t_df`` standard errors instead of ``z``: Hesterberg's expanded
    interval, which undoes the bootstrap's narrowness in small samples (the plug-in
    variance lacks the factor n/(n-1), and z is not t). ``level`` itself when
    ``n_min < 2`` or ``df < 1``."""
    if n_min < 2 or df < 1:
        return level
    z = _expansion(n_min) * float(student_t.ppf(1.0 - (1.0 - level) / 2.0, df))
    return 1.0 - 2.0 * float(ndtr(-z))


def _interval(res: BootstrapResult, level: float) -> tuple[float, float, str]:
    """``(low, high, method)`` of ``res`` at ``level`` (expanded when ``res.df`` is set):
    BCa where its quantiles are valid, else percentile."""
    theta = res.theta
    if len(theta) == 0:
        return math.nan, math.nan, "none"
    level = expanded_level(level, res.n_min, res.df)
    tail = (1.0 - level) / 2.0
    q_lo, q_hi, method = tail, 1.0 - tail, "percentile"
    if res.method == "BCa":
        qa = _bca_quantile(res.z0, res.accel, float(ndtri(tail)))
        qb = _bca_quantile(res.z0, res.accel, float(ndtri(1.0 - tail)))
        if all(math.isfinite(q) and 0.0 <= q <= 1.0 for q in (qa, qb)):
            q_lo, q_hi, method = qa, qb, "BCa"
    return _quantile(theta, q_lo), _quantile(theta, q_hi), method


def interval_at(res: BootstrapResult, level: float) -> tuple[float, float]:
    """The interval of ``res`` read at another ``level`` (e.g. a Bonferroni-adjusted one)."""
    lo, hi, _ = _interval(res, level)
    return lo, hi


def p_value(res: BootstrapResult, null: float = 1.0) -> float:
    """Two-sided bootstrap p-value for ``statistic = null``, by inverting the interval.

    It is the smallest 1 - level at which the interval of ``res`` (BCa or percentile,
    as reported) excludes ``null``, from the share of resamples below ``null`` (ties
    count half). When every one of the n resamples lies on one side of ``null`` the
    p-value is reported as the floor 1/n (it is smaller than n resamples resolve).
    NaN without resamples or without an estimate.
    """
    theta = res.theta
    n = len(theta)
    if n == 0 or not math.isfinite(res.estimate):
        return math.nan
    below = float(np.count_nonzero(theta < null)) + 0.5 * float(np.count_nonzero(theta == null))
    if below in (0.0, float(n)):
        return 1.0 / n  # every resample on one side of null: below what n resamples resolve
    z = float(ndtri(below / n))
    if res.method == "BCa":
        t = z - res.z0
        if 1.0 + res.accel * t > 0:
            z = t / (1.0 + res.accel * t) - res.z0
    if res.n_min >= 2 and res.df >= 1:  # the level whose expanded interval ends at null
        return min(1.0, 2.0 * float(student_t.sf(abs(z) / _expansion(res.n_min), res.df)))
    return min(1.0, 2.0 * float(ndtr(-abs(z))))


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and are not counted."""
    p_arr = np.asarray(p, dtype=float)
    out = np.full(len(p_arr), np.nan)
    idx = np.flatnonzero(~np.isnan(p_arr))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p_arr[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_arr[i]))
        out[i] = running
    return out


def sufficient_interval(
    res: BootstrapResult, n_goals: Sequence[int], min_goals: int, level: float
) -> tuple[BootstrapResult, bool]:
    """``(res, False)`` with the interval expanded for the goal counts (:func:`expanded_level`),
    or ``res`` without its interval and ``True`` when the data cannot support one.

    That is when a stratum (a family) has fewer than ``min_goals`` goals, or when more
    than :data:`MAX_DEGENERATE_SHARE` of the resamples are degenerate. The estimate stays.
    """
    if res.n_resamples == 0:
        return res, False
    few = min(n_goals, default=0) < min_goals
    degenerate = res.n_degenerate > MAX_DEGENERATE_SHARE * res.n_resamples
    if not (few or degenerate):
        if res.method == "none":  # no defined resample at all (then they are all degenerate)
            return res, False
        res = replace(res, n_min=min(n_goals), df=sum(n - 1 for n in n_goals))
        lo, hi, method = _interval(res, level)
        return replace(res, ci_low=lo, ci_high=hi, method=method), False
    return BootstrapResult(res.estimate, math.nan, math.nan, "none", res.n_resamples, res.n_degenerate), True
