"""Figures on a GPU host: mixed provenance in footers, zero and negative values kept visible,
and the power timeline from reconstructed NVML power (not the counter's staircase)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alems.figures import FigureInputs, binned_power, fig_epg, fig_timeline, footer_text, source_label
from alems.metrics import MetricsConfig, compute_tables

SOURCES = {"gpu-0": "measured", "cpu-model": "modeled"}


def test_footer_names_mixed_sources_and_the_layer():
    label = source_label(SOURCES)
    assert label == "mixed: gpu-0 measured, cpu-model modeled"
    text = footer_text("r1", label + " | energy layer: total")
    assert "gpu-0 measured" in text and "cpu-model MODELED" in text and "energy layer: total" in text
    assert source_label({"gpu-0": "measured"}) == "measured"
    assert source_label({"cpu-model": "modeled"}) == "modeled"


def _stepwise_samples(watts: float = 80.0, idle_gpu: float = 80.0):
    """gpu-0 at constant power, read every 10 ms, its counter moving every 100 ms; cpu-model smooth."""
    t = np.round(np.arange(0.0, 3.0, 0.01), 6)
    gpu = np.floor(t * 10 + 1e-9) / 10 * watts
    cpu = 2.0 * t
    return pd.DataFrame(
        {"t": t, "gpu-0": gpu, "cpu-model": cpu, "proc_cpu_s": t, "sys_cpu_s": t, "boundary": False}
    )


def test_binned_power_of_a_stepwise_counter_is_flat():
    df = _stepwise_samples()
    _, raw = binned_power(df, ["gpu-0"], 0.5, 2.5, 0.02)
    _, rec = binned_power(df, ["gpu-0"], 0.5, 2.5, 0.02, stepwise=["gpu-0"])
    assert np.nanmax(raw) > 300 and np.nanmin(raw) < 1  # the staircase: 0 W with 400 W spikes
    assert np.allclose(rec, 80.0, rtol=0.02)


def _events():
    ev = []
    for mode, s in (("linear", 0.3), ("agentic", 1.5)):
        ev += [
            {"t": s, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 0, "kind": "goal_start"},
            {"t": s + 0.05, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 1, "kind": "attempt_start"},
            {"t": s + 0.9, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 1, "kind": "attempt_end"},
            {"t": s + 1.0, "goal_id": "g0", "rep": 0, "mode": mode, "attempt": 1, "kind": "goal_end"},
        ]
    return ev


def _goals(negative: bool) -> pd.DataFrame:
    rows = []
    for fam in ("gsm8k_basic", "tg_single_calc"):
        for mode in ("linear", "agentic"):
            for g in range(4):
                e = -3.0 if (negative and fam == "gsm8k_basic" and mode == "linear") else 5.0 + g
                rows.append(
                    {
                        "family": fam,
                        "mode": mode,
                        "goal_id": f"g{g}",
                        "rep": 0,
                        "attempt": 1,
                        "success": True,
                        "final_attempt": True,
                        "raw_j": e + 50,
                        "dynamic_j": e,
                        "attributed_j": e,
                        "energy_j": e,
                        "gap_j": 0.0,
                        "llm_j": e,
                        "tool_j": 0.0,
                        "orchestration_j": 0.0,
                        "energy_source": "mixed",
                        "run_id": "r1",
                    }
                )
    return pd.DataFrame(rows)


def _inputs(negative: bool) -> FigureInputs:
    goals = _goals(negative)
    epg, ooi = compute_tables(goals, MetricsConfig(bootstrap=100, energy_layer="dynamic"))
    base = {
        "status": "stable",
        "power_w": {"gpu-0": 80.0, "cpu-model": 2.0},
        "source": SOURCES,
        "windows": [],
    }
    return FigureInputs(
        goals,
        epg,
        ooi,
        base,
        _stepwise_samples(),
        ["gpu-0", "cpu-model"],
        dict(SOURCES),
        _events(),
        "gsm8k_basic",
        ["gpu-0"],
    )


def test_negative_epg_stays_on_a_linear_axis_with_a_marker(tmp_path: Path, monkeypatch):
    import alems.figures.style as figstyle

    seen = {}
    orig = figstyle.save

    def spy(fig, out_dir, name, run_id, modeled):  # type: ignore[no-untyped-def]
        out = orig(fig, out_dir, name, run_id, modeled)  # draws the footer
        ax = fig.axes[0]
        seen[name] = (ax.get_yscale(), ax.get_ylim(), [t.get_text() for t in fig.texts + ax.texts])
        return out

    monkeypatch.setattr(figstyle, "save", spy)
    fig_epg(_inputs(negative=True), tmp_path)
    scale, (lo, _), texts = seen["fig1_epg"]
    assert scale == "linear" and lo < -3.0
    assert "<0" in texts
    assert any(
        "mixed: gpu-0 measured, cpu-model MODELED" in t and "energy layer: dynamic" in t for t in texts
    )


def test_power_timeline_plots_reconstructed_power(tmp_path: Path, monkeypatch):
    import alems.figures.style as figstyle

    seen = {}
    orig = figstyle.save

    def spy(fig, out_dir, name, run_id, modeled):  # type: ignore[no-untyped-def]
        out = orig(fig, out_dir, name, run_id, modeled)
        line = fig.axes[0].get_lines()[0]
        seen[name] = (np.asarray(line.get_ydata(), dtype=float), [t.get_text() for t in fig.texts])
        return out

    monkeypatch.setattr(figstyle, "save", spy)
    fig_timeline(_inputs(negative=False), tmp_path)
    power, texts = seen["fig4_power_timeline"]
    finite = power[np.isfinite(power)]
    assert len(finite) >= 0.9 * len(power) > 0  # a line to look at, not an empty or all-NaN one
    assert np.allclose(finite, 82.0, rtol=0.03)  # flat: 80 W GPU + 2 W CPU, no 20 ms spikes
    assert any("mixed: gpu-0 measured, cpu-model MODELED" in t for t in texts)


def test_a_negative_ooi_is_written_out_not_dropped(tmp_path: Path, monkeypatch):
    import alems.figures as figmod
    import alems.figures.style as figstyle

    seen = {}
    orig = figstyle.save

    def spy(fig, out_dir, name, run_id, modeled):  # type: ignore[no-untyped-def]
        out = orig(fig, out_dir, name, run_id, modeled)
        seen[name] = [t.get_text() for t in fig.axes[0].texts]
        return out

    monkeypatch.setattr(figstyle, "save", spy)
    figmod.fig_ooi(_inputs(negative=True), tmp_path)
    assert any("not > 0" in t for t in seen["fig2_ooi_forest"])
