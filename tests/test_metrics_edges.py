"""The bootstrap engine at its edges: empty inputs, no resamples, single values, ties, the
boundaries of the expansion and of the t reading, and strata of unequal size.

These pin behaviour that the tables reach only rarely (and that mutation testing showed
unpinned): each expected value is computed here by hand or by the reference
implementation of ``test_metrics_reference.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from alems.metrics import bootstrap_scope, holm, interval_at, make_stratum, p_value, resample_totals
from alems.metrics.bootstrap import (
    BootstrapResult,
    Stratum,
    _grouped_acceleration,
    _quantile,
    bootstrap_strata,
    expanded_level,
    sufficient_interval,
)


def mean_stat(t: np.ndarray) -> np.ndarray:
    """The mean of column 0 over column 1 of the totals summed over strata (..., S, 2)."""
    s = t.sum(axis=-2)
    return s[..., 0] / s[..., 1]


def never(t: np.ndarray) -> np.ndarray:
    return np.zeros(t.shape[:-2], dtype=bool)


def ref_acceleration(strata: list[np.ndarray], stat) -> float:
    """Stratified jackknife acceleration by loops (as in test_metrics_reference.py)."""
    num = den = 0.0
    for s, vals in enumerate(strata):
        n = len(vals)
        if n < 2:
            continue
        loo = []
        for i in range(n):
            totals = [v.sum(axis=0) for v in strata]
            totals[s] = np.delete(vals, i, axis=0).sum(axis=0)
            loo.append(float(np.squeeze(stat(np.stack(totals)))))
        d = (np.mean(loo) - np.array(loo)) * (n - 1) / n
        num += float((d**3).sum())
        den += float((d**2).sum())
    return num / (6.0 * den**1.5)


def with_ones(x) -> np.ndarray:
    x = np.asarray(x, float)
    return np.column_stack([x, np.ones(len(x))])


# --------------------------------------------------------------------------- resampling
def test_resampling_in_blocks_draws_what_one_block_would():
    """5,000 units x 1,000 resamples is more than one block (4e6 cells): the blocks together
    are the (B, n) index matrix drawn row by row from the stratum's generator."""
    values = np.random.default_rng(0).gamma(2.0, 1.0, (5000, 1))
    got = resample_totals(values, 1000, np.random.default_rng(11))
    idx = np.random.default_rng(11).integers(0, 5000, size=(1000, 5000))
    assert got.shape == (1000, 1)
    np.testing.assert_allclose(got[:, 0], values[idx, 0].sum(axis=1), rtol=1e-12)


def test_one_resample_and_none():
    v = with_ones([1.0, 2.0, 4.0])
    one = resample_totals(v, 1, np.random.default_rng(1))
    assert one.shape == (1, 2) and one[0, 1] == 3.0 and one[0, 0] >= 3.0
    assert resample_totals(v, 0, np.random.default_rng(1)).shape == (0, 2)


def test_make_stratum_takes_a_column_of_booleans_and_keeps_its_name():
    st = make_stratum("fam", np.array([True, False, True, True]), 50, np.random.default_rng(2))
    assert st.name == "fam" and st.values.shape == (4, 1) and st.values.dtype == float
    assert st.boot.shape == (50, 1) and st.boot.max() <= 4.0
    res = bootstrap_scope([st], lambda t: t[..., 0] / 4.0, lambda t: t[..., 0] < 0, 0.9)
    assert res.estimate == 0.75 and res.method in ("BCa", "percentile")


# --------------------------------------------------------------------------- quantile, acceleration
def test_quantile_on_the_last_point_and_at_an_infinity():
    assert _quantile(np.array([1.0, math.inf]), 0.0) == 1.0
    assert _quantile(np.array([1.0, 2.0, 4.0]), 0.75) == 3.0
    assert _quantile(np.array([-math.inf, 1.0]), 0.0) == -math.inf


def test_acceleration_of_strata_of_unequal_size_by_reference():
    rng = np.random.default_rng(3)
    strata = [with_ones(rng.lognormal(0, 1, n)) for n in (1, 2, 4, 9)]
    got = _grouped_acceleration(
        [Stratum(f"s{i}", v, np.zeros((0, 2))) for i, v in enumerate(strata)], mean_stat
    )
    assert got == pytest.approx(ref_acceleration(strata, mean_stat), rel=1e-9)
    assert math.isnan(_grouped_acceleration([], mean_stat))


def test_a_two_unit_stratum_has_zero_acceleration_not_none():
    st = Stratum("s", with_ones([1.0, 3.0]), np.zeros((0, 2)))
    assert _grouped_acceleration([st], mean_stat) == 0.0


# --------------------------------------------------------------------------- bootstrap_strata edges
def test_no_units_no_resamples_no_finite_statistic():
    empty = bootstrap_strata([], mean_stat, never, 0.95)
    assert math.isnan(empty.estimate) and math.isnan(empty.ci_low) and math.isnan(empty.ci_high)
    assert (empty.method, empty.n_resamples, empty.n_degenerate) == ("none", 0, 0)
    v = with_ones([1.0, 2.0, 4.0])
    no_b = bootstrap_strata([make_stratum("s", v, 0, np.random.default_rng(0))], mean_stat, never, 0.95)
    assert no_b.estimate == pytest.approx(7 / 3) and math.isnan(no_b.ci_low) and math.isnan(no_b.ci_high)
    assert (no_b.method, no_b.n_resamples, no_b.n_degenerate) == ("none", 0, 0)
    st = make_stratum("s", v, 40, np.random.default_rng(0))
    nan = bootstrap_strata([st], lambda t: np.full(t.shape[:-2], np.nan), lambda t: ~never(t), 0.95)
    assert math.isnan(nan.estimate) and math.isnan(nan.ci_low) and math.isnan(nan.ci_high)
    assert (nan.method, nan.n_resamples, nan.n_degenerate) == ("none", 40, 40)


def test_a_statistic_without_a_jackknife_gets_the_plain_percentile_interval():
    """A statistic defined only on all 8 units (NaN on 7): every resample has 8, every
    leave-one-out 7, so there is no acceleration and the interval is the percentile one."""

    def stat(t):
        s = t.sum(axis=-2)
        return np.where(s[..., 1] >= 8, s[..., 0] / np.maximum(s[..., 1], 1), np.nan)

    st = make_stratum(
        "s", with_ones([5.0, 4.0, 6.0, 7.0, 3.0, 5.0, 6.0, 4.0]), 4000, np.random.default_rng(4)
    )
    res = bootstrap_strata([st], stat, never, 0.9)
    assert res.method == "percentile" and res.z0 == 0.0 and res.accel == 0.0
    theta = np.sort(st.boot[:, 0] / st.boot[:, 1])
    assert (res.ci_low, res.ci_high) == (_quantile(theta, 0.05), _quantile(theta, 0.95))


def test_bias_correction_counts_ties_with_the_estimate_as_not_below():
    """Discrete data: many resamples equal the estimate; z0 counts only those strictly below."""
    v = with_ones([1.0, 1.0, 1.0, 2.0, 2.0, 3.0])
    st = make_stratum("s", v, 3000, np.random.default_rng(5))
    res = bootstrap_strata([st], lambda t: np.round(mean_stat(t), 1), never, 0.9)
    theta = np.round(st.boot[:, 0] / st.boot[:, 1], 1)
    assert np.count_nonzero(theta == res.estimate) > 100
    assert res.z0 == pytest.approx(stats.norm.ppf(np.mean(theta < res.estimate)), rel=1e-12)


# --------------------------------------------------------------------------- expansion and reading
def test_expansion_at_its_boundaries():
    def ref(level, n, df):
        return 1 - 2 * stats.norm.sf(math.sqrt(n / (n - 1)) * stats.t.ppf(0.5 + level / 2, df))

    assert expanded_level(0.9, 2, 1) == pytest.approx(ref(0.9, 2, 1), abs=1e-12) and ref(0.9, 2, 1) > 0.999
    assert expanded_level(0.95, 5, 1) == pytest.approx(ref(0.95, 5, 1), abs=1e-12)
    assert expanded_level(0.95, 2, 3) == pytest.approx(ref(0.95, 2, 3), abs=1e-12)


def percentile_result(theta, **kw) -> BootstrapResult:
    theta = np.sort(np.asarray(theta, float))
    return BootstrapResult(1.0, math.nan, math.nan, "percentile", len(theta), 0, theta, **kw)


def test_reading_one_value_and_no_values():
    assert interval_at(percentile_result([2.0]), 0.95) == (2.0, 2.0)
    lo, hi = interval_at(percentile_result([]), 0.95)
    assert math.isnan(lo) and math.isnan(hi)


def test_sufficient_interval_keeps_the_method_and_counts():
    res = percentile_result(np.linspace(0, 1, 101))
    got, short = sufficient_interval(res, [12], 10, 0.9)
    assert not short and got.method == "percentile" and got.df == 11 and got.n_min == 12
    # no resample drawn at all (B = 0): nothing to read and nothing to flag
    empty, short = sufficient_interval(percentile_result([]), [12], 10, 0.9)
    assert not short and math.isnan(empty.ci_low) and math.isnan(empty.ci_high)
    # every resample degenerate (issue 22: they give no value): no interval, flagged short
    none_defined = BootstrapResult(1.0, math.nan, math.nan, "percentile", 5, 5, np.array([]))
    gone, short = sufficient_interval(none_defined, [12], 10, 0.9)
    assert short and gone.method == "none" and math.isnan(gone.ci_low) and gone.n_degenerate == 5
    few, short = sufficient_interval(res, [3, 12], 10, 0.9)
    assert short and few.method == "none" and few.n_resamples == 101 and few.estimate == 1.0
    for min_goals in (1, 10):  # no goals at all is never enough
        assert sufficient_interval(res, [], min_goals, 0.9)[1] is True


# --------------------------------------------------------------------------- p-values
def test_p_value_edges():
    assert p_value(percentile_result([2.0])) == 1.0  # one resample, above the null: the floor 1/n
    nan_est = BootstrapResult(math.nan, 0.0, 1.0, "percentile", 3, 0, np.array([0.5, 1.5, 2.0]))
    assert math.isnan(p_value(nan_est))
    assert math.isnan(p_value(percentile_result([])))


def test_p_value_counts_ties_with_the_null_as_half():
    """3 below 1, 4 at 1, 3 above: a share of (3 + 4/2)/10 = 0.5 below, z = 0, p = 1."""
    assert p_value(percentile_result([0.5] * 3 + [1.0] * 4 + [2.0] * 3)) == pytest.approx(1.0)
    # 2 below, 2 at the null, 6 above: share 0.3, p = 2 Phi(Phi^-1(0.3)) = 0.6
    assert p_value(percentile_result([0.5] * 2 + [1.0] * 2 + [2.0] * 6)) == pytest.approx(0.6)


def test_p_value_without_a_valid_bca_inversion_keeps_the_plain_reading():
    """a = 0.5 and a share Phi(-2.5) below the null: 1 + a t = -0.25 <= 0, where the BCa map
    cannot be inverted; the p-value is the plain two-sided 2 Phi(-2.5) = 0.0124."""
    theta = stats.norm.ppf((np.arange(100_000) + 0.5) / 100_000)
    res = BootstrapResult(0.0, -1.0, 1.0, "BCa", len(theta), 0, theta, 0.0, 0.5)
    assert p_value(res, null=-2.5) == pytest.approx(2 * stats.norm.cdf(-2.5), rel=2e-3)


@pytest.mark.parametrize(
    ("n_min", "df", "reading"), [(2, 1, "t"), (5, 1, "t"), (1, 5, "z"), (5, 0, "z"), (3, 2, "t")]
)
def test_p_value_reads_t_only_with_two_goals_and_a_degree_of_freedom(n_min, df, reading):
    theta = stats.norm.ppf((np.arange(100_000) + 0.5) / 100_000)
    res = BootstrapResult(0.0, -1.0, 1.0, "percentile", len(theta), 0, theta, n_min=n_min, df=df)
    if reading == "t":
        want = 2 * stats.t.sf(1.0 / math.sqrt(n_min / (n_min - 1)), df)
    else:
        want = 2 * stats.norm.sf(1.0)
    assert p_value(res, null=1.0) == pytest.approx(want, abs=2e-4)


# --------------------------------------------------------------------------- Holm
def test_holm_with_one_value_and_with_missing_ones():
    assert holm([0.3]).tolist() == [0.3]
    got = holm([0.2, None, 0.01])
    assert got[0] == pytest.approx(0.2) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)
    assert np.isnan(holm([np.nan, np.nan])).all() and len(holm([])) == 0


def test_a_single_resample_still_gives_an_interval():
    """B = 1: one resample, read as a (degenerate) percentile interval at that value."""
    v = with_ones([1.0, 2.0, 4.0, 8.0])
    st = make_stratum("s", v, 1, np.random.default_rng(6))
    res = bootstrap_strata([st], mean_stat, never, 0.9)
    one = float(st.boot[0, 0] / st.boot[0, 1])
    assert res.method != "none" and res.n_resamples == 1 and res.theta.tolist() == [one]
    assert (res.ci_low, res.ci_high) == (one, one)


def test_division_by_zero_inside_the_engine_is_silent_even_where_numpy_would_raise():
    """A statistic may divide by zero (no success in a resample or a leave-one-out): the
    engine evaluates it under its own error state, so even a caller that turned numpy
    warnings into errors gets a result, never a FloatingPointError."""
    one_success = np.column_stack([[1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 0.0]])
    none = np.column_stack([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    with np.errstate(all="raise"):
        res = bootstrap_strata(
            [make_stratum("s", one_success, 200, np.random.default_rng(7))], mean_stat, never, 0.9
        )
        assert res.estimate == 10.0 and res.n_resamples == 200
        res = bootstrap_strata(
            [make_stratum("s", none, 200, np.random.default_rng(7))], mean_stat, never, 0.9
        )
        assert res.n_resamples == 200
