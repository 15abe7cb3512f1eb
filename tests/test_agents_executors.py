"""Executors and runner with the scripted backend: success paths, retries and their attempt
windows, backoff, LLM errors, failure injection, alternation, outputs and the CLI."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pandas as pd
import pytest

from alems.agents import (
    ATTEMPT_FIELDS,
    AgentConfig,
    EventLog,
    execute_family,
    mode_order,
    read_events,
    run_execution,
    write_attempts_csv,
)
from alems.agents.executors import INJECTED_TIMEOUT, INJECTED_TOOL_FAILURE, VERIFY_REJECTED, parse_verdict
from alems.agents.runner import parse_modes
from alems.errors import ConfigError
from alems.jobs.standalone import plan_standalone, run_standalone
from alems.llm.base import LLMTimeout, LLMUnavailable
from alems.llm.scripted import ScriptedBackend
from alems.tasks import Goal, get_family

Messages = list[dict[str, str]]


# --------------------------------------------------------------------------- helpers
def _kind(messages: Messages) -> str:
    """Which call of the protocol a message list is."""
    system, last = messages[0]["content"], messages[-1]["content"]
    if "cannot run tools" in system:
        return "linear"
    if "Write the plan now" in last:
        return "plan"
    if last.startswith(("Result of step", "Step ")):
        return "step"
    if last.startswith("Now give the final answer"):
        return "synthesise"
    if last.startswith("Check your final answer"):
        return "verify"
    raise AssertionError(f"unexpected call: {last!r}")


def agent(
    *,
    linear: Callable[[Messages], str] | str = "Answer: 42",
    plans: list[str | BaseException] | None = None,
    final: str = "Answer: 42",
    verdicts: list[str] | None = None,
) -> ScriptedBackend:
    """A scripted backend that answers each call kind from its own queue."""
    plan_q = list(plans or ['{"steps": [{"action": "calculator", "input": "40 + 2"}]}'])
    verdict_q = list(verdicts or ['"YES"'])

    def script(messages: Messages):
        kind = _kind(messages)
        if kind == "linear":
            return linear(messages) if callable(linear) else linear
        if kind == "plan":
            return plan_q.pop(0) if len(plan_q) > 1 else plan_q[0]
        if kind == "step":
            return "The result is noted."
        if kind == "synthesise":
            return final
        return verdict_q.pop(0) if len(verdict_q) > 1 else verdict_q[0]

    return ScriptedBackend(script)


def numeric_goal(expected: str = "42", **kw) -> Goal:
    return Goal(
        family="toy",
        goal_id=kw.pop("goal_id", "toy-1"),
        prompt="What is 40 + 2?",
        expected=expected,
        answer_kind="numeric",
        tools=("calculator",),
        **kw,
    )


class Sleeps(list):
    def __call__(self, s: float) -> None:
        self.append(s)


def fake_clock():
    ticks = itertools.count()
    return lambda: float(next(ticks))


def run_one(tmp_path, goal, mode, backend, cfg=None, family=None, rep=0):
    sleeps = Sleeps()
    family = family or get_family("gsm8k_basic_local")
    with EventLog(tmp_path / "events.jsonl", clock=fake_clock()) as log:
        rows = run_execution(
            family,
            goal,
            mode,
            rep=rep,
            backend=backend,
            events=log,
            cfg=cfg or AgentConfig(),
            workdir=tmp_path / "work",
            sleep=sleeps,
        )
    return rows, read_events(tmp_path / "events.jsonl"), sleeps


def kinds(events, **match):
    return [(e["kind"], e.get("name")) for e in events if all(e.get(k) == v for k, v in match.items())]


def check_windows(events) -> None:
    """Every llm/tool event lies inside its attempt window; windows do not overlap."""
    open_attempt = None
    for e in events:
        if e["kind"] == "attempt_start":
            assert open_attempt is None
            open_attempt = e["attempt"]
        elif e["kind"] == "attempt_end":
            assert open_attempt == e["attempt"]
            open_attempt = None
        elif e["kind"] in ("llm_start", "llm_end", "tool_start", "tool_end"):
            assert open_attempt == e["attempt"], e
        else:
            assert open_attempt is None and e["attempt"] == 0
    assert all(a["t"] < b["t"] for a, b in itertools.pairwise(events))


# --------------------------------------------------------------------------- linear
def test_linear_one_call_no_tools(tmp_path) -> None:
    rows, events, sleeps = run_one(
        tmp_path, numeric_goal(), "linear", agent(linear="40 + 2 = 42\nAnswer: 42")
    )
    assert len(rows) == 1
    r = rows[0]
    assert (r.success, r.final_attempt, r.attempt, r.llm_calls, r.tool_calls, r.error) == (
        True,
        True,
        1,
        1,
        0,
        "",
    )
    assert r.tokens_in > 0 and r.tokens_out == 7  # the scripted tokenizer splits on whitespace
    assert kinds(events) == [
        ("goal_start", None),
        ("attempt_start", None),
        ("llm_start", "answer"),
        ("llm_end", "answer"),
        ("attempt_end", None),
        ("goal_end", None),
    ]
    check_windows(events)
    assert sleeps == []


def test_linear_wrong_answer_is_not_retried(tmp_path) -> None:
    rows, _, _ = run_one(tmp_path, numeric_goal(), "linear", agent(linear="Answer: 41"))
    assert len(rows) == 1 and not rows[0].success and rows[0].answer == "Answer: 41"


def test_linear_file_goal_harness_writes_the_file(tmp_path) -> None:
    fam = get_family("tg_sequential_2")
    goal = fam.generate(0, 1)[0]
    be = agent(linear=f"I added it up.\nAnswer: {goal.expected}")
    rows, events, _ = run_one(tmp_path, goal, "linear", be, family=fam)
    assert rows[0].success
    written = tmp_path / "work" / goal.goal_id / "rep0" / "linear" / "attempt1" / "sandbox" / "result.txt"
    assert written.read_text().endswith(f"Answer: {goal.expected}")
    assert not any(e["kind"].startswith("tool") for e in events)  # the harness write is not a tool call
    rows, _, _ = run_one(tmp_path / "b", goal, "linear", agent(linear="Answer: 999999"), family=fam)
    assert not rows[0].success


# --------------------------------------------------------------------------- agentic
def test_agentic_plan_tool_synthesise_verify(tmp_path) -> None:
    be = agent()
    rows, events, _ = run_one(tmp_path, numeric_goal(), "agentic", be)
    assert len(rows) == 1 and rows[0].success
    assert (rows[0].llm_calls, rows[0].tool_calls) == (4, 1)
    assert kinds(events)[1:-1] == [
        ("attempt_start", None),
        ("llm_start", "plan"),
        ("llm_end", "plan"),
        ("tool_start", "calculator"),
        ("tool_end", "calculator"),
        ("llm_start", "step"),
        ("llm_end", "step"),
        ("llm_start", "synthesise"),
        ("llm_end", "synthesise"),
        ("llm_start", "verify"),
        ("llm_end", "verify"),
        ("attempt_end", None),
    ]
    check_windows(events)
    # the tool result comes back as a user message asking for a plain sentence
    step_call = be.calls[1]["messages"]
    assert step_call[-1] == {
        "role": "user",
        "content": "Result of step 1 (calculator): 42\nState this result in one plain sentence.",
    }
    # plan and verify are schema-constrained; the plan schema offers the goal's tools
    shapes = be.calls[0]["json_schema"]["properties"]["steps"]["items"]["anyOf"]
    assert [sh["properties"]["action"]["const"] for sh in shapes] == ["calculator", "llm"]
    assert be.calls[3]["json_schema"]["properties"]["verdict"] == {"enum": ["YES", "NO"]}
    # same task text in both modes
    assert be.calls[0]["messages"][1]["content"].startswith("What is 40 + 2?")


def test_agentic_without_verify_and_json_schema(tmp_path) -> None:
    be = agent()
    rows, events, _ = run_one(
        tmp_path, numeric_goal(), "agentic", be, AgentConfig(verify=False, json_schema=False)
    )
    assert rows[0].success and rows[0].llm_calls == 3
    assert not any(n == "verify" for _, n in kinds(events))
    assert all(c["json_schema"] is None for c in be.calls)


def test_agentic_db_and_file_goal_uses_real_tools(tmp_path) -> None:
    fam = get_family("tg_sequential_2")
    goal = fam.generate(0, 1)[0]
    plan = json.dumps(
        {
            "steps": [
                {"action": "sql", "input": goal.db_query},
                {"action": "write_file", "file": "result.txt", "input": "{1}"},
            ]
        }
    )
    rows, events, _ = run_one(tmp_path, goal, "agentic", agent(plans=[plan], final="Done."), family=fam)
    assert rows[0].success, rows[0]
    assert rows[0].answer == goal.expected  # the judged file content
    assert rows[0].tool_calls == 2
    assert [n for k, n in kinds(events) if k == "tool_end"] == ["sql", "write_file"]
    # a per-attempt copy of the database was used
    assert (tmp_path / "work" / goal.goal_id / "rep0" / "agentic" / "attempt1" / "db.sqlite").exists()


def test_agentic_file_goal_fails_without_the_file(tmp_path) -> None:
    fam = get_family("tg_sequential_2")
    goal = fam.generate(0, 1)[0]
    plan = json.dumps({"steps": [{"action": "sql", "input": goal.db_query}]})
    rows, _, _ = run_one(
        tmp_path, goal, "agentic", agent(plans=[plan], final=f"Answer: {goal.expected}"), family=fam
    )
    assert not rows[0].success  # the text answer is right, but no file was written


# --------------------------------------------------------------------------- retries
def test_plan_parse_failure_retries_with_backoff_and_windows(tmp_path) -> None:
    be = agent(
        plans=[
            "I think the answer is 42",
            '{"steps": [{"action": "python", "input": "x"}]}',
            '{"steps": [{"action": "calculator", "input": "40+2"}]}',
        ]
    )
    cfg = AgentConfig(max_attempts=3, backoff_s=0.5, backoff_factor=3.0)
    rows, events, sleeps = run_one(tmp_path, numeric_goal(), "agentic", be, cfg)
    assert [r.attempt for r in rows] == [1, 2, 3]
    assert [r.final_attempt for r in rows] == [False, False, True]
    assert [r.success for r in rows] == [False, False, True]
    assert "plan parse error: the plan is not JSON" in rows[0].error
    assert "step 1 names action 'python'" in rows[1].error
    assert sleeps == [0.5, 1.5]
    starts = [e for e in events if e["kind"] == "attempt_start"]
    ends = [e for e in events if e["kind"] == "attempt_end"]
    assert [e["attempt"] for e in starts] == [1, 2, 3] == [e["attempt"] for e in ends]
    assert "plan parse error" in ends[0]["error"] and "error" not in ends[2]
    check_windows(events)
    # the next plan request names the previous failure
    plan_prompts = [c["messages"][1]["content"] for c in be.calls if _kind(c["messages"]) == "plan"]
    assert "Your previous attempt failed: plan parse error" in plan_prompts[1]
    assert "Your previous attempt failed" not in plan_prompts[0]


def test_tool_error_ends_the_attempt_and_exhausts_attempts(tmp_path) -> None:
    be = agent(plans=['{"steps": [{"action": "calculator", "input": "1/0"}]}'])
    rows, events, sleeps = run_one(
        tmp_path, numeric_goal(), "agentic", be, AgentConfig(max_attempts=2, backoff_s=0)
    )
    assert len(rows) == 2 and not any(r.success for r in rows) and rows[-1].final_attempt
    assert rows[0].error == "step 1 (calculator): error: division by zero"
    tool_ends = [e for e in events if e["kind"] == "tool_end"]
    assert [e["error"] for e in tool_ends] == ["error: division by zero"] * 2
    assert [e.get("error") for e in events if e["kind"] == "goal_end"] == [rows[-1].error]
    assert sleeps == [0.0]


def test_bad_step_reference_is_a_tool_error(tmp_path) -> None:
    be = agent(plans=['{"steps": [{"action": "calculator", "input": "{2} + 1"}]}'])
    rows, events, _ = run_one(tmp_path, numeric_goal(), "agentic", be, AgentConfig(max_attempts=1))
    assert "points to a step that has no result yet" in rows[0].error
    assert kinds(events, kind="tool_end") == [("tool_end", "calculator")]


def test_verify_no_retries_but_never_overrides_the_checker(tmp_path) -> None:
    be = agent(verdicts=["NO", "NO"], final="Answer: 42")
    rows, _, sleeps = run_one(
        tmp_path, numeric_goal(), "agentic", be, AgentConfig(max_attempts=2, backoff_s=0.1)
    )
    assert [r.error for r in rows] == [f"{VERIFY_REJECTED}: no reason given"] * 2
    assert [r.answer_correct for r in rows] == [True, True]
    # success only on the final row; the rejected final answer is still checked
    assert [r.success for r in rows] == [False, True]
    assert sleeps == [0.1]
    be = agent(verdicts=["YES"], final="Answer: 41")
    rows, _, _ = run_one(tmp_path / "b", numeric_goal(), "agentic", be)
    assert len(rows) == 1 and not rows[0].success  # a YES does not make a wrong answer right


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('"YES"', True),
        ("no.", False),
        ("Incorrect", False),
        ("", None),
        ("maybe", None),
        ("Yes, it is", True),
    ],
)
def test_parse_verdict(text: str, verdict) -> None:
    assert parse_verdict(text) is verdict


# --------------------------------------------------------------------------- LLM errors
@pytest.mark.parametrize("mode", ["linear", "agentic"])
def test_llm_errors_fail_the_attempt_never_crash(tmp_path, mode: str) -> None:
    err = LLMUnavailable("connection refused by 127.0.0.1:8080", fix="start the server")
    be = ScriptedBackend([err, err, err])
    rows, events, sleeps = run_one(
        tmp_path, numeric_goal(), mode, be, AgentConfig(max_attempts=3, backoff_s=1.0)
    )
    assert len(rows) == 3 and not any(r.success for r in rows)
    first = "answer" if mode == "linear" else "plan"
    assert rows[0].error == f"{first}: LLMUnavailable: connection refused by 127.0.0.1:8080"
    llm_ends = [e for e in events if e["kind"] == "llm_end"]
    assert all(e["error"] == "LLMUnavailable: connection refused by 127.0.0.1:8080" for e in llm_ends)
    assert sleeps == [1.0, 2.0]
    check_windows(events)


def test_llm_timeout_midway_then_recovery(tmp_path) -> None:
    replies = [
        '{"steps": [{"action": "calculator", "input": "40+2"}]}',
        LLMTimeout("no reply within 120 s"),
        '{"steps": [{"action": "calculator", "input": "40+2"}]}',
        "It is 42.",
        "Answer: 42",
        "YES",
    ]
    rows, events, _ = run_one(tmp_path, numeric_goal(), "agentic", ScriptedBackend(replies))
    assert [r.success for r in rows] == [False, True]
    assert rows[0].error == "step: LLMTimeout: no reply within 120 s"
    assert rows[0].tool_calls == 1 and rows[0].llm_calls == 2


# --------------------------------------------------------------------------- failure injection
def test_injected_tool_failures_are_seeded_and_recorded(tmp_path) -> None:
    fam = get_family("gsm8k_basic_local")
    goals = [numeric_goal(goal_id=f"toy-{i}") for i in range(12)]
    cfg = AgentConfig(inject_tool_failure_rate=0.5, seed=7, backoff_s=0, max_attempts=3)

    def go(d):
        with EventLog(d / "events.jsonl", clock=fake_clock()) as log:
            rows = execute_family(
                fam,
                goals,
                modes=("agentic",),
                rep=0,
                backend=agent(),
                events=log,
                cfg=cfg,
                workdir=d / "w",
                progress=False,
                sleep=lambda s: None,
            )
        return rows, read_events(d / "events.jsonl")

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rows_a, ev_a = go(tmp_path / "a")
    rows_b, ev_b = go(tmp_path / "b")
    assert [(r.goal_id, r.attempt, r.error) for r in rows_a] == [
        (r.goal_id, r.attempt, r.error) for r in rows_b
    ]
    injected = [e for e in ev_a if e.get("error") == INJECTED_TOOL_FAILURE]
    assert injected and all(e["kind"] == "tool_end" for e in injected)
    failed = [r for r in rows_a if r.error]
    assert len(failed) == len(injected)
    assert all(r.error == f"step 1 (calculator): error: {INJECTED_TOOL_FAILURE}" for r in failed)
    assert 0.2 < len(injected) / sum(r.tool_calls for r in rows_a) < 0.8
    # a different seed gives a different pattern
    cfg = AgentConfig(inject_tool_failure_rate=0.5, seed=8, backoff_s=0, max_attempts=3)
    (tmp_path / "c").mkdir()
    rows_c, _ = go(tmp_path / "c")
    assert [r.error for r in rows_c] != [r.error for r in rows_a]


def test_injected_timeouts_hit_both_modes_and_wait(tmp_path) -> None:
    cfg = AgentConfig(inject_timeout_rate=1.0, inject_timeout_s=2.5, max_attempts=2, backoff_s=0)
    for mode in ("linear", "agentic"):
        be = agent()
        rows, events, sleeps = run_one(tmp_path / mode, numeric_goal(), mode, be, cfg)
        assert not any(r.success for r in rows) and len(rows) == 2
        assert be.calls == []  # the backend was never reached
        ends = [e for e in events if e["kind"] == "llm_end"]
        assert len(ends) == 2 and all(e["error"] == INJECTED_TIMEOUT for e in ends)
        assert rows[0].error.endswith(f"LLMTimeout: {INJECTED_TIMEOUT}")
        assert sleeps == [2.5, 0.0, 2.5]  # injected waits and the backoff between attempts


def test_injection_off_by_default_draws_nothing(tmp_path) -> None:
    rows, events, _ = run_one(tmp_path, numeric_goal(), "agentic", agent())
    assert rows[0].success and not any("injected" in str(e.get("error")) for e in events)


# --------------------------------------------------------------------------- runner
def test_mode_order_alternates() -> None:
    m = ("linear", "agentic")
    assert [mode_order(i, 0, m)[0] for i in range(4)] == ["linear", "agentic", "linear", "agentic"]
    assert [mode_order(i, 1, m)[0] for i in range(4)] == ["agentic", "linear", "agentic", "linear"]
    assert mode_order(3, 0, ("agentic",)) == ["agentic"]


def test_execute_family_alternates_and_runs_back_to_back(tmp_path) -> None:
    fam = get_family("gsm8k_basic_local")
    goals = fam.generate(0, 4)
    for rep in (0, 1):
        with EventLog(tmp_path / f"e{rep}.jsonl", clock=fake_clock()) as log:
            rows = execute_family(
                fam,
                goals,
                modes="linear,agentic",
                rep=rep,
                backend=agent(),
                events=log,
                cfg=AgentConfig(),
                workdir=tmp_path / "w",
                progress=False,
            )
        starts = [
            (e["goal_id"], e["mode"])
            for e in read_events(tmp_path / f"e{rep}.jsonl")
            if e["kind"] == "goal_start"
        ]
        expected = []
        for i, g in enumerate(goals):
            expected += [(g.goal_id, m) for m in mode_order(i, rep, ("linear", "agentic"))]
        assert starts == expected
        assert [(r.goal_id, r.mode) for r in rows if r.final_attempt] == expected
        assert {r.rep for r in rows} == {rep}


def test_each_rep_passes_its_own_seed_to_the_llm(tmp_path) -> None:
    seen: list[int] = []

    class Recording(ScriptedBackend):
        def complete(self, messages, **kw):  # type: ignore[no-untyped-def]
            seen.append(kw["seed"])
            return super().complete(messages, **kw)

    for rep in (0, 2):
        run_one(
            tmp_path / f"r{rep}",
            numeric_goal(),
            "agentic",
            Recording(agent()._script),
            cfg=AgentConfig(seed=5),
            rep=rep,
        )
    assert set(seen[: len(seen) // 2]) == {5} and set(seen[len(seen) // 2 :]) == {7}


def test_parse_modes_errors() -> None:
    assert parse_modes("linear, agentic") == ("linear", "agentic")
    with pytest.raises(ConfigError, match="unknown mode"):
        parse_modes("linear,react")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_modes("linear,linear")
    with pytest.raises(ConfigError, match="no modes"):
        parse_modes("")


def test_alems_run_without_energy_outputs_and_determinism(tmp_path) -> None:
    def run(d):
        plan = plan_standalone(
            "logical_reasoning_local",
            out_dir=d,
            tasks=6,
            reps=2,
            seed=3,
            config={"agents": {"keep_workdirs": False}},
        )
        return run_standalone(
            plan,
            energy=False,
            backend=agent(
                linear="Answer: yes",
                final="Answer: no",
                plans=['{"steps": [{"action": "llm", "input": "x"}]}'],
            ),
            progress=False,
            clock=fake_clock(),
            sleep=lambda s: None,
        )

    s1 = run(tmp_path / "a")
    s2 = run(tmp_path / "b")
    df = pd.read_csv(tmp_path / "a" / "attempts.csv")
    assert tuple(df.columns) == ATTEMPT_FIELDS
    assert len(df[df.final_attempt]) == 6 * 2 * 2
    assert (tmp_path / "a" / "events.jsonl").read_text() == (tmp_path / "b" / "events.jsonl").read_text()
    assert df.equals(pd.read_csv(tmp_path / "b" / "attempts.csv"))
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info["family"] == "logical_reasoning_local" and info["tasks"] == 6 and info["reps"] == 2
    assert [c["mode"] for c in info["cells"]] == ["linear", "agentic"]
    assert s1.cells[0].executions == 12 and s1.to_dict()["cells"] == s2.to_dict()["cells"]
    # linear always says yes, agentic always says no: successes follow the ground truth
    goals = get_family("logical_reasoning_local").generate(3, 6)
    assert s1.cells[0].successes == 2 * sum(g.expected == "yes" for g in goals)
    assert s1.cells[1].successes == 2 * sum(g.expected == "no" for g in goals)
    assert not any((tmp_path / "a" / "work").rglob("sandbox"))  # keep_workdirs=False cleaned up


def test_write_attempts_csv_is_atomic(tmp_path, monkeypatch) -> None:
    path = tmp_path / "attempts.csv"
    path.write_text("old")
    import alems.agents.runner as runner_mod

    def boom(df_self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(RuntimeError):
        write_attempts_csv([], path)
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    assert runner_mod.write_attempts_csv is write_attempts_csv


def test_cli_run_scripted(tmp_path, capsys) -> None:
    from alems.cli import main

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
            "--script",
            "Answer: 5",
            "--out",
            str(out),
            "--backoff",
            "0",
            "--no-progress",
            "--max-tokens",
            "plan=50",
            "--max-attempts",
            "2",
            "--no-energy",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "gsm8k_basic_local (reasoning)" in text and "linear" in text and "agentic" in text
    df = pd.read_csv(out / "attempts.csv")
    assert set(df["mode"]) == {"linear", "agentic"} and df["attempt"].max() == 2
    assert json.loads((out / "run.json").read_text())["agents"]["max_tokens"]["plan"] == 50
    assert read_events(out / "events.jsonl")


@pytest.mark.parametrize("energy", [False, True])
def test_cli_max_tokens_merge_with_the_config_file(tmp_path, capsys, monkeypatch, energy) -> None:
    from alems.cli import main

    monkeypatch.chdir(tmp_path)  # --meter model caches its baseline under resources/
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "agents: {max_tokens: {linear: 77, step: 33}}\nbaseline: {settle_s: 0, windows: 2, window_s: 0.1}\n"
    )
    out = tmp_path / "out"
    args = [
        "run",
        "--family",
        "gsm8k_basic_local",
        "--tasks",
        "1",
        "--backend",
        "scripted",
        "--script",
        "Answer: 5",
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--backoff",
        "0",
        "--no-progress",
        "--max-tokens",
        "plan=50",
    ]
    assert main([*args, *(["--meter", "model"] if energy else ["--no-energy"])]) == 0
    capsys.readouterr()
    got = AgentConfig.from_dict(json.loads((out / "run.json").read_text())["agents"]).max_tokens
    assert (got["answer"], got["step"], got["plan"]) == (77, 33, 50)  # linear is answer's older name


def test_cli_run_errors(tmp_path, capsys) -> None:
    from alems.cli import main

    assert (
        main(
            [
                "run",
                "--family",
                "nope",
                "--backend",
                "scripted",
                "--script",
                "x",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "unknown task family 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "--family",
                "gsm8k_basic_local",
                "--backend",
                "scripted",
                "--script",
                "x",
                "--out",
                str(tmp_path),
                "--max-tokens",
                "plan",
            ]
        )
        == 2
    )
    assert "is not KIND=N" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "--family",
                "gsm8k_basic_local",
                "--backend",
                "scripted",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "llm.script is empty" in capsys.readouterr().err
