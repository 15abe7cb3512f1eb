"""The exact OOI decomposition: the five factors multiply to the OOI in every layer, each is
right on a table computed by hand, shares its resamples with the OOI, and is empty and
flagged (never inf, never a crash) where it is undefined."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from alems.contracts import ENERGY_LAYERS
from alems.metrics import MetricsConfig, compute_tables
from alems.metrics.decomposition import (
    DECOMPOSITION_COLUMNS,
    FACTORS,
    compute_layer_decomposition,
    compute_with_decomposition,
)

CFG = MetricsConfig(bootstrap=200, min_goals=2, seed=3)
LAYER_COLS = {
    "total": ("raw_j", "gap_raw_j", "llm_raw_j"),
    "dynamic": ("dynamic_j", "gap_dynamic_j", "llm_dynamic_j"),
    "attributed": ("energy_j", "gap_j", "llm_j"),
}


def attempt(
    family, mode, goal, attempt, success, final, calls, tin, tout, e, llm, gap=0.0, rep=0, scale=None
):
    """One goals.csv row; layer ``l`` gets the energies times ``scale[l]`` (default 1)."""
    scale = scale or {}
    keys = ("family", "mode", "goal_id", "rep", "attempt", "success", "final_attempt", "llm_calls")
    row: dict = dict(zip(keys, (family, mode, goal, rep, attempt, success, final, calls), strict=True))
    row.update(tool_calls=0, tokens_in=tin, tokens_out=tout, energy_source="measured")
    for layer, (ec, gc, lc) in LAYER_COLS.items():
        k = scale.get(layer, 1.0)
        row[ec], row[gc], row[lc] = e * k, gap * k, llm * k
    row["attributed_j"] = row["energy_j"]
    return row


def hand_table():
    f = "fam"
    return pd.DataFrame(
        [
            attempt(f, "linear", "g1", 1, True, True, 1, 10, 5, 10.0, 8.0),
            attempt(f, "linear", "g2", 1, False, True, 1, 12, 3, 12.0, 9.0),
            attempt(f, "agentic", "g1", 1, False, False, 3, 30, 10, 40.0, 30.0),
            attempt(f, "agentic", "g1", 2, True, True, 2, 20, 5, 25.0, 20.0, gap=5.0),
            attempt(f, "agentic", "g2", 1, True, True, 4, 40, 10, 50.0, 35.0),
        ]
    )


def rows_of(dec, scope="fam", layer=None):
    d = dec[dec["scope"] == scope]
    if layer is not None:
        d = d[d["energy_layer"] == layer]
    return d.set_index("factor")


def test_every_factor_on_a_table_computed_by_hand():
    _, ooi, dec = compute_with_decomposition(hand_table(), CFG)
    assert list(dec.columns[: len(DECOMPOSITION_COLUMNS)]) == list(DECOMPOSITION_COLUMNS)
    r = rows_of(dec)
    # X_l=2 S_l=1 C_l=2 T_l=30 L_l=17 E_l=22; X_a=2 S_a=2 C_a=9 T_a=115 L_a=85 E_a=120
    expected = {
        "success": (1 / 2) / (2 / 2),
        "calls": (9 / 2) / (2 / 2),
        "tokens_per_call": (115 / 9) / (30 / 2),
        "llm_j_per_token": (85 / 115) / (17 / 30),
        "non_llm": (120 / 85) / (22 / 17),
        "ooi": (120 / 2) / (22 / 1),
    }
    for f, v in expected.items():
        assert r.loc[f, "value"] == pytest.approx(v, rel=1e-12), f
    fam_ooi = ooi[ooi["scope"] == "fam"]["ooi"].iloc[0]
    assert r.loc["ooi", "value"] == pytest.approx(fam_ooi, rel=1e-15)
    shares = r.loc[list(FACTORS), "log_share"]
    assert shares.sum() == pytest.approx(1.0, rel=1e-12)
    assert r.loc["calls", "log_share"] == pytest.approx(math.log(4.5) / math.log(60 / 22))


@pytest.mark.parametrize("seed", range(25))
def test_factors_multiply_to_the_ooi_in_every_layer(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for fam in ("fa", "tg_fb"):
        for g in range(int(rng.integers(3, 9))):
            for rep in range(int(rng.integers(1, 3))):
                for mode in ("linear", "agentic"):
                    n_att = int(rng.integers(1, 4))
                    for a in range(1, n_att + 1):
                        final = a == n_att
                        ok = bool(final and rng.random() < 0.7)
                        calls = int(rng.integers(1, 6)) * (3 if mode == "agentic" else 1)
                        llm = float(rng.uniform(1, 50)) * calls
                        scale = {
                            "dynamic": float(rng.uniform(0.2, 0.9)),
                            "attributed": float(rng.uniform(0.05, 0.5)),
                        }
                        rows.append(
                            attempt(fam, mode, f"g{g}", a, ok, final, calls, int(rng.integers(5, 400)) * calls,
                                    int(rng.integers(1, 60)) * calls, llm + float(rng.uniform(0, 30)), llm,
                                    gap=float(rng.uniform(0, 5)) if a > 1 else 0.0, rep=rep, scale=scale)
                        )  # fmt: skip
    goals = pd.DataFrame(rows)
    _, ooi_l, dec = compute_layer_decomposition(goals, CFG)
    checked = 0
    for layer in ENERGY_LAYERS:
        for scope in dec["scope"].unique():
            r = rows_of(dec, scope, layer)
            if r["value"].isna().any():
                continue
            prod = float(np.prod(r.loc[list(FACTORS), "value"]))
            assert prod == pytest.approx(r.loc["ooi", "value"], rel=1e-9)
            o = ooi_l[(ooi_l["scope"] == scope) & (ooi_l["energy_layer"] == layer)]
            o = o[o["estimand"].isin(["family", "pooled_ratio"])]
            assert r.loc["ooi", "value"] == pytest.approx(o["ooi"].iloc[0], rel=1e-12)
            checked += 1
    assert checked >= 3


def test_factor_intervals_come_from_the_ooi_resamples():
    goals = pd.concat([hand_table().assign(goal_id=lambda d, i=i: d["goal_id"] + f"_{i}") for i in range(6)])
    goals.loc[goals.index % 7 == 3, "llm_raw_j"] *= 1.3  # make goals differ
    _, ooi, dec = compute_with_decomposition(goals, CFG)
    r = rows_of(dec)
    o = ooi[ooi["scope"] == "fam"].iloc[0]
    # the decomposition's OOI row is the ooi.csv row: same estimate, same interval
    assert (r.loc["ooi", "ci_low"], r.loc["ooi", "ci_high"]) == (o["ci_low"], o["ci_high"])
    for f in FACTORS:
        assert r.loc[f, "ci_low"] <= r.loc[f, "value"] <= r.loc[f, "ci_high"], f


def test_degenerate_cells_are_empty_and_flagged_never_inf():
    base = hand_table()
    # zero successes in the linear mode: success and the OOI undefined, calls still defined
    no_lin = base.assign(success=np.where(base["mode"] == "linear", False, base["success"]))
    r = rows_of(compute_with_decomposition(no_lin, CFG)[2])
    assert math.isnan(r.loc["success", "value"]) and "no_successes_linear" in r.loc["success", "flags"]
    assert math.isnan(r.loc["ooi", "value"]) and "no_successes_linear" in r.loc["ooi", "flags"]
    assert r.loc["calls", "value"] == pytest.approx(4.5)
    # zero LLM calls and tokens in the linear mode
    no_calls = base.assign(
        llm_calls=np.where(base["mode"] == "linear", 0, base["llm_calls"]),
        tokens_in=np.where(base["mode"] == "linear", 0, base["tokens_in"]),
        tokens_out=np.where(base["mode"] == "linear", 0, base["tokens_out"]),
        llm_raw_j=np.where(base["mode"] == "linear", 0.0, base["llm_raw_j"]),
    )
    r = rows_of(compute_with_decomposition(no_calls, CFG)[2])
    assert "no_llm_calls_linear" in r.loc["calls", "flags"] and math.isnan(r.loc["calls", "value"])
    assert "no_tokens_linear" in r.loc["tokens_per_call", "flags"]
    assert "no_llm_energy_linear" in r.loc["non_llm", "flags"]
    assert r.loc["ooi", "value"] == pytest.approx(60 / 22)  # the OOI itself is still defined
    # zero tokens only (a backend that reports none)
    no_tok = base.assign(tokens_in=0, tokens_out=0)
    r = rows_of(compute_with_decomposition(no_tok, CFG)[2])
    assert r.loc[["tokens_per_call", "llm_j_per_token"], "value"].isna().all()
    assert r.loc["calls", "value"] == pytest.approx(4.5)
    # a mode missing: no pairs, every row empty and flagged
    only_lin = base[base["mode"] == "linear"]
    dec = compute_with_decomposition(only_lin, CFG)[2]
    fam_rows, pooled = dec[dec["estimand"] == "family"], dec[dec["estimand"] == "pooled_ratio"]
    assert dec["value"].isna().all() and fam_rows["flags"].str.contains("no_pairs").all()
    assert pooled["flags"].str.contains("no_defined_family").all() and len(pooled)
    for df in (dec,):
        assert not np.isinf(df[["value", "ci_low", "ci_high", "log_share"]].to_numpy(float)).any()


def test_old_goals_tables_without_layer_phases_flag_what_cannot_be_computed():
    old = hand_table().drop(columns=["llm_raw_j", "llm_dynamic_j"])
    r = rows_of(compute_with_decomposition(old, CFG)[2])
    assert r.loc[["llm_j_per_token", "non_llm"], "value"].isna().all()
    assert "llm_energy_unavailable" in r.loc["non_llm", "flags"]
    assert r.loc["calls", "value"] == pytest.approx(4.5)
    assert r.loc["ooi", "value"] == pytest.approx(60 / 22)
    # and the epg/ooi tables are unchanged by the decomposition
    epg, ooi = compute_tables(old, CFG)
    assert ooi[ooi["scope"] == "fam"]["ooi"].iloc[0] == pytest.approx(60 / 22)
    assert json.dumps(epg.to_dict("records"), default=str)


def test_alems_metrics_json_reports_the_decomposition(tmp_path, capsys):
    from alems.cli import main

    path = tmp_path / "goals.csv"
    hand_table().to_csv(path, index=False)
    out = tmp_path / "out"
    assert (
        main(["metrics", str(path), "--json", "--bootstrap", "50", "--min-goals", "2", "--out-dir", str(out)])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    rows = {r["factor"]: r for r in doc["decomposition"] if r["scope"] == "fam"}
    assert set(rows) == {*FACTORS, "ooi"}
    assert rows["calls"]["value"] == pytest.approx(4.5) and rows["calls"]["energy_layer"] == "total"
    assert (out / "ooi_decomposition.csv").is_file()
    # an undefined factor is null in JSON, never "inf"
    path2 = tmp_path / "g2.csv"
    hand_table().assign(success=False).to_csv(path2, index=False)
    assert main(["metrics", str(path2), "--json", "--bootstrap", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    succ = next(r for r in doc["decomposition"] if r["scope"] == "fam" and r["factor"] == "success")
    assert succ["value"] is None and "no_successes_agentic" in succ["flags"]


def test_wasted_energy_is_every_attempt_but_the_final_of_a_success_with_gaps():
    epg, _ = compute_tables(hand_table(), CFG)
    cell = epg[epg["family"] == "fam"].set_index("mode")
    assert cell.loc["linear", "wasted_j"] == pytest.approx(12.0)  # the failed execution
    assert cell.loc["linear", "waste_share"] == pytest.approx(12.0 / 22.0)
    assert cell.loc["agentic", "wasted_j"] == pytest.approx(
        40.0 + 5.0
    )  # the failed attempt and its retry gap
    assert cell.loc["agentic", "waste_share"] == pytest.approx(45.0 / 120.0)
    overall = epg[epg["family"] == "overall"].set_index("mode")
    assert overall.loc["agentic", "wasted_j"] == pytest.approx(45.0)
