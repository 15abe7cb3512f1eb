"""Metrics: EpG and OOI golden tables, degenerate cases, determinism, the CLI."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from alems.cli import main
from alems.errors import ConfigError
from alems.metrics import (
    EPG_COLUMNS,
    OOI_COLUMNS,
    MetricsConfig,
    MetricsInputError,
    Stratum,
    compute_tables,
    epg_table,
    executions,
    flag_families,
    group_of,
    ooi_stat,
    ooi_table,
    read_goals,
    resample_totals,
    stratum_rng,
    tables_to_json,
    write_tables,
)
from alems.metrics.bootstrap import _acceleration, _quantile


def row(
    family, mode, goal, energy, success, attempt=1, final=True, gap=0.0, rep=0, source="measured", flags=""
):
    return {
        "family": family,
        "mode": mode,
        "goal_id": goal,
        "rep": rep,
        "attempt": attempt,
        "success": success,
        "final_attempt": final,
        "energy_j": energy,
        "gap_j": gap,
        "energy_source": source,
        "flags": flags,
    }


def golden_goals() -> pd.DataFrame:
    """Two families; failed attempts and failed executions in the numerator."""
    return pd.DataFrame(
        [
            # factual_qa linear: g1 fails then succeeds (10 + 12 + gap 1 = 23), g2 fails (15), g3 succeeds (20)
            row("factual_qa", "linear", "g1", 10.0, False, attempt=1, final=False),
            row("factual_qa", "linear", "g1", 12.0, True, attempt=2, gap=1.0),
            row("factual_qa", "linear", "g2", 15.0, False),
            row("factual_qa", "linear", "g3", 20.0, True),
            # factual_qa agentic: 30 (ok), 30 (ok), 60 (fails after a failed retry: 25 + 33 + gap 2)
            row("factual_qa", "agentic", "g1", 30.0, True),
            row("factual_qa", "agentic", "g2", 30.0, True),
            row("factual_qa", "agentic", "g3", 25.0, False, attempt=1, final=False),
            row("factual_qa", "agentic", "g3", 33.0, False, attempt=2, gap=2.0),
            # tg_single_calc: linear 8 (ok), 12 (fails); agentic 16 (ok), 14 (ok)
            row("tg_single_calc", "linear", "t1", 8.0, True),
            row("tg_single_calc", "linear", "t2", 12.0, False),
            row("tg_single_calc", "agentic", "t1", 16.0, True),
            row("tg_single_calc", "agentic", "t2", 14.0, True, source="mixed"),
        ]
    )


CFG = MetricsConfig(bootstrap=2000, level=0.95, seed=7, min_goals=1)  # tiny tables: intervals allowed


def test_executions_sum_attempts_and_gaps_and_take_the_final_success():
    ex = executions(golden_goals()).set_index(["family", "mode", "goal_id"])
    assert ex.loc[("factual_qa", "linear", "g1"), "energy_j"] == 23.0
    assert bool(ex.loc[("factual_qa", "linear", "g1"), "success"])
    assert ex.loc[("factual_qa", "agentic", "g3"), "energy_j"] == 60.0
    assert not bool(ex.loc[("factual_qa", "agentic", "g3"), "success"])
    assert ex.loc[("factual_qa", "linear", "g1"), "attempts"] == 2


def test_epg_golden_table():
    epg = epg_table(golden_goals(), CFG)
    assert list(epg.columns[: len(EPG_COLUMNS)]) == [
        "family",
        "group",
        "mode",
        "executions",
        "successes",
        "success_rate",
        "energy_total_j",
        "epg_j",
        "epg_ci_low",
        "epg_ci_high",
        "epg_success_only_j",
        "energy_source",
    ]
    got = {
        (r.family, r.mode): (
            r.group,
            r.executions,
            r.successes,
            r.energy_total_j,
            r.epg_j,
            r.epg_success_only_j,
        )
        for r in epg.itertuples()
    }
    expected = {
        ("factual_qa", "linear"): ("reasoning", 3, 2, 58.0, 58.0 / 2, (23.0 + 20.0) / 2),
        ("factual_qa", "agentic"): ("reasoning", 3, 2, 120.0, 120.0 / 2, 60.0 / 2),
        ("tg_single_calc", "linear"): ("tool", 2, 1, 20.0, 20.0, 8.0),
        ("tg_single_calc", "agentic"): ("tool", 2, 2, 30.0, 15.0, 15.0),
        ("reasoning", "linear"): ("reasoning", 3, 2, 58.0, 29.0, 21.5),
        ("reasoning", "agentic"): ("reasoning", 3, 2, 120.0, 60.0, 30.0),
        ("tool", "linear"): ("tool", 2, 1, 20.0, 20.0, 8.0),
        ("tool", "agentic"): ("tool", 2, 2, 30.0, 15.0, 15.0),
        ("overall", "linear"): ("overall", 5, 3, 78.0, 26.0, (23.0 + 20.0 + 8.0) / 3),
        ("overall", "agentic"): ("overall", 5, 4, 150.0, 37.5, (30.0 + 30.0 + 16.0 + 14.0) / 4),
    }
    assert list(got) == list(expected)  # families in catalogue order, then groups, then overall
    for key, exp in expected.items():
        assert got[key][:4] == exp[:4], key
        assert got[key][4] == pytest.approx(exp[4]), key
        assert got[key][5] == pytest.approx(exp[5]), key
    srcs = dict(zip(zip(epg["family"], epg["mode"], strict=True), epg["energy_source"], strict=True))
    assert srcs[("tg_single_calc", "agentic")] == "mixed"
    assert srcs[("overall", "agentic")] == "mixed"
    assert srcs[("factual_qa", "agentic")] == "measured"
    assert (epg["success_rate"] == epg["successes"] / epg["executions"]).all()
    ci_ok = (epg["epg_ci_low"] <= epg["epg_j"]) & (epg["epg_j"] <= epg["epg_ci_high"])
    # tg_single_calc linear has 1 success in 2 goals: a quarter of resamples have none, so no interval
    short = epg["flags"].str.contains("insufficient_data")
    assert ci_ok[~short].all() and epg.loc[short, "epg_ci_low"].isna().all()
    assert set(epg.loc[short, "family"]) == {"tg_single_calc", "tool"}
    assert epg["n_goals"].tolist() == [3, 3, 2, 2, 3, 3, 2, 2, 5, 5]


def test_zero_successes_give_inf_and_a_flag_never_a_crash_or_zero():
    goals = pd.DataFrame(
        [row("science_qa", "linear", f"g{i}", 5.0, False) for i in range(4)]
        + [row("science_qa", "agentic", f"g{i}", 7.0, i < 2) for i in range(4)]
    )
    epg, ooi = compute_tables(goals, CFG)
    lin = epg[(epg["family"] == "science_qa") & (epg["mode"] == "linear")].iloc[0]
    assert lin["epg_j"] == math.inf and lin["epg_success_only_j"] == math.inf
    assert lin["flags"] == "insufficient_data;zero_successes"
    assert lin["n_degenerate_resamples"] == CFG.bootstrap
    assert math.isnan(lin["epg_ci_low"]) and math.isnan(lin["epg_ci_high"])  # every resample is degenerate
    fam = ooi[ooi["scope"] == "science_qa"].iloc[0]
    assert (
        math.isnan(fam["ooi"]) and math.isnan(fam["ci_low"]) and math.isnan(fam["ci_high"])
    )  # not 0 = 3.5 / inf
    assert fam["method"] == "none" and fam["flags"] == "zero_successes_linear"
    assert fam["epg_linear_j"] == math.inf and fam["epg_agentic_j"] == 14.0
    doc = tables_to_json(epg, ooi)
    assert next(r for r in doc["ooi"] if r["scope"] == "science_qa")["ooi"] is None
    json.dumps(doc, allow_nan=False)  # strictly valid JSON
    jl = next(r for r in doc["epg"] if r["family"] == "science_qa" and r["mode"] == "linear")
    assert jl["epg_j"] == "inf" and jl["flags"] == "insufficient_data;zero_successes"


def tiny_pairs() -> pd.DataFrame:
    lin = [(10.0, True), (20.0, True), (30.0, False)]
    ag = [(30.0, True), (30.0, True), (60.0, True)]
    rows = [row("gsm8k_basic", "linear", f"p{i}", e, s) for i, (e, s) in enumerate(lin)]
    rows += [row("gsm8k_basic", "agentic", f"p{i}", e, s) for i, (e, s) in enumerate(ag)]
    return pd.DataFrame(rows)


def test_ooi_golden_on_a_tiny_paired_set():
    cfg = MetricsConfig(bootstrap=27_000, level=0.9, seed=1, min_goals=1)
    ooi = ooi_table(tiny_pairs(), cfg)
    assert list(ooi.columns[: len(OOI_COLUMNS)]) == [
        "scope",
        "ooi",
        "ci_low",
        "ci_high",
        "n_pairs",
        "method",
        "B",
        "level",
    ]
    fam = ooi[ooi["scope"] == "gsm8k_basic"].iloc[0]
    # EpG(agentic) = 120 / 3 = 40; EpG(linear) = 60 / 2 = 30; OOI = 4/3
    assert fam["ooi"] == pytest.approx(4.0 / 3.0)
    assert (fam["epg_agentic_j"], fam["epg_linear_j"]) == (40.0, 30.0)
    assert (fam["n_pairs"], fam["n_missing_pairs"], fam["B"], fam["level"]) == (3, 0, 27_000, 0.9)
    # zero linear successes happen when the resample is (p2, p2, p2): probability 1/27
    assert abs(fam["n_degenerate_resamples"] - 1000) < 5 * math.sqrt(27_000 * (1 / 27) * (26 / 27))
    # the exact bootstrap distribution over the 27 equally likely ordered resamples
    v = np.array([[30, 1, 10, 1], [30, 1, 20, 1], [60, 1, 30, 0]], float)
    support = np.array([ooi_stat(v[list(ix)].sum(axis=0)) for ix in itertools.product(range(3), repeat=3)])
    assert fam["ci_low"] >= support.min() and fam["ci_high"] <= support.max()
    assert fam["ci_low"] <= 4.0 / 3.0 <= fam["ci_high"]
    # the group and overall scopes hold the same single family
    for scope in ("reasoning", "overall"):
        r = ooi[ooi["scope"] == scope].iloc[0]
        assert (r["ooi"], r["ci_low"], r["ci_high"]) == (fam["ooi"], fam["ci_low"], fam["ci_high"])


def test_resampling_matches_the_exact_bootstrap_distribution():
    v = np.array([[30, 1, 10, 1], [30, 1, 20, 1], [60, 1, 30, 0]], float)
    exact = np.sort([ooi_stat(v[list(ix)].sum(axis=0)) for ix in itertools.product(range(3), repeat=3)])
    boot = ooi_stat(resample_totals(v, 27_000, stratum_rng(3, "x")))
    for q in np.unique(exact[np.isfinite(exact)]):
        # empirical CDF within ~4 standard errors of the exact CDF at every support point
        p = np.mean(exact <= q)
        assert abs(np.mean(boot <= q) - p) < 4 * math.sqrt(p * (1 - p) / 27_000) + 1e-9


def test_jackknife_acceleration_by_hand():
    v = np.array([[30, 1, 10, 1], [30, 1, 20, 1], [60, 1, 30, 0]], float)
    # leave-one-out OOIs: (90/2)/(50/1) = 0.9, (90/2)/(40/1) = 1.125, (60/2)/(30/2) = 2.0
    loo = np.array([0.9, 1.125, 2.0])
    d = loo.mean() - loo
    expected = (d**3).sum() / (6 * (d**2).sum() ** 1.5)
    assert expected == pytest.approx(-0.0567, abs=1e-3)
    got = _acceleration([Stratum("f", v, np.zeros((0, 4)))], v.sum(axis=0), ooi_stat)
    assert got == pytest.approx(expected, rel=1e-12)


def test_pairs_missing_one_mode_are_left_out_and_counted():
    goals = pd.concat(
        [
            tiny_pairs(),
            pd.DataFrame(
                [
                    row("gsm8k_basic", "linear", "only_linear", 1000.0, True),
                    row("gsm8k_basic", "agentic", "only_agentic", 1000.0, False),
                    row("gsm8k_basic", "agentic", "p0", 1000.0, True, rep=1),  # rep 1 has no linear run
                ]
            ),
        ],
        ignore_index=True,
    )
    cfg = MetricsConfig(bootstrap=500, seed=2, min_goals=1)
    ooi = ooi_table(goals, cfg)
    fam = ooi[ooi["scope"] == "gsm8k_basic"].iloc[0]
    assert (fam["n_pairs"], fam["n_missing_pairs"]) == (3, 3)
    assert fam["ooi"] == pytest.approx(4.0 / 3.0)  # the unpaired 1000 J runs are not in it
    epg = epg_table(goals, cfg)
    lin = epg[(epg["family"] == "gsm8k_basic") & (epg["mode"] == "linear")].iloc[0]
    assert lin["executions"] == 4  # EpG keeps every execution


def test_a_family_with_no_pairs_is_reported_not_dropped():
    goals = pd.DataFrame([row("tg_single_db", "linear", "a", 1.0, True)])
    ooi = ooi_table(goals, CFG)
    r = ooi[ooi["scope"] == "tg_single_db"].iloc[0]
    assert r["n_pairs"] == 0 and r["method"] == "none" and r["flags"] == "no_pairs"
    assert math.isnan(r["ooi"])


def test_group_resampling_is_stratified_by_family():
    # family A: all succeed; family B: all fail. Stratified resampling keeps 5 units of each,
    # so the overall total successes and energy never change: a zero-width interval.
    goals = pd.DataFrame(
        [row("factual_qa", "linear", f"a{i}", 1.0, True) for i in range(5)]
        + [row("science_qa", "linear", f"b{i}", 1.0, False) for i in range(5)]
    )
    epg = epg_table(goals, CFG)
    overall = epg[epg["family"] == "overall"].iloc[0]
    assert (overall["epg_j"], overall["epg_ci_low"], overall["epg_ci_high"]) == (2.0, 2.0, 2.0)
    assert overall["n_degenerate_resamples"] == 0


def test_groups_mapping_and_default_rule():
    assert group_of("tg_whatever") == "tool" and group_of("my_family") == "reasoning"
    assert group_of("my_family", {"my_family": "tool"}) == "tool"
    goals = pd.concat([golden_goals(), pd.DataFrame([row("my_family", "linear", "m", 3.0, True)])])
    epg, ooi = compute_tables(goals, CFG, groups={"my_family": "tool"})
    tool = epg[(epg["family"] == "tool") & (epg["mode"] == "linear")].iloc[0]
    assert tool["executions"] == 3 and tool["energy_total_j"] == 23.0
    assert epg[epg["family"] == "my_family"]["group"].tolist() == ["tool"]
    pooled = ["ratio_of_means", "geomean_ooi", "pooled_ratio"]
    assert ooi["scope"].tolist() == [
        "factual_qa",
        "tg_single_calc",
        "my_family",
        *["reasoning"] * 3,
        *["tool"] * 3,
        *["overall"] * 3,
    ]
    assert ooi["estimand"].tolist() == ["family"] * 3 + pooled * 3


def test_missing_energy_propagates_and_is_flagged():
    goals = golden_goals()
    goals.loc[2, "energy_j"] = np.nan
    epg = epg_table(goals, CFG)
    lin = epg[(epg["family"] == "factual_qa") & (epg["mode"] == "linear")].iloc[0]
    assert math.isnan(lin["epg_j"]) and "missing_energy" in lin["flags"]


def test_low_coverage_and_negative_energy_are_counted_in_flags():
    goals = golden_goals()
    goals.loc[0, "flags"] = "low_coverage;outside_samples"
    goals.loc[2, "energy_j"] = -4.0
    epg = epg_table(goals, CFG)
    lin = epg[(epg["family"] == "factual_qa") & (epg["mode"] == "linear")].iloc[0]
    assert lin["flags"] == "low_coverage:1;negative_energy:1"


def test_same_seed_gives_byte_identical_tables(tmp_path):
    goals = golden_goals()
    for name in ("a", "b"):
        epg, ooi = compute_tables(goals, CFG)
        write_tables(epg, ooi, tmp_path / name / "epg.csv", tmp_path / name / "ooi.csv")
    for f in ("epg.csv", "ooi.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    other = compute_tables(goals, MetricsConfig(bootstrap=2000, seed=8))[1]
    write_tables(epg, other, tmp_path / "c" / "epg.csv", tmp_path / "c" / "ooi.csv")
    assert (tmp_path / "c" / "ooi.csv").read_bytes() != (tmp_path / "a" / "ooi.csv").read_bytes()


def test_adding_a_family_leaves_the_others_resamples_alone():
    base = ooi_table(tiny_pairs(), CFG)
    more = ooi_table(pd.concat([tiny_pairs(), golden_goals()], ignore_index=True), CFG)
    a = base[base["scope"] == "gsm8k_basic"].iloc[0]
    b = more[more["scope"] == "gsm8k_basic"].iloc[0]
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])


def test_config_validation():
    assert MetricsConfig.from_dict({"bootstrap": 100, "level": 0.9, "seed": 3}) == MetricsConfig(100, 0.9, 3)
    with pytest.raises(ConfigError, match=r"metrics.level has the wrong type: '0.9' \(expected float\)"):
        MetricsConfig.from_dict({"level": "0.9"})
    with pytest.raises(ConfigError, match="level is 1.5"):
        MetricsConfig(level=1.5)
    with pytest.raises(ConfigError, match="bootstrap is -1"):
        MetricsConfig(bootstrap=-1)
    with pytest.raises(ConfigError, match=r"unknown metrics config key\(s\): B"):
        MetricsConfig.from_dict({"B": 10})


def test_bootstrap_zero_gives_estimates_without_intervals():
    epg, ooi = compute_tables(golden_goals(), MetricsConfig(bootstrap=0))
    assert (epg["ci_method"] == "none").all() and epg["epg_ci_low"].isna().all()
    assert (ooi["method"] == "none").all()
    assert ooi.loc[ooi["scope"] == "factual_qa", "ooi"].iloc[0] == pytest.approx(60.0 / 29.0)


# --------------------------------------------------------------------------- CLI
def test_cli_json(tmp_path, capsys):
    path = tmp_path / "goals.csv"
    golden_goals().to_csv(path, index=False)
    args = ["metrics", str(path), "--bootstrap", "300", "--level", "0.9", "--seed", "5", "--json"]
    assert main([*args, "--out-dir", str(tmp_path / "tables")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"epg", "ooi", "decomposition"}
    assert (
        doc["ooi"][0]["scope"] == "factual_qa" and doc["ooi"][0]["B"] == 300 and doc["ooi"][0]["level"] == 0.9
    )
    epg, ooi = compute_tables(read_goals(path), MetricsConfig(300, 0.9, 5))
    assert {k: doc[k] for k in ("epg", "ooi")} == tables_to_json(epg, ooi)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == doc
    written = pd.read_csv(tmp_path / "tables" / "epg.csv")
    assert list(written.columns[: len(EPG_COLUMNS)]) == list(EPG_COLUMNS)


def test_cli_text_table_and_modeled_note(tmp_path, capsys):
    path = tmp_path / "goals.csv"
    golden_goals().to_csv(path, index=False)
    assert main(["metrics", str(path), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "EpG" in out and "OOI" in out and "factual_qa" in out
    assert "contain modeled energy" in out  # one row is "mixed"


def test_cli_missing_file_gives_the_fix(tmp_path, capsys):
    assert main(["metrics", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Fix:" in err


def test_read_goals_requires_the_contract_columns(tmp_path):
    path = tmp_path / "g.csv"
    pd.DataFrame({"family": ["x"]}).to_csv(path, index=False)
    with pytest.raises(MetricsInputError, match=r"lacks column\(s\)"):
        compute_tables(read_goals(path), CFG)


def test_quantile_across_infinities_matches_the_limit():
    x = np.array([1.0, 2.0, np.inf, np.inf])
    assert _quantile(x, 0.0) == 1.0 and _quantile(x, 0.5) == np.inf and _quantile(x, 1.0) == np.inf
    assert _quantile(x, 1.0 / 6.0) == pytest.approx(1.5)
    assert _quantile(np.array([-np.inf, 0.0, 1.0]), 0.25) == -np.inf
    assert _quantile(np.array([0.0, 1.0, 3.0]), 0.75) == np.quantile([0.0, 1.0, 3.0], 0.75)


def test_ooi_without_an_agentic_success_is_undefined_not_inf():
    goals = pd.DataFrame(
        [row("factual_qa", "linear", f"g{i}", 5.0, i < 3) for i in range(4)]
        + [row("factual_qa", "agentic", f"g{i}", 9.0, False) for i in range(4)]
        + [row("tg_single_db", "linear", f"g{i}", 5.0, i < 2) for i in range(4)]
        + [row("tg_single_db", "agentic", f"g{i}", 8.0, i < 3) for i in range(4)]
    )
    _, ooi = compute_tables(goals, CFG)
    fam = ooi.set_index("scope").loc["factual_qa"]
    assert math.isnan(fam["ooi"]) and fam["method"] == "none" and fam["flags"] == "zero_successes_agentic"
    assert fam["n_degenerate_resamples"] == CFG.bootstrap
    # the pooled scopes leave the undefined family out (it used to add its energy) and say so;
    # tg_single_db alone: (32 / 3) / (20 / 2)
    overall = ooi[ooi["scope"] == "overall"]
    assert overall["ooi"].tolist() == pytest.approx([(32.0 / 3) / 10.0] * 3)
    assert (overall["flags"] == "excluded:factual_qa;insufficient_data").all()  # P(no linear success) = 1/16
    assert (overall["n_goals"] == 4).all() and (overall["n_pairs"] == 4).all()


def test_flag_families_marks_the_family_its_group_and_overall_only():
    epg, ooi = compute_tables(golden_goals(), CFG)
    e2, o2 = flag_families(epg, ooi, ["tg_single_calc"], "baseline_unstable")
    hit = e2["flags"].str.contains("baseline_unstable")
    assert set(e2.loc[hit, "family"]) == {"tg_single_calc", "tool", "overall"}
    assert set(o2.loc[o2["flags"].str.contains("baseline_unstable"), "scope"]) == {
        "tg_single_calc",
        "tool",
        "overall",
    }
    assert (e2.loc[~hit, "flags"] == epg.loc[~hit, "flags"]).all() and not epg["flags"].str.contains(
        "baseline"
    ).any()
    assert flag_families(epg, ooi, [], "x")[0] is epg
