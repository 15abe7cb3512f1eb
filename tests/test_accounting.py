"""Accounting: the temporal boundary model, L0-L4 on hand-computed synthetic runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from alems.accounting import (
    AccountingConfig,
    AccountingInputError,
    CounterSeries,
    account,
    combine_sources,
    contains_modeled,
    energy_source_of,
    write_goals,
)
from alems.contracts import GOALS_COLUMNS, GOALS_PHASE_COLUMNS
from alems.contracts import GOALS_EXTRA_COLUMNS as EXTRA_COLUMNS
from alems.energy.base import Domain
from alems.errors import ConfigError

PKG = Domain("package-0", "package", "measured", "rapl")
CORE = Domain("core-0", "core", "measured", "rapl", parent="package-0")
DRAM = Domain("dram-0", "dram", "measured", "rapl")
DOMAINS = [PKG, CORE, DRAM]
# summed: package 50 W + dram 5 W; core (30 W) is inside the package and never summed
IDLE = {"package-0": 10.0, "core-0": 5.0, "dram-0": 2.0}
P_SUM, IDLE_SUM = 55.0, 12.0
GRID = np.linspace(0.0, 10.0, 101)


def samples(t=GRID, proc=None, sys_=None, boundary=None, pkg=None, dram=None):
    t = np.asarray(t, dtype=float)
    return pd.DataFrame(
        {
            "t": t,
            "package-0": 50.0 * t if pkg is None else pkg,
            "core-0": 30.0 * t,
            "dram-0": 5.0 * t if dram is None else dram,
            "proc_cpu_s": 0.5 * t if proc is None else proc,
            "sys_cpu_s": 2.0 * t if sys_ is None else sys_,
            "boundary": np.zeros(len(t), bool) if boundary is None else boundary,
        }
    )


def ev(t, kind, goal="g1", mode="linear", attempt=1, rep=0, **kw):
    return {"t": t, "goal_id": goal, "rep": rep, "mode": mode, "attempt": attempt, "kind": kind, **kw}


def attempt_events(t0, t1, **kw):
    return [ev(t0, "attempt_start", **kw), ev(t1, "attempt_end", **kw)]


def outcome(goal="g1", mode="linear", attempt=1, success=True, final=True, family="factual_qa", rep=0):
    return {
        "family": family,
        "mode": mode,
        "goal_id": goal,
        "rep": rep,
        "attempt": attempt,
        "success": success,
        "final_attempt": final,
        "answer": "42",
        "expected": "42",
        "error": "",
    }


def one_attempt(t0, t1, df=None, idle=IDLE, **kw):
    res = account(
        df if df is not None else samples(), DOMAINS, attempt_events(t0, t1), [outcome()], idle, **kw
    )
    return res, res.goals.iloc[0]


def test_goals_columns_follow_the_contract_exactly():
    contract = [
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
    ]
    assert list(GOALS_COLUMNS) == contract
    res, _ = one_attempt(1.0, 3.0, run_id="r1")
    assert list(res.goals.columns) == contract + list(EXTRA_COLUMNS) + list(GOALS_PHASE_COLUMNS)
    assert res.goals["run_id"].tolist() == ["r1"]


def test_layers_l0_to_l4_hand_computed():
    # attempt [1, 3]: raw = 55 W * 2 s; idle 12 W * 2 s; alpha = 0.5 / 2.0
    _, row = one_attempt(1.0, 3.0)
    assert row["duration_s"] == pytest.approx(2.0)
    assert row["raw_j"] == pytest.approx(110.0)
    assert row["dynamic_j"] == pytest.approx(110.0 - 24.0)
    assert row["alpha"] == pytest.approx(0.25)
    assert row["attributed_j"] == pytest.approx(86.0 * 0.25)
    assert row["energy_j"] == row["attributed_j"]
    assert row["coverage"] == pytest.approx(1.0)
    assert row["gap_j"] == 0.0
    assert row["flags"] == ""
    assert row["energy_source"] == "measured"


def test_attribution_none_keeps_dynamic():
    _, row = one_attempt(1.0, 3.0, attribution="none")
    assert row["alpha"] == 1.0
    assert row["attributed_j"] == pytest.approx(86.0)


def test_account_config_passes_every_setting():
    """account_config is account with an AccountingConfig's settings (what the workflow calls)."""
    from alems.accounting import account_config

    cfg = AccountingConfig(attribution="none", min_coverage=1.0)
    res = account_config(samples(), DOMAINS, attempt_events(1.0, 3.0), [outcome()], IDLE, cfg, run_id="r7")
    direct = account(
        samples(),
        DOMAINS,
        attempt_events(1.0, 3.0),
        [outcome()],
        IDLE,
        attribution="none",
        min_coverage=1.0,
        run_id="r7",
    )
    pd.testing.assert_frame_equal(res.goals, direct.goals)
    row = res.goals.iloc[0]
    assert row["alpha"] == 1.0 and row["attributed_j"] == pytest.approx(86.0) and row["run_id"] == "r7"
    busy = account_config(
        samples(),
        DOMAINS,
        attempt_events(1.0, 3.0),
        [outcome()],
        IDLE,
        AccountingConfig(),
        idle_busy_cpu_per_s=1.0,
    )
    assert busy.goals.iloc[0]["alpha"] == pytest.approx(0.5)  # 0.5 cpu-s/s of the 2 - 1 net busy


def test_exact_boundary_read_is_returned_bit_for_bit():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 10, 40))
    t = np.concatenate([t, [2.0, 5.0]])
    order = np.argsort(t, kind="mergesort")
    t = t[order]
    boundary = np.isin(t, [2.0, 5.0])
    pkg = np.cumsum(rng.uniform(0.1, 7.0, len(t)))  # irregular, not on any line
    df = samples(t=t, pkg=pkg, dram=np.zeros(len(t)), boundary=boundary)
    _, row = one_attempt(2.0, 5.0, df=df, attribution="none", idle={k: 0.0 for k in IDLE})
    exact = pkg[t == 5.0][0] - pkg[t == 2.0][0]
    assert row["raw_j"] == exact  # no tolerance: the boundary values themselves
    assert row["coverage"] == 1.0


def test_boundary_read_wins_over_a_sample_at_the_same_instant():
    t = np.array([0.0, 1.0, 2.0, 2.0, 3.0])
    pkg = np.array([0.0, 10.0, 20.0, 20.5, 30.0])
    boundary = np.array([False, False, False, True, False])
    # shuffle the rows: the series sorts them, boundary last among equal times
    df = samples(t=t, pkg=pkg, dram=np.zeros(5), boundary=boundary).iloc[[3, 0, 4, 2, 1]]
    series = CounterSeries.from_samples(df, ["package-0"])
    e, _, _, inside = series.at(np.array([2.0, 1.5, 2.5]))
    assert e[:, 0].tolist() == [20.5, 15.0, 25.25]
    assert inside.all()


def test_window_inside_one_sample_interval_is_interpolated_and_flagged():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    df = samples(t=t, pkg=np.array([0.0, 10.0, 30.0, 31.0]), dram=np.zeros(4))
    _, row = one_attempt(1.25, 1.75, df=df, attribution="none", idle={k: 0.0 for k in IDLE})
    assert row["raw_j"] == pytest.approx(20.0 * 0.5)  # slope 20 J/s between t=1 and t=2
    assert row["coverage"] == 0.0  # no sample inside the window
    assert "low_coverage" in row["flags"].split(";")


def test_partial_coverage_between_samples():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    df = samples(t=t)
    _, row = one_attempt(0.5, 2.5, df=df, min_coverage=0.4)
    assert row["coverage"] == pytest.approx(0.5)  # samples 1 and 2 inside a 2 s window
    assert row["raw_j"] == pytest.approx(110.0)
    assert row["flags"] == ""
    _, row = one_attempt(0.5, 2.5, df=df, min_coverage=0.8)
    assert row["flags"] == "low_coverage"


def test_window_past_the_last_sample_is_flagged_not_extrapolated():
    _, row = one_attempt(9.0, 12.0)
    assert set(row["flags"].split(";")) == {"outside_samples", "low_coverage"}
    assert row["coverage"] == pytest.approx(1.0 / 3.0)
    assert row["raw_j"] == pytest.approx(55.0)  # only the sampled second, no extrapolation
    assert row["dynamic_j"] == pytest.approx(55.0 - 12.0)  # idle over the measured 1 s
    assert row["duration_s"] == pytest.approx(3.0)


def test_window_before_the_first_sample_is_flagged():
    _, row = one_attempt(-1.0, 1.0)
    assert row["flags"].split(";") == ["low_coverage", "outside_samples"]
    assert row["raw_j"] == pytest.approx(55.0)


def test_wraps_corrected_upstream_are_used_as_cumulative_joules():
    # a 100 J counter that wrapped 3 times: the sampler hands over cumulative joules
    pkg_domain = Domain("package-0", "package", "measured", "rapl", max_range_j=100.0)
    t = np.linspace(0, 4, 41)
    df = samples(t=t, pkg=87.5 * t, dram=np.zeros(len(t)))
    res = account(
        df, [pkg_domain], attempt_events(0.0, 4.0), [outcome()], {"package-0": 0.0}, attribution="none"
    )
    assert res.goals["raw_j"].iloc[0] == pytest.approx(350.0)


def test_a_counter_going_backwards_is_rejected_with_the_fix():
    df = samples()
    df.loc[50, "package-0"] = 0.0
    with pytest.raises(AccountingInputError, match="'package-0' decreases") as exc:
        one_attempt(1.0, 3.0, df=df)
    assert "wrap-corrected" in str(exc.value)


def test_negative_dynamic_energy_is_kept_and_flagged():
    idle = {"package-0": 70.0, "core-0": 5.0, "dram-0": 2.0}  # idle above measured
    _, row = one_attempt(1.0, 3.0, idle=idle)
    assert row["dynamic_j"] == pytest.approx(110.0 - 72.0 * 2.0)  # -34, not clipped
    assert row["energy_j"] == pytest.approx(-34.0 * 0.25)
    assert row["flags"].split(";") == ["negative_dynamic"]


def test_missing_idle_power_for_a_domain_is_a_config_error_with_the_fix():
    with pytest.raises(ConfigError, match=r"no power for domain\(s\) \['dram-0'\]") as exc:
        one_attempt(1.0, 3.0, idle={"package-0": 10.0})
    assert exc.value.message == "the idle baseline has no power for domain(s) ['dram-0'] (has ['package-0'])"
    assert exc.value.fix == (
        "run `alems baseline` on this host (or rerun the workflow's baseline rule) so "
        "results/baseline/idle.json covers every domain the meter reports"
    )
    with pytest.raises(AccountingInputError) as no_dom:
        account(samples(), [], attempt_events(1.0, 3.0), [outcome()], IDLE)
    assert no_dom.value.message == "no summable energy domain among []"
    assert no_dom.value.fix == "pass the run's domain list (read_samples returns it with the samples)"
    with pytest.raises(AccountingInputError) as twice:
        account(samples(), DOMAINS, attempt_events(1.0, 3.0), [outcome(), outcome()], IDLE)
    assert (
        twice.value.message
        == "outcomes hold the attempt (goal_id, rep, mode, attempt)=('g1', 0, 'linear', 1) more than once"
    )
    assert twice.value.fix == "account one run's outcomes at a time (one (family, rep) job)"


def test_zero_system_cpu_time_falls_back_and_is_flagged():
    sys_ = 2.0 * GRID
    sys_[(GRID >= 1.0) & (GRID <= 3.0)] = 2.0  # flat over the attempt ...
    sys_[GRID > 3.0] = 2.0 * GRID[GRID > 3.0] - 4.0  # ... then on again (non-decreasing)
    proc = 0.5 * GRID
    df = samples(proc=proc, sys_=sys_)
    res, row = one_attempt(1.0, 3.0, df=df)
    assert row["flags"].split(";") == ["alpha_fallback"]
    assert row["alpha"] == pytest.approx(res.run_alpha)
    assert res.run_alpha == pytest.approx(5.0 / 16.0)  # 5 cpu-s of 16 over the run
    assert np.isfinite(row["energy_j"])


def test_alpha_above_one_is_clipped_and_flagged():
    df = samples(proc=3.0 * GRID)  # process above the whole system: counter mismatch
    _, row = one_attempt(1.0, 3.0, df=df)
    assert row["alpha"] == 1.0
    assert row["flags"].split(";") == ["alpha_clipped"]


def _phase_run():
    # LLM window [1.5, 2.0] runs the process at 1.0 cpu-s/s, 0.5 elsewhere; system 2.0
    proc = 0.5 * GRID + 0.5 * np.clip(GRID - 1.5, 0.0, 0.5)
    df = samples(proc=proc)
    events = [
        ev(0.5, "goal_start", attempt=None),
        ev(1.0, "attempt_start"),
        ev(1.5, "llm_start", tokens_in=120),
        ev(2.0, "llm_end", tokens_out=7),
        ev(2.2, "tool_start", name="calculator"),
        ev(2.4, "tool_end", name="calculator"),
        ev(2.5, "llm_start"),
        ev(2.8, "llm_end", tokens_in=30, tokens_out=5),
        ev(3.0, "attempt_end"),
        ev(3.1, "goal_end", attempt=None),
    ]
    return account(df, DOMAINS, events, [outcome()], IDLE)


def test_phase_energies_hand_computed_and_sum_to_the_attempt():
    row = _phase_run().goals.iloc[0]
    llm1 = (P_SUM - IDLE_SUM) * 0.5 * (1.0 / 2.0)  # dyn 21.5 J, alpha 0.5
    llm2 = (P_SUM - IDLE_SUM) * 0.3 * 0.25
    tool = (P_SUM - IDLE_SUM) * 0.2 * 0.25
    attempt_alpha = (0.5 * 2.0 + 0.5 * 0.5) / (2.0 * 2.0)
    assert row["alpha"] == pytest.approx(attempt_alpha)
    assert row["energy_j"] == pytest.approx(86.0 * attempt_alpha)
    assert row["llm_j"] == pytest.approx(llm1 + llm2)
    assert row["tool_j"] == pytest.approx(tool)
    assert row["orchestration_j"] == pytest.approx(row["energy_j"] - llm1 - llm2 - tool)
    assert row["llm_j"] + row["tool_j"] + row["orchestration_j"] == pytest.approx(row["energy_j"], rel=1e-12)
    assert (row["llm_calls"], row["tool_calls"], row["tokens_in"], row["tokens_out"]) == (2, 1, 150, 12)


def test_phase_sums_hold_on_a_noisy_multi_attempt_run():
    rng = np.random.default_rng(11)
    t = np.sort(np.concatenate([[0.0, 20.0], rng.uniform(0, 20, 300)]))
    inc = rng.uniform(0, 3, (len(t), 2))
    proc_inc = rng.uniform(0, 0.05, len(t))
    df = pd.DataFrame(
        {
            "t": t,
            "package-0": np.cumsum(inc[:, 0]),
            "core-0": np.cumsum(inc[:, 0]) / 2,
            "dram-0": np.cumsum(inc[:, 1]),
            "proc_cpu_s": np.cumsum(proc_inc),
            "sys_cpu_s": np.cumsum(proc_inc + rng.uniform(0, 0.1, len(t))),
            "boundary": False,
        }
    )
    events, outcomes = [], []
    cursor = 0.5
    for g in range(6):
        for a in (1, 2):
            e = dict(goal=f"g{g}", attempt=a)
            events += [ev(cursor, "attempt_start", **e)]
            for _ in range(3):
                events += [ev(cursor + 0.1, "llm_start", **e), ev(cursor + 0.4, "llm_end", **e)]
                events += [ev(cursor + 0.45, "tool_start", **e), ev(cursor + 0.5, "tool_end", **e)]
                cursor += 0.5
            events += [ev(cursor + 0.1, "attempt_end", **e)]
            outcomes.append(outcome(goal=f"g{g}", attempt=a, success=a == 2, final=a == 2))
            cursor += 0.3
    res = account(df, DOMAINS, events, outcomes, IDLE)
    g = res.goals
    assert len(g) == 12
    np.testing.assert_allclose(
        g["llm_j"] + g["tool_j"] + g["orchestration_j"], g["energy_j"], rtol=1e-12, atol=1e-9
    )
    assert (g["llm_calls"] == 3).all() and (g["tool_calls"] == 3).all()


def test_gap_goes_to_the_later_attempt_and_overhead_is_what_is_left():
    events = (
        attempt_events(1.0, 3.0, attempt=1)
        + attempt_events(4.0, 6.0, attempt=2)
        + attempt_events(6.5, 8.0, mode="agentic", attempt=1)
    )
    outcomes = [
        outcome(attempt=1, success=False, final=False),
        outcome(attempt=2, success=True, final=True),
        outcome(mode="agentic"),
    ]
    res = account(samples(), DOMAINS, events, outcomes, IDLE)
    g = res.goals
    per_s = (P_SUM - IDLE_SUM) * 0.25
    assert g["gap_j"].tolist() == pytest.approx([0.0, 1.0 * per_s, 0.0])
    assert g["energy_j"].tolist() == pytest.approx([2 * per_s, 2 * per_s, 1.5 * per_s])
    # outside every attempt and gap: [0, 1], [6, 6.5], [8, 10]
    assert res.overhead_s == pytest.approx(3.5)
    assert res.framework_overhead_j == pytest.approx(3.5 * per_s)
    assert res.overhead_raw_j == pytest.approx(3.5 * P_SUM)
    # conservation: goals + gaps + overhead = the whole sampled span
    assert (g["energy_j"] + g["gap_j"]).sum() + res.framework_overhead_j == pytest.approx(10.0 * per_s)


def test_unmatched_outcome_gets_nan_energy_and_a_flag():
    res = account(samples(), DOMAINS, attempt_events(1.0, 2.0), [outcome(), outcome(goal="g2")], IDLE)
    row = res.goals.iloc[1]
    assert row["flags"] == "no_window"
    assert math.isnan(row["energy_j"])
    assert res.goals.iloc[0]["flags"] == ""


def test_unclosed_calls_and_attempts_are_closed_and_flagged():
    events = [ev(1.0, "attempt_start"), ev(1.5, "llm_start"), ev(2.0, "tool_start"), ev(2.5, "tool_end")]
    row = account(samples(), DOMAINS, events, [outcome()], IDLE).goals.iloc[0]
    assert {"unclosed_attempt", "unclosed_phase"} <= set(row["flags"].split(";"))
    assert row["t1"] == 2.5
    assert row["llm_calls"] == 1


def test_events_without_outcomes_are_reported_at_run_level():
    events = attempt_events(1.0, 2.0) + attempt_events(3.0, 4.0, goal="ghost")
    res = account(samples(), DOMAINS, events, pd.DataFrame([outcome()]), IDLE)
    assert res.flags == ["events_without_outcome:1"]


def test_energy_source_labels():
    gpu = Domain("gpu-0", "gpu", "measured", "nvml")
    model = Domain("cpu-model", "cpu-model", "modeled", "model")
    assert energy_source_of([gpu, model]) == "mixed"
    assert energy_source_of([model]) == "modeled"
    assert energy_source_of(DOMAINS) == "measured"
    assert combine_sources(["measured", "mixed"]) == "mixed"
    assert contains_modeled("mixed") and contains_modeled(["measured", "modeled"])
    assert not contains_modeled(["measured"])
    t = GRID
    df = pd.DataFrame(
        {
            "t": t,
            "gpu-0": 70.0 * t,
            "cpu-model": 20.0 * t,
            "proc_cpu_s": t,
            "sys_cpu_s": 2 * t,
            "boundary": False,
        }
    )
    res = account(df, [gpu, model], attempt_events(1.0, 2.0), [outcome()], {"gpu-0": 0.0, "cpu-model": 0.0})
    assert res.goals["energy_source"].tolist() == ["mixed"]
    assert res.contains_modeled
    assert res.goals["raw_j"].iloc[0] == pytest.approx(90.0)


def test_config_validation_names_the_key():
    assert AccountingConfig.from_dict({"attribution": "none", "min_coverage": 0.5}).min_coverage == 0.5
    with pytest.raises(ConfigError, match=r"accounting\.min_coverage has the wrong type"):
        AccountingConfig.from_dict({"min_coverage": "0.5"})
    with pytest.raises(ConfigError, match=r"min_coverage is 1\.5; it must be in \[0, 1\]"):
        AccountingConfig.from_dict({"min_coverage": 1.5})
    with pytest.raises(ConfigError, match="unknown accounting config key"):
        AccountingConfig.from_dict({"atribution": "none"})
    section = {"attribution": {"cpu": "none"}, "gpu_study_processes": ["llama-server"]}
    cfg = AccountingConfig.from_dict(section)
    assert cfg.attribution == {"cpu": "none"} and cfg.attribution is not section["attribution"]
    assert cfg.gpu_study_processes == ("llama-server",)
    assert cfg.modes == ("none", "exclusive")
    with pytest.raises(ConfigError, match="attribution is 'cpu'") as exc:
        one_attempt(1.0, 2.0, attribution="cpu")
    assert "cpu_share" in str(exc.value)


def test_missing_sample_columns_name_them():
    with pytest.raises(AccountingInputError, match=r"lack column\(s\) \['dram-0'\]"):
        one_attempt(1.0, 2.0, df=samples().drop(columns=["dram-0"]))


def test_write_goals_round_trips(tmp_path):
    res = _phase_run()
    path = tmp_path / "runs" / "goals.csv"
    write_goals(res.goals, path)
    back = pd.read_csv(path, dtype={"goal_id": str})
    assert list(back.columns) == list(res.goals.columns)
    assert back["energy_j"].iloc[0] == pytest.approx(res.goals["energy_j"].iloc[0], rel=1e-15)


def test_events_as_a_dataframe_from_jsonl_and_unknown_kinds(tmp_path):
    events = [
        *attempt_events(1.0, 3.0),
        {"t": 0.5, "kind": "goal_start", "goal_id": "g1"},  # goal events need no mode/attempt here
        ev(2.0, "retry_decision"),
        ev(2.1, "coffee_break"),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    frame = pd.read_json(path, lines=True)  # attempt becomes float with NaN holes
    res = account(samples(), DOMAINS, frame, [outcome()], IDLE)
    assert res.goals["energy_j"].iloc[0] == pytest.approx(21.5)
    assert res.flags == ["unknown_event_kinds:coffee_break,retry_decision"]


def test_an_attempt_event_without_its_execution_keys_names_the_field():
    with pytest.raises(AccountingInputError, match="lacks 'mode'") as exc:
        account(
            samples(),
            DOMAINS,
            [{"t": 1.0, "kind": "attempt_start", "goal_id": "g1", "rep": 0}],
            [outcome()],
            IDLE,
        )
    assert "EventLog" in str(exc.value)


def test_outcome_booleans_read_back_from_csv_and_run_summary():
    outs = [outcome(success="False", final="False"), outcome(attempt=2, success="True", final="True")]
    events = attempt_events(1.0, 2.0, attempt=1) + attempt_events(2.5, 3.0, attempt=2)
    res = account(samples(), DOMAINS, events, outs, IDLE)
    assert res.goals["success"].tolist() == [False, True]
    assert res.goals["final_attempt"].tolist() == [False, True]
    summary = res.summary()
    json.dumps(summary, allow_nan=False)
    per_s = (P_SUM - IDLE_SUM) * 0.25
    assert summary["goal_energy_j"] == pytest.approx(2.0 * per_s)  # 1 s + 0.5 s gap + 0.5 s
    assert summary["goal_energy_j"] + summary["framework_overhead_j"] == pytest.approx(10.0 * per_s)
    # the rest by hand: 10 s of samples, 2 s in the attempts and the gap, 8 s of overhead at
    # P_SUM raw, P_SUM - IDLE_SUM dynamic, a quarter of it the job's (alpha 0.25)
    assert summary == {
        "attempts": 2,
        "goal_energy_j": pytest.approx(2.0 * per_s),
        "framework_overhead_j": pytest.approx(8.0 * per_s),
        "overhead_raw_j": pytest.approx(8.0 * P_SUM),
        "overhead_dynamic_j": pytest.approx(8.0 * (P_SUM - IDLE_SUM)),
        "overhead_s": pytest.approx(8.0),
        "run_alpha": pytest.approx(0.25),
        "span": [0.0, 10.0],
        "energy_source": "measured",
        "flags": [],
        "flagged_attempts": 0,
        "calls": 0,  # no LLM or tool call in this run
        "conservation_residual": 0.0,  # phases sum to the attempt exactly (no call windows)
    }


def test_outcomes_as_dataclass_rows():
    from dataclasses import dataclass

    @dataclass
    class Outcome:
        family: str
        mode: str
        goal_id: str
        rep: int
        attempt: int
        success: bool
        final_attempt: bool
        answer: str
        expected: str
        error: str | None

    rows = [Outcome("factual_qa", "linear", "g1", 0, 1, True, True, "a", "a", None)]
    res = account(samples(), DOMAINS, attempt_events(1.0, 3.0), rows, IDLE)
    assert res.goals["energy_j"].iloc[0] == pytest.approx(21.5)
