"""Energy layers in the metrics: total, dynamic, attributed; the headline switch; old tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alems.cli import main
from alems.contracts import ENERGY_LAYERS
from alems.errors import ConfigError
from alems.metrics import MetricsConfig, compute_layer_tables, compute_tables

ORIGINAL_COLUMNS = (
    "family",
    "mode",
    "goal_id",
    "rep",
    "attempt",
    "success",
    "final_attempt",
    "t0",
    "t1",
    "duration_s",
    "raw_j",
    "dynamic_j",
    "attributed_j",
    "energy_j",
    "llm_j",
    "tool_j",
    "orchestration_j",
    "gap_j",
    "coverage",
    "llm_calls",
    "tool_calls",
    "tokens_in",
    "tokens_out",
    "energy_source",
    "answer",
    "expected",
    "error",
    "run_id",
)


def goals(with_gap_layers: bool = True) -> pd.DataFrame:
    """Two families, both modes, 4 goals, a retry with a gap; idle 10 W, alpha 0.5."""
    rng = np.random.default_rng(3)
    rows = []
    for fam in ("factual_qa", "tg_single_calc"):
        for mode in ("linear", "agentic"):
            for g in range(4):
                attempts = 2 if (g == 1 and mode == "agentic") else 1
                for a in range(1, attempts + 1):
                    dur = float(rng.uniform(1, 3)) * (2 if mode == "agentic" else 1)
                    dyn = 5.0 * dur
                    gap_s = 0.5 if a > 1 else 0.0
                    rows.append(
                        {
                            "family": fam,
                            "mode": mode,
                            "goal_id": f"g{g}",
                            "rep": 0,
                            "attempt": a,
                            "success": g != 3 or mode == "linear",
                            "final_attempt": a == attempts,
                            "t0": 0.0,
                            "t1": dur,
                            "duration_s": dur,
                            "raw_j": dyn + 10.0 * dur,
                            "dynamic_j": dyn,
                            "attributed_j": 0.5 * dyn,
                            "energy_j": 0.5 * dyn,
                            "llm_j": 0.25 * dyn,
                            "tool_j": 0.0,
                            "orchestration_j": 0.25 * dyn,
                            "gap_j": 0.5 * 2.0 * gap_s,
                            "coverage": 1.0,
                            "llm_calls": 1,
                            "tool_calls": 0,
                            "tokens_in": 1,
                            "tokens_out": 1,
                            "energy_source": "measured",
                            "answer": "",
                            "expected": "",
                            "error": "",
                            "run_id": "r",
                            "alpha": 0.5,
                            "flags": "",
                            "gap_raw_j": (2.0 + 10.0) * gap_s,
                            "gap_dynamic_j": 2.0 * gap_s,
                        }
                    )
    df = pd.DataFrame(rows)
    return df if with_gap_layers else df[list(ORIGINAL_COLUMNS)]


CFG = MetricsConfig(bootstrap=200, seed=1)


def test_default_layer_is_total_and_every_row_names_it():
    assert MetricsConfig().energy_layer == "total"
    epg, ooi = compute_tables(goals(), CFG)
    assert set(epg["energy_layer"]) == {"total"} and set(ooi["energy_layer"]) == {"total"}
    g = goals()
    cell = g[(g["family"] == "factual_qa") & (g["mode"] == "linear")]
    row = epg[(epg["family"] == "factual_qa") & (epg["mode"] == "linear")].iloc[0]
    assert row["energy_total_j"] == pytest.approx((cell["raw_j"] + cell["gap_raw_j"]).sum())


def test_layers_share_successes_and_pairs_and_order_total_dynamic_attributed():
    epg, ooi = compute_layer_tables(goals(), CFG)
    by = {layer: epg[epg["energy_layer"] == layer].reset_index(drop=True) for layer in ENERGY_LAYERS}
    oby = {layer: ooi[ooi["energy_layer"] == layer].reset_index(drop=True) for layer in ENERGY_LAYERS}
    for layer in ENERGY_LAYERS:
        for col in ("family", "mode", "executions", "successes"):
            assert list(by[layer][col]) == list(by["total"][col])
        for col in ("scope", "n_pairs", "n_missing_pairs"):
            assert list(oby[layer][col]) == list(oby["total"][col])
    assert np.all(by["total"]["epg_j"] > by["dynamic"]["epg_j"])
    assert np.allclose(by["attributed"]["epg_j"], 0.5 * by["dynamic"]["epg_j"], rtol=0.05)


def test_original_columns_only_still_work_and_flag_an_approximated_gap():
    old = goals(with_gap_layers=False)
    epg, ooi = compute_tables(old, CFG)
    assert set(epg["energy_layer"]) == {"total"}
    agentic = epg[(epg["family"] == "factual_qa") & (epg["mode"] == "agentic")].iloc[0]
    assert "gap_attributed" in agentic["flags"].split(";")
    # without any retry there is no gap window: nothing to approximate, no flag
    no_retry = old[old["attempt"] == 1].assign(final_attempt=True, gap_j=0.0)
    epg2, _ = compute_tables(no_retry, CFG)
    assert not epg2["flags"].str.contains("gap_attributed").any()


def test_a_minimal_table_without_raw_j_uses_attributed_and_says_so():
    minimal = goals()[
        ["family", "mode", "goal_id", "rep", "attempt", "success", "final_attempt", "energy_j", "gap_j"]
    ]
    epg, ooi = compute_tables(minimal, CFG)
    assert set(epg["energy_layer"]) == {"attributed"} and set(ooi["energy_layer"]) == {"attributed"}


def test_bad_layer_is_a_config_error():
    with pytest.raises(ConfigError, match="energy_layer"):
        MetricsConfig(energy_layer="raw")


def test_cli_layer_option(tmp_path, capsys):
    path = tmp_path / "goals.csv"
    goals(with_gap_layers=False).to_csv(path, index=False)
    out = {}
    for layer in ENERGY_LAYERS:
        assert main(["metrics", str(path), "--bootstrap", "50", "--layer", layer, "--json"]) == 0
        out[layer] = json.loads(capsys.readouterr().out)
        assert {r["energy_layer"] for r in out[layer]["epg"]} == {layer}
    assert (
        out["total"]["epg"][0]["epg_j"]
        > out["dynamic"]["epg"][0]["epg_j"]
        > out["attributed"]["epg"][0]["epg_j"]
    )
