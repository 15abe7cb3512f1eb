"""The Session/goal/attempt API (alems.session).

* Two goals with the model meter, one succeeding after a failed attempt: ``alems metrics``
  on the resulting goals.csv gives the EpG computed by hand from that file.
* A constant-power fake meter (truth known: E = P x t on the sampler's clock): every
  attempt's energy is P x its duration, the retry gap is P x the gap, and the phases sum
  to the attempt.
* Exceptions inside an attempt are recorded (error = the exception's type) and re-raised;
  an attempt without a verdict fails with ``no verdict``; a session left by an exception
  still writes its files, marked aborted.
* A second session on the same directory refuses to start (lock), and so does one on a
  directory that already holds a run. ``meter=None`` works with no energy.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

import pytest
from workloads import model_meter, run_burn, watts_per_busy_cpu

from alems import Session
from alems.cli import main
from alems.energy.base import Domain, Meter
from alems.session import SessionError, SessionLockedError

QUICK_BASELINE = {"settle_s": 0.0, "windows": 2, "window_s": 0.2, "max_retries": 0}
BLOCK = b"\x5a" * (1 << 16)


def burn(seconds: float) -> None:
    """Burn about ``seconds`` of this process's CPU time (bounded in wall time)."""
    start, wall_end = time.process_time(), time.monotonic() + 20 * seconds + 1.0
    while time.process_time() - start < seconds and time.monotonic() < wall_end:
        hashlib.sha256(BLOCK).digest()


class ConstantPowerMeter(Meter):
    """A measured ``package-0`` domain whose counter is exactly ``watts`` x ``clock()``."""

    name = "constant"

    def __init__(self, watts: float = 10.0, clock=time.monotonic) -> None:
        self.watts = watts
        self.clock = clock
        self.t0 = clock()

    def domains(self) -> list[Domain]:
        return [
            Domain(key="package-0", kind="package", source="measured", meter="fake", max_power_w=self.watts)
        ]

    def read_raw(self) -> dict[str, float]:
        return {"package-0": self.watts * (self.clock() - self.t0)}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_goals_model_meter_metrics_equals_hand_epg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with Session(out, meter="model", baseline="none") as s:
        with s.goal("g1", family="support_bot", mode="agentic", rep=0, expected="42") as g:
            with g.attempt() as a:
                with a.llm(model="gpt-x") as call:
                    burn(0.05)
                    call.tokens(tokens_in=30, tokens_out=5)
                a.fail("wrong answer", answer="41")
            time.sleep(0.02)  # the retry decision: a gap
            with g.attempt() as a:
                with a.llm(model="gpt-x") as call:
                    burn(0.05)
                    call.tokens(tokens_in=40, tokens_out=6)
                with a.tool("search"):
                    burn(0.02)
                a.succeed(answer="42")
        with s.goal("g2", family="support_bot", mode="agentic", rep=0) as g, g.attempt() as a:
            with a.llm(model="gpt-x") as call:
                burn(0.05)
                call.tokens(tokens_in=20, tokens_out=3)
            a.succeed()
    for name in ("samples.parquet", "events.jsonl", "goals.csv", "run.json"):
        assert (out / name).is_file(), name
    rows = read_rows(out / "goals.csv")
    assert [(r["goal_id"], r["attempt"], r["success"], r["final_attempt"], r["error"]) for r in rows] == [
        ("g1", "1", "False", "False", "wrong answer"),
        ("g1", "2", "True", "True", ""),
        ("g2", "1", "True", "True", ""),
    ]
    assert [(r["llm_calls"], r["tool_calls"], r["tokens_in"], r["tokens_out"]) for r in rows] == [
        ("1", "0", "30", "5"),
        ("1", "1", "40", "6"),
        ("1", "0", "20", "3"),
    ]
    assert {r["energy_source"] for r in rows} == {"modeled"}
    assert all(float(r["coverage"]) == 1.0 for r in rows)  # boundary reads at every edge
    assert all(float(r["energy_j"]) > 0 for r in rows)
    assert float(rows[0]["gap_j"]) == 0.0
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "complete" and meta["executions"] == 2 and meta["successes"] == 2
    assert meta["baseline"]["status"] == "none"

    # EpG by hand, in each energy layer: every attempt's energy plus its gap, failed attempt
    # included, over the successes
    successes = sum(r["final_attempt"] == "True" and r["success"] == "True" for r in rows)
    columns = {
        "total": ("raw_j", "gap_raw_j"),
        "dynamic": ("dynamic_j", "gap_dynamic_j"),
        "attributed": ("energy_j", "gap_j"),
    }
    for layer, (energy, gap) in columns.items():
        total = sum(float(r[energy]) + float(r[gap]) for r in rows)
        assert main(["metrics", str(out / "goals.csv"), "--json", "--bootstrap", "0", "--layer", layer]) == 0
        (cell,) = [c for c in json.loads(capsys.readouterr().out)["epg"] if c["family"] == "support_bot"]
        assert (cell["family"], cell["mode"], cell["executions"], cell["successes"]) == (
            "support_bot",
            "agentic",
            2,
            2,
        )
        assert cell["epg_j"] == pytest.approx(total / successes, rel=1e-12, abs=1e-12), layer
        assert cell["energy_source"] == "modeled" and cell["energy_layer"] == layer


def test_constant_power_truth(tmp_path: Path, clock) -> None:
    """Time moves only when the test says so; the counter is P x time: every number is known."""
    watts = 10.0
    meter = ConstantPowerMeter(watts, clock)
    with Session(tmp_path / "run", meter=meter, baseline="none", attribution="none", clock=clock) as s:
        clock.advance(1.0)  # set-up: framework overhead, in no goal
        with s.goal("g1", family="f", mode="linear") as g:
            with g.attempt() as a:
                clock.advance(0.25)
                with a.llm():
                    clock.advance(2.0)
                a.fail("no")
            clock.advance(0.5)  # the retry gap
            with g.attempt() as a:
                with a.tool("t"):
                    clock.advance(1.0)
                clock.advance(0.125)
                a.succeed()
    rows = read_rows(tmp_path / "run" / "goals.csv")
    got = [
        (
            float(r["duration_s"]),
            float(r["energy_j"]),
            float(r["llm_j"]),
            float(r["tool_j"]),
            float(r["orchestration_j"]),
            float(r["gap_j"]),
        )
        for r in rows
    ]
    want = [(2.25, 22.5, 20.0, 0.0, 2.5, 0.0), (1.125, 11.25, 0.0, 10.0, 1.25, 5.0)]
    assert got == [pytest.approx(w, rel=1e-12, abs=1e-9) for w in want]
    assert [r["raw_j"] == r["dynamic_j"] for r in rows] == [True, True]  # baseline none: P_idle = 0
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["baseline"]["status"] == "none"
    assert meta["framework_overhead_j"] == pytest.approx(10.0, rel=1e-12)


class RampPowerMeter(ConstantPowerMeter):
    """A measured ``package-0`` whose power rises linearly: P(x) = 10 + 4x W, x = seconds since
    construction, so its counter is E(x) = 10x + 2x² J."""

    def read_raw(self) -> dict[str, float]:
        return {"package-0": ramp_energy(self.clock() - self.t0)}


def ramp_energy(x: float) -> float:
    return 10.0 * x + 2.0 * x * x


def test_phases_equal_independently_integrated_phase_windows(tmp_path: Path, clock) -> None:
    """Under a rising power, each phase's energy is the integral of P over that phase's own
    windows, taken here from the script's instants; ``orchestration_j`` (the residual in
    the code) must equal the integral over the time in neither an LLM call nor a tool."""
    meter = RampPowerMeter(clock=clock)

    def e(a: float, b: float) -> float:  # the integral of P over [a, b], seconds since t0
        return ramp_energy(b) - ramp_energy(a)

    with Session(tmp_path / "run", meter=meter, baseline="none", attribution="none", clock=clock) as s:
        clock.advance(1.0)
        with s.goal("g1", family="f", mode="agentic") as g:
            with g.attempt() as a:  # [1, 4.875]
                clock.advance(0.25)
                with a.llm():  # [1.25, 3.25]
                    clock.advance(2.0)
                clock.advance(0.5)
                with a.tool("t"):  # [3.75, 4.75]
                    clock.advance(1.0)
                clock.advance(0.125)
                a.fail("no")
            clock.advance(0.5)  # the gap [4.875, 5.375]
            with g.attempt() as a:  # [5.375, 7.625]
                with a.llm():  # [5.375, 6.875]
                    clock.advance(1.5)
                with a.tool("t"):  # [6.875, 7.625]
                    clock.advance(0.75)
                a.succeed()
    rows = read_rows(tmp_path / "run" / "goals.csv")
    got = [
        {k: float(r[k]) for k in ("energy_j", "llm_j", "tool_j", "orchestration_j", "gap_j")} for r in rows
    ]
    want = [
        {
            "energy_j": e(1.0, 4.875),
            "llm_j": e(1.25, 3.25),
            "tool_j": e(3.75, 4.75),
            "orchestration_j": e(1.0, 1.25) + e(3.25, 3.75) + e(4.75, 4.875),
            "gap_j": 0.0,
        },
        {
            "energy_j": e(5.375, 7.625),
            "llm_j": e(5.375, 6.875),
            "tool_j": e(6.875, 7.625),
            "orchestration_j": 0.0,
            "gap_j": e(4.875, 5.375),
        },
    ]
    assert want[0]["llm_j"] == pytest.approx(38.0)  # 10 x 2 + 2 (3.25² - 1.25²)
    for g_row, w_row in zip(got, want, strict=True):
        assert g_row == {k: pytest.approx(v, rel=1e-9, abs=1e-9) for k, v in w_row.items()}


def test_measured_baseline_is_stored_and_reusable(tmp_path: Path) -> None:
    with Session(tmp_path / "a", meter="model", baseline="measure", baseline_config=QUICK_BASELINE) as s:
        with s.goal("g1", family="f", mode="linear") as g, g.attempt() as a:
            a.succeed()
    first = json.loads((tmp_path / "a" / "run.json").read_text())["baseline"]
    assert first["path"] == str(tmp_path / "a" / "idle.json") and first["modeled"] is True
    with Session(tmp_path / "b", meter="model", baseline=tmp_path / "a" / "idle.json") as s:
        with s.goal("g1", family="f", mode="linear") as g, g.attempt() as a:
            a.succeed()
    second = json.loads((tmp_path / "b" / "run.json").read_text())["baseline"]
    assert second["baseline_id"] == first["baseline_id"]
    assert not (tmp_path / "b" / "idle.json").exists()


def test_the_baselines_background_reaches_the_sessions_accounting(tmp_path: Path, monkeypatch) -> None:
    """DESIGN.md, L2: accounting divides by the net busy time Δsys − b·Δt, b = the busy
    CPU-seconds per second the idle baseline saw. A Session passes the b of its baseline (its
    host_util × CPUs), as the pipeline does, so a background the baseline already holds is not
    removed a second time (b was left out before: the Session's α divided by all busy time)."""
    import dataclasses

    import alems.session.core as core
    from alems.baseline import load_baseline
    from alems.energy.procstat import ProcStat

    with Session(tmp_path / "a", meter="model", baseline="measure", baseline_config=QUICK_BASELINE) as s:
        with s.goal("g1", family="f", mode="linear") as g, g.attempt() as a:
            a.succeed()
    base = dataclasses.replace(load_baseline(tmp_path / "a" / "idle.json"), host_util=0.5)
    seen: list[float | None] = []
    real = core.account

    def spy(*args, **kwargs):
        seen.append(kwargs.get("idle_busy_cpu_per_s"))
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "account", spy)
    with Session(tmp_path / "b", meter="model", baseline=base) as s:
        with s.goal("g1", family="f", mode="linear") as g, g.attempt() as a:
            a.succeed()
    assert seen == [pytest.approx(0.5 * ProcStat().n_cpus)]


def test_exception_in_attempt_is_recorded_and_reraised(tmp_path: Path) -> None:
    with Session(tmp_path / "run", meter=None) as s, s.goal("g1", family="f", mode="agentic") as g:
        with pytest.raises(ZeroDivisionError), g.attempt() as a, a.llm(model="m") as call:
            call.tokens(tokens_in=5)
            1 / 0  # noqa: B018
        with g.attempt() as a:
            a.succeed()
    rows = read_rows(tmp_path / "run" / "goals.csv")
    assert [(r["attempt"], r["success"], r["error"]) for r in rows] == [
        ("1", "False", "ZeroDivisionError"),
        ("2", "True", ""),
    ]
    events = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    llm_end = next(e for e in events if e["kind"] == "llm_end")
    assert llm_end["error"] == "ZeroDivisionError" and llm_end["tokens_in"] == 5
    att_end = next(e for e in events if e["kind"] == "attempt_end")
    assert att_end["error"] == "ZeroDivisionError"


def test_exception_leaving_the_session_still_writes_an_aborted_run(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        with Session(tmp_path / "run", meter=ConstantPowerMeter(), baseline="none") as s:
            with s.goal("g1", family="f", mode="linear") as g:
                with g.attempt():
                    raise KeyError("boom")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (meta["status"], meta["error"]) == ("aborted", "KeyError")
    (row,) = read_rows(tmp_path / "run" / "goals.csv")
    assert (row["success"], row["error"]) == ("False", "KeyError")
    assert (tmp_path / "run" / "samples.parquet").is_file()


def test_attempt_without_verdict_fails(tmp_path: Path) -> None:
    with Session(tmp_path / "run", meter=None) as s, s.goal("g1", family="f", mode="linear") as g:
        with g.attempt():
            pass
    (row,) = read_rows(tmp_path / "run" / "goals.csv")
    assert (row["success"], row["final_attempt"], row["error"]) == ("False", "True", "no verdict")


def test_dry_run_has_times_and_work_but_no_energy(tmp_path: Path) -> None:
    with Session(tmp_path / "run", meter=None) as s, s.goal("g1", family="f", mode="linear") as g:
        with g.attempt() as a:
            for n in (3, 4):
                with a.llm() as call:
                    call.tokens(tokens_in=n, tokens_out=1)
            a.succeed()
    (row,) = read_rows(tmp_path / "run" / "goals.csv")
    assert (row["llm_calls"], row["tokens_in"], row["tokens_out"], row["energy_source"]) == (
        "2",
        "7",
        "2",
        "none",
    )
    assert row["energy_j"] == "" and float(row["duration_s"]) >= 0
    assert "no_energy" in row["flags"]
    assert not (tmp_path / "run" / "samples.parquet").exists()


def test_second_session_on_the_same_directory_refuses(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with Session(out, meter=None) as s:
        with pytest.raises(SessionLockedError, match="in use by another A-LEMS session"):
            Session(out, meter=None).start()
        with s.goal("g1", family="f", mode="linear") as g, g.attempt() as a:
            a.succeed()
    with pytest.raises(SessionError, match="already holds a run"):
        Session(out, meter=None).start()
    Session(tmp_path / "other", meter=None).start().finish()  # the lock was released


def test_misuse_is_a_clear_error(tmp_path: Path) -> None:
    with Session(tmp_path / "run", meter=None) as s:
        with pytest.raises(SessionError, match="without an attempt"):
            with s.goal("g1", family="f", mode="linear"):
                pass
        with s.goal("g2", family="f", mode="linear") as g:
            with pytest.raises(SessionError, match="still open"):
                with s.goal("g3", family="f", mode="linear"):
                    pass
            with g.attempt() as a:
                a.succeed()
        with pytest.raises(SessionError, match="already executed"):
            with s.goal("g2", family="f", mode="linear"):
                pass
        from alems.errors import ConfigError

        with pytest.raises(ConfigError, match="mode"):
            s.goal("g4", family="f", mode="fancy")


def test_ooi_of_a_known_workload_through_alems_metrics(tmp_path: Path, clock, capsys) -> None:
    """Same goals in both modes at a constant 10 W on a manual clock: EpG and OOI are known exactly.

    linear: g1 and g2 take 1 s each and succeed -> EpG = 20 J / 2 = 10 J.
    agentic: g1 fails after 1 s, waits 0.5 s, succeeds after 2 s; g2 succeeds after 2 s
    -> (10 + 5 + 20 + 20) J / 2 = 27.5 J, so OOI = 2.75.
    """
    plan = {
        ("g1", "linear"): [(1.0, True)],
        ("g2", "linear"): [(1.0, True)],
        ("g1", "agentic"): [(1.0, False), (2.0, True)],
        ("g2", "agentic"): [(2.0, True)],
    }
    out = tmp_path / "run"
    with Session(
        out, meter=ConstantPowerMeter(10.0, clock), baseline="none", attribution="none", clock=clock
    ) as s:
        for (goal_id, mode), attempts in plan.items():
            with s.goal(goal_id, family="support_bot", mode=mode) as g:
                for k, (seconds, ok) in enumerate(attempts):
                    if k:
                        clock.advance(0.5)  # the retry gap
                    with g.attempt() as a:
                        clock.advance(seconds)
                        a.succeed() if ok else a.fail("wrong answer")
            clock.advance(0.25)  # between goals: framework overhead, in no goal
    assert main(["metrics", str(out / "goals.csv"), "--json", "--bootstrap", "0"]) == 0
    tables = json.loads(capsys.readouterr().out)
    epg = {c["mode"]: c["epg_j"] for c in tables["epg"] if c["family"] == "support_bot"}
    assert epg == {"linear": pytest.approx(10.0, rel=1e-12), "agentic": pytest.approx(27.5, rel=1e-12)}
    (ooi,) = [r for r in tables["ooi"] if r["scope"] == "support_bot"]
    assert ooi["ooi"] == pytest.approx(2.75, rel=1e-12)


def test_attributed_energy_of_a_known_cpu_workload_children_included(tmp_path: Path) -> None:
    """Under the CPU model with no idle power, the attributed energy of an attempt is
    (P_max / n_cpus) x the CPU seconds of this process tree in it, whatever else the host
    runs: here a child process that burns 0.4 s and its own child that burns 0.4 s more,
    run from a tool phase. Within 5 % (the session's own sampling and 10 ms ticks)."""
    meter = model_meter()
    with Session(tmp_path / "run", meter=meter, baseline="none") as s:
        with s.goal("g1", family="f", mode="agentic") as g, g.attempt() as a:
            with a.tool("burn"):
                cpu = run_burn(0.4, 0.4)
            a.succeed()
    (row,) = read_rows(tmp_path / "run" / "goals.csv")
    want = watts_per_busy_cpu(meter) * cpu
    assert cpu > 0.8
    assert float(row["energy_j"]) == pytest.approx(want, rel=0.05)
    assert float(row["tool_j"]) == pytest.approx(want, rel=0.05)
