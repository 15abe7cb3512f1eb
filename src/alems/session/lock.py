"""The directory lock of a session (two runs never mix in one directory), and the errors of
the Session API."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from alems.errors import AlemsError

LOCK_NAME = ".alems.lock"


class SessionError(AlemsError):
    """The Session API was used out of order, or its directory cannot be used."""


class SessionLockedError(SessionError):
    """Another session holds the directory's lock."""


class DirLock:
    """An exclusive, non-blocking ``flock`` on ``DIR/.alems.lock``, held until :meth:`release`.

    The kernel drops it when the process dies, so a crashed session never leaves a stale lock.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DirLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SessionLockedError(
                f"{self.directory} is in use by another A-LEMS session (pid {holder}); two runs must not mix",
                "wait for it to finish, or give this session another directory",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
