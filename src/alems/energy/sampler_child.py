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
import struct
import sys
import time
from pathlib import Path
from typing import Any

from alems.energy.composite import meter_from_spec
from alems.energy.procstat import ProcessTreeCpu, ProcStat
from alems.errors import AlemsError


def main(config: dict[str, Any]) -> int:
    """Run the sampling loop described by ``config`` (written by the parent)."""
    d = Path(config["dir"])
    parent = int(config["parent"])
    keys = list(config["keys"])
    try:
        meter = meter_from_spec(config["spec"])
    except AlemsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    missing = [k for k in keys if k not in {x.key for x in meter.domains()}]
    if missing:
        print(f"error: the re-opened meter lacks domains {missing}", file=sys.stderr)
        return 2
    tree = ProcessTreeCpu(int(config["pid"]), config["proc_root"], exclude={os.getpid()})
    tree.rescan()
    stat = ProcStat(config["proc_stat"])
    fmt = struct.Struct(f"<{len(keys) + 3}d")
    lock_fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    rows_fd = os.open(d / "rows.bin", os.O_WRONLY | os.O_APPEND)
    stopping = False

    def _term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
    interval = float(config["interval_s"])
    scan_every = float(config["tree_scan_s"])
    cpu_every = float(config.get("cpu_interval_s", 0.0))
    nan = float("nan")
    next_cpu = 0.0
    now = time.monotonic
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        meter.close()
        return 0
    signal.signal(signal.SIGTERM, _term)  # from here on, finish the current row and exit
    next_t = now() + interval
    next_scan = now() + scan_every
    n_err = 0
    while not stopping:
        delay = next_t - now()
        if delay > 0:
            time.sleep(delay)
        if stopping or os.getppid() != parent:
            break
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            t_a = now()
            raw = meter.read_raw()
            t = 0.5 * (t_a + now())
            if t >= next_cpu:  # CPU times cost more than the counters: read them less often
                next_cpu = t + cpu_every
                proc, busy = tree.read(), stat.read().busy_s
            else:
                proc = busy = nan
            row = fmt.pack(t, *(raw[k] for k in keys), proc, busy)
            os.write(rows_fd, row)
        except AlemsError as exc:
            n_err += 1
            if n_err <= 100:
                with open(d / "errors.txt", "a") as fh:
                    fh.write(exc.message.replace("\n", " ") + "\n")
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        t = now()
        next_t += interval
        if next_t < t:
            next_t = t + interval
        if t >= next_scan:
            tree.rescan()
            next_scan = t + scan_every
    meter.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(json.loads(sys.argv[1])))
