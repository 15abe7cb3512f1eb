"""The sampler: cumulative, wrap-corrected joules per domain over time (``samples``).

Every ``interval_s`` (default 10 ms) all domains of a meter are read and one row is
kept: ``t`` (monotonic seconds), cumulative joules per domain (:mod:`alems.energy.wrap`),
``proc_cpu_s`` (CPU seconds of the process tree of ``pid``, default this process) and
``sys_cpu_s`` (busy CPU seconds of the whole machine). Boundary reads
(:meth:`Sampler.boundary_read`, :meth:`Sampler.boundary_t`) are exact reads taken *now*
on the caller's thread, kept with ``boundary=True``; windows are bounded by real reads,
not by sample spacing.

Stepwise counters (NVML energy, updated about every 100 ms, see
:mod:`alems.energy.stepwise`) are read at :meth:`Sampler.start` and :meth:`Sampler.stop`
until they first move, so every window lies between two update instants. Where the
meter has GPUs, boundary reads check NVML's running-process lists at most every
``gpu_check_s``; :meth:`Sampler.frame` then has a ``gpu_foreign`` column (processes
on the GPUs that are not the study's), which accounting turns into ``gpu_shared``.

Where the periodic reads run (``mode``):

* ``process`` (the default whenever possible): a child process
  (``python -m alems.energy.sampler_child``) reads the counters and appends binary rows to a
  file; the parent takes them in at each boundary read and at :meth:`Sampler.frame`.
  The two never contend for the GIL. ``benchmarks/sampler_overhead.py`` measured why
  this matters: on the 2-vCPU development VM a 10 ms sampler *thread* spends about
  300 us of CPU per sample under the GIL (about 2 % of GIL-bound Python's time, beyond
  the 1 % target) and, waiting for the GIL, reaches only ~60 of its 100 samples/s; the
  child spends about 200 us per sample in its own process and keeps ~96 samples/s.
  Reads of both processes are serialised by a file lock
  and stamped inside it, so rows are in counter order and the one wrap tracker (in the
  parent) sees them in time order. The meter is re-opened in the child from
  :meth:`Meter.spec`.
* ``thread``: a daemon thread in this process. Used when the meter cannot be
  re-opened elsewhere (integrated GPU power, test fakes) or the clock is injected.

The interval is capped at the safe poll interval of the meter's domains (half the
shortest time in which a counter can wrap), with a warning, so at most one wrap fits
between two reads. A failed periodic read is kept in :attr:`Sampler.errors` and its
row skipped (never recorded as 0); the next good read continues from the last good
one, and the tracker refuses a gap long enough to hide a wrap. Boundary reads raise.

With ``journal_dir`` every row also reaches disk as it is taken, so a killed process
loses none of them (:func:`replay_journal` turns the directory back into the ``samples``
table): ``header.json`` (keys and domains), ``parent.bin`` (this process's reads, raw,
:func:`~alems.energy.sampler_link.journal_struct`, one ``os.write`` each) and, in
``process`` mode, the child's ``rows.bin`` (which then lives there instead of in memory).
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alems.energy.base import Domain, Meter
from alems.energy.procstat import ProcessTreeCpu, ProcStat
from alems.energy.sampler_link import SamplerChild, journal_struct, row_struct
from alems.energy.samples import domain_from_dict, domain_to_dict, read_samples, write_samples
from alems.energy.stepwise import is_stepwise, update_period_s
from alems.energy.wrap import TrackerSet, counter_error, safe_poll_interval_s
from alems.errors import AlemsError, CounterReadError
from alems.io import read_text_or_none

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["MODES", "Sample", "Sampler", "read_samples", "replay_journal", "write_samples"]

log = logging.getLogger("alems.energy")

MODES = ("auto", "process", "thread")


@dataclass(frozen=True)
class Sample:
    """One row of the ``samples`` contract."""

    t: float
    energy_j: dict[str, float]
    proc_cpu_s: float
    sys_cpu_s: float
    boundary: bool = False


class Sampler:
    """Periodic sampling of a meter, plus exact boundary reads.

    ``start()`` takes the first (boundary) read and starts the periodic reads;
    ``stop()`` takes a last boundary read and stops them. Use as a context manager.
    ``mode`` is ``auto`` (child process where possible, else thread), ``process`` or
    ``thread``; see the module docstring.
    """

    def __init__(
        self,
        meter: Meter,
        interval_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        pid: int | None = None,
        *,
        mode: str = "auto",
        proc_stat: str = "/proc/stat",
        proc_root: str = "/proc",
        tree_scan_s: float = 1.0,
        cpu_interval_s: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        gpu_study_pids: Sequence[int] = (),
        gpu_study_names: Sequence[str] = (),
        gpu_check_s: float = 0.5,
        journal_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.meter = meter
        self.clock = clock
        self._domains = meter.domains()
        self.keys = [d.key for d in self._domains]
        self.warnings: list[str] = []
        self.safe_interval_s = safe_poll_interval_s(self._domains)
        self.interval_s = self._capped_interval(interval_s)
        self.spec = meter.spec() if clock is time.monotonic else None
        self.requested_mode = mode
        self.mode = self._resolve_mode(mode)
        self.pid = os.getpid() if pid is None else int(pid)
        self.proc_stat_path = proc_stat
        self.proc_root = proc_root
        self.tree_scan_s = tree_scan_s
        self.cpu_interval_s = cpu_interval_s
        self.trackers = TrackerSet(self._domains)
        self.tree = ProcessTreeCpu(self.pid, proc_root)
        self.stat = ProcStat(proc_stat)
        self.errors: list[CounterReadError] = []
        self._rows: list[tuple[float, tuple[float, ...], float, float, bool]] = []
        self._last_proc = 0.0
        self._last_sys = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: SamplerChild | None = None
        self.sleep = sleep
        self.stepwise = [d for d in self._domains if is_stepwise(d)]
        self.gpu_study_pids = {int(p) for p in gpu_study_pids}
        self.gpu_study_names = {str(n) for n in gpu_study_names}
        self.gpu_check_s = float(gpu_check_s)
        self.gpu_foreign_pids: set[int] = set()
        self._gpu_checks: list[tuple[float, int]] = []  # (t, foreign processes on any GPU)
        self.journal_dir = None if journal_dir is None else os.fspath(journal_dir)
        self._journal_fd: int | None = None
        self._journal_row = journal_struct(len(self.keys))

    def _capped_interval(self, interval_s: float) -> float:
        """``interval_s``, or the safe poll interval (with a warning) where it is longer."""
        safe = self.safe_interval_s
        if safe is None or interval_s <= safe:
            return interval_s
        msg = (
            f"sampling interval {interval_s * 1000:g} ms is longer than the safe poll "
            f"interval {safe * 1000:.3g} ms (a counter could wrap twice between reads); "
            f"using {safe * 1000:.3g} ms"
        )
        log.warning(msg)
        self.warnings.append(msg)
        return safe

    def _resolve_mode(self, mode: str) -> str:
        """``process`` or ``thread`` for the requested ``mode`` (``auto``: a child process where possible)."""
        if mode == "process" and self.spec is None:
            raise ValueError(
                "mode='process' needs a meter that can be re-opened in a child process "
                "(Meter.spec()) and the real monotonic clock"
            )
        if mode == "auto":
            return "process" if self.spec is not None else "thread"
        return mode

    def _child_settings(self) -> dict[str, Any]:
        """What the sampling child process needs to know (:meth:`SamplerChild.spawn`)."""
        return {
            "spec": self.spec,
            "keys": self.keys,
            "interval_s": self.interval_s,
            "pid": self.pid,
            "proc_stat": self.proc_stat_path,
            "proc_root": self.proc_root,
            "tree_scan_s": self.tree_scan_s,
            "cpu_interval_s": self.cpu_interval_s,
        }

    # ------------------------------------------------------------------ reading
    @property
    def domains(self) -> list[Domain]:
        return list(self._domains)

    def _measure(self, with_cpu: bool = True) -> tuple[float, dict[str, float], float, float]:
        t_a = self.clock()
        raw = self.meter.read_raw()
        t = 0.5 * (t_a + self.clock())
        if not with_cpu:
            return t, raw, _NAN, _NAN
        return t, raw, self.tree.read(), self.stat.read().busy_s

    def _ingest(
        self, t: float, raw: dict[str, float], proc: float, sys_s: float, boundary: bool, own: bool = True
    ) -> Sample:
        """Track one reading and keep its row (caller holds ``_lock``); journal it when it is
        this process's own read (``own``; the child's rows are in its own file).

        ``proc``/``sys_s`` are NaN for a periodic row that did not read CPU times; the
        returned :class:`Sample` then carries the last values read.
        """
        cum = self.trackers.update(raw, t)
        if own and self._journal_fd is not None:
            row = self._journal_row.pack(t, *(raw[k] for k in self.keys), proc, sys_s, float(boundary))
            os.write(self._journal_fd, row)
        if proc == proc:  # not NaN: a CPU reading; keep the columns non-decreasing
            proc = max(proc, self._last_proc)
            sys_s = max(sys_s, self._last_sys)
            self._last_proc, self._last_sys = proc, sys_s
        values = tuple(cum[k] for k in self.keys)
        self._rows.append((t, values, proc, sys_s, boundary))
        return Sample(
            t, dict(zip(self.keys, values, strict=False)), self._last_proc, self._last_sys, boundary
        )

    def _take_child_rows(self, rows: list[tuple[float, ...]]) -> None:
        for row in rows:
            raw = dict(zip(self.keys, row[1:-2], strict=False))
            try:
                self._ingest(row[0], raw, row[-2], row[-1], False, own=False)
            except CounterReadError as exc:
                self._record_error(exc)

    def _read(self, boundary: bool, with_cpu: bool = True) -> Sample:
        with self._lock:
            child = self._child
            if child is None:
                return self._ingest(*self._measure(with_cpu or boundary), boundary)
            with child.locked():
                pending = child.drain()
                try:
                    reading = self._measure(True)
                finally:
                    self._take_child_rows(pending)  # kept even when our own read fails
            sample = self._ingest(*reading, boundary)
            if not child.alive():
                self._child_died(child)
            return sample

    def poll(self) -> Sample:
        """One periodic (non-boundary) read now, as the background reader takes them."""
        return self._read(False)

    def boundary_read(self) -> Sample:
        """An exact read of every domain now, recorded with ``boundary=True``.

        Raises :class:`CounterReadError` when a domain cannot be read. At most every
        ``gpu_check_s`` it also checks which processes run on the meter's GPUs.
        """
        sample = self._read(True)
        if not self._gpu_checks or sample.t - self._gpu_checks[-1][0] >= self.gpu_check_s:
            self.check_gpu_processes(sample.t)
        return sample

    def boundary_t(self) -> float:
        """:meth:`boundary_read` and return its ``t`` (usable as an event-log clock)."""
        return self.boundary_read().t

    # ------------------------------------------------------------------ GPU sharing
    def _foreign(self, procs: dict[str, set[int]]) -> set[int]:
        study = {self.pid, os.getpid(), *self.gpu_study_pids, *self.tree.members}
        out = set()
        for pid in set().union(*procs.values()) - study:
            comm = read_text_or_none(f"{self.proc_root}/{pid}/comm")
            if comm is None or comm not in self.gpu_study_names:
                out.add(pid)
        return out

    def check_gpu_processes(self, t: float | None = None) -> int | None:
        """Count processes on the meter's GPUs that are not the study's; ``None``: no GPU.

        The study's processes are the measured process tree (``pid`` and its
        descendants), ``gpu_study_pids`` and processes named in ``gpu_study_names``
        (``/proc/PID/comm``, e.g. a local LLM server). The count is kept per check and
        becomes the ``gpu_foreign`` column of :meth:`frame`.
        """
        try:
            procs = self.meter.device_processes()
        except Exception as exc:  # a failed check is reported, never read as "not shared"
            self.warnings.append(f"GPU process list unavailable: {exc}")
            return None
        if procs is None:
            return None
        foreign = self._foreign(procs)
        if foreign:  # a new child of the study may not be in the tree yet
            self.tree.rescan()
            foreign = self._foreign(procs)
        self.gpu_foreign_pids |= foreign
        with self._lock:
            self._gpu_checks.append((self.clock() if t is None else t, len(foreign)))
        return len(foreign)

    # ------------------------------------------------------------------ stepwise counters
    def await_updates(self, after: Sample, timeout_s: float | None = None) -> bool:
        """Read until every stepwise counter (NVML energy) has moved past its value in ``after``.

        Brackets the edge at ``after.t`` by an update instant (:mod:`alems.energy.stepwise`).
        Gives up after ``timeout_s`` (default 2.5 update periods) and returns False: a
        counter that does not move (a GPU drawing nothing) or a slow driver.
        """
        if not self.stepwise:
            return True
        if timeout_s is None:
            timeout_s = 2.5 * max(update_period_s(d) for d in self.stepwise)
        waiting = {d.key for d in self.stepwise}
        deadline = after.t + timeout_s
        while True:
            s = self._read(False, False)
            waiting = {k for k in waiting if s.energy_j[k] == after.energy_j[k]}
            if not waiting:
                return True
            if s.t >= deadline:
                msg = (
                    f"{', '.join(sorted(waiting))}: no counter update within {timeout_s * 1000:.0f} ms "
                    "of a window edge; energy at that edge is extrapolated (flagged unbracketed)"
                )
                if msg not in self.warnings:
                    self.warnings.append(msg)
                return False
            self.sleep(min(self.interval_s, 0.01))

    def latest(self) -> Sample | None:
        """The newest row (a boundary read or a periodic sample), with the last CPU times read."""
        self._sync()
        with self._lock:
            if not self._rows:
                return None
            t, vals, _, _, b = self._rows[-1]
            return Sample(t, dict(zip(self.keys, vals, strict=False)), self._last_proc, self._last_sys, b)

    def _record_error(self, exc: CounterReadError) -> None:
        self.errors.append(exc)
        if len(self.errors) <= 3:
            log.warning("sampler: %s", exc.message)

    # ------------------------------------------------------------------ start / stop
    @property
    def running(self) -> bool:
        if self._child is not None:
            return True
        return self._thread is not None and self._thread.is_alive()

    def _open_journal(self) -> None:
        """Create ``journal_dir`` with its header and open ``parent.bin`` for appending."""
        if self.journal_dir is None or self._journal_fd is not None:
            return
        d = os.path.join(self.journal_dir, "")
        os.makedirs(d, exist_ok=True)
        header = {
            "schema": JOURNAL_SCHEMA,
            "keys": self.keys,
            "domains": [domain_to_dict(x) for x in self._domains],
            "interval_s": self.interval_s,
        }
        with open(d + "header.json", "w") as fh:
            json.dump(header, fh, default=str)
        self._journal_fd = os.open(d + "parent.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _close_journal(self) -> None:
        fd, self._journal_fd = self._journal_fd, None
        if fd is not None:
            os.close(fd)

    def start(self) -> Sample:
        if self.running:
            raise RuntimeError("sampler already running")
        self.tree.rescan()
        self._open_journal()
        if self.mode == "process":
            try:
                child = SamplerChild.spawn(self._child_settings(), directory=self.journal_dir)
            except AlemsError as exc:
                msg = f"sampler child process failed to start ({exc.message}); sampling from a thread"
                log.warning(msg)
                self.warnings.append(msg)
                self.mode = "thread"
            else:
                self.tree.exclude.add(child.proc.pid)
                first = self.boundary_read()  # before the child's first row
                self._child = child
                child.go()
                self.await_updates(first)
                return first
        first = self.boundary_read()
        self._start_thread()
        self.await_updates(first)
        return first

    def _start_thread(self) -> None:
        self.mode = "thread"
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alems-sampler", daemon=True)
        self._thread.start()

    def _child_died(self, child: SamplerChild) -> None:
        """The sampling child exited on its own: report it and sample from a thread."""
        self._child = None
        for msg in child.stop():
            self._record_error(counter_error(msg.split(":", 1)[0], msg.split(": ", 1)[-1]))
        msg = "sampler child process exited; sampling from a thread from now on"
        log.warning(msg)
        self.warnings.append(msg)
        self._start_thread()

    def stop(self) -> Sample:
        """Take a final boundary read, then stop periodic reads (the read raises on a bad counter).

        Stepwise counters are read on until their first update after the final read
        (:meth:`await_updates`), so the last window's end is bracketed.
        """
        try:
            last = self.boundary_read()
            self.check_gpu_processes(last.t)
            self.await_updates(last)
            return last
        finally:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            if self._child is not None:
                child, self._child = self._child, None  # rows after the final read are not needed
                for msg in child.stop():
                    self._record_error(counter_error(msg.split(":", 1)[0], msg.split(": ", 1)[-1]))
            self._close_journal()

    def _run(self) -> None:
        now = time.monotonic
        interval = self.interval_s
        next_t = now() + interval
        next_scan = now() + self.tree_scan_s
        next_cpu = 0.0
        wait = self._stop.wait
        while True:
            delay = next_t - now()
            if delay > 0 and wait(delay):
                return
            if self._stop.is_set():
                return
            with_cpu = now() >= next_cpu
            if with_cpu:
                next_cpu = now() + self.cpu_interval_s
            try:
                self._read(False, with_cpu)
            except CounterReadError as exc:
                self._record_error(exc)
            except Exception as exc:  # keep sampling; surfaced through .errors
                self._record_error(CounterReadError(f"sampler read failed: {exc!r}"))
            t = now()
            next_t += interval
            if next_t < t:  # fell behind (GIL, scheduling): skip, do not burst
                next_t = t + interval
            if t >= next_scan:
                self.tree.rescan()
                next_scan = t + self.tree_scan_s

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            try:
                self.stop()
            except CounterReadError:
                if exc[0] is None:
                    raise

    def __del__(self) -> None:
        child = getattr(self, "_child", None)
        if child is not None:
            child.kill()

    # ------------------------------------------------------------------ output
    def _sync(self) -> None:
        """Take in the child's rows so far (without a read of our own)."""
        with self._lock:
            child = self._child
            if child is not None:
                with child.locked():
                    pending = child.drain()
                self._take_child_rows(pending)

    def _filled_rows(self) -> list[tuple[float, tuple[float, ...], float, float, bool]]:
        """All rows, with CPU times filled in where a periodic row did not read them."""
        self._sync()
        with self._lock:
            rows = list(self._rows)
        ts = [r[0] for r in rows]
        proc = _interp_nan(ts, [r[2] for r in rows])
        sys_s = _interp_nan(ts, [r[3] for r in rows])
        return [(r[0], r[1], p, s, r[4]) for r, p, s in zip(rows, proc, sys_s, strict=False)]

    def samples(self) -> list[Sample]:
        return [
            Sample(t, dict(zip(self.keys, v, strict=False)), p, s, b) for t, v, p, s, b in self._filled_rows()
        ]

    def frame(self) -> pd.DataFrame:
        """The ``samples`` table: ``t``, one cumulative J column per domain, CPU seconds, ``boundary``.

        CPU times are read at every boundary read and at least every ``cpu_interval_s``
        (default 0.1 s: a /proc/stat read costs more than the energy counters); rows in
        between carry the linear interpolation of their neighbours, which is what a
        reader interpolating between read rows would get.
        """
        import pandas as pd  # lazy: the sampling child imports this module (see alems.energy.samples)

        rows = self._filled_rows()
        cols: dict[str, Any] = {"t": [r[0] for r in rows]}
        for i, k in enumerate(self.keys):
            cols[k] = [r[1][i] for r in rows]
        cols["proc_cpu_s"] = [r[2] for r in rows]
        cols["sys_cpu_s"] = [r[3] for r in rows]
        cols["boundary"] = [r[4] for r in rows]
        if self._gpu_checks:  # the latest check's count at each row (NaN before the first)
            checks = sorted(self._gpu_checks)
            ct = [c[0] for c in checks]
            idx = [bisect.bisect_right(ct, r[0]) - 1 for r in rows]
            cols["gpu_foreign"] = [float(checks[i][1]) if i >= 0 else _NAN for i in idx]
        df = pd.DataFrame(cols)
        return df.astype({c: "float64" for c in df.columns if c != "boundary"}).astype({"boundary": "bool"})


_NAN = float("nan")

#: The ``schema`` of a journal's ``header.json``.
JOURNAL_SCHEMA = "alems.sampler-journal/1"


class _JournalMeter(Meter):
    """The domains of a journal, for replaying its rows (never read)."""

    name = "journal"

    def __init__(self, domains: list[Domain]) -> None:
        self._domains = domains

    def domains(self) -> list[Domain]:
        return list(self._domains)

    def read_raw(self) -> dict[str, float]:  # pragma: no cover - a replay never reads
        raise CounterReadError("a journal replay reads no counters")


def _whole_rows(path: str, fmt: Any) -> list[tuple[float, ...]]:
    """The whole rows of a binary rows file (a torn last row, from a kill mid-write, is dropped)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    return list(fmt.iter_unpack(data[: len(data) - len(data) % fmt.size]))


def replay_journal(journal_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, list[Domain]]:
    """The ``samples`` table and domains of a sampler's ``journal_dir``, up to its last row.

    The parent's and the child's rows are merged in time order (both were stamped under
    the shared lock, so this is the order they were read in) and tracked for wraps again,
    exactly as :meth:`Sampler.frame` would have; ``gpu_foreign`` is not journaled.
    Raises ``FileNotFoundError`` without ``header.json``.
    """
    d = os.fspath(journal_dir)
    with open(os.path.join(d, "header.json")) as fh:
        header = json.load(fh)
    domains = [domain_from_dict(m) for m in header["domains"]]
    keys = list(header["keys"])
    n = len(keys)
    own = [
        (r[0], r[1 : n + 1], r[n + 1], r[n + 2], r[n + 3] != 0.0)
        for r in _whole_rows(os.path.join(d, "parent.bin"), journal_struct(n))
    ]
    child = [
        (r[0], r[1 : n + 1], r[n + 1], r[n + 2], False)
        for r in _whole_rows(os.path.join(d, "rows.bin"), row_struct(n))
    ]
    replay = Sampler(_JournalMeter(domains), float(header["interval_s"]), clock=lambda: 0.0, mode="thread")
    with replay._lock:
        for t, raw, proc, sys_s, boundary in sorted(own + child, key=lambda r: r[0]):
            try:
                replay._ingest(t, dict(zip(keys, raw, strict=True)), proc, sys_s, boundary, own=False)
            except CounterReadError as exc:
                replay._record_error(exc)
    return replay.frame(), domains


def _interp_nan(ts: Sequence[float], vals: Sequence[float]) -> list[float]:
    """Fill NaN entries by linear interpolation in ``ts`` between the known ones
    (before the first / after the last known value: that value)."""
    known = [i for i, v in enumerate(vals) if v == v]
    if not known or len(known) == len(vals):
        return list(vals)
    out = list(vals)
    for i in range(known[0]):
        out[i] = vals[known[0]]
    for i in range(known[-1] + 1, len(vals)):
        out[i] = vals[known[-1]]
    for a, b in itertools.pairwise(known):
        if b - a > 1:
            ta, tb, va, vb = ts[a], ts[b], vals[a], vals[b]
            for i in range(a + 1, b):
                out[i] = va if tb == ta else va + (vb - va) * (ts[i] - ta) / (tb - ta)
    return out
