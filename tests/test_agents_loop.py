"""The agent loop's new parts with the scripted backend: react, verify-retry told why,
the linear single_pass tool control, one final-answer cap for both modes, check_reason
and truncation on every attempt, and the columns they add to goals.csv and epg.csv."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest

from alems.agents import AgentConfig, EventLog, read_events, run_execution
from alems.agents.executors import VERIFY_REJECTED, parse_verification
from alems.agents.plan import PlanParseError, parse_tool_call, tool_call_schema
from alems.errors import ConfigError
from alems.llm.scripted import ScriptedBackend
from alems.tasks import Goal, get_family

Messages = list[dict[str, str]]


def goal(expected: str = "42", **kw) -> Goal:
    return Goal(
        family="toy",
        goal_id="toy-1",
        prompt="What is 40 + 2?",
        expected=expected,
        answer_kind="numeric",
        tools=kw.pop("tools", ("calculator",)),
        steps=2,
        template="toy/add",
        **kw,
    )


def run(tmp_path, g, mode, script, cfg):
    be = ScriptedBackend(script)
    ticks = itertools.count()
    with EventLog(tmp_path / "events.jsonl", clock=lambda: float(next(ticks))) as log:
        rows = run_execution(
            get_family("gsm8k_basic_local"),
            g,
            mode,
            rep=0,
            backend=be,
            events=log,
            cfg=cfg,
            workdir=tmp_path / "work",
            sleep=lambda s: None,
        )
    return rows, read_events(tmp_path / "events.jsonl"), be


def llm_names(events, attempt=None):
    return [
        e.get("name")
        for e in events
        if e["kind"] == "llm_start" and (attempt is None or e["attempt"] == attempt)
    ]


# --------------------------------------------------------------------------- react
def react_script(
    steps: list[str], final: str = "Answer: 42", verdict: str = '{"reason": "", "verdict": "YES"}'
):
    queue = list(steps)

    def script(messages: Messages) -> str:
        last = messages[-1]["content"]
        if last.startswith("Now give the final answer"):
            return final
        if last.startswith("Check your final answer"):
            return verdict
        return queue.pop(0)

    return script


def test_react_thought_action_observation_until_final(tmp_path) -> None:
    steps = [
        '{"thought": "add them", "tool": "calculator", "tool_input": "40 + 2"}',
        '{"thought": "done", "tool": "final", "tool_input": "42"}',
    ]
    rows, events, be = run(tmp_path, goal(), "agentic", react_script(steps), AgentConfig(style="react"))
    assert [r.success for r in rows] == [True] and rows[0].check_reason == "correct"
    assert llm_names(events) == ["react", "react", "synthesise", "verify"]
    tools = [(e["kind"], e.get("name")) for e in events if e["kind"].startswith("tool")]
    assert tools == [("tool_start", "calculator"), ("tool_end", "calculator")]
    # the observation is the tool's real output; the schema offers the tools and "final"
    assert be.calls[1]["messages"][-1]["content"].startswith("Observation (calculator): 42")
    variants = be.calls[0]["json_schema"]["anyOf"]
    assert [v["properties"]["tool"]["const"] for v in variants] == ["calculator", "final"]
    assert list(variants[0]["properties"]) == ["thought", "tool", "tool_input"]
    assert rows[0].llm_calls == 4 and rows[0].tool_calls == 1


def test_react_sees_tool_errors_and_stops_at_max_steps(tmp_path) -> None:
    steps = ['{"thought": "t", "tool": "calculator", "tool_input": "forty plus two"}'] * 3
    rows, events, be = run(
        tmp_path,
        goal(),
        "agentic",
        react_script(steps),
        AgentConfig(style="react", max_steps=3, verify=False),
    )
    assert llm_names(events) == ["react", "react", "react", "synthesise"]
    assert "error:" in be.calls[1]["messages"][-1]["content"]  # the model sees the error and may fix it
    assert rows[0].success  # the scripted synthesis still answers 42


def test_react_unparsable_step_fails_the_attempt_and_retries(tmp_path) -> None:
    steps = ["I will just think", '{"thought": "t", "tool": "final", "tool_input": "42"}']
    rows, events, be = run(
        tmp_path,
        goal(),
        "agentic",
        react_script(steps),
        AgentConfig(style="react", max_attempts=2, verify=False),
    )
    assert rows[0].error.startswith("react step parse error") and rows[0].check_reason == "no_marker"
    assert "Your previous attempt failed: react step parse error" in be.calls[1]["messages"][1]["content"]
    assert rows[1].success


# --------------------------------------------------------------------------- verify-retry
def plan_script(finals: list[str], verdicts: list[str]):
    fq, vq = list(finals), list(verdicts)

    def script(messages: Messages) -> str:
        last = messages[-1]["content"]
        if "Write the plan now" in last:
            return '{"steps": [{"action": "calculator", "input": "40 + 2"}]}'
        if last.startswith("Result of step"):
            return "It is 42."
        if last.startswith("Now give the final answer"):
            return fq.pop(0)
        if last.startswith("Check your final answer"):
            return vq.pop(0)
        raise AssertionError(last)

    return script


def test_verify_no_retries_and_the_retry_is_told_why(tmp_path) -> None:
    script = plan_script(
        ["Working.\nAnswer: 41", "Answer: 42"],
        ['{"reason": "40 + 2 is 42, not 41", "verdict": "NO"}', '{"reason": "", "verdict": "YES"}'],
    )
    rows, events, be = run(tmp_path, goal(), "agentic", script, AgentConfig(max_attempts=3))
    assert [r.attempt for r in rows] == [1, 2]
    assert rows[0].error == f"{VERIFY_REJECTED}: 40 + 2 is 42, not 41"
    assert rows[0].check_reason == "wrong" and not rows[0].answer_correct
    assert rows[1].success and rows[1].check_reason == "correct"
    plan2 = [c for c in be.calls if "Write the plan now" in c["messages"][-1]["content"]][1]
    told = plan2["messages"][-1]["content"]
    assert "'Answer: 41'" in told and "40 + 2 is 42, not 41" in told
    assert llm_names(events, 1) == ["plan", "step", "synthesise", "verify"]


def test_verify_retries_are_bounded_by_max_attempts(tmp_path) -> None:
    no = '{"reason": "unsure", "verdict": "NO"}'
    script = plan_script(["Answer: 42"] * 2, [no] * 2)
    rows, _, _ = run(tmp_path, goal(), "agentic", script, AgentConfig(max_attempts=2))
    assert len(rows) == 2 and rows[-1].final_attempt
    assert rows[-1].success  # the self-check never overrides the checker


@pytest.mark.parametrize(
    ("text", "verdict", "reason"),
    [
        ('{"reason": "bad sum", "verdict": "NO"}', False, "bad sum"),
        ('{"reason": "", "verdict": "YES"}', True, ""),
        ("NO, the sum is wrong.", False, "the sum is wrong"),
        ("YES", True, ""),
        ("maybe", None, ""),
    ],
)
def test_parse_verification(text, verdict, reason) -> None:
    assert parse_verification(text) == (verdict, reason)


# --------------------------------------------------------------------------- linear single_pass
def single_pass_script(decision: str, answer: str = "Answer: 42"):
    def script(messages: Messages) -> str:
        if (
            "ONE tool call" in messages[0]["content"]
            and messages[-1]["role"] == "user"
            and len(messages) == 2
        ):
            return decision
        return answer

    return script


def test_linear_single_pass_runs_one_tool_then_answers(tmp_path) -> None:
    script = single_pass_script('{"tool": "calculator", "tool_input": "40 + 2"}')
    rows, events, be = run(tmp_path, goal(), "linear", script, AgentConfig(linear_tools="single_pass"))
    assert llm_names(events) == ["decide", "answer"] and rows[0].tool_calls == 1 and rows[0].success
    assert be.calls[1]["messages"][-1]["content"].startswith("Result of calculator: 42")
    assert [v["properties"]["tool"]["const"] for v in be.calls[0]["json_schema"]["anyOf"]] == [
        "calculator",
        "none",
    ]


def test_linear_single_pass_may_decline_and_needs_tools(tmp_path) -> None:
    rows, events, _ = run(
        tmp_path,
        goal(),
        "linear",
        single_pass_script('{"tool": "none", "tool_input": ""}'),
        AgentConfig(linear_tools="single_pass"),
    )
    assert llm_names(events) == ["decide", "answer"] and rows[0].tool_calls == 0
    rows, events, _ = run(
        tmp_path, goal(), "linear", single_pass_script("garbage"), AgentConfig(linear_tools="single_pass")
    )
    assert llm_names(events) == ["decide", "answer"] and rows[0].success  # an unusable decision runs no tool
    # a goal without tools: the plain one-call linear mode
    rows, events, _ = run(
        tmp_path, goal(tools=()), "linear", lambda m: "Answer: 42", AgentConfig(linear_tools="single_pass")
    )
    assert llm_names(events) == ["answer"]


def test_tool_call_parser() -> None:
    assert (
        parse_tool_call('{"tool": "calculator", "tool_input": "1+1"}', ("calculator",), "none").input == "1+1"
    )
    assert parse_tool_call('{"action": "none"}', ("calculator",), "none").tool == "none"
    with pytest.raises(PlanParseError):
        parse_tool_call('{"tool": "sql", "tool_input": "x"}', ("calculator",), "none")
    with pytest.raises(PlanParseError):
        parse_tool_call('{"tool": "calculator", "tool_input": ""}', ("calculator",), "none")
    schema = tool_call_schema(("write_file",), "final", thought=True)
    assert list(schema["anyOf"][0]["properties"]) == ["thought", "tool", "tool_file", "tool_input"]


# --------------------------------------------------------------------------- one answer budget, truncation
def test_both_modes_get_the_same_final_answer_cap(tmp_path) -> None:
    cfg = AgentConfig(max_tokens={"answer": 5}, verify=False)
    long = "Let me work it out slowly step by step first"
    _, _, be_lin = run(tmp_path / "l", goal(), "linear", lambda m: long, cfg)
    _, _, be_ag = run(tmp_path / "a", goal(), "agentic", plan_script([long], []), cfg)
    assert be_lin.calls[-1]["max_tokens"] == 5
    assert be_ag.calls[-1]["max_tokens"] == 5  # the synthesis


def test_truncated_answers_are_reported(tmp_path) -> None:
    cfg = AgentConfig(max_tokens={"answer": 5}, max_attempts=1, verify=False)
    rows, _, _ = run(tmp_path, goal(), "linear", lambda m: "Let me work it out slowly step by step", cfg)
    assert rows[0].truncated and rows[0].check_reason == "truncated" and not rows[0].success
    rows, _, _ = run(tmp_path / "b", goal(), "linear", lambda m: "Answer: 42", cfg)
    assert not rows[0].truncated and rows[0].check_reason == "correct"
    assert (rows[0].steps, rows[0].template) == (2, "toy/add")


def test_answer_cap_config() -> None:
    assert AgentConfig(max_tokens={"linear": 100}).max_tokens["answer"] == 100
    assert AgentConfig(max_tokens={"linear": 100, "synthesise": 100}).max_tokens["answer"] == 100
    with pytest.raises(ConfigError, match="same one"):
        AgentConfig(max_tokens={"linear": 100, "synthesise": 50})
    with pytest.raises(ConfigError, match="style"):
        AgentConfig(style="tree_of_thought")
    with pytest.raises(ConfigError, match="linear_tools"):
        AgentConfig(linear_tools="many")


# --------------------------------------------------------------------------- goals.csv and epg.csv columns
def test_new_columns_reach_goals_and_epg(tmp_path) -> None:
    from alems.contracts import GOALS_TASK_COLUMNS as TASK_COLUMNS
    from alems.jobs.standalone import plan_standalone, run_standalone
    from alems.metrics import MetricsConfig, epg_table

    cfg = {
        "llm": {"backend": "scripted", "script": ["Answer: 5"]},
        "baseline": {"settle_s": 0, "windows": 2, "window_s": 0.05},
    }
    plan = plan_standalone(
        "gsm8k_basic_local",
        out_dir=tmp_path / "out",
        tasks=2,
        reps=1,
        config=cfg,
        agent_overrides={"backoff_s": 0, "max_attempts": 1},
        energy_overrides={"meter": "model"},
    )
    summary = run_standalone(plan, progress=False)
    goals = pd.read_csv(tmp_path / "out" / "attempts.csv")
    for col in TASK_COLUMNS:
        assert col in goals.columns
    assert set(goals["check_reason"]) <= {
        "correct",
        "wrong",
        "no_marker",
        "ambiguous",
        "negated",
        "truncated",
    }
    assert goals["steps"].between(2, 3).all() and goals["template"].str.count("/").eq(2).all()
    epg = epg_table(goals, MetricsConfig(bootstrap=50))
    assert "truncation_rate" in epg.columns and epg["truncation_rate"].between(0, 1).all()
    # an old goals.csv without the new columns still gives tables, with the rate undefined
    old = goals.drop(columns=list(TASK_COLUMNS))
    epg_old = epg_table(old, MetricsConfig(bootstrap=50))
    assert epg_old["truncation_rate"].isna().all()
    assert json.loads(json.dumps(summary.to_dict()))["family"] == "gsm8k_basic_local"


def test_cli_run_style_and_linear_tools(tmp_path, capsys) -> None:
    from alems.cli import main

    out = tmp_path / "out"
    step = '{"thought": "x", "tool": "final", "tool_input": "5"}'
    assert (
        main(
            [
                "run",
                "--family",
                "gsm8k_basic_local",
                "--tasks",
                "1",
                "--backend",
                "scripted",
                "--script",
                step,
                "--out",
                str(out),
                "--backoff",
                "0",
                "--no-progress",
                "--no-energy",
                "--style",
                "react",
                "--linear-tools",
                "single_pass",
                "--json",
            ]
        )
        == 0
    )
    cells = {c["mode"]: c for c in json.loads(capsys.readouterr().out)["cells"]}
    assert cells["linear"]["llm_calls"] == 2  # decide, answer
    assert cells["agentic"]["llm_calls"] == 3  # react (final), synthesise, verify
    agents = json.loads((out / "run.json").read_text())["agents"]
    assert (agents["style"], agents["linear_tools"]) == ("react", "single_pass")
