"""Figures 7 (the OOI decomposition) and 8 (energy per success by role): drawn from the tables,
footer with source and layer, undefined factors marked, old tables without them said."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_figures import synthetic_goals, write_inputs

from alems.figures import FigureInputs
from alems.figures.decomposition import decomposition_rows, fig_decomposition, fig_roles
from alems.metrics import MetricsConfig, compute_layer_decomposition, roles_table


def synthetic_calls(goals: pd.DataFrame) -> pd.DataFrame:
    """One LLM call per attempt carrying its LLM phase, and a calculator call per agentic attempt."""
    rows = []
    for _, g in goals.iterrows():
        agentic = g["mode"] == "agentic"
        for kind, role, e in (
            ("llm", "plan" if agentic else "answer", g["llm_j"]),
            ("tool", "calculator", g["tool_j"]),
        ):
            if kind == "tool" and not agentic:
                continue
            rows.append(
                {**{k: g[k] for k in ("family", "mode", "goal_id", "rep", "attempt")}, "kind": kind, "role": role,
                 "tokens_in": 10 if kind == "llm" else 0, "tokens_out": 5 if kind == "llm" else 0,
                 "raw_j": 2 * e, "dynamic_j": 1.2 * e, "attributed_j": e}
            )  # fmt: skip
    return pd.DataFrame(rows)


def inputs(tmp_path: Path, with_tables: bool = True) -> FigureInputs:
    goals = synthetic_goals(zero_success_cell=True)
    goals["llm_raw_j"], goals["llm_dynamic_j"] = 2 * goals["llm_j"], 1.2 * goals["llm_j"]
    paths = write_inputs(tmp_path, goals)
    if with_tables:
        _, _, dec = compute_layer_decomposition(goals, MetricsConfig(bootstrap=200, min_goals=2, seed=0))
        paths["decomposition"] = tmp_path / "ooi_decomposition.csv"
        dec.to_csv(paths["decomposition"], index=False)
        paths["roles"] = tmp_path / "roles.csv"
        roles_table(goals, synthetic_calls(goals)).to_csv(paths["roles"], index=False)
    return FigureInputs.load(**paths)


def test_figures_7_and_8_draw_from_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alems.figures import style

    seen: list[str] = []
    real = style.footer_text
    monkeypatch.setattr(style, "footer_text", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    inp = inputs(tmp_path)
    rows = decomposition_rows(inp)
    assert set(rows["energy_layer"]) == {"total"}  # the headline layer of epg.csv
    # the zero-success linear cell: its success factor and OOI are undefined, and marked
    calc = rows[rows["scope"] == "tg_single_calc"].set_index("factor")
    assert calc.loc[["success", "ooi"], "value"].isna().all()
    out = tmp_path / "fig"
    out.mkdir()
    files = fig_decomposition(inp, out) + fig_roles(inp, out)
    assert sorted(p.name for p in files) == sorted(
        f"{n}.{e}" for n in ("fig7_ooi_decomposition", "fig8_roles") for e in ("png", "pdf")
    )
    assert all(p.stat().st_size > 1000 for p in files)
    assert len(seen) == 2 and all("energy layer: total" in s and "MODELED" in s for s in seen)


def test_old_tables_without_decomposition_or_roles_say_so(tmp_path: Path) -> None:
    inp = inputs(tmp_path, with_tables=False)
    out = tmp_path / "fig"
    out.mkdir()
    assert len(fig_decomposition(inp, out) + fig_roles(inp, out)) == 4
