"""calls.csv and the phases of every layer: per-call energies sum to the phases, the phases to
the attempt's energy, in every layer; roles, backend timings and the prefill/decode split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fake_openai import upstream  # noqa: F401 - fixture

from alems.accounting import account, conservation_residual, events_calls
from alems.contracts import CALLS_COLUMNS, LAYER_PHASE_COLUMNS, LLM_ROLES
from alems.energy.base import Domain

PKG = Domain("package-0", "package", "measured", "rapl")
IDLE = {"package-0": 10.0}


def samples(power=None, t_end=20.0, n=401):
    t = np.linspace(0.0, t_end, n)
    p = np.full(n, 50.0) if power is None else power(t)
    energy = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(t))])
    return pd.DataFrame({"t": t, "package-0": energy, "proc_cpu_s": 0.4 * t, "sys_cpu_s": 1.5 * t})


def ev(t, kind, goal="g1", mode="agentic", attempt=1, rep=0, **kw):
    return {"t": t, "goal_id": goal, "rep": rep, "mode": mode, "attempt": attempt, "kind": kind, **kw}


def outcome(goal="g1", mode="agentic", attempt=1, success=True, final=True):
    return {
        "family": "tg_single_calc",
        "mode": mode,
        "goal_id": goal,
        "rep": 0,
        "attempt": attempt,
        "success": success,
        "final_attempt": final,
        "answer": "",
        "expected": "",
        "error": "",
    }


def agent_run():
    """Two attempts of one agentic execution: plan, a tool, a step, synthesise; then a retry."""
    events = [
        ev(1.0, "attempt_start"),
        ev(1.2, "llm_start", name="plan"),
        ev(2.0, "llm_end", name="plan", tokens_in=100, tokens_out=20, prefill_s=0.3, decode_s=0.45),
        ev(2.1, "tool_start", name="calculator"),
        ev(2.3, "tool_end", name="calculator"),
        ev(2.4, "llm_start", name="step"),
        ev(3.4, "llm_end", name="step", tokens_in=150, tokens_out=30),
        ev(3.5, "llm_start", name="synthesise"),
        ev(4.0, "llm_end", name="synthesise", tokens_in=60, tokens_out=8),
        ev(4.2, "attempt_end"),
        ev(5.0, "attempt_start", attempt=2),
        ev(5.1, "llm_start", attempt=2, name="my-model"),
        ev(6.0, "llm_end", attempt=2, name="my-model", tokens_in=70, tokens_out=9, tokens_estimated=True),
        ev(6.5, "attempt_end", attempt=2),
    ]
    outcomes = [outcome(success=False, final=False), outcome(attempt=2)]
    return events, outcomes


def ramp(t):
    return 20.0 + 30.0 * np.sin(t) ** 2  # varying power: windows are not proportional to time


def test_calls_table_has_one_row_per_call_with_roles_and_tokens():
    events, outcomes = agent_run()
    res = account(samples(ramp), [PKG], events, outcomes, IDLE, run_id="r1")
    c = res.calls
    assert list(c.columns) == list(CALLS_COLUMNS)
    assert c["role"].tolist() == ["plan", "calculator", "step", "synthesise", "llm"]
    assert c["kind"].tolist() == ["llm", "tool", "llm", "llm", "llm"]
    assert c["call"].tolist() == [0, 1, 2, 3, 0]
    assert c["attempt"].tolist() == [1, 1, 1, 1, 2]
    assert c["family"].unique().tolist() == ["tg_single_calc"]
    assert c["tokens_in"].tolist() == [100, 0, 150, 60, 70]
    assert c["tokens_estimated"].tolist() == [False, False, False, False, True]
    assert c["run_id"].unique().tolist() == ["r1"]
    assert set(LLM_ROLES) >= {"plan", "step", "synthesise"}


@pytest.mark.parametrize("power", [None, ramp])
def test_calls_sum_to_phases_and_phases_to_the_attempt_in_every_layer(power):
    events, outcomes = agent_run()
    res = account(samples(power), [PKG], events, outcomes, IDLE)
    g, c = res.goals, res.calls
    layer_cols = {"total": "raw_j", "dynamic": "dynamic_j", "attributed": "attributed_j"}
    for layer, (llm, tool, orch) in LAYER_PHASE_COLUMNS.items():
        e = g[layer_cols[layer]].to_numpy(float)
        np.testing.assert_allclose(g[llm] + g[tool] + g[orch], e, rtol=1e-12, atol=1e-12)
        for kind, col in (("llm", llm), ("tool", tool)):
            per = c[c["kind"] == kind].groupby("attempt")[layer_cols[layer]].sum()
            got = [per.get(a, 0.0) for a in g["attempt"]]
            np.testing.assert_allclose(got, g[col], rtol=1e-12, atol=1e-12)
    assert res.conservation_residual < 1e-9
    assert res.summary()["conservation_residual"] == res.conservation_residual
    # at constant power the raw phases are the power times the call time: 50 W x (0.8+1.0+0.5) s
    if power is None:
        assert g.loc[0, "llm_raw_j"] == pytest.approx(50.0 * 2.3)
        assert g.loc[0, "tool_raw_j"] == pytest.approx(50.0 * 0.2)
        assert g.loc[0, "llm_dynamic_j"] == pytest.approx(40.0 * 2.3)


def test_prefill_and_decode_split_the_call_on_the_power_timeline():
    events, outcomes = agent_run()
    res = account(samples(ramp), [PKG], events, outcomes, IDLE, attribution="none")
    plan = res.calls.iloc[0]
    assert plan["prefill_s"] == pytest.approx(0.3) and plan["decode_s"] == pytest.approx(0.45)
    # attribution none: attributed = dynamic = ∫ (P - 10 W) over [1.2, 1.5] and [1.5, 1.95]
    t = np.linspace(0.0, 20.0, 400001)
    p = ramp(t) - 10.0

    def integral(a, b):
        m = (t >= a) & (t <= b)
        return np.trapezoid(p[m], t[m])

    assert plan["prefill_j"] == pytest.approx(integral(1.2, 1.5), rel=2e-3)
    assert plan["decode_j"] == pytest.approx(integral(1.5, 1.95), rel=2e-3)
    assert math.isnan(res.calls.iloc[2]["prefill_j"])  # the step call reported no timings


def test_residual_catches_a_broken_table_and_skips_old_ones():
    events, outcomes = agent_run()
    res = account(samples(ramp), [PKG], events, outcomes, IDLE)
    bad = res.goals.copy()
    bad.loc[0, "orchestration_raw_j"] += 1.0
    assert conservation_residual(bad, res.calls) > 1e-3
    calls = res.calls.copy()
    calls.loc[0, "dynamic_j"] += 1.0
    assert conservation_residual(res.goals, calls) > 1e-3
    old = res.goals.drop(columns=[*LAYER_PHASE_COLUMNS["total"], *LAYER_PHASE_COLUMNS["dynamic"]])
    assert conservation_residual(old) < 1e-9  # the attributed layer is still checked


def test_calls_without_energy_come_from_the_events():
    events, outcomes = agent_run()
    c = events_calls(events, outcomes, "r0")
    assert c["role"].tolist() == ["plan", "calculator", "step", "synthesise", "llm"]
    assert c["raw_j"].isna().all()
    assert c["energy_source"].unique().tolist() == ["none"]


# --------------------------------------------------------------------------- calls.csv files
def read_calls(path):
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"goal_id": str})


def test_session_writes_calls_csv_with_roles(tmp_path):
    from alems.session import Session

    out = tmp_path / "s"
    with Session(out, meter="model", baseline="none") as s:
        with s.goal("g1", family="mine", mode="agentic") as g, g.attempt() as a:
            with a.llm(model="m", role="plan") as call:
                call.tokens(10, 3)
            with a.tool("search"):
                pass
            with a.llm(model="m") as call:
                call.tokens(12, 4)
            a.succeed("ok")
    c = read_calls(out / "calls.csv")
    assert c["role"].tolist() == ["plan", "search", "llm"]
    assert c["tokens_out"].tolist() == [3, 0, 4]
    goals = pd.read_csv(out / "goals.csv")
    assert c.loc[c["kind"] == "llm", "raw_j"].sum() == pytest.approx(goals.loc[0, "llm_raw_j"], rel=1e-12)
    assert c.loc[c["kind"] == "tool", "attributed_j"].sum() == pytest.approx(
        goals.loc[0, "tool_j"], abs=1e-12
    )
    meta = __import__("json").loads((out / "run.json").read_text())
    assert meta["conservation_residual"] < 1e-9


def test_track_with_the_proxy_writes_calls_and_estimates_a_streams_tokens(tmp_path, upstream, monkeypatch):
    import sys

    from fake_openai import AGENT_SCRIPT, COMPLETION_TOKENS, STREAM_PIECES

    from alems.cli import main

    upstream.stream_usage = False  # the second (streamed) call comes back without usage
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT_SCRIPT)
    out = tmp_path / "run"
    args = ["--out", str(out), "--family", "my_agent", "--mode", "agentic", "--goal-id", "q1"]
    args += ["--proxy-upstream", upstream.url, "--meter", "model"]
    assert main(["track", *args, "--", sys.executable, str(agent)]) == 0
    for d in (out, out / "calls" / "0001"):
        c = read_calls(d / "calls.csv")
        assert c["role"].tolist() == ["llm", "llm"]
        assert c["tokens_out"].tolist() == [COMPLETION_TOKENS, len(STREAM_PIECES)]
        assert c["tokens_estimated"].tolist() == [False, True]
        assert np.isnan(c.loc[0, "prefill_s"]) and c.loc[1, "prefill_s"] > 0
    goals = pd.read_csv(out / "goals.csv")
    assert c["raw_j"].sum() == pytest.approx(goals.loc[0, "llm_raw_j"], rel=1e-12)


def test_pipeline_job_writes_calls_csv_that_sums_to_the_phases(tmp_path):
    from alems.energy import open_meter
    from alems.jobs.outputs import RunPaths
    from alems.jobs.recording import MeterRecording
    from alems.jobs.run_family import run_family
    from alems.settings import StudySettings

    settings = StudySettings.from_config(
        {
            "study": {"families": ["tg_single_calc"], "tasks": 3, "seed": 0},
            "llm": {"backend": "scripted", "oracle": {"fail_rate": 0.3, "seed": 1, "sleep_s_per_call": 0.01}},
            "agents": {"backoff_s": 0.0},
            "energy": {"meter": "model"},
        }
    )
    paths = RunPaths.in_dir(tmp_path / "run")
    meter = open_meter("model")
    recording = MeterRecording(meter, settings.energy, settings.accounting, idle_power_w={"cpu-model": 3.0})
    job = run_family(settings, "tg_single_calc", 0, paths, recording, workdir=tmp_path / "w")
    assert paths.calls is not None and paths.calls.name == "calls.csv"
    c, g = read_calls(paths.calls), pd.read_csv(paths.goals, dtype={"goal_id": str})
    assert len(c) == int(g["llm_calls"].sum() + g["tool_calls"].sum())
    assert set(c.loc[c["kind"] == "llm", "role"]) <= set(LLM_ROLES)
    assert set(c.loc[c["kind"] == "tool", "role"]) == {"calculator"}
    assert c["prefill_s"].isna().all()  # the scripted backend reports no timings: empty, never 0
    key = ["goal_id", "mode", "attempt"]
    for col, layer in (("raw_j", "llm_raw_j"), ("dynamic_j", "llm_dynamic_j"), ("attributed_j", "llm_j")):
        per = c[c["kind"] == "llm"].groupby(key)[col].sum()
        merged = g.set_index(key)[layer]
        np.testing.assert_allclose(per.reindex(merged.index).fillna(0.0), merged, rtol=1e-9, atol=1e-12)
    assert job.conservation_residual is not None and job.conservation_residual < 1e-9
    # roles.csv: a cell's roles (orchestration the rest) sum to its energy, per success to its EpG
    from alems.metrics import MetricsConfig, compute_tables, roles_table

    roles = roles_table(g, c)
    epg, _ = compute_tables(g, MetricsConfig(bootstrap=0))
    for mode in ("linear", "agentic"):
        r = roles[roles["mode"] == mode]
        assert "orchestration" in set(r["role"])
        cell = epg[(epg["family"] == "tg_single_calc") & (epg["mode"] == mode)].iloc[0]
        assert r["raw_j"].sum() == pytest.approx(cell["energy_total_j"], rel=1e-9)
        assert r["share_total"].sum() == pytest.approx(1.0, rel=1e-9)
        if cell["successes"]:
            assert r["per_success_total_j"].sum() == pytest.approx(cell["epg_j"], rel=1e-9)
    assert set(roles.loc[roles["kind"] == "tool", "role"]) == {"calculator"}
