"""The six figures, drawn from synthetic tables in the data contracts (no measurement)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alems.contracts import FIGURES
from alems.figures import NAMES, FigureInputs, binned_power, footer_text, make_all, phase_means

FAMS = ["gsm8k_basic", "tg_single_calc"]


def synthetic_goals(modeled: bool = True, zero_success_cell: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    t = 0.0
    for fam in FAMS:
        for g in range(6):
            for mode in ("linear", "agentic"):
                attempts = 2 if (mode == "agentic" and g % 3 == 0) else 1
                for a in range(1, attempts + 1):
                    final = a == attempts
                    ok = final and (g % 4 != 1)
                    if zero_success_cell and fam == "tg_single_calc" and mode == "linear":
                        ok = False
                    e = float(rng.uniform(5, 10) * (3 if mode == "agentic" else 1))
                    llm, tool = 0.7 * e, (0.1 * e if mode == "agentic" else 0.0)
                    rows.append(
                        {
                            "family": fam,
                            "mode": mode,
                            "goal_id": f"{fam}-{g}",
                            "rep": 0,
                            "attempt": a,
                            "success": ok,
                            "final_attempt": final,
                            "t0": t,
                            "t1": t + 1.0,
                            "duration_s": 1.0,
                            "raw_j": e * 2,
                            "dynamic_j": e * 1.2,
                            "attributed_j": e,
                            "energy_j": e,
                            "llm_j": llm,
                            "tool_j": tool,
                            "orchestration_j": e - llm - tool,
                            "gap_j": 0.3 if a > 1 else 0.0,
                            "coverage": 1.0,
                            "llm_calls": 1,
                            "tool_calls": 1 if mode == "agentic" else 0,
                            "tokens_in": 10,
                            "tokens_out": 5,
                            "energy_source": "modeled" if modeled else "measured",
                            "answer": "1",
                            "expected": "1",
                            "error": "",
                            "run_id": "abcdef0123456789",
                        }
                    )
                    t += 1.2
    return pd.DataFrame(rows)


def write_inputs(tmp_path: Path, goals: pd.DataFrame) -> dict[str, Path]:
    from alems.metrics import MetricsConfig, compute_tables

    epg, ooi = compute_tables(goals, MetricsConfig(bootstrap=200, level=0.95, seed=0), None)
    paths = {k: tmp_path / f"{k}.csv" for k in ("goals", "epg", "ooi")}
    goals.to_csv(paths["goals"], index=False)
    epg.to_csv(paths["epg"], index=False)
    ooi.to_csv(paths["ooi"], index=False)
    base = {
        "status": "stable",
        "modeled": True,
        "power_w": {"cpu-model": 2.0},
        "host_util": 0.015,
        "source": {"cpu-model": "modeled"},
        "stats": {"cpu-model": {"cv": 0.02, "judged": True}},
        "windows": [
            {"index": i, "t0": i, "t1": i + 1, "power_w": {"cpu-model": 2.0 + 0.01 * i}} for i in range(10)
        ],
    }
    paths["baseline"] = tmp_path / "idle.json"
    paths["baseline"].write_text(json.dumps(base))
    return paths


def timeline(tmp_path: Path) -> tuple[pd.DataFrame, list[dict]]:
    t = np.arange(0, 4, 0.01)
    power = np.where((t > 0.5) & (t < 1.5), 20.0, 5.0)
    energy = np.concatenate([[0.0], np.cumsum(power[:-1] * 0.01)])
    samples = pd.DataFrame(
        {"t": t, "cpu-model": energy, "proc_cpu_s": t / 2, "sys_cpu_s": t, "boundary": False}
    )
    ev = []
    for mode, s in (("linear", 0.2), ("agentic", 2.0)):
        ev += [
            {"t": s, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 0, "kind": "goal_start"},
            {"t": s + 0.1, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 1, "kind": "attempt_start"},
            {
                "t": s + 0.3,
                "goal_id": "g0",
                "rep": 0,
                "mode": mode,
                "attempt": 1,
                "kind": "llm_start",
                "name": "answer",
            },
            {
                "t": s + 1.0,
                "goal_id": "g0",
                "rep": 0,
                "mode": mode,
                "attempt": 1,
                "kind": "llm_end",
                "name": "answer",
            },
            {
                "t": s + 1.1,
                "goal_id": "g0",
                "rep": 0,
                "mode": mode,
                "attempt": 1,
                "kind": "tool_start",
                "name": "calc",
            },
            {
                "t": s + 1.2,
                "goal_id": "g0",
                "rep": 0,
                "mode": mode,
                "attempt": 1,
                "kind": "tool_end",
                "name": "calc",
            },
            {"t": s + 1.3, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 1, "kind": "attempt_end"},
            {"t": s + 1.4, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 1, "kind": "goal_end"},
        ]
    return samples, ev


def test_all_six_figures_png_and_pdf(tmp_path: Path) -> None:
    paths = write_inputs(tmp_path, synthetic_goals())
    inp = FigureInputs.load(
        **{k: paths[k] for k in ("goals", "epg", "ooi", "baseline")}, timeline_family="gsm8k_basic"
    )
    inp.samples, inp.events = timeline(tmp_path)
    inp.sample_keys, inp.sample_sources = ["cpu-model"], {"cpu-model": "modeled"}
    out = tmp_path / "figs"
    written = make_all(inp, out)
    assert sorted(p.name for p in written) == sorted(f"{n}.{e}" for n in NAMES for e in ("png", "pdf"))
    for p in written:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF")
        assert p.stat().st_size > 5000
    assert not list(out.glob(".*"))  # no temporary files left
    assert inp.run_id == "abcdef0123456789"
    assert inp.table_modeled()


def test_footer_says_modeled_or_measured() -> None:
    assert "MODELED" in footer_text("r1", True) and "r1" in footer_text("r1", True)
    assert "measured" in footer_text("r1", False) and "MODELED" not in footer_text("r1", False)


def test_every_figure_carries_the_footer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import alems.figures.style as figstyle

    paths = write_inputs(tmp_path, synthetic_goals(modeled=False))
    inp = FigureInputs.load(**{k: paths[k] for k in ("goals", "epg", "ooi", "baseline")})
    assert not inp.table_modeled()
    seen: dict[str, list[str]] = {}
    orig = figstyle.save

    def spy(fig, out_dir, name, run_id, modeled):  # type: ignore[no-untyped-def]
        out = orig(fig, out_dir, name, run_id, modeled)
        seen[name] = [t.get_text() for t in fig.texts] + [ax.get_title() for ax in fig.axes]
        return out

    monkeypatch.setattr(figstyle, "save", spy)
    make_all(inp, tmp_path / "f")
    assert sorted(seen) == sorted(NAMES)
    for name in ("fig1_epg", "fig2_ooi_forest", "fig3_phases", "fig5_success_vs_energy"):
        assert any("run_id abcdef0123456789" in t and "measured" in t for t in seen[name]), name
    # the baseline in these inputs is modeled, and its figure says so
    assert any("MODELED" in t for t in seen["fig6_idle_baseline"])
    assert any("stable\nmax CV 0.020, 10 windows, host 1.5% busy" in t for t in seen["fig6_idle_baseline"])


def test_zero_success_cell_does_not_crash(tmp_path: Path) -> None:
    goals = synthetic_goals(zero_success_cell=True)
    paths = write_inputs(tmp_path, goals)
    epg = pd.read_csv(paths["epg"])
    assert np.isinf(epg[(epg.family == "tg_single_calc") & (epg["mode"] == "linear")]["epg_j"]).all()
    inp = FigureInputs.load(**{k: paths[k] for k in ("goals", "epg", "ooi", "baseline")})
    assert len(make_all(inp, tmp_path / "f")) == 2 * len(FIGURES)


def test_phase_means_sum_attempts_per_execution() -> None:
    goals = synthetic_goals()
    m = phase_means(goals).set_index(["family", "mode"])
    sub = goals[(goals.family == "gsm8k_basic") & (goals["mode"] == "agentic")]
    n_exec = int(sub.final_attempt.sum())
    assert m.loc[("gsm8k_basic", "agentic"), "llm_j"] == pytest.approx(sub.llm_j.sum() / n_exec)


def test_binned_power_recovers_a_step() -> None:
    t = np.arange(0, 2, 0.01)
    p_true = np.where(t < 1.0, 5.0, 15.0)
    e = np.concatenate([[0.0], np.cumsum(p_true[:-1] * 0.01)])
    mid, p = binned_power(pd.DataFrame({"t": t, "x": e}), ["x"], 0.0, 1.9, 0.1)
    assert p[2] == pytest.approx(5.0) and p[15] == pytest.approx(15.0)


def test_forest_rows_take_families_and_each_scopes_headline() -> None:
    from alems.figures import forest_rows
    from alems.metrics import MetricsConfig, compute_tables

    _, ooi = compute_tables(synthetic_goals(), MetricsConfig(bootstrap=0, pooled_estimand="geomean_ooi"))
    rows, headline = forest_rows(ooi)
    assert headline == "geomean_ooi"
    assert list(rows["scope"]) == [*FAMS, "reasoning", "tool", "overall"]
    assert list(rows["estimand"]) == ["family"] * 2 + ["geomean_ooi"] * 3
    old = ooi[ooi["estimand"].isin(["family", "pooled_ratio"])].drop(columns=["estimand"])
    same, none = forest_rows(old)  # an ooi.csv of the original contract is drawn as it is
    assert none is None and same is old


def test_dodge_spreads_coinciding_points_only() -> None:
    from alems.figures.epg import _dodge

    x = pd.Series([4.0, 4.01, 4.0, 4.0, 4.0, 40.0, np.nan])
    y = pd.Series([0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.5])
    dx = _dodge(x, y, step_pt=7.0)
    assert dx[:5] == [-14.0, -7.0, 0.0, 7.0, 14.0] and dx[5:] == [0.0, 0.0]


def test_figures_mark_unbounded_and_missing_intervals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alems.figures as figmod
    import alems.figures.style as figstyle

    paths = write_inputs(tmp_path, synthetic_goals())
    epg = pd.read_csv(paths["epg"])
    ooi = pd.read_csv(paths["ooi"], dtype={"flags": str})
    cell = (epg["family"] == "gsm8k_basic") & (epg["mode"] == "agentic")
    epg.loc[cell, ["epg_ci_low", "epg_ci_high"]] = [1.0, np.inf]
    epg.loc[
        (epg["family"] == "tg_single_calc") & (epg["mode"] == "linear"), ["epg_ci_low", "epg_ci_high"]
    ] = np.nan
    fam = ooi["scope"] == "gsm8k_basic"
    ooi.loc[fam, ["ooi", "ci_low", "ci_high", "ci_low_adj", "ci_high_adj"]] = [
        2.0,
        np.nan,
        np.nan,
        np.nan,
        np.nan,
    ]
    ooi.loc[fam, "flags"] = "insufficient_data"
    ooi.loc[ooi["scope"] == "tg_single_calc", ["ooi", "ci_low", "ci_high", "ci_low_adj", "ci_high_adj"]] = [
        2.0,
        1.5,
        3.0,
        1.2,
        4.0,
    ]
    epg.to_csv(paths["epg"], index=False)
    ooi.to_csv(paths["ooi"], index=False)
    inp = FigureInputs.load(**{k: paths[k] for k in ("goals", "epg", "ooi", "baseline")})
    seen: dict[str, list[str]] = {}

    def spy(fig, out_dir, name, run_id, modeled):  # type: ignore[no-untyped-def]
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen[name] = [t.get_text() for t in ax.texts] + [ax.get_xlabel()]
        seen[name] += [t.get_text() for t in legend.get_texts()] if legend else []
        return []

    monkeypatch.setattr(figstyle, "save", spy)
    figmod.fig_epg(inp, tmp_path)
    figmod.fig_ooi(inp, tmp_path)
    figmod.fig_success_energy(inp, tmp_path)
    assert (
        "CI unbounded above" in seen["fig1_epg"] and "no CI: too few goals or successes" in seen["fig1_epg"]
    )
    assert "insufficient data" in seen["fig2_ooi_forest"]
    label = next(t for t in seen["fig2_ooi_forest"] if t.startswith("OOI ="))
    assert "Bonferroni" in label and "hollow: no CI" in label and "ratio of mean family EpGs" in label
    assert set(FAMS) <= set(seen["fig5_success_vs_energy"])  # a legend entry per family, no point labels


def test_an_undefined_ooi_row_says_why() -> None:
    from alems.figures.ooi import _undefined_reason

    assert _undefined_reason("zero_successes_agentic;zero_successes_linear") == "no success in either mode"
    assert _undefined_reason("zero_successes_linear") == "no linear success"
    assert _undefined_reason("zero_successes_agentic") == "no agentic success"
    # a pooled row whose every family was excluded has no success flags of its own
    assert (
        _undefined_reason("excluded:gsm8k_basic;excluded:tg_single_calc")
        == "no family with a defined OOI to pool"
    )
