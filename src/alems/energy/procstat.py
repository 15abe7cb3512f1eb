"""CPU time from ``/proc``: system-wide busy seconds and a process tree's CPU seconds.

These feed the attribution share (process-tree CPU / all CPU in a window) and the
CPU power model. Paths are injectable so tests can point them at fixtures.

* ``/proc/stat``'s aggregate ``cpu`` line: busy = user + nice + system + irq + softirq;
  total adds idle, iowait and steal. Guest time is already inside user/nice.
  Steal (another VM ran) is counted as *not busy*: this machine's CPUs did not work.
* A process tree's CPU = sum over live members of utime + stime + cutime + cstime
  from ``/proc/PID/stat``. Children that were waited for are in their parent's
  cutime/cstime, so a member exiting moves its time, it does not lose it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from alems.energy.kfile import KernelFile
from alems.errors import MeterError

USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuTimes:
    """System-wide CPU seconds, summed over all CPUs."""

    busy_s: float
    total_s: float
    n_cpus: int


def _read_bytes(path: str, size: int = 1 << 16) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, size)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_head(path: str, size: int) -> bytes:
    """At most ``size`` bytes from the start of ``path`` (one read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def parse_cpu_line(line: bytes | str) -> tuple[int, int]:
    """(busy, total) jiffies from a ``cpu`` line of /proc/stat."""
    parts = line.split()
    vals = [int(x) for x in parts[1:]] + [0] * 10
    user, nice, system, idle, iowait, irq, softirq, steal = vals[:8]
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


class ProcStat:
    """Reader for the aggregate line of a /proc/stat-format file."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self.path = str(path)
        try:
            text = _read_bytes(self.path)
        except OSError as exc:
            raise MeterError(
                f"cannot read {self.path}: {exc.strerror or exc}",
                "A-LEMS needs Linux /proc/stat for CPU time; run on Linux with /proc mounted",
            ) from exc
        lines = text.splitlines()
        if not lines or not lines[0].startswith(b"cpu "):
            raise MeterError(
                f"{self.path} does not start with an aggregate 'cpu' line",
                "point proc_stat at a Linux /proc/stat",
            )
        self.n_cpus = max(1, sum(1 for ln in lines if ln[:3] == b"cpu" and ln[3:4].isdigit()))
        self._file = KernelFile(self.path, 512)

    def read(self) -> CpuTimes:
        try:
            head = self._file.read().split(b"\n", 1)[0]
            busy, total = parse_cpu_line(head)
        except (OSError, ValueError) as exc:
            raise MeterError(f"cannot read CPU times from {self.path}: {exc}") from exc
        return CpuTimes(busy / USER_HZ, total / USER_HZ, self.n_cpus)


def read_cpu_times(path: str = "/proc/stat") -> CpuTimes:
    return ProcStat(path).read()


def _parse_pid_stat(data: bytes) -> tuple[int, int, int]:
    """(ppid, cpu ticks incl. waited-for children, start time) from /proc/PID/stat."""
    rest = data[data.rindex(b")") + 2 :].split()
    ppid = int(rest[1])
    ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    return ppid, ticks, int(rest[19])


class ProcessTreeCpu:
    """CPU seconds used by process ``pid`` and its descendants (default: this process).

    Descendants are found by a scan of ``/proc`` at :meth:`rescan` (the sampler does
    it about once a second: it costs ~1 ms); reading known members is cheap. A member
    that exits and is waited for is in its parent's cutime, so nothing is lost. The
    value returned never decreases.
    """

    def __init__(
        self, pid: int | None = None, proc_root: str = "/proc", exclude: set[int] | None = None
    ) -> None:
        self.pid = os.getpid() if pid is None else int(pid)
        self.proc_root = str(proc_root)
        self._self = self.pid == os.getpid() and self.proc_root == "/proc"
        self.exclude: set[int] = set(exclude or ())  # e.g. the sampler's own child process
        self.members: dict[int, tuple[int, KernelFile]] = {}  # descendant pid -> (start time, stat file)
        self._root_file: KernelFile | None = None
        self._last = 0.0
        self._read_once = False
        self.gone = False

    def _root_ticks(self) -> float:
        if self._self:
            t = os.times()
            return t.user + t.system + t.children_user + t.children_system
        if self._root_file is None:
            self._root_file = KernelFile(f"{self.proc_root}/{self.pid}/stat", 1024)
        _, ticks, _ = _parse_pid_stat(self._root_file.read())
        return ticks / USER_HZ

    def rescan(self) -> None:
        """Find the current descendants of ``pid``."""
        children: dict[int, list[tuple[int, int]]] = {}
        try:
            names = os.listdir(self.proc_root)
        except OSError:
            return
        for name in names:
            if not name.isdigit():
                continue
            try:
                ppid, _, start = _parse_pid_stat(_read_head(f"{self.proc_root}/{name}/stat", 1024))
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append((int(name), start))
        found: dict[int, int] = {}
        stack = [self.pid]
        while stack:
            for child, start in children.get(stack.pop(), ()):
                if child not in found and child != self.pid and child not in self.exclude:
                    found[child] = start
                    stack.append(child)
        members: dict[int, tuple[int, KernelFile]] = {}
        for pid, start in found.items():
            old = self.members.pop(pid, None)
            if old is not None and old[0] == start:
                members[pid] = old
                continue
            try:
                members[pid] = (start, KernelFile(f"{self.proc_root}/{pid}/stat", 1024))
            except OSError:
                continue
        for _, kf in self.members.values():
            kf.close()
        self.members = members

    def read(self) -> float:
        """CPU seconds of the tree now. Once the root process has exited (after at least
        one good read) the last value is returned: its CPU time no longer changes."""
        try:
            total = self._root_ticks()
        except (OSError, ValueError, IndexError) as exc:
            if self._read_once:
                self.gone = True
                return self._last
            raise MeterError(
                f"cannot read CPU time of process {self.pid}: {exc}",
                "the process being measured has exited; measure a live process",
            ) from exc
        ticks = 0
        gone = []
        for pid, (start, kf) in self.members.items():
            try:
                _, t, st = _parse_pid_stat(kf.read())
            except (OSError, ValueError, IndexError):
                gone.append(pid)
                continue
            if st != start:  # pid reused by an unrelated process
                gone.append(pid)
                continue
            ticks += t
        for pid in gone:
            _, kf = self.members.pop(pid)
            kf.close()
        total += ticks / USER_HZ
        self._last = max(self._last, total)
        self._read_once = True
        return self._last
