"""Host access for the fingerprint: where it reads the host (:class:`HostPaths`), how it runs
programs (:data:`Runner`), and the small tolerant readers the collectors share.

Every path, program and clock the fingerprint touches comes through here, so tests build a
fake host under ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alems.io import read_int_or_none, read_text_or_none

#: A command runner: ``argv -> (returncode, stdout)``, or ``None`` when the program is absent
#: or could not run.
Runner = Callable[[Sequence[str]], "tuple[int, str] | None"]


@dataclass(frozen=True)
class HostPaths:
    """Where the fingerprint reads the host. Tests point every path into a fake tree."""

    cpuinfo: Path = Path("/proc/cpuinfo")
    meminfo: Path = Path("/proc/meminfo")
    cpu_sys: Path = Path("/sys/devices/system/cpu")
    powercap_root: Path = Path("/sys/class/powercap")
    dmi: Path = Path("/sys/class/dmi/id")
    thermal: Path = Path("/sys/class/thermal")
    osrelease: Path = Path("/proc/sys/kernel/osrelease")
    uptime: Path = Path("/proc/uptime")
    loadavg: Path = Path("/proc/loadavg")
    os_release: Path = Path("/etc/os-release")

    @classmethod
    def under(
        cls, root: str | os.PathLike[str], *, powercap_root: str | os.PathLike[str] | None = None
    ) -> HostPaths:
        """Every default path re-rooted under ``root`` (``/proc/cpuinfo`` -> ``root/proc/cpuinfo``)."""
        base = Path(root)
        values = {f.name: base / str(f.default).lstrip("/") for f in dataclasses.fields(cls)}
        if powercap_root is not None:
            values["powercap_root"] = Path(powercap_root)
        return cls(**values)

    def with_powercap(self, powercap_root: str | os.PathLike[str] | None) -> HostPaths:
        if powercap_root is None:
            return self
        return dataclasses.replace(self, powercap_root=Path(powercap_root))


def run_command(argv: Sequence[str], timeout_s: float = 10.0) -> tuple[int, str] | None:
    """Run a program; ``None`` if it is absent or fails to start or times out."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.returncode, proc.stdout


def read_text(path: Path) -> str | None:
    """The stripped text of a host file, undecodable bytes replaced; ``None`` if unreadable."""
    return read_text_or_none(path, errors="replace")


def read_int(path: Path) -> int | None:
    """The integer a host file holds; ``None`` if unreadable or not an integer."""
    return read_int_or_none(path, errors="replace")


def uniform(values: Iterable[Any]) -> Any:
    """One value if all agree, the sorted distinct values if not, ``None`` if there are none."""
    distinct = sorted({v for v in values if v is not None}, key=str)
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else distinct


def first_float(text: str | None) -> float | None:
    """The first whitespace-separated field of ``text`` as a float, or ``None``."""
    if not text:
        return None
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


def utc_iso(t: float) -> str:
    """A Unix time as an ISO-8601 UTC timestamp to the second."""
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")
