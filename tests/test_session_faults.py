"""A Session that is interrupted (issue 25): SIGTERM, SIGINT and ``kill -9`` at several points.

Each case runs a small script in a child process: four goal executions of 20 ms each on a
constant-power meter (10 W; the counter is P x time, so every energy is known), stopped at a
deterministic point: from inside goal 3 (the script signals itself), or at a fault point of
the session's finish (``ALEMS_FAULT``, :func:`alems.session.signals.fault_point`). Then:

* a signal (SIGTERM, SIGINT) leaves the four files, ``status: aborted`` with the signal (or
  ``complete`` when the files were being written: the signal waits for them), and the exit
  code 128 + N;
* ``kill -9`` leaves the spool; :func:`alems.session.recover` turns it into the four files
  with ``status: killed``, and the samples run to the last row that reached disk;
* in every case the goals that ended are in goals.csv exactly once, the one cut short is
  listed as ``interrupted`` and nowhere else, each attempt's energy is P x its duration,
  and EpG over goals.csv is what those rows give.

Also one test per finding: SIGTERM used to lose everything (finding 2), a new Session used to
delete a killed run's partial file, and a forked child used to keep the lock (finding 6).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alems import Session
from alems.cli import main
from alems.energy import read_samples
from alems.energy.childproc import child_env
from alems.session import DirLock, SessionError, SessionLockedError, recover

WATTS = 10.0

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from alems import Session
    from alems.energy.base import Domain, Meter

    class Constant(Meter):
        name = "constant"
        def __init__(self):
            self.t0 = time.monotonic()
        def domains(self):
            return [Domain(key="package-0", kind="package", source="measured", meter="fake", max_power_w=10.0)]
        def read_raw(self):
            return {"package-0": 10.0 * (time.monotonic() - self.t0)}

    out, stop_in_goal, sig = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    meter = None if os.environ.get("NO_METER") else Constant()
    with Session(out, meter=meter, baseline="none", attribution="none", interval_ms=5) as s:
        for i in range(4):
            with s.goal(f"g{i}", family="f", mode="agentic") as g, g.attempt() as a:
                time.sleep(0.02)
                if i == stop_in_goal:
                    os.kill(os.getpid(), getattr(signal, sig))
                    time.sleep(5)  # the signal ends the goal long before this
                a.succeed() if i % 2 == 0 else a.fail("wrong")
    """
)


def run_script(
    tmp_path: Path,
    out: Path,
    *,
    stop_in_goal: int = -1,
    sig: str = "SIGTERM",
    fault: str = "",
    no_meter: bool = False,
) -> int:
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    env = child_env()
    env.pop("ALEMS_FAULT", None)
    if fault:
        env["ALEMS_FAULT"] = fault
    if no_meter:
        env["NO_METER"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(stop_in_goal), sig],
        env=env,
        capture_output=True,
        timeout=60,
    )
    return proc.returncode


def check_run(out: Path, ended: list[str], cut: list[str], status: str) -> dict:
    """The four files, the goals that ended once each, P x duration per attempt, EpG from the rows."""
    for name in ("samples.parquet", "events.jsonl", "goals.csv", "run.json"):
        assert (out / name).is_file(), name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".alems.lock"]
    meta = json.loads((out / "run.json").read_text())
    goals = pd.read_csv(out / "goals.csv", dtype={"goal_id": str})
    assert meta["status"] == status
    assert list(goals["goal_id"]) == ended and meta["executions"] == len(ended)
    assert [i["goal_id"] for i in meta["interrupted"]] == cut
    # each stamp is the midpoint of the two clock reads around a counter read: microseconds apart
    assert np.allclose(goals["raw_j"], WATTS * goals["duration_s"], rtol=1e-3, atol=1e-4)
    samples, _ = read_samples(str(out / "samples.parquet"))
    t, e = samples["t"].to_numpy(), samples["package-0"].to_numpy()
    assert np.allclose(np.diff(e), WATTS * np.diff(t), rtol=1e-3, atol=1e-4)  # every row, to the last
    events = [json.loads(ln) for ln in (out / "events.jsonl").read_text().splitlines()]
    assert t[-1] >= max(ev["t"] for ev in events)  # energy accounted up to the last sample
    successes = int(goals["success"].sum())
    if successes:
        epg = (goals["raw_j"] + goals["gap_raw_j"]).sum() / successes
        assert epg == pytest.approx(WATTS * goals["duration_s"].sum() / successes, rel=1e-3)
    return meta


STOPS = {  # where: (stop_in_goal, fault point)
    "in a goal": (2, ""),
    "recording stopped": (-1, "session.stopped"),
    "files written": (-1, "session.written"),
}


#: every point with SIGTERM and SIGKILL; SIGINT (handled as SIGTERM is) at one point
CELLS = [(w, s) for w in STOPS for s in ("SIGTERM", "SIGKILL")] + [("in a goal", "SIGINT")]


@pytest.mark.parametrize("where, sig", CELLS)
def test_session_fault_matrix(tmp_path: Path, where: str, sig: str) -> None:
    out = tmp_path / "run"
    stop_in_goal, point = STOPS[where]
    rc = run_script(
        tmp_path, out, stop_in_goal=stop_in_goal, sig=sig, fault=f"{point}:{sig}" if point else ""
    )
    signum = getattr(signal, sig)
    cut = ["g2"] if where == "in a goal" else []
    ended = ["g0", "g1"] if cut else ["g0", "g1", "g2", "g3"]
    if sig == "SIGKILL":
        assert rc == -signum
        if where == "files written":  # run.json was written: only the spool is left over
            assert recover(out).action == "complete"
            status = "complete"
        else:
            assert not (out / "run.json").exists()
            with pytest.raises(SessionError, match="alems recover"):  # never deleted by a new session
                Session(out, meter=None).start()
            assert (out / ".session.json").is_file()
            res = recover(out)
            assert res.action == "recovered"
            status = "killed"
    else:
        assert rc == (128 + signum if sig == "SIGTERM" else -signum)  # SIGINT: Python re-raises it
        status = "aborted" if where == "in a goal" else "complete"  # a signal during the write waits for it
    meta = check_run(out, ended, cut, status)
    if sig != "SIGKILL" and where == "in a goal":
        assert meta["signal"] == sig
    with pytest.raises(SessionError, match="already holds a run"):  # the next session never mixes into it
        Session(out, meter=None).start()


def test_sigterm_keeps_the_finished_goals(tmp_path: Path) -> None:
    """Finding 2 of issue 25: three finished goals, then ``kill -TERM``: today exit 143 with only
    the lock and the partial event file. Now the four files, status aborted, the three goals."""
    out = tmp_path / "run"
    rc = run_script(tmp_path, out, stop_in_goal=3, sig="SIGTERM")
    assert rc == 143
    meta = check_run(out, ["g0", "g1", "g2"], ["g3"], "aborted")
    assert meta["signal"] == "SIGTERM" and meta["host"]


def test_a_new_session_never_deletes_a_killed_runs_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert run_script(tmp_path, out, stop_in_goal=1, sig="SIGKILL", no_meter=True) == -9
    before = (out / ".events.jsonl.partial").read_bytes()
    with pytest.raises(SessionError, match=f"alems recover {out}"):
        Session(out, meter=None).start()
    assert (out / ".events.jsonl.partial").read_bytes() == before
    assert main(["recover", str(out), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert (said["action"], said["status"], said["executions"]) == ("recovered", "killed", 1)
    assert ".events.jsonl.partial" in said["removed"] and not (out / ".events.jsonl.partial").exists()
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "killed" and meta["executions"] == 1
    assert meta["energy_source"] == "none" and [i["goal_id"] for i in meta["interrupted"]] == ["g1"]


FORK_SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, os, subprocess, sys, time
    from alems.session import DirLock

    def worker():
        time.sleep(60)

    if __name__ == "__main__":
        lock = DirLock(sys.argv[1]).acquire()
        if sys.argv[2] == "fork":
            child = mp.get_context("fork").Process(target=worker, daemon=False)
            child.start()
            pid = child.pid
        else:  # a child that is handed the lock's file on purpose: the lock stays held
            pid = subprocess.Popen(["sleep", "60"], pass_fds=[lock._fd]).pid
        with open(sys.argv[3], "w") as fh:
            fh.write(str(pid))
        os.kill(os.getpid(), 9)
    """
)


def _orphan(tmp_path: Path, how: str) -> int:
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT)
    pid_file = tmp_path / "child.pid"
    proc = subprocess.run(  # no pipes: the orphan would hold them open
        [sys.executable, str(script), str(tmp_path / "run"), how, str(pid_file)],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == -9
    return int(pid_file.read_text())


def test_a_forked_child_does_not_keep_the_lock(tmp_path: Path) -> None:
    """Finding 6 of issue 25: after ``kill -9`` on a session, its live multiprocessing child used
    to block every new session (naming the dead parent's pid). Now the child drops its copy."""
    pid = _orphan(tmp_path, "fork")
    try:
        DirLock(tmp_path / "run").acquire().release()
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_lock_held_for_a_dead_pid_is_reported_stale(tmp_path: Path) -> None:
    pid = _orphan(tmp_path, "pass_fds")
    try:
        with pytest.raises(SessionLockedError, match=rf"stale lock.*\b{pid}\b still hold"):
            DirLock(tmp_path / "run").acquire()
    finally:
        os.kill(pid, signal.SIGKILL)
