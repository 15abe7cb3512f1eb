"""The goal-level cluster bootstrap, the pooled estimands, insufficient data and multiplicity."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from alems.cli import main
from alems.contracts import GOALS_REQUIRED
from alems.errors import ConfigError
from alems.metrics import (
    OOI_STAT_COLUMNS,
    MetricsConfig,
    bootstrap_scope,
    compute_tables,
    epg_degenerate,
    epg_stat,
    holm,
    interval_at,
    make_stratum,
    ooi_degenerate,
    ooi_stat,
    p_value,
    stratum_rng,
)


def row(family, mode, goal, energy, success, rep=0):
    return {
        "family": family,
        "mode": mode,
        "goal_id": goal,
        "rep": rep,
        "attempt": 1,
        "success": success,
        "final_attempt": True,
        "energy_j": energy,
        "gap_j": 0.0,
        "energy_source": "measured",
        "flags": "",
    }


def simulated_goals(n_goals: int, seed: int, families=("factual_qa", "science_qa")) -> pd.DataFrame:
    """One rep per goal; agentic costs about 3x linear; success rates 0.8-0.9."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in families:
        for g in range(n_goals):
            d = rng.gamma(4.0, 0.25)
            rows.append(row(f, "linear", f"g{g}", d * rng.gamma(4.0, 2.5), bool(rng.random() < 0.9)))
            rows.append(row(f, "agentic", f"g{g}", d * rng.gamma(4.0, 7.5), bool(rng.random() < 0.8)))
    return pd.DataFrame(rows)


def duplicate_reps(goals: pd.DataFrame, copies: int) -> pd.DataFrame:
    return pd.concat([goals.assign(rep=goals["rep"] + k) for k in range(copies)], ignore_index=True)


def test_duplicating_every_rep_leaves_the_ooi_interval_unchanged():
    cfg = MetricsConfig(bootstrap=4000, seed=3)
    goals = simulated_goals(15, seed=11)
    _, once = compute_tables(goals, cfg)
    _, thrice = compute_tables(duplicate_reps(goals, 3), cfg)
    assert (thrice["n_pairs"] == 3 * once["n_pairs"]).all() and (thrice["n_goals"] == once["n_goals"]).all()
    assert (once["method"] != "none").all() and not once["flags"].str.contains("insufficient").any()
    for a, b in zip(once.itertuples(), thrice.itertuples(), strict=True):
        assert b.ooi == pytest.approx(a.ooi)
        width_a, width_b = a.ci_high - a.ci_low, b.ci_high - b.ci_low
        assert abs(width_b - width_a) <= 0.10 * width_a, (a.scope, a.estimand, width_a, width_b)


def test_the_pair_bootstrap_would_have_narrowed_that_interval():
    # The same data, resampled as (goal, rep) pairs the way the old code did: the three
    # copies pass for independent data and the interval shrinks by about 1/sqrt(3).
    goals = duplicate_reps(simulated_goals(15, seed=11), 3)
    fam = goals[goals["family"] == "factual_qa"].sort_values(["goal_id", "rep", "mode"])
    a, lin = fam[fam["mode"] == "agentic"], fam[fam["mode"] == "linear"]
    pairs = np.column_stack([a["energy_j"], a["success"], lin["energy_j"], lin["success"]]).astype(float)
    clusters = pairs.reshape(15, 3, 4).sum(axis=1)
    width = {}
    for name, v in (("pairs", pairs), ("goals", clusters)):
        r = bootstrap_scope([make_stratum("f", v, 4000, stratum_rng(3, "f"))], ooi_stat, ooi_degenerate, 0.95)
        width[name] = r.ci_high - r.ci_low
    assert width["pairs"] < 0.8 * width["goals"]


def small_table() -> pd.DataFrame:
    """Family OOIs 20/5 = 4 and 45/60 = 0.75; gsm8k_basic has no agentic success."""
    rows = [
        row("factual_qa", "linear", "g1", 4.0, True),
        row("factual_qa", "linear", "g2", 6.0, True),
        row("factual_qa", "agentic", "g1", 20.0, True),
        row("factual_qa", "agentic", "g2", 20.0, True),
        row("science_qa", "linear", "g1", 30.0, True),
        row("science_qa", "linear", "g2", 30.0, False),
        row("science_qa", "agentic", "g1", 45.0, True),
        row("science_qa", "agentic", "g2", 45.0, True),
        row("gsm8k_basic", "linear", "g1", 1.0, True),
        row("gsm8k_basic", "agentic", "g1", 99.0, False),
    ]
    return pd.DataFrame(rows)


def test_the_three_pooled_estimands_by_hand():
    _, ooi = compute_tables(small_table(), MetricsConfig(bootstrap=0))
    fam = ooi[ooi["estimand"] == "family"].set_index("scope")
    assert fam.loc["factual_qa", "ooi"] == pytest.approx(4.0)
    assert fam.loc["science_qa", "ooi"] == pytest.approx(0.75)
    assert math.isnan(fam.loc["gsm8k_basic", "ooi"])
    for scope in ("reasoning", "overall"):
        rows = ooi[ooi["scope"] == scope].set_index("estimand")
        assert list(rows.index) == ["ratio_of_means", "geomean_ooi", "pooled_ratio"]  # headline first
        # mean EpG: (20 + 45) / 2 over (5 + 60) / 2
        assert rows.loc["ratio_of_means", "ooi"] == pytest.approx(1.0)
        assert (rows.loc["ratio_of_means", "epg_agentic_j"], rows.loc["ratio_of_means", "epg_linear_j"]) == (
            pytest.approx(32.5),
            pytest.approx(32.5),
        )
        assert rows.loc["geomean_ooi", "ooi"] == pytest.approx(math.sqrt(4.0 * 0.75))
        assert rows.loc["geomean_ooi", "epg_agentic_j"] == pytest.approx(math.sqrt(20.0 * 45.0))
        # pooled: 130 J / 4 successes over 70 J / 3 successes; gsm8k_basic's 99 J is not in it
        assert rows.loc["pooled_ratio", "ooi"] == pytest.approx((130.0 / 4) / (70.0 / 3))
        assert (rows["flags"] == "excluded:gsm8k_basic").all()
        assert (rows["n_goals"] == 4).all() and (rows["n_pairs"] == 4).all()


def test_the_headline_estimand_comes_first_and_is_validated():
    _, ooi = compute_tables(small_table(), MetricsConfig(bootstrap=0, pooled_estimand="geomean_ooi"))
    assert ooi[ooi["scope"] == "overall"]["estimand"].tolist() == [
        "geomean_ooi",
        "ratio_of_means",
        "pooled_ratio",
    ]
    with pytest.raises(ConfigError, match="pooled_estimand"):
        MetricsConfig(pooled_estimand="mean")
    with pytest.raises(ConfigError, match="min_goals"):
        MetricsConfig(min_goals=0)


def test_too_few_goals_give_the_estimate_without_an_interval():
    goals = simulated_goals(9, seed=4)
    epg, ooi = compute_tables(goals, MetricsConfig(bootstrap=1000))
    fam = ooi[ooi["scope"] == "factual_qa"].iloc[0]
    assert math.isfinite(fam["ooi"]) and fam["n_goals"] == 9
    assert math.isnan(fam["ci_low"]) and math.isnan(fam["ci_high"]) and fam["method"] == "none"
    assert "insufficient_data" in fam["flags"] and math.isnan(fam["p_value"])
    assert ooi["flags"].str.contains("insufficient_data").all()  # pooled rows too: each family has 9
    assert epg["flags"].str.contains("insufficient_data").all() and epg["epg_ci_low"].isna().all()
    _, ooi9 = compute_tables(goals, MetricsConfig(bootstrap=1000, min_goals=9))
    assert not ooi9["flags"].str.contains("insufficient_data").any() and ooi9["ci_low"].notna().all()


def test_many_degenerate_resamples_give_no_interval():
    # 20 goals, one linear success: (19/20)^20 = 36 % of resamples have none
    rows = [row("factual_qa", "linear", f"g{i}", 5.0, i == 0) for i in range(20)]
    rows += [row("factual_qa", "agentic", f"g{i}", 9.0, True) for i in range(20)]
    _, ooi = compute_tables(pd.DataFrame(rows), MetricsConfig(bootstrap=2000))
    fam = ooi[ooi["scope"] == "factual_qa"].iloc[0]
    assert fam["ooi"] == pytest.approx((9.0 * 20 / 20) / (5.0 * 20 / 1)) and fam["method"] == "none"
    assert abs(fam["n_degenerate_resamples"] / 2000 - 0.95**20) < 0.05
    assert fam["flags"] == "insufficient_data" and math.isnan(fam["ci_low"])


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    got = holm([0.5, np.nan, 0.01])
    assert got[0] == pytest.approx(0.5) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)


def test_adjusted_intervals_and_p_values():
    goals = simulated_goals(30, seed=8, families=("factual_qa", "science_qa", "tg_single_calc"))
    _, ooi = compute_tables(goals, MetricsConfig(bootstrap=4000, seed=1))
    fam = ooi[ooi["estimand"] == "family"]
    assert (fam["ci_low_adj"] <= fam["ci_low"]).all() and (fam["ci_high_adj"] >= fam["ci_high"]).all()
    assert (fam["ci_high_adj"] - fam["ci_low_adj"] > fam["ci_high"] - fam["ci_low"]).all()
    assert (fam["p_value_holm"] >= fam["p_value"]).all()
    assert fam["p_value_holm"].tolist() == pytest.approx(holm(fam["p_value"].tolist()).tolist())
    pooled = ooi[ooi["estimand"] != "family"]
    assert pooled[["ci_low_adj", "ci_high_adj", "p_value_holm"]].isna().all().all()
    assert pooled["p_value"].notna().all()


@pytest.mark.parametrize("shift", [1.0, 1.6, 2.6, 4.0])
def test_the_p_value_inverts_the_interval(shift):
    rng = np.random.default_rng(int(shift * 10))
    n = 30
    v = np.column_stack([shift * rng.gamma(4.0, 2.5, n), np.ones(n), rng.gamma(4.0, 2.5, n), np.ones(n)])
    res = bootstrap_scope([make_stratum("f", v, 8000, stratum_rng(0, "f"))], ooi_stat, ooi_degenerate, 0.95)
    p = p_value(res)
    assert 0.0 < p <= 1.0
    lo, hi = interval_at(res, 0.95)
    assert (p < 0.05) == (not lo <= 1.0 <= hi)
    if 2.0 / 8000 < p < 0.9:  # the interval at level 1 - p has 1 at one end
        lo, hi = interval_at(res, 1.0 - p)
        assert min(abs(lo - 1.0), abs(hi - 1.0)) < 0.02 * (res.ci_high - res.ci_low)


def test_a_goals_table_with_only_the_original_columns_still_works():
    goals = simulated_goals(12, seed=2)[list(GOALS_REQUIRED)]
    epg, ooi = compute_tables(goals, MetricsConfig(bootstrap=300))
    assert set(OOI_STAT_COLUMNS) <= set(ooi.columns) and (ooi["estimand"].iloc[:2] == "family").all()


def test_cli_min_goals_and_json_carry_the_new_columns(tmp_path, capsys):
    path = tmp_path / "goals.csv"
    simulated_goals(9, seed=4).to_csv(path, index=False)
    assert main(["metrics", str(path), "--bootstrap", "300", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(OOI_STAT_COLUMNS) <= set(doc["ooi"][0]) and "insufficient_data" in doc["ooi"][0]["flags"]
    assert main(["metrics", str(path), "--bootstrap", "300", "--min-goals", "9", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ooi"][0]["n_goals"] == 9 and doc["ooi"][0]["ci_low"] is not None
    assert doc["ooi"][0]["estimand"] == "family" and doc["ooi"][0]["p_value_holm"] is not None


def few_linear_successes(n: int, k: int) -> np.ndarray:
    """n goals (E_agentic, S_agentic, E_linear, S_linear): agentic always succeeds, linear on k goals."""
    rng = np.random.default_rng(n * 100 + k)
    return np.column_stack(
        [rng.gamma(4.0, 7.5, n), np.ones(n), rng.gamma(4.0, 2.5, n), np.arange(n) < k]
    ).astype(float)


@pytest.mark.parametrize(("n", "k"), [(40, 4), (30, 3), (12, 2)])
def test_degenerate_resamples_give_no_value_and_no_endpoint(n, k):
    v = few_linear_successes(n, k)
    st = make_stratum("f", v, 6000, stratum_rng(n, "f"))
    res = bootstrap_scope([st], ooi_stat, ooi_degenerate, 0.95)
    deg = ooi_degenerate(st.boot)
    assert res.n_degenerate == int(deg.sum()) > 0  # counted as before
    assert len(res.theta) == len(st.boot) - res.n_degenerate  # ... but left out of the distribution
    assert np.all(np.isfinite(res.theta)) and np.all(res.theta > 0)
    assert 0.0 < res.ci_low < res.estimate < res.ci_high < math.inf
    defined = np.sort(ooi_stat(st.boot[~deg]))
    assert res.ci_low >= defined[0] and res.ci_high <= defined[-1]
    if res.method == "percentile":  # the plain rule over the defined resamples only
        assert res.ci_low == pytest.approx(np.quantile(defined, 0.025))


def test_epg_intervals_never_end_at_inf():
    cells = [row("factual_qa", "linear", f"g{i}", 5.0 + i, i < 3) for i in range(40)]
    cells += [row("factual_qa", "agentic", f"g{i}", 9.0, True) for i in range(40)]
    epg, _ = compute_tables(pd.DataFrame(cells), MetricsConfig(bootstrap=4000, seed=1))
    lin = epg[(epg["family"] == "factual_qa") & (epg["mode"] == "linear")].iloc[0]
    # (37/40)^40 = 4.4 % of resamples have no success: more than the upper tail, under the 5 % rule
    assert 0.025 * 4000 < lin["n_degenerate_resamples"] <= 0.05 * 4000
    assert math.isfinite(lin["epg_ci_high"]) and lin["epg_ci_low"] < lin["epg_j"] < lin["epg_ci_high"]
    # the bootstrap itself, before the 5 % rule: 12 % of resamples have no success, none is used
    v = np.column_stack([5.0 + np.arange(20.0), np.arange(20) < 2])
    st = make_stratum("f", v, 4000, stratum_rng(2, "f"))
    res = bootstrap_scope([st], epg_stat, epg_degenerate, 0.95)
    assert res.n_degenerate == int((st.boot[:, 1] == 0).sum()) > 0.05 * 4000
    assert np.all(np.isfinite(res.theta)) and math.isfinite(res.ci_high)


def test_an_undefined_leave_one_goal_out_value_means_no_bca():
    # linear succeeds on one goal only: leaving it out leaves linear without success, so the
    # jackknife (hence BCa) is undefined; the old code took that OOI as 0 and used it.
    v = few_linear_successes(8, 1)
    res = bootstrap_scope([make_stratum("f", v, 4000, stratum_rng(0, "f"))], ooi_stat, ooi_degenerate, 0.95)
    assert res.method == "percentile" and res.accel == 0.0
    assert np.all(res.theta > 0) and res.ci_low > 0
    # without that goal the jackknife is defined and BCa is used
    v2 = few_linear_successes(30, 6)
    res2 = bootstrap_scope([make_stratum("f", v2, 4000, stratum_rng(0, "f"))], ooi_stat, ooi_degenerate, 0.95)
    assert res2.method == "BCa"


def test_degenerate_rule_keeps_coverage_on_data_with_a_known_ratio():
    # Known truth: per goal, linear success p = 0.15 and agentic p = 0.9, energy gamma with
    # means 10 (linear) and 30 (agentic), so OOI = (30 / 0.9) / (10 / 0.15) = 0.5. With 30
    # goals about 1 % of resamples have no linear success; every reported interval must come
    # from defined resamples and cover at about the nominal rate.
    rng = np.random.default_rng(22)
    truth, trials, n, hits, reported = 0.5, 150, 30, 0, 0
    for t in range(trials):
        v = np.column_stack(
            [rng.gamma(4.0, 7.5, n), rng.random(n) < 0.9, rng.gamma(4.0, 2.5, n), rng.random(n) < 0.15]
        ).astype(float)
        if v[:, 3].sum() == 0:
            continue
        res = bootstrap_scope(
            [make_stratum("f", v, 1000, stratum_rng(t, "f"))], ooi_stat, ooi_degenerate, 0.95
        )
        if res.n_degenerate > 0.05 * 1000:
            continue
        reported += 1
        assert res.ci_low > 0 and math.isfinite(res.ci_high)
        hits += res.ci_low <= truth <= res.ci_high
    assert reported > 0.6 * trials
    assert 0.88 <= hits / reported <= 0.99, (hits, reported)
