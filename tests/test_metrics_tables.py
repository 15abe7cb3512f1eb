"""The table functions' plumbing: groups, the energy layer and the column order reach every
entry point (epg_table, ooi_table, compute_tables, compute_layer_tables, flag_families),
and write_table writes the CSV the contract names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alems.metrics import (
    MetricsConfig,
    compute_layer_tables,
    compute_tables,
    epg_table,
    flag_families,
    ooi_table,
    write_table,
)
from alems.metrics.tables import (
    EPG_COLUMNS,
    EPG_EXTRA_COLUMNS,
    EPG_STAT_COLUMNS,
    EPG_TASK_COLUMNS,
    LAYER_EXTRA_COLUMNS,
    OOI_COLUMNS,
    OOI_EXTRA_COLUMNS,
    OOI_STAT_COLUMNS,
)

CFG = MetricsConfig(bootstrap=100, seed=3, min_goals=1)
ATTRIBUTED = MetricsConfig(bootstrap=100, seed=3, min_goals=1, energy_layer="attributed")
GROUPS = {"my_family": "tool"}


def goals() -> pd.DataFrame:
    """factual_qa (both modes), my_family (both modes; a tool family only by GROUPS), and
    science_qa with agentic runs only. raw = 3 x attributed, dynamic = 2 x attributed."""
    rows = []
    plan = [
        ("factual_qa", ("linear", "agentic")),
        ("my_family", ("linear", "agentic")),
        ("science_qa", ("agentic",)),
    ]
    for f, modes in plan:
        for mode in modes:
            for g in range(3):
                e = (2.0 if mode == "agentic" else 1.0) * (g + 1)
                rows.append(
                    {
                        "family": f,
                        "mode": mode,
                        "goal_id": f"g{g}",
                        "rep": 0,
                        "attempt": 1,
                        "success": True,
                        "final_attempt": True,
                        "energy_j": e,
                        "gap_j": 0.0,
                        "raw_j": 3 * e,
                        "gap_raw_j": 0.0,
                        "dynamic_j": 2 * e,
                        "gap_dynamic_j": 0.0,
                        "energy_source": "measured",
                        "flags": "",
                    }
                )
    return pd.DataFrame(rows)


def cell(epg: pd.DataFrame, family: str, mode: str) -> pd.Series:
    return epg[(epg["family"] == family) & (epg["mode"] == mode)].iloc[0]


def test_every_entry_point_takes_the_groups_and_the_layer():
    dyn = MetricsConfig(bootstrap=100, seed=3, min_goals=1, energy_layer="dynamic")
    epg = epg_table(goals(), dyn, GROUPS)
    assert cell(epg, "my_family", "linear")["group"] == "tool"
    assert cell(epg, "tool", "linear")["energy_total_j"] == 2 * 6.0  # the dynamic layer: 2 x (1 + 2 + 3)
    assert (epg["energy_layer"] == "dynamic").all()
    ooi = ooi_table(goals(), dyn, GROUPS)
    assert "tool" in set(ooi["scope"]) and (ooi["energy_layer"] == "dynamic").all()
    assert ooi[ooi["scope"] == "my_family"]["epg_linear_j"].iloc[0] == pytest.approx(2 * 2.0)
    epg2, ooi2 = compute_tables(goals(), CFG, GROUPS)
    assert "tool" in set(epg2["family"]) and "tool" in set(ooi2["scope"])
    epgs, oois = compute_layer_tables(goals(), groups=GROUPS)
    assert "tool" in set(epgs["family"]) and "tool" in set(oois["scope"])
    total = epgs[(epgs["energy_layer"] == "total") & (epgs["family"] == "tool") & (epgs["mode"] == "linear")]
    assert total["energy_total_j"].iloc[0] == 3 * 6.0
    # one stacked table each, indexed 0..n-1 like any table read back from CSV
    assert epgs.index.tolist() == list(range(len(epgs))) and oois.index.tolist() == list(range(len(oois)))


def test_a_family_with_one_mode_keeps_its_cell_and_the_ones_after_it():
    epg = epg_table(goals(), CFG)
    assert cell(epg, "science_qa", "agentic")["executions"] == 3
    assert len(epg[epg["family"] == "science_qa"]) == 1


def test_the_columns_in_contract_order():
    epg, ooi = compute_tables(goals(), CFG)
    assert list(epg.columns) == [
        *EPG_COLUMNS,
        *EPG_EXTRA_COLUMNS,
        *EPG_STAT_COLUMNS,
        *LAYER_EXTRA_COLUMNS,
        *EPG_TASK_COLUMNS,
        "wasted_j",
        "waste_share",
    ]
    assert list(ooi.columns) == [*OOI_COLUMNS, *OOI_EXTRA_COLUMNS, *OOI_STAT_COLUMNS, *LAYER_EXTRA_COLUMNS]


def test_flag_families_keeps_the_flags_there_and_follows_the_groups():
    epg, ooi = compute_tables(goals(), CFG, GROUPS)
    epg.loc[0, "flags"] = "zero_successes;low_coverage:1"
    epg.loc[1, "flags"] = np.nan
    f_epg, f_ooi = flag_families(epg, ooi, ["my_family"], "baseline_unstable", GROUPS)
    assert f_epg.loc[0, "flags"] == "zero_successes;low_coverage:1"  # factual_qa: not flagged
    flagged = set(f_epg.loc[f_epg["flags"].str.contains("baseline_unstable", na=False), "family"])
    assert flagged == {"my_family", "tool", "overall"}
    assert set(f_ooi.loc[f_ooi["flags"].str.contains("baseline_unstable", na=False), "scope"]) == flagged
    epg.loc[epg["family"] == "tool", "flags"] = "zero_successes;low_coverage:2"  # merged in sorted order
    f_epg, _ = flag_families(epg, ooi, ["my_family"], "baseline_unstable", GROUPS)
    assert set(f_epg.loc[f_epg["family"] == "tool", "flags"]) == {
        "baseline_unstable;low_coverage:2;zero_successes"
    }
    no_flags = epg.assign(flags=[None] * len(epg))  # an object column of missing values
    f_epg, _ = flag_families(no_flags, ooi, ["my_family"], "baseline_unstable", GROUPS)
    assert set(f_epg.loc[f_epg["family"] == "my_family", "flags"]) == {"baseline_unstable"}
    assert flag_families(epg, ooi, [], "x") == (epg, ooi)
    # a table read back from CSV with no flag anywhere has a float column of NaN
    read_back = epg.assign(flags=np.full(len(epg), np.nan))
    f_epg, f_ooi = flag_families(
        read_back, ooi.assign(flags=np.nan), ["my_family"], "baseline_unstable", GROUPS
    )
    assert set(f_epg.loc[f_epg["family"] == "overall", "flags"]) == {"baseline_unstable"}
    assert set(f_ooi.loc[f_ooi["scope"] == "my_family", "flags"]) == {"baseline_unstable"}


def test_write_table_writes_the_header_and_unix_lines(tmp_path):
    epg, _ = compute_tables(goals(), CFG)
    write_table(epg, tmp_path / "epg.csv")
    raw = (tmp_path / "epg.csv").read_bytes()
    assert raw.split(b"\n", 1)[0] == ",".join(epg.columns).encode()
    assert b"\r" not in raw and raw.endswith(b"\n") and raw.count(b"\n") == len(epg) + 1
    back = pd.read_csv(tmp_path / "epg.csv")
    assert list(back.columns) == list(epg.columns) and len(back) == len(epg)


def test_epg_row_values_rates_and_exact_flags():
    g = goals()
    g["check_reason"] = ""
    g.loc[
        (g["family"] == "factual_qa") & (g["mode"] == "linear") & (g["goal_id"] == "g0"), "check_reason"
    ] = "truncated"
    g.loc[(g["family"] == "my_family") & (g["mode"] == "linear") & (g["goal_id"] == "g0"), "energy_j"] = 0.5
    g.loc[(g["family"] == "my_family") & (g["mode"] == "linear") & (g["goal_id"] == "g1"), "energy_j"] = 0.0
    g.loc[(g["family"] == "my_family") & (g["mode"] == "agentic") & (g["goal_id"] == "g0"), "energy_j"] = -1.0
    g.loc[(g["family"] == "science_qa") & (g["goal_id"] == "g1"), "energy_j"] = np.nan
    epg = epg_table(g, ATTRIBUTED)
    assert (epg["level"] == CFG.level).all() and (epg["B"] == CFG.bootstrap).all()
    assert cell(epg, "factual_qa", "linear")["truncation_rate"] == pytest.approx(1 / 3)
    assert cell(epg, "factual_qa", "agentic")["truncation_rate"] == 0.0
    assert np.isnan(epg_table(goals(), CFG)["truncation_rate"]).all()  # no check_reason column
    assert cell(epg, "my_family", "linear")["flags"] == ""  # 0.5 J and 0 J are not negative
    assert cell(epg, "my_family", "agentic")["flags"] == "negative_energy:1"
    assert cell(epg, "science_qa", "agentic")["flags"] == "missing_energy"


def test_ooi_rows_carry_their_source_and_exact_flags():
    g = goals()
    g.loc[(g["family"] == "my_family") & (g["mode"] == "agentic"), "energy_source"] = "modeled"
    g.loc[(g["family"] == "factual_qa") & (g["goal_id"] == "g2"), "energy_j"] = np.nan
    ooi = ooi_table(g, ATTRIBUTED).set_index(["scope", "estimand"])
    assert ooi.loc[("factual_qa", "family"), "energy_source"] == "measured"
    assert ooi.loc[("my_family", "family"), "energy_source"] == "mixed"
    assert ooi.loc[("factual_qa", "family"), "flags"] == "missing_energy"
    # a goals table from before the gap layers, with a gap: the total layer stands in gap_j, flagged
    old = goals().drop(columns=["gap_raw_j", "gap_dynamic_j"]).assign(gap_j=0.5)
    epg, ooi = compute_tables(old, MetricsConfig(bootstrap=100, seed=3, min_goals=1, energy_layer="total"))
    assert (ooi["flags"].str.split(";").map(lambda f: "gap_attributed" in f)).all()
    assert (epg["flags"] == "gap_attributed").all()


def many_goals(family: str, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = goals().iloc[:0]
    rows = []
    for i in range(n):
        for mode, scale in (("linear", 1.0), ("agentic", 3.0)):
            e = float(scale * rng.lognormal(0.0, 0.5))
            rows.append(
                {
                    **goals().iloc[0].to_dict(),
                    "family": family,
                    "mode": mode,
                    "goal_id": f"g{i:02d}",
                    "energy_j": e,
                    "raw_j": 3 * e,
                    "dynamic_j": 2 * e,
                    "success": bool(rng.random() < 0.9),
                }
            )
    return pd.concat([g, pd.DataFrame(rows)], ignore_index=True)


def test_bonferroni_counts_only_the_families_with_an_interval():
    """A third family too small for an interval does not widen the others' adjusted intervals."""
    cfg = MetricsConfig(bootstrap=2000, seed=3, min_goals=10, energy_layer="attributed")
    two = pd.concat([many_goals("factual_qa", 20, 1), many_goals("science_qa", 20, 2)], ignore_index=True)
    small = many_goals("gsm8k_basic", 4, 3)
    _, a = compute_tables(two, cfg)
    _, b = compute_tables(pd.concat([two, small], ignore_index=True), cfg)
    fa = a[a["estimand"] == "family"].set_index("scope")
    fb = b[b["estimand"] == "family"].set_index("scope")
    assert fb.loc["gsm8k_basic", "method"] == "none"
    for f in ("factual_qa", "science_qa"):
        assert (fb.loc[f, "ci_low_adj"], fb.loc[f, "ci_high_adj"]) == (
            fa.loc[f, "ci_low_adj"],
            fa.loc[f, "ci_high_adj"],
        )
        assert fb.loc[f, "ci_high_adj"] - fb.loc[f, "ci_low_adj"] > fb.loc[f, "ci_high"] - fb.loc[f, "ci_low"]


def test_a_pooled_scope_without_a_defined_family_has_no_estimate():
    g = goals()[goals()["family"] == "factual_qa"].copy()
    g.loc[g["mode"] == "linear", "success"] = False
    ooi = ooi_table(g, CFG)
    pooled = ooi[ooi["estimand"] != "family"]
    assert pooled[["ooi", "epg_agentic_j", "epg_linear_j", "ci_low"]].isna().all().all()
    assert (pooled["flags"] == "excluded:factual_qa").all() and (pooled["n_pairs"] == 0).all()
