"""``alems recover DIR``: the four files of a run that was killed before it wrote them.

A :class:`~alems.session.Session` spools everything to disk as it runs
(:mod:`alems.session.spool`): the event log, the outcomes of each goal execution as it
ends, and every sampler row. :func:`recover` reads that spool back and writes
``samples.parquet``, ``events.jsonl``, ``goals.csv`` and ``run.json`` with the pipeline's
own accounting (:func:`alems.session.core.write_run`), ``status: killed``:

* every goal execution that ended before the kill is in goals.csv, with its energy;
* the samples run to the last row that reached disk (the sampler's child keeps writing
  until it notices its parent is gone, a few milliseconds), so ``wall_s`` and the framework
  overhead cover the run up to the kill;
* an execution that was running when the process died has no outcome: it is listed in
  run.json's ``interrupted``, its energy stays in the framework overhead, and it is not in
  goals.csv (run it again).

Then the spool is removed. The directory's lock is taken first, so a run that is still
alive is never recovered under its feet.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alems.baseline import this_host
from alems.energy.sampler import replay_journal
from alems.jobs.outputs import RunPaths
from alems.session.core import Ending, Recording, RunState, SessionResult, write_run
from alems.session.lock import DirLock, SessionError
from alems.session.spool import Spool


@dataclass
class RecoverResult:
    """What :func:`recover` found and did: ``action`` is ``recovered``, ``complete`` (the run
    had its files; only a leftover spool was removed) or ``empty`` (nothing to recover)."""

    directory: Path
    action: str
    result: SessionResult | None = None
    removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        meta = self.result.meta if self.result is not None else {}
        return {
            "dir": str(self.directory),
            "action": self.action,
            "status": meta.get("status"),
            "executions": meta.get("executions"),
            "interrupted": meta.get("interrupted", []),
            "samples": meta.get("samples"),
            "removed": list(self.removed),
        }


def read_events_tolerant(path: Path) -> list[dict[str, Any]]:
    """An event log up to its last whole record (a kill can tear only the last line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


def _interrupted(events: list[dict[str, Any]], ended: set[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """Executions that started (``goal_start``) but have no outcome."""
    out: dict[tuple[str, int, str], dict[str, Any]] = {}
    for e in events:
        key = (str(e.get("goal_id")), int(e.get("rep", 0)), str(e.get("mode")))
        if key in ended:
            continue
        if e.get("kind") == "goal_start":
            out[key] = {"goal_id": key[0], "family": None, "mode": key[2], "rep": key[1], "attempts": 0}
        elif e.get("kind") == "attempt_start" and key in out:
            out[key]["attempts"] += 1
    return list(out.values())


def _state(spool: Spool) -> RunState:
    """The run's state from the spool header, or an empty one when the run died before writing it."""
    header = spool.read_header()
    if header is not None:
        return RunState.from_dict(header)
    return RunState(
        host=this_host(),
        pid=0,
        started_unix=0.0,
        t_start=0.0,
        hashes={},
        idle_w={},
        baseline={"status": "none", "origin": "none", "note": "the run died before it recorded anything"},
        meter=None,
        interval_ms=0.0,
        accounting={"attribution": "cpu_share", "min_coverage": 0.8},
    )


def recover(directory: str | os.PathLike[str]) -> RecoverResult:
    """Write the four files of the killed run in ``directory`` from its spool (module docstring)."""
    d = Path(directory)
    if not d.is_dir():
        raise SessionError(f"{d} is not a directory", "give the directory of the killed run")
    paths = RunPaths.in_dir(d)
    spool = Spool(d)
    with DirLock(d):
        present = tuple(p.name for p in spool.present())
        if paths.meta.is_file():
            spool.remove()  # run.json was written last: the files hold everything the spool had
            return RecoverResult(d, "complete", None, present)
        if not present:
            return RecoverResult(d, "empty")
        state = _state(spool)
        samples: Any = None
        domains: list[Any] = []
        if (spool.sampler / "header.json").is_file():
            samples, domains = replay_journal(spool.sampler)
            if not len(samples):
                samples = None
        # the event log is moved into place when recording stops: before that, it is the spool's
        events = read_events_tolerant(spool.events if spool.events.exists() else paths.events)
        outcomes = spool.read_outcomes()
        ended = {(o.goal_id, int(o.rep), o.mode) for o in outcomes}
        ts = [float(e["t"]) for e in events] + ([float(samples["t"].iloc[-1])] if samples is not None else [])
        t_end = max(ts) if ts else state.t_start
        if state.t_start == 0.0 and ts:
            state.t_start = min(ts)
        last_sample = None if samples is None else float(samples["t"].iloc[-1])
        state.extra = {
            **state.extra,
            "recovered": {"from": "spool", "pid": state.pid, "last_sample_t": last_sample},
        }
        rec = Recording(samples, list(domains), events, t_end)
        ending = Ending(status="killed", interrupted=_interrupted(events, ended))
        if spool.events.exists():
            paths.events.unlink(missing_ok=True)  # the spool's log is the newer one: write_run writes it
        result = write_run(paths, state, rec, outcomes, ending)
        spool.remove()
    return RecoverResult(d, "recovered", result, present)


__all__ = ["RecoverResult", "read_events_tolerant", "recover"]
