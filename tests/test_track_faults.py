"""``alems track`` under interruption (issue 25): no execution lost, none counted twice.

The fault matrix: a call of goal ``k`` is stopped by SIGTERM or SIGKILL at four points: in
the command (it signals its ``alems track`` parent), after the session stopped recording
(``session.stopped``), in the middle of the merge (``track.merge``: the merged goals.csv
written, not yet run.json) and after it (``track.merged``), through the fault hook
``ALEMS_FAULT`` (:func:`alems.session.signals.fault_point`), so no case depends on timing.
Each is followed by normal calls: another goal, then ``k`` again. Then

* ``k`` is in the run exactly once: from the stopped call when its execution ended before
  the stop, else from the retry (a retry of a counted ``k`` is refused);
* the merged ``DIR/goals.csv`` holds exactly the rows of the counted calls, and EpG from
  ``alems metrics`` equals EpG computed from those calls' own goals.csv files.

A ``kill -9`` before the call's run.json leaves an incomplete call: reported, not counted,
blocking only a retry of its own goal until ``alems track --repair DIR`` recovers it.

Also one test per finding: an unmerged complete call was counted twice (1), a call on
another host subtracted the first host's idle power (3), calls stopped after 9999 (5).
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from alems.baseline import BaselineConfig, load_baseline, measure_baseline, this_host, write_baseline
from alems.cli import main
from alems.energy import open_meter
from alems.energy.childproc import child_env
from alems.errors import ConfigError, ProvenanceError
from alems.session import Session, SessionError
from alems.track import merge_calls, scan_calls, track_command

QUICK_BASELINE = {"settle_s": 0.0, "windows": 2, "window_s": 0.1, "max_retries": 0}
OK = "print('Answer: 1')"


def _baseline(path: Path, host: str) -> Path:
    with open_meter("model") as meter:
        base = measure_baseline(meter, BaselineConfig.from_dict(QUICK_BASELINE), hw_hash="hw", host=host)
    write_baseline(path, base)
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run directory with one normal call (goal ``a``), and the idle baseline it used."""
    d = tmp_path_factory.mktemp("template")
    idle = _baseline(d / "idle-given.json", this_host())
    track_command([sys.executable, "-c", OK], goal_id="a", baseline=idle, **_common(d / "run"))
    return d / "run", idle


def _common(out: Path) -> dict:
    return {
        "out_dir": out,
        "family": "f",
        "mode": "agentic",
        "meter": "model",
        "attribution": "none",
        "interval_ms": 5.0,
        "stdout": io.BytesIO(),
    }


def _track_cli(out: Path, goal: str, idle: Path, code: str, fault: str = "") -> int:
    env = child_env()
    env.pop("ALEMS_FAULT", None)
    if fault:
        env["ALEMS_FAULT"] = fault
    args = ["--out", str(out), "--family", "f", "--mode", "agentic", "--goal-id", goal, "--meter", "model"]
    args += ["--baseline", str(idle), "--attribution", "none", "--interval-ms", "5"]
    cmd = [sys.executable, "-m", "alems", "track", *args, "--", sys.executable, "-c", code]
    return subprocess.run(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    ).returncode


def _counted_goals(out: Path) -> pd.DataFrame:
    frames = [pd.read_csv(c.dir / "goals.csv", dtype={"goal_id": str}) for c in scan_calls(out) if c.counted]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)


def _epg(goals: pd.DataFrame) -> float:
    final = goals[goals["final_attempt"].astype(bool)]
    return float((goals["raw_j"] + goals["gap_raw_j"]).sum() / final["success"].astype(bool).sum())


POINTS = ["command", "session.stopped", "track.merge", "track.merged"]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("where", POINTS)
def test_track_fault_matrix(
    tmp_path: Path, template: tuple[Path, Path], where: str, sig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run, idle = template
    out = tmp_path / "run"
    shutil.copytree(run, out)
    if where == "command":
        rc = _track_cli(out, "k", idle, f"import os, signal; os.kill(os.getppid(), signal.{sig})")
    else:
        rc = _track_cli(out, "k", idle, OK, fault=f"{where}:{sig}")
    signum = getattr(signal, sig)
    assert rc == (-signum if sig == "SIGKILL" else 128 + signum)
    k_ended = where != "command"  # the execution of k ended before the stop
    incomplete = sig == "SIGKILL" and where in ("command", "session.stopped")
    common = _common(out)
    if incomplete:
        assert [c.name for c in scan_calls(out) if not c.complete] == ["0002"]
        with pytest.raises(ConfigError, match="--repair"):  # k may be in the killed call: not yet
            track_command([sys.executable, "-c", OK], goal_id="k", **common)
        track_command([sys.executable, "-c", OK], goal_id="n", **common)  # other goals go on
        assert json.loads((out / "run.json").read_text())["incomplete_calls"] == ["0002"]
        assert main(["track", "--repair", str(out)]) == 0
        assert json.loads((out / "calls" / "0002" / "run.json").read_text())["status"] == "killed"
    else:
        track_command([sys.executable, "-c", "import sys; sys.exit(1)"], goal_id="n", **common)
    if k_ended:
        with pytest.raises(ConfigError, match="already holds goal k"):
            track_command([sys.executable, "-c", OK], goal_id="k", **common)
    else:
        track_command([sys.executable, "-c", OK], goal_id="k", **common)
    merged = pd.read_csv(out / "goals.csv", dtype={"goal_id": str})
    counted = _counted_goals(out)
    assert sorted(merged["goal_id"]) == sorted(counted["goal_id"]) == ["a", "k", "n"]  # none lost, none twice
    meta = json.loads((out / "run.json").read_text())
    assert meta["executions"] == 3 and meta["incomplete_calls"] == []
    assert main(["metrics", str(out / "goals.csv"), "--json", "--bootstrap", "0", "--min-goals", "1"]) == 0
    (cell,) = [c for c in json.loads(capsys.readouterr().out)["epg"] if c["family"] == "f"]
    assert cell["executions"] == 3
    assert cell["epg_j"] == pytest.approx(_epg(counted), rel=1e-12)
    assert _epg(merged) == pytest.approx(_epg(counted), rel=1e-12)


def test_an_unmerged_call_is_not_counted_twice(tmp_path: Path) -> None:
    """Finding 1 of issue 25: a call that finished its session but died before its merge left
    a complete calls/NNNN that the checks (reading only the merged files) did not see."""
    out = tmp_path / "run"
    hashes = {"hw_hash": "hw1", "env_hash": "e", "config_hash": "c", "run_id": "r1"}
    common = {"out_dir": out, "family": "f", "mode": "linear", "meter": None, "stdout": io.BytesIO()}
    track_command([sys.executable, "-c", "pass"], goal_id="a", hashes=hashes, **common)
    for name in ("goals.csv", "events.jsonl", "run.json"):  # as if killed before the merge
        (out / name).unlink()
    with pytest.raises(ConfigError, match="already holds goal a"):
        track_command([sys.executable, "-c", "pass"], goal_id="a", hashes=hashes, **common)
    other = {**hashes, "hw_hash": "hw2", "run_id": "r2"}
    for name in ("goals.csv", "events.jsonl", "run.json"):
        (out / name).unlink()
    with pytest.raises(ProvenanceError, match="call 0001"):
        track_command([sys.executable, "-c", "pass"], goal_id="b", hashes=other, **common)
    track_command([sys.executable, "-c", "pass"], goal_id="b", hashes=hashes, **common)
    assert list(pd.read_csv(out / "goals.csv")["goal_id"]) == ["a", "b"]


def test_a_call_never_subtracts_another_hosts_baseline(tmp_path: Path) -> None:
    """Finding 3 of issue 25: DIR/idle.json measured on node-a was subtracted on any host."""
    out = tmp_path / "run"
    out.mkdir()
    theirs = load_baseline(_baseline(out / "idle.json", "node-a"))
    common = {"out_dir": out, "family": "f", "mode": "linear", "meter": "model", "stdout": io.BytesIO()}
    track_command([sys.executable, "-c", "pass"], goal_id="a", baseline_config=QUICK_BASELINE, **common)
    meta = json.loads((out / "calls" / "0001" / "run.json").read_text())
    here = this_host()
    assert meta["host"] == here and meta["baseline"]["host"] == here != "node-a"
    assert meta["baseline"]["baseline_id"] != theirs.baseline_id and meta["baseline"]["origin"] == "measured"
    assert meta["baseline"]["age_s"] >= 0
    mine = out / f"idle-{here}.json"
    assert load_baseline(mine).baseline_id == meta["baseline"]["baseline_id"]  # keyed by host, kept
    track_command([sys.executable, "-c", "pass"], goal_id="b", **common)
    again = json.loads((out / "calls" / "0002" / "run.json").read_text())["baseline"]
    assert again["baseline_id"] == meta["baseline"]["baseline_id"] and again["origin"] == "file"
    with pytest.raises(ConfigError, match=f"host node-a; this call runs on host {here}"):
        track_command([sys.executable, "-c", "pass"], goal_id="c", baseline=out / "idle.json", **common)
    with pytest.raises(SessionError, match=f"host node-a; this run is on host {here}"):
        Session(tmp_path / "s", meter="model", baseline=out / "idle.json").start()


def test_calls_go_on_past_9999(tmp_path: Path) -> None:
    """Finding 5 of issue 25: folders sorted as text put 10000 before 9999, so every call after
    the 10000th was refused with "already holds a run"."""
    out = tmp_path / "run"
    common = {"out_dir": out, "family": "f", "mode": "linear", "meter": None, "stdout": io.BytesIO()}
    track_command([sys.executable, "-c", "pass"], goal_id="a", **common)
    (out / "calls" / "0001").rename(out / "calls" / "9999")
    for goal in ("b", "c"):
        track_command([sys.executable, "-c", "pass"], goal_id=goal, **common)
    assert [c.name for c in scan_calls(out)] == ["9999", "10000", "10001"]
    assert list(pd.read_csv(out / "goals.csv")["goal_id"]) == ["a", "b", "c"]
    merged = {n: (out / n).read_bytes() for n in ("goals.csv", "events.jsonl", "run.json")}
    merge_calls(out)  # idempotent: the calls are the record
    assert {n: (out / n).read_bytes() for n in merged} == merged
