"""Units of the jobs layer and the oracle backend: window share, the oracle (and the prompt texts it
reads), `alems run` with energy."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alems.jobs.outputs import window_share
from alems.llm.oracle import OracleBackend


def test_window_share_is_a_union() -> None:
    goals = pd.DataFrame({"t0": [0.0, 1.0, 1.5, 5.0], "t1": [1.0, 2.0, 1.8, 6.0]})
    inside, share = window_share(goals, 10.0)
    assert inside == pytest.approx(3.0) and share == pytest.approx(0.3)
    assert window_share(pd.DataFrame({"t0": [], "t1": []}), 5.0) == (0.0, 0.0)


def _goal(family: str, n: int = 1):  # type: ignore[no-untyped-def]
    from alems.tasks import get_family

    return get_family(family).generate(0, n)


def test_oracle_linear_answers_and_fails_by_design() -> None:
    from alems.agents import prompts

    goals = _goal("gsm8k_basic_local", 40)
    oracle = OracleBackend(goals, fail_rate=0.3, seed=0)
    right = 0
    for g in goals:
        msgs = [{"role": "system", "content": prompts.LINEAR_SYSTEM}, {"role": "user", "content": g.prompt}]
        c = oracle.complete(msgs, max_tokens=100)
        # every reply ends in an answer line: the expected value, or a designed wrong one
        answer = c.text.rsplit("Answer: ", 1)[1]
        assert c.text.count("Answer: ") == 1 and answer.strip() == answer and answer
        assert answer == g.expected or float(answer) == float(g.expected.replace(",", "")) + 7
        right += answer == g.expected
        assert c.tokens_in > 0 and c.tokens_out > 0 and c.t_end >= c.t_start
    assert 0.5 * 40 < right < 40  # some wrong by design, most right
    again = OracleBackend(goals, fail_rate=0.3, seed=0)
    g = goals[0]
    msgs = [{"role": "system", "content": prompts.LINEAR_SYSTEM}, {"role": "user", "content": g.prompt}]
    assert (
        again.complete(msgs, max_tokens=100).text
        == OracleBackend(goals, fail_rate=0.3, seed=0).complete(msgs, max_tokens=100).text
    )  # deterministic


def test_oracle_reps_draw_their_own_failures() -> None:
    """The call seed (agents.seed + rep) enters the oracle's draws: reps are not copies."""
    from alems.agents import prompts

    goals = _goal("gsm8k_basic_local", 40)

    def right_answers(seed: int) -> list[bool]:
        oracle = OracleBackend(goals, fail_rate=0.3, seed=0)
        out = []
        for g in goals:
            msgs = [
                {"role": "system", "content": prompts.LINEAR_SYSTEM},
                {"role": "user", "content": g.prompt},
            ]
            out.append(
                oracle.complete(msgs, max_tokens=100, seed=seed).text.endswith(f"Answer: {g.expected}")
            )
        return out

    assert right_answers(0) == right_answers(0)
    assert right_answers(0) != right_answers(1)


def test_oracle_plans_with_the_goals_real_tools() -> None:
    from alems.agents import prompts
    from alems.agents.plan import parse_plan

    (g,) = _goal("tg_sequential_2")
    oracle = OracleBackend([g], fail_rate=0.0)
    msgs = [
        {"role": "system", "content": prompts.agentic_system(g, 5)},
        {"role": "user", "content": prompts.plan_request(g, None)},
    ]
    steps = parse_plan(
        oracle.complete(msgs, max_tokens=200, json_schema={"properties": {"steps": {}}}).text, g.tools, 5
    )
    assert [s.tool for s in steps] == ["sql", "write_file"]
    assert steps[0].input == g.db_query and steps[1].file == g.output_file and steps[1].input == g.expected
    msgs += [{"role": "assistant", "content": "{}"}, {"role": "user", "content": prompts.VERIFY}]
    assert oracle.complete(msgs, max_tokens=8).text == "YES"


def test_oracle_says_no_to_its_own_wrong_answer() -> None:
    from alems.agents import prompts

    (g,) = _goal("gsm8k_basic_local")
    oracle = OracleBackend(
        [g], fail_rate=1.0
    )  # every answer wrong, every plan unparseable a third of the time
    msgs = [
        {"role": "system", "content": prompts.agentic_system(g, 5)},
        {"role": "user", "content": prompts.plan_request(g, None)},
    ]
    oracle.complete(msgs, max_tokens=200)
    msgs += [{"role": "assistant", "content": "{}"}, {"role": "user", "content": prompts.SYNTHESISE}]
    assert f"Answer: {g.expected}" not in oracle.complete(msgs, max_tokens=100).text
    msgs += [{"role": "assistant", "content": "x"}, {"role": "user", "content": prompts.VERIFY}]
    assert oracle.complete(msgs, max_tokens=8).text == "NO"


def test_alems_run_carries_energy_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from alems.cli import main
    from alems.contracts import GOALS_COLUMNS

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("llm: {oracle: {fail_rate: 0.3}}\nbaseline: {settle_s: 0, windows: 2, window_s: 0.2}\n")
    out = tmp_path / "out"
    rc = main(
        [
            "run",
            "--family",
            "gsm8k_basic_local",
            "--tasks",
            "2",
            "--backend",
            "scripted",
            "--meter",
            "model",
            "--config",
            str(cfg),
            "--out",
            str(out),
            "--no-progress",
            "--backoff",
            "0",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "EpG" in text and "(modeled)" in text
    df = pd.read_csv(out / "attempts.csv")
    assert list(df.columns[: len(GOALS_COLUMNS)]) == list(GOALS_COLUMNS)
    assert (df["energy_source"] == "modeled").all() and df["raw_j"].notna().all()
    assert (out / "rep0" / "samples.parquet").is_file() and (out / "events.jsonl").read_text()
    info = json.loads((out / "run.json").read_text())
    assert info["epg"] and info["jobs"][0]["meter"] == "model"
    # calls.csv beside goals.csv in the rep directory, and all reps' calls at the top
    calls = pd.read_csv(out / "calls.csv")
    assert len(calls) == int(df["llm_calls"].sum() + df["tool_calls"].sum())
    assert (out / "rep0" / "calls.csv").is_file() and calls["raw_j"].notna().all()
    assert info["jobs"][0]["conservation_residual"] < 1e-9


def test_the_oracle_markers_are_the_agents_prompt_texts() -> None:
    """The oracle finds its step by texts of alems.agents.prompts: each must still be there."""
    from alems.agents import prompts
    from alems.llm import oracle

    (g,) = _goal("tg_sequential_2")
    assert oracle.AGENTIC_SYSTEM_MARKER in prompts.agentic_system(g, 5).lower()
    assert oracle.AGENTIC_SYSTEM_MARKER not in prompts.LINEAR_SYSTEM.lower()
    assert oracle.PLAN_REQUEST_MARKER in prompts.plan_request(g, None)
    assert oracle.PLAN_REQUEST_MARKER in prompts.plan_request(g, "the plan was not JSON")
    assert prompts.tool_result_message(1, "sql", "42").startswith(oracle.TOOL_RESULT_PREFIX)
    assert prompts.llm_step_message(2, "Which facts?").startswith(oracle.LLM_STEP_PREFIX)
    assert oracle.VERIFY_REQUEST == prompts.VERIFY
