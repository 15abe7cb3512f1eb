"""The cross-arm tables (:mod:`alems.metrics.compare`) on hand-made goals tables, and the arms
of a config (:func:`alems.config.arm_configs`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alems.config import arm_configs, reference_arm, validate_config, without_arms
from alems.contracts import BUILTIN_FAMILIES, hashed_config
from alems.errors import ConfigError, ProvenanceError
from alems.metrics import MetricsConfig
from alems.metrics.compare import ArmTables, compare_tables, paired_epg_ratio_stat, ratios_table

CFG = MetricsConfig(bootstrap=500, min_goals=5, energy_layer="attributed")
EMPTY = pd.DataFrame(columns=["scope", "estimand", "ooi", "family", "mode", "flags"])


def goals(
    energy: dict[str, np.ndarray], success: dict[str, np.ndarray], reps: int = 1, mode: str = "linear"
) -> pd.DataFrame:
    """A goals table: per family, one execution per goal and rep with the given energy and success."""
    rows = []
    for fam, e in energy.items():
        for g, (ej, sj) in enumerate(zip(e, success[fam], strict=True)):
            for r in range(reps):
                rows.append(
                    {
                        "family": fam,
                        "mode": mode,
                        "goal_id": f"{fam}-{g}",
                        "rep": r,
                        "attempt": 1,
                        "success": bool(sj),
                        "final_attempt": True,
                        "energy_j": float(ej),
                        "gap_j": 0.0,
                        "energy_source": "measured",
                    }
                )
    return pd.DataFrame(rows)


def arm(name: str, g: pd.DataFrame, hw: str = "h" * 16) -> ArmTables:
    return ArmTables(name, g, EMPTY, EMPTY, {"hw_hash": hw})


def test_pairing_cancels_the_goals_difficulty() -> None:
    """Goal energies spread over two orders of magnitude, the arm costs exactly 2x on every goal:
    every paired resample has ratio 2, so the interval is [2, 2]; the successes are the same, so
    the success difference is 0 with interval [0, 0]."""
    rng = np.random.default_rng(0)
    e = {f: rng.lognormal(0, 1.5, 12) for f in ("gsm8k_basic", "tg_single_calc")}
    s = {f: rng.random(12) < 0.6 for f in e}
    ref = goals(e, s)
    big = goals({f: 2 * v for f, v in e.items()}, s)
    t = ratios_table([arm("ref", ref), arm("big", big)], "ref", CFG)
    assert list(t["scope"]) == ["gsm8k_basic", "tg_single_calc", "reasoning", "tool", "overall"]
    assert (
        np.allclose(t["epg_ratio"], 2.0) and np.allclose(t["ci_low"], 2.0) and np.allclose(t["ci_high"], 2.0)
    )
    assert np.allclose(t["success_diff"], 0.0) and np.allclose(t["success_diff_ci_high"], 0.0)
    assert (t["flags"].fillna("") == "").all() and (t["energy_source"] == "measured").all()


def test_a_success_difference_has_its_sign_and_an_interval_around_it() -> None:
    e = {"gsm8k_basic": np.ones(30)}
    ref = goals(e, {"gsm8k_basic": np.arange(30) % 10 < 8})  # 80 %
    worse = goals(e, {"gsm8k_basic": np.arange(30) % 10 < 3})  # 30 %
    row = ratios_table([arm("ref", ref), arm("worse", worse)], "ref", CFG).iloc[0]
    assert row["success_diff"] == pytest.approx(-0.5)
    assert row["success_diff_ci_low"] < -0.5 < row["success_diff_ci_high"] < 0
    assert row["epg_ratio"] == pytest.approx((30 / 9) / (30 / 24))  # EpG = energy / successes


def test_an_arm_without_success_has_no_ratio_and_says_why() -> None:
    e = {f: np.ones(10) for f in ("gsm8k_basic", "factual_qa")}
    ref = goals(e, {f: np.ones(10, bool) for f in e})
    none = goals(e, {"gsm8k_basic": np.zeros(10, bool), "factual_qa": np.ones(10, bool)})
    t = ratios_table([arm("ref", ref), arm("none", none)], "ref", CFG).set_index("scope")
    row = t.loc["gsm8k_basic"]
    assert math.isnan(row["epg_ratio"]) and math.isnan(row["ci_low"]) and row["method"] == "none"
    assert "zero_successes_arm" in row["flags"]
    assert row["success_diff"] == pytest.approx(-1.0)
    # pooled over both families the arm has successes: defined, as epg.csv's pooled EpG is
    assert t.loc["overall", "epg_ratio"] == pytest.approx((20 / 10) / (20 / 20))


def test_degenerate_resamples_are_undefined_counted_and_withhold_the_interval() -> None:
    """One success in 12 goals: about (11/12)^12 = 35 % of resamples have none; they are left out
    (NaN, never 0 or inf), counted, and with more than 5 % of them there is no interval."""
    e = {"gsm8k_basic": np.ones(12)}
    ref = goals(e, {"gsm8k_basic": np.ones(12, bool)})
    rare = goals(e, {"gsm8k_basic": np.arange(12) == 0})
    row = ratios_table([arm("ref", ref), arm("rare", rare)], "ref", CFG).iloc[0]
    assert row["epg_ratio"] == pytest.approx(12.0)
    assert 0.25 * 500 < row["n_degenerate_resamples"] < 0.45 * 500
    assert math.isnan(row["ci_low"]) and "insufficient_data" in row["flags"]
    totals = np.array([[1.0, 0.0, 1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    assert np.isnan(paired_epg_ratio_stat(totals)[0]) and paired_epg_ratio_stat(totals)[1] == 2.0


def test_few_goals_and_unpaired_goals_are_flagged() -> None:
    e = {"gsm8k_basic": np.ones(4)}
    s = {"gsm8k_basic": np.ones(4, bool)}
    ref = goals(e, s)
    other = goals(e, s)
    other.loc[other["goal_id"] == "gsm8k_basic-3", "goal_id"] = "elsewhere"
    row = ratios_table([arm("ref", ref), arm("other", other)], "ref", CFG).iloc[0]
    assert row["n_goals"] == 3 and "unpaired_goals:2" in row["flags"] and "insufficient_data" in row["flags"]
    assert row["epg_ratio"] == pytest.approx(1.0) and math.isnan(row["ci_low"])


def test_arms_of_different_hardware_are_refused_unless_allowed() -> None:
    g = goals({"gsm8k_basic": np.ones(10)}, {"gsm8k_basic": np.ones(10, bool)})
    epg = pd.DataFrame({"family": ["gsm8k_basic"], "mode": ["linear"], "flags": [""]})
    a, b = (
        ArmTables("a", g, epg, EMPTY, {"hw_hash": "1" * 16}),
        ArmTables("b", g, epg, EMPTY, {"hw_hash": "2" * 16}),
    )
    with pytest.raises(ProvenanceError, match="different hardware"):
        compare_tables([a, b], "a", CFG)
    t = compare_tables([b, a], "a", CFG, allow_mixed_hosts=True)
    assert t.mixed_hosts and list(t.epg["arm"]) == ["a", "b"]  # the reference first
    for df in (t.epg, t.ratios):
        assert df["flags"].str.contains("mixed_hosts").all()
    with pytest.raises(ProvenanceError, match="not one of the arms"):
        compare_tables([a, b], "c", CFG, allow_mixed_hosts=True)


# --------------------------------------------------------------------------- the config's arms
def test_arm_configs_merge_and_refuse() -> None:
    base = {"study": {"tasks": 3, "arms": {"s": {}, "r": {"agents": {"style": "react"}}}}}
    cfg = validate_config(base, known_families=BUILTIN_FAMILIES)
    arms = arm_configs(cfg, known_families=BUILTIN_FAMILIES)
    assert list(arms) == ["s", "r"] and reference_arm(cfg) == "s"
    assert arms["r"]["agents"]["style"] == "react" and arms["s"]["agents"]["style"] == "plan_execute"
    assert "arms" not in arms["r"]["study"] and arms["r"]["study"]["tasks"] == 3
    # an arm without overrides is the study without arms: the same config, so the same config_hash
    plain = validate_config({"study": {"tasks": 3}}, known_families=BUILTIN_FAMILIES)
    assert hashed_config(arms["s"]) == hashed_config(plain) == hashed_config(without_arms(cfg))
    assert "arms" not in plain["study"] and "reference_arm" not in plain["study"]  # no schema default
    for over, key in (
        ({"study": {"seed": 1}}, "study.seed"),
        ({"baseline": {"windows": 3}}, "baseline.windows"),
    ):
        with pytest.raises(ConfigError, match=f"arm 'x' overrides '{key}'"):
            validate_config({"study": {"arms": {"x": over}}})
    with pytest.raises(ConfigError, match="reference_arm' names 'y'"):
        validate_config({"study": {"arms": {"x": {}}, "reference_arm": "y"}})
    with pytest.raises(ConfigError, match="arm 'x': config key 'agents.style'"):
        validate_config({"study": {"arms": {"x": {"agents": {"style": "loop"}}}}})


# --------------------------------------------------------------------------- the figures' helpers
def test_compare_footer_names_a_measured_modeled_mix_and_the_pareto_front_is_minimal() -> None:
    from alems.figures.compare import footer_label, pareto_front

    epg = pd.DataFrame(
        {
            "arm": ["a", "a", "b"],
            "energy_source": ["measured", "measured", "modeled"],
            "energy_layer": ["total"] * 3,
        }
    )
    run, src = footer_label(epg, "b")
    assert run == "compare of 2 arms, reference b"
    assert src == "mixed: b modeled, a measured | energy layer: total"
    assert footer_label(epg[epg["arm"] == "a"], "a")[1] == "measured | energy layer: total"
    # (energy, success): the front is the cheapest point, then each cheaper-than-the-rest improvement
    energy = [1.0, 2.0, 2.0, 3.0, 0.5, float("nan")]
    success = [0.5, 0.4, 0.9, 0.95, 0.1, 1.0]
    assert pareto_front(energy, success) == [4, 0, 2, 3]
