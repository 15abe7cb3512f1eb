"""``alems track`` (alems.track): any command as one measured goal execution, appended to DIR.

The main test wraps a script that makes two chat calls (one plain, one streamed) through
the recording proxy to a fake OpenAI-compatible upstream on 127.0.0.1: goals.csv then has
``llm_calls = 2`` and the summed tokens. The first call measures the idle baseline and
stores it in DIR; the second call (through the ``alems`` command line) reuses it and
appends to the same goals.csv; ``--expect`` goes through the project's checker.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest
from fake_openai import AGENT_SCRIPT, COMPLETION_TOKENS, PROMPT_TOKENS, upstream  # noqa: F401 - fixture
from workloads import burn_command, cpu_seconds, model_meter, watts_per_busy_cpu

from alems.cli import main
from alems.errors import ConfigError
from alems.session import DirLock, SessionLockedError
from alems.track import judge, track_command

QUICK_BASELINE = {"settle_s": 0.0, "windows": 2, "window_s": 0.2, "max_retries": 0}


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    p = tmp_path / "agent.py"
    p.write_text(AGENT_SCRIPT)
    return p


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_track_two_chat_calls_through_the_proxy(tmp_path: Path, upstream, agent: Path, capsys) -> None:
    out = tmp_path / "run"
    sink = io.BytesIO()
    res = track_command(
        [sys.executable, str(agent)],
        out_dir=out,
        family="my_agent",
        mode="agentic",
        goal_id="q1",
        expect="42",
        kind="numeric",
        proxy_upstream=upstream.url,
        meter="model",
        baseline_config=QUICK_BASELINE,
        stdout=sink,
    )
    assert sink.getvalue().decode().strip() == "Answer: 42"  # the command's stdout is passed on
    assert (res.exit_code, res.success, res.llm_calls, res.call) == (0, True, 2, "0001")
    assert [r["path"] for r in upstream.requests] == ["/v1/chat/completions"] * 2
    assert {r["auth"] for r in upstream.requests} == {"Bearer sk-local-test"}
    (row,) = rows(out / "goals.csv")
    assert (row["family"], row["mode"], row["goal_id"], row["success"], row["final_attempt"]) == (
        "my_agent",
        "agentic",
        "q1",
        "True",
        "True",
    )
    assert (row["llm_calls"], row["tokens_in"], row["tokens_out"]) == (
        "2",
        str(2 * PROMPT_TOKENS),
        str(2 * COMPLETION_TOKENS),
    )
    assert row["answer"] == "Answer: 42" and row["expected"] == "42"
    assert row["energy_source"] == "modeled" and row["llm_j"] not in ("", "nan")
    assert (out / "idle.json").is_file()
    for name in ("samples.parquet", "events.jsonl", "goals.csv", "run.json"):
        assert (out / "calls" / "0001" / name).is_file()
    ends = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines() if '"llm_end"' in x]
    assert [(e["status"], e["tokens_out"]) for e in ends] == [(200, COMPLETION_TOKENS)] * 2
    # the LLM phases lie inside the attempt window, on the sampler's clock
    llm_t = [json.loads(x)["t"] for x in (out / "events.jsonl").read_text().splitlines() if '"llm_' in x]
    assert len(llm_t) == 4 and float(row["t0"]) < min(llm_t) <= max(llm_t) < float(row["t1"])
    assert "sk-local-test" not in (out / "events.jsonl").read_text() + (out / "run.json").read_text()

    # a second call through the command line: reuses DIR/idle.json, appends to DIR/goals.csv
    capsys.readouterr()
    rc = main(
        [
            "track",
            "--out",
            str(out),
            "--family",
            "my_agent",
            "--mode",
            "agentic",
            "--goal-id",
            "q2",
            "--expect",
            "41",
            "--kind",
            "numeric",
            "--proxy-upstream",
            upstream.url,
            "--meter",
            "model",
            "--",
            sys.executable,
            str(agent),
        ]
    )
    assert rc == 0  # the command's exit code; the verdict is in goals.csv
    assert "q2 agentic rep 0: failed (wrong answer), 2 LLM call(s)" in capsys.readouterr().err
    got = rows(out / "goals.csv")
    assert [(r["goal_id"], r["success"], r["error"], r["llm_calls"]) for r in got] == [
        ("q1", "True", "", "2"),
        ("q2", "False", "wrong answer", "2"),
    ]
    calls = [json.loads((out / "calls" / c / "run.json").read_text()) for c in ("0001", "0002")]
    assert calls[0]["baseline"]["baseline_id"] == calls[1]["baseline"]["baseline_id"]
    assert calls[1]["baseline"]["path"] == str(out / "idle.json")
    meta = json.loads((out / "run.json").read_text())
    assert (meta["kind"], meta["executions"], meta["successes"]) == ("track", 2, 1)
    assert [c["call"] for c in meta["calls"]] == ["0001", "0002"]
    assert {r["run_id"] for r in got} == {meta["run_id"]}

    # alems metrics reads the directory's goals.csv: EpG = all energy / the one success
    capsys.readouterr()
    assert main(["metrics", str(out / "goals.csv"), "--json", "--bootstrap", "0"]) == 0
    (cell,) = [c for c in json.loads(capsys.readouterr().out)["epg"] if c["family"] == "my_agent"]
    total = sum(float(r["raw_j"]) + float(r["gap_raw_j"]) for r in got)  # the default layer: total
    assert (cell["executions"], cell["successes"]) == (2, 1)
    assert cell["epg_j"] == pytest.approx(total, rel=1e-12)


def test_track_success_is_exit_code_without_expect(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = {"out_dir": out, "family": "f", "mode": "linear", "meter": None, "stdout": io.BytesIO()}
    ok = track_command([sys.executable, "-c", "print('hi')"], goal_id="a", **common)
    bad = track_command([sys.executable, "-c", "import sys; sys.exit(3)"], goal_id="b", **common)
    assert (ok.success, ok.exit_code) == (True, 0)
    assert (bad.success, bad.exit_code, bad.error) == (False, 3, "exit code 3")
    assert [(r["goal_id"], r["success"], r["energy_source"]) for r in rows(out / "goals.csv")] == [
        ("a", "True", "none"),
        ("b", "False", "none"),
    ]


def test_track_refuses_duplicates_locks_and_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = {"out_dir": out, "family": "f", "mode": "linear", "meter": None, "stdout": io.BytesIO()}
    track_command([sys.executable, "-c", "pass"], goal_id="a", **common)
    with pytest.raises(ConfigError, match="already holds goal a"):
        track_command([sys.executable, "-c", "pass"], goal_id="a", **common)
    track_command([sys.executable, "-c", "pass"], goal_id="a", rep=1, **common)
    with DirLock(out), pytest.raises(SessionLockedError):
        track_command([sys.executable, "-c", "pass"], goal_id="c", **common)
    with pytest.raises(ConfigError, match="not found"):
        track_command(["/nonexistent/agent"], goal_id="d", **common)
    with pytest.raises(ConfigError, match="not a number"):
        track_command([sys.executable, "-c", "pass"], goal_id="e", expect="forty", kind="numeric", **common)
    assert len(rows(out / "goals.csv")) == 2


def test_judge_uses_the_project_checker() -> None:
    assert judge("thinking...\nAnswer: 1,234 apples", 0, "1234", "numeric", family="f", goal_id="g") == (
        True,
        "",
    )
    assert judge("Answer: Paris", 0, "paris", "string", family="f", goal_id="g") == (True, "")
    assert judge("Answer: Lyon", 0, "paris", "string", family="f", goal_id="g") == (False, "wrong answer")
    assert judge("Answer: 42", 1, "42", "numeric", family="f", goal_id="g") == (False, "exit code 1")


def test_track_keeps_one_baseline_per_run(tmp_path: Path) -> None:
    from alems.baseline import BaselineConfig, measure_baseline, write_baseline
    from alems.energy import open_meter

    files = []
    for i in range(2):
        with open_meter("model") as meter:
            base = measure_baseline(meter, BaselineConfig.from_dict(QUICK_BASELINE), hw_hash=f"hw{i}")
        write_baseline(tmp_path / f"idle{i}.json", base)
        files.append(tmp_path / f"idle{i}.json")
    out = tmp_path / "run"
    common = {"out_dir": out, "family": "f", "mode": "linear", "meter": "model", "stdout": io.BytesIO()}
    track_command([sys.executable, "-c", "pass"], goal_id="a", baseline=files[0], **common)
    assert (out / "idle.json").read_bytes() == files[0].read_bytes()  # copied for the later calls
    track_command([sys.executable, "-c", "pass"], goal_id="b", **common)
    with pytest.raises(ConfigError, match="one run must use one baseline"):
        track_command([sys.executable, "-c", "pass"], goal_id="c", baseline=files[1], **common)
    ids = {
        json.loads((out / "calls" / c / "run.json").read_text())["baseline"]["baseline_id"]
        for c in ("0001", "0002")
    }
    assert len(ids) == 1


def test_track_attributes_a_known_cpu_workload_children_included(tmp_path: Path, proc_stat, capfd) -> None:
    """Under the CPU model with no idle power, the attributed energy of a tracked command is
    (P_max / n_cpus) x the CPU seconds of the command and its children: here 0.4 s burnt by
    the command and 0.4 s by a child it runs (the command reports the total it waited for).
    The idle baseline is a zero one (the model on a /proc/stat that never moves), so the
    expectation does not depend on what else the host runs. Within 5 %."""
    from alems.baseline import BaselineConfig, measure_baseline, write_baseline
    from alems.energy.model import CpuModelMeter, ModelParams

    zero = CpuModelMeter(ModelParams(p_idle_w=0.0, proc_stat=str(proc_stat.path)))
    base = measure_baseline(zero, BaselineConfig.from_dict(QUICK_BASELINE), hw_hash="hw", cpu_times=None)
    assert all(v == 0.0 for v in base.power_w.values())
    write_baseline(tmp_path / "idle.json", base)
    meter = model_meter()
    capfd.readouterr()
    res = track_command(
        burn_command(0.4, 0.4),
        out_dir=tmp_path / "run",
        family="f",
        mode="agentic",
        goal_id="burn",
        baseline=tmp_path / "idle.json",
        meter=meter,
        stdout=io.BytesIO(),
    )
    assert res.success
    cpu = cpu_seconds(capfd.readouterr().err)
    (row,) = rows(tmp_path / "run" / "goals.csv")
    want = watts_per_busy_cpu(meter) * cpu
    assert cpu > 0.8
    assert float(row["energy_j"]) == pytest.approx(want, rel=0.05)
