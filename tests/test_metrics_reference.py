"""Reference values for every estimator, computed without the code under test.

Each number here comes from scipy, from a hand calculation, or from the small reference
implementation below (``ref_*``: loops over the textbook formulas, sharing nothing with
:mod:`alems.metrics.bootstrap` but the seed derivation :func:`stratum_rng`). A wrong
estimator that still looks plausible fails here: a percentile interval labelled BCa, the
acceleration's sign flipped, the expanded level left at the nominal one, a p-value read
from z instead of t, Bonferroni over the wrong number of families, Holm without its
step-down maximum. Each of those was planted in the code, one at a time, and failed
this file (1-10 tests each), then reverted.

README, "Statistics": "Intervals are read at the level that makes them sqrt(n/(n-1))·t
rather than z standard errors wide (Hesterberg's expansion for few clusters)" and
"Family rows also carry Bonferroni-simultaneous intervals (ci_low_adj, ci_high_adj), a
bootstrap p-value for OOI = 1 (p_value, the interval inverted) and its Holm adjustment".
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import brentq

from alems.metrics import (
    MetricsConfig,
    bootstrap_scope,
    compute_tables,
    holm,
    interval_at,
    make_stratum,
    ooi_degenerate,
    ooi_stat,
    p_value,
    stratum_rng,
)
from alems.metrics.bootstrap import (
    MAX_DEGENERATE_SHARE,
    BootstrapResult,
    expanded_level,
    sufficient_interval,
)


# --------------------------------------------------------------------------- reference implementation
def ref_ratio(t: np.ndarray) -> np.ndarray:
    """OOI of totals (..., 4): (E_a / S_a) / (E_l / S_l)."""
    return (t[..., 0] / t[..., 1]) / (t[..., 2] / t[..., 3])


def ref_expanded_level(level: float, n: int, df: int) -> float:
    """Hesterberg: the normal level whose z equals sqrt(n/(n-1)) * t_df at ``level``."""
    z = math.sqrt(n / (n - 1)) * stats.t.ppf(0.5 + level / 2, df)
    return 1.0 - 2.0 * stats.norm.sf(z)


def ref_resamples(values: np.ndarray, b: int, seed: int, tag: str) -> np.ndarray:
    """The (B, k) resampled totals, drawn as one (B, n) index matrix from the stratum's generator."""
    idx = stratum_rng(seed, tag).integers(0, len(values), size=(b, len(values)))
    return values[idx].sum(axis=1)


def ref_acceleration(strata: list[np.ndarray], stat) -> float:
    """Stratified grouped jackknife: leave one unit out of its stratum, Efron's a."""
    num = den = 0.0
    for s, vals in enumerate(strata):
        n = len(vals)
        loo = []
        for i in range(n):
            totals = [v.sum(axis=0) for v in strata]
            totals[s] = np.delete(vals, i, axis=0).sum(axis=0)
            loo.append(float(np.squeeze(stat(np.stack(totals)))))
        loo_arr = np.array(loo)
        u = (loo_arr.mean() - loo_arr) * (n - 1) / n
        num += float((u**3).sum())
        den += float((u**2).sum())
    return num / (6.0 * den**1.5)


def ref_bca(theta: np.ndarray, estimate: float, accel: float, level: float) -> tuple[float, float]:
    """BCa endpoints of the resample statistics ``theta`` (Efron & Tibshirani 1993, 14.3)."""
    z0 = stats.norm.ppf(np.mean(theta < estimate))
    ends = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        z = stats.norm.ppf(alpha)
        ends.append(float(np.quantile(theta, stats.norm.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z))))))
    return ends[0], ends[1]


def ref_p_value(theta: np.ndarray, z0: float, accel: float, n: int, df: int, null: float = 1.0) -> float:
    """The nominal level whose expanded BCa interval ends at ``null`` (found by root search);
    1/B when every resample lies on one side of it."""
    share = np.mean(theta < null)
    if share in (0.0, 1.0):
        return 1.0 / len(theta)
    # the normal quantile z whose BCa-adjusted quantile is the share of resamples below null
    z = brentq(lambda z: stats.norm.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z))) - share, -8, 8)
    # the expanded interval at nominal level L ends at z = sqrt(n/(n-1)) t_df(1 - p/2)
    return 2.0 * stats.t.sf(abs(z) / math.sqrt(n / (n - 1)), df)


# --------------------------------------------------------------------------- BCa against scipy
def skewed_pairs() -> np.ndarray:
    """30 pairs (E_agentic, S_agentic, E_linear, S_linear) with log-normal agentic energy
    (log sd 0.8 on top of a shared goal factor): the BCa correction moves the upper end by
    about 10 % of the width, the lower by about 3 %."""
    rng = np.random.default_rng(0)
    n = 30
    d = rng.lognormal(0.0, 0.8, n)
    return np.column_stack(
        [
            d * rng.lognormal(0.0, 0.8, n),
            rng.random(n) < 0.8,
            rng.lognormal(0.0, 0.3, n) * 10,
            rng.random(n) < 0.9,
        ]
    ).astype(float)


def scipy_interval(data: np.ndarray, method: str, b: int, seed: int):
    def ratio(ea, sa, el, sl, axis=-1):
        return (ea.sum(axis) / sa.sum(axis)) / (el.sum(axis) / sl.sum(axis))

    return stats.bootstrap(
        tuple(data.T),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=b,
        confidence_level=0.95,
        method=method,
        rng=np.random.default_rng(seed),
    ).confidence_interval


B_SCIPY = 50_000


@pytest.fixture(scope="module")
def scipy_case():
    """Our BCa result and scipy's BCa and percentile intervals on :func:`skewed_pairs`.

    Both draw their resample indices as one (B, n) ``integers`` matrix from a generator
    seeded alike, so the resamples coincide (scipy 1.11-1.17) and the comparison is not
    blurred by Monte Carlo error, which at B = 50,000 on this tail would be about 1 % of
    the width on its own."""
    data = skewed_pairs()
    ours = bootstrap_scope(
        [make_stratum("f", data, B_SCIPY, np.random.default_rng(9))], ooi_stat, ooi_degenerate, 0.95
    )
    return data, ours, scipy_interval(data, "BCa", B_SCIPY, 9), scipy_interval(data, "percentile", B_SCIPY, 9)


def test_bca_matches_scipy_within_one_percent_of_the_width(scipy_case):
    _, ours, bca, pct = scipy_case
    width = bca.high - bca.low
    # the data are skewed enough that BCa and percentile differ by far more than the tolerance
    assert abs(pct.low - bca.low) > 0.02 * width and abs(pct.high - bca.high) > 0.05 * width
    assert ours.method == "BCa"
    assert abs(ours.ci_low - bca.low) < 0.01 * width, (ours.ci_low, bca.low)
    assert abs(ours.ci_high - bca.high) < 0.01 * width, (ours.ci_high, bca.high)


def test_the_library_percentile_path_matches_scipy(scipy_case):
    """The percentile reading of the same result (``method`` percentile: z0 = a = 0)."""
    _, ours, _, pct = scipy_case
    as_pct = replace(ours, method="percentile", z0=0.0, accel=0.0)
    lo, hi = interval_at(as_pct, 0.95)
    width = pct.high - pct.low
    assert abs(lo - pct.low) < 0.01 * width and abs(hi - pct.high) < 0.01 * width


def test_bca_acceleration_and_bias_by_reference(scipy_case):
    data, ours, _, _ = scipy_case
    a = ref_acceleration([data], ref_ratio)
    assert a > 0.02  # right-skewed ratio: a clearly positive acceleration
    assert ours.accel == pytest.approx(a, rel=1e-9)
    assert ours.z0 == pytest.approx(stats.norm.ppf(np.mean(ours.theta < ours.estimate)), rel=1e-12)


# --------------------------------------------------------------------------- expanded level
@pytest.mark.parametrize(
    ("n", "df", "level", "expected"),
    [
        # by hand: z = sqrt(n/(n-1)) * t_df(0.975); level = 1 - 2 * (1 - Phi(z))
        (10, 9, 0.95, 0.98290),  # sqrt(10/9) * 2.26216 = 2.38452
        (40, 39, 0.95, 0.95948),  # sqrt(40/39) * 2.02269 = 2.04846
        (10, 79, 0.95, 0.96411),  # 8 families of 10 goals: sqrt(10/9) * 1.99045 = 2.09812
        (5, 4, 0.90, 0.98285),  # sqrt(5/4) * 2.13185 = 2.38348
        (40, 312, 0.99, 0.99133),  # sqrt(40/39) * 2.59168 = 2.62469
    ],
)
def test_expanded_level_by_hand(n, df, level, expected):
    """README: intervals are read at the level that makes them sqrt(n/(n-1))·t rather than z
    standard errors wide."""
    assert ref_expanded_level(level, n, df) == pytest.approx(expected, abs=5e-5)
    assert expanded_level(level, n, df) == pytest.approx(expected, abs=5e-5)


def test_no_expansion_without_two_goals_or_a_degree_of_freedom():
    assert expanded_level(0.95, 1, 5) == 0.95 and expanded_level(0.95, 10, 0) == 0.95


def test_sufficient_interval_reads_the_bca_interval_at_the_expanded_level(scipy_case):
    data, ours, _, _ = scipy_case
    got, short = sufficient_interval(ours, [30], 10, 0.95)
    assert not short and got.method == "BCa" and (got.n_min, got.df) == (30, 29)
    want = ref_bca(
        ours.theta, ours.estimate, ref_acceleration([data], ref_ratio), ref_expanded_level(0.95, 30, 29)
    )
    assert (got.ci_low, got.ci_high) == pytest.approx(want, rel=1e-12)
    assert got.ci_high - got.ci_low > 1.03 * (ours.ci_high - ours.ci_low)  # wider than the plain 95 %


# --------------------------------------------------------------------------- p-value
def grid_result(
    method: str, z0: float = 0.0, accel: float = 0.0, n_min: int = 0, df: int = 0
) -> BootstrapResult:
    """A result whose 100,000 resamples are the N(0, 1) quantiles: the share below x is Phi(x)."""
    theta = stats.norm.ppf((np.arange(100_000) + 0.5) / 100_000)
    return BootstrapResult(0.0, -1.0, 1.0, method, len(theta), 0, theta, z0, accel, n_min, df)


@pytest.mark.parametrize(
    ("n_min", "df", "expected"),
    [
        (0, 0, 0.31731),  # z reading: 2 (1 - Phi(1))
        (10, 9, 0.36756),  # t reading: 2 t_9.sf(1 / sqrt(10/9)) = 2 t_9.sf(0.94868)
        (40, 39, 0.32952),  # 2 t_39.sf(1 / sqrt(40/39)) = 2 t_39.sf(0.98742)
    ],
)
def test_p_value_of_a_percentile_result_by_hand(n_min, df, expected):
    """Null at 1 on standard-normal resamples: a share Phi(1) below it."""
    p = p_value(grid_result("percentile", n_min=n_min, df=df), null=1.0)
    assert p == pytest.approx(expected, abs=2e-4)


def test_p_value_of_a_bca_result_is_the_level_whose_expanded_interval_ends_at_the_null():
    res = grid_result("BCa", z0=0.1, accel=0.05, n_min=12, df=11)
    for null in (-1.5, 0.7, 1.9):
        p = p_value(res, null=null)
        assert p == pytest.approx(ref_p_value(res.theta, 0.1, 0.05, 12, 11, null), rel=1e-3)
        lo, hi = interval_at(res, 1.0 - p)
        assert min(abs(lo - null), abs(hi - null)) < 1e-3


# --------------------------------------------------------------------------- Holm
def test_holm_on_a_hand_computed_vector():
    # sorted: 0.001*5 = 0.005, 0.013*4 = 0.052, 0.02*3 = 0.06, 0.04*2 = 0.08, 0.5*1 = 0.5
    assert holm([0.02, 0.001, 0.04, 0.5, 0.013]) == pytest.approx([0.06, 0.005, 0.08, 0.5, 0.052])
    # the step-down maximum: 0.011*2 = 0.022 is raised to the 0.03 before it
    assert holm([0.01, 0.011, 0.9]) == pytest.approx([0.03, 0.03, 0.9])
    # capped at 1, and the cap carries down
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


# --------------------------------------------------------------------------- the tables, end to end
FAMILIES = ("factual_qa", "science_qa", "tg_single_calc")
N_GOALS = 15
CFG = MetricsConfig(bootstrap=3000, level=0.95, seed=4, min_goals=10)


def reference_goals() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One rep of 15 goals per family (skewed energies) and each family's pair matrix,
    rows in goal order (E_agentic, S_agentic, E_linear, S_linear)."""
    rng = np.random.default_rng(21)
    rows, pairs = [], {}
    for k, f in enumerate(FAMILIES):
        d = rng.lognormal(0.0, 0.7, N_GOALS)
        e_l = d * rng.lognormal(0.0, 0.3, N_GOALS) * (5 + 5 * k)
        e_a = d * rng.lognormal(0.0, 0.7, N_GOALS) * (5 + 5 * k) * (1.0, 1.4, 2.5)[k]
        s_l, s_a = rng.random(N_GOALS) < 0.9, rng.random(N_GOALS) < 0.8
        s_l[:2] = s_a[:2] = True  # no family without successes
        pairs[f] = np.column_stack([e_a, s_a, e_l, s_l]).astype(float)
        for g in range(N_GOALS):
            for mode, e, s in (("linear", e_l[g], s_l[g]), ("agentic", e_a[g], s_a[g])):
                rows.append(
                    {
                        "family": f,
                        "mode": mode,
                        "goal_id": f"g{g:02d}",
                        "rep": 0,
                        "attempt": 1,
                        "success": bool(s),
                        "final_attempt": True,
                        "energy_j": float(e),
                        "gap_j": 0.0,
                        "energy_source": "modeled",
                        "flags": "",
                    }
                )
    return pd.DataFrame(rows), pairs


@pytest.fixture(scope="module")
def reference_tables():
    goals, pairs = reference_goals()
    return compute_tables(goals, CFG), pairs


def test_family_rows_equal_the_reference_expanded_bca_and_bonferroni(reference_tables):
    """Each family's interval is BCa read at the expanded level, its adjusted interval the
    same read at 1 - alpha/m (m = 3 families), its p-value the inverted expanded interval,
    its Holm p-value Holm over the three."""
    (_, ooi), pairs = reference_tables
    fam = ooi[ooi["estimand"] == "family"].set_index("scope")
    m = len(FAMILIES)
    p_ref = {}
    for f in FAMILIES:
        v = pairs[f]
        theta = np.sort(ref_ratio(ref_resamples(v, CFG.bootstrap, CFG.seed, f"ooi\0{f}")))
        est = float(ref_ratio(v.sum(axis=0)))
        a = ref_acceleration([v], ref_ratio)
        r = fam.loc[f]
        assert r["method"] == "BCa" and r["ooi"] == pytest.approx(est, rel=1e-12)
        want = ref_bca(theta, est, a, ref_expanded_level(0.95, N_GOALS, N_GOALS - 1))
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(want, rel=1e-9), f
        want_adj = ref_bca(theta, est, a, ref_expanded_level(1 - 0.05 / m, N_GOALS, N_GOALS - 1))
        assert (r["ci_low_adj"], r["ci_high_adj"]) == pytest.approx(want_adj, rel=1e-9), f
        p_ref[f] = ref_p_value(theta, stats.norm.ppf(np.mean(theta < est)), a, N_GOALS, N_GOALS - 1)
        assert r["p_value"] == pytest.approx(p_ref[f], rel=1e-3), f
    ps = sorted(p_ref.values())
    holm_ref = {f: min(1.0, max((m - i) * ps[i] for i in range(ps.index(p) + 1))) for f, p in p_ref.items()}
    for f in FAMILIES:
        assert fam.loc[f, "p_value_holm"] == pytest.approx(holm_ref[f], rel=1e-3)


def test_the_headline_pooled_row_equals_the_reference_stratified_bca(reference_tables):
    """overall ratio_of_means: mean family EpG agentic / mean family EpG linear, stratified
    resamples, the stratified jackknife, read at the expanded level with n = 15, df = 3 x 14."""
    (_, ooi), pairs = reference_tables

    def rom(t):  # per-family totals (..., S, 4)
        return (t[..., 0] / t[..., 1]).mean(axis=-1) / (t[..., 2] / t[..., 3]).mean(axis=-1)

    strata = [pairs[f] for f in FAMILIES]
    boots = np.stack(
        [ref_resamples(pairs[f], CFG.bootstrap, CFG.seed, f"ooi\0{f}") for f in FAMILIES], axis=1
    )
    theta = np.sort(rom(boots))
    est = float(rom(np.stack([v.sum(axis=0) for v in strata])))
    want = ref_bca(
        theta, est, ref_acceleration(strata, rom), ref_expanded_level(0.95, N_GOALS, 3 * (N_GOALS - 1))
    )
    r = ooi[(ooi["scope"] == "overall") & (ooi["estimand"] == "ratio_of_means")].iloc[0]
    assert r["method"] == "BCa" and r["ooi"] == pytest.approx(est, rel=1e-12)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(want, rel=1e-9)


def test_epg_cells_equal_the_reference_expanded_bca(reference_tables):
    (epg, _), pairs = reference_tables
    for f in FAMILIES:
        for mode, cols in (("agentic", [0, 1]), ("linear", [2, 3])):
            v = pairs[f][:, cols]
            boot = ref_resamples(v, CFG.bootstrap, CFG.seed, f"epg\0{f}\0{mode}")
            theta = np.sort(boot[:, 0] / boot[:, 1])
            est = v[:, 0].sum() / v[:, 1].sum()
            a = ref_acceleration([v], lambda t: t[..., 0] / t[..., 1])
            want = ref_bca(theta, est, a, ref_expanded_level(0.95, N_GOALS, N_GOALS - 1))
            r = epg[(epg["family"] == f) & (epg["mode"] == mode)].iloc[0]
            assert r["ci_method"] == "BCa" and r["epg_j"] == pytest.approx(est, rel=1e-12)
            assert (r["epg_ci_low"], r["epg_ci_high"]) == pytest.approx(want, rel=1e-9), (f, mode)


# --------------------------------------------------------------------------- the 5 % rule
def test_more_than_five_percent_degenerate_resamples_withhold_the_interval(scipy_case):
    """README: a family whose resamples lack a success in a mode more than 5 % of the time
    keeps its point estimate but gets no interval and the flag insufficient_data."""
    _, ours, _, _ = scipy_case
    assert MAX_DEGENERATE_SHARE == 0.05
    at_limit = replace(ours, n_degenerate=int(0.05 * ours.n_resamples))
    got, short = sufficient_interval(at_limit, [30], 10, 0.95)
    assert not short and math.isfinite(got.ci_low)
    over = replace(ours, n_degenerate=int(0.05 * ours.n_resamples) + 1)
    got, short = sufficient_interval(over, [30], 10, 0.95)
    assert short and got.method == "none" and math.isnan(got.ci_low) and got.estimate == ours.estimate


def test_min_goals_defaults_to_ten_and_withholds_below_it(scipy_case):
    """README: a family with fewer than metrics.min_goals goals (default 10) ... gets no interval."""
    _, ours, _, _ = scipy_case
    assert MetricsConfig().min_goals == 10
    assert sufficient_interval(ours, [10, 12], 10, 0.95)[1] is False
    assert sufficient_interval(ours, [9, 12], 10, 0.95)[1] is True
