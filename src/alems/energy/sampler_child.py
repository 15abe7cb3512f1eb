"""The sampling loop of the sampler's child process (``python -m alems.energy.sampler_child CONFIG``).

Started by :class:`alems.energy.sampler.Sampler` in ``process`` mode; not for direct use.
It re-opens the meter from its spec, prints ``ready``, waits for ``go`` on stdin (sent
after the parent's first boundary read), then appends one binary row per interval,
``t, raw counter per key, proc_cpu_s, sys_cpu_s`` (little-endian float64; the CPU
times are NaN on rows that did not read them, see ``cpu_interval_s``), to
``DIR/rows.bin``. Each read and its write happen under the shared file lock, so the
parent's boundary reads and these rows are totally ordered in time. It stops on
SIGTERM or when its parent goes away.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alems.energy.base import Meter
from alems.energy.composite import meter_from_spec
from alems.energy.procstat import ProcessTreeCpu, ProcStat
from alems.energy.sampler_link import row_struct
from alems.errors import AlemsError

_NAN = float("nan")


class _Rows:
    """Reads the meter (and, every ``cpu_interval_s``, the CPU times) and appends binary rows
    under the shared lock; read errors go to ``DIR/errors.txt`` (the first 100)."""

    def __init__(self, meter: Meter, keys: list[str], config: dict[str, Any]) -> None:
        self.meter = meter
        self.keys = keys
        self.dir = Path(config["dir"])
        self.tree = ProcessTreeCpu(int(config["pid"]), config["proc_root"], exclude={os.getpid()})
        self.tree.rescan()
        self.stat = ProcStat(config["proc_stat"])
        self.fmt = row_struct(len(keys))
        self.lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.rows_fd = os.open(self.dir / "rows.bin", os.O_WRONLY | os.O_APPEND)
        self.cpu_every = float(config.get("cpu_interval_s", 0.0))
        self.next_cpu = 0.0
        self.n_err = 0

    def append(self) -> None:
        """One read and its row, both under the lock the parent's boundary reads take."""
        now = time.monotonic
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        try:
            t_a = now()
            raw = self.meter.read_raw()
            t = 0.5 * (t_a + now())
            if t >= self.next_cpu:  # CPU times cost more than the counters: read them less often
                self.next_cpu = t + self.cpu_every
                proc, busy = self.tree.read(), self.stat.read().busy_s
            else:
                proc = busy = _NAN
            row = self.fmt.pack(t, *(raw[k] for k in self.keys), proc, busy)
            os.write(self.rows_fd, row)
        except AlemsError as exc:
            self.n_err += 1
            if self.n_err <= 100:
                with open(self.dir / "errors.txt", "a") as fh:
                    fh.write(exc.message.replace("\n", " ") + "\n")
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)


def _open_meter(spec: dict[str, Any], keys: list[str]) -> Meter | None:
    """The meter re-opened from ``spec``; ``None`` (the reason on stderr) when it cannot be."""
    try:
        meter = meter_from_spec(spec)
    except AlemsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return None
    missing = [k for k in keys if k not in {x.key for x in meter.domains()}]
    if missing:
        print(f"error: the re-opened meter lacks domains {missing}", file=sys.stderr)
        return None
    return meter


def _loop(rows: _Rows, config: dict[str, Any], stopping: Callable[[], bool]) -> None:
    """A row every ``interval_s`` (skipping, not bursting, when behind) until ``stopping()`` or
    the parent goes away; the process tree is rescanned every ``tree_scan_s``."""
    parent = int(config["parent"])
    interval = float(config["interval_s"])
    scan_every = float(config["tree_scan_s"])
    now = time.monotonic
    next_t = now() + interval
    next_scan = now() + scan_every
    while not stopping():
        delay = next_t - now()
        if delay > 0:
            time.sleep(delay)
        if stopping() or os.getppid() != parent:
            break
        rows.append()
        t = now()
        next_t += interval
        if next_t < t:
            next_t = t + interval
        if t >= next_scan:
            rows.tree.rescan()
            next_scan = t + scan_every


def main(config: dict[str, Any]) -> int:
    """Run the sampling loop described by ``config`` (written by the parent)."""
    keys = list(config["keys"])
    meter = _open_meter(config["spec"], keys)
    if meter is None:
        return 2
    rows = _Rows(meter, keys, config)
    stopping = False

    def _term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        meter.close()
        return 0
    signal.signal(signal.SIGTERM, _term)  # from here on, finish the current row and exit
    _loop(rows, config, lambda: stopping)
    meter.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(json.loads(sys.argv[1])))
