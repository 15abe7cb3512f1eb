"""Cheap repeated reads of small counter files (``energy_uj``, ``/proc/stat``, ``/proc/PID/stat``).

One descriptor is kept open and read with ``pread`` from offset 0, which costs a few
microseconds where open+read+close walks the path again (far more with cold caches,
which is the normal state of a sampler that wakes every 10 ms).

* Kernel pseudo-files under ``/sys`` and ``/proc`` regenerate their content on every
  read from offset 0, so the descriptor is simply re-read.
* Any other file (a fake powercap tree, whose writer replaces files atomically by
  rename) is checked with ``fstat`` first: once the file we hold has been replaced
  (its link count dropped to 0), it is reopened, so the newest value is read.
"""

from __future__ import annotations

import contextlib
import os

_PSEUDO_ROOTS = ("/sys/", "/proc/")


class KernelFile:
    """Read the first ``size`` bytes of ``path``, again and again."""

    __slots__ = ("_fd", "_pseudo", "path", "size")

    def __init__(self, path: str, size: int = 64) -> None:
        self.path = path
        self.size = size
        self._pseudo = os.path.realpath(path).startswith(_PSEUDO_ROOTS)
        self._fd: int | None = os.open(path, os.O_RDONLY)

    def read(self) -> bytes:
        fd = self._fd
        if fd is not None and not self._pseudo and os.fstat(fd).st_nlink == 0:
            self.close()  # replaced by rename: read the new file
            fd = None
        if fd is None:
            fd = self._fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, self.size, 0)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
