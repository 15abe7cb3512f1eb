"""The directory lock of a session (two runs never mix in one directory), and the errors of
the Session API.

An ``flock`` belongs to the open file, which a ``fork`` child shares: a multiprocessing worker
forked while the lock is held would keep it after its parent dies. So a child closes its copy
at once (:func:`os.register_at_fork`; closing, not unlocking, which would free the parent's
lock too), and a lock that is held although the pid recorded in it is dead is reported as
stale, with the processes that still hold the file open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import weakref
from pathlib import Path

from alems.errors import AlemsError

LOCK_NAME = ".alems.lock"


class SessionError(AlemsError):
    """The Session API was used out of order, or its directory cannot be used."""


class SessionLockedError(SessionError):
    """Another session holds the directory's lock."""


_HELD: weakref.WeakSet[DirLock] = weakref.WeakSet()


def _close_in_child() -> None:
    """After a fork, in the child: drop the child's copies of every held lock (the parent keeps its own)."""
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


os.register_at_fork(after_in_child=_close_in_child)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_by(path: Path, proc: str = "/proc") -> list[int]:
    """The pids that hold ``path`` open (those whose ``/proc/PID/fd`` this user may read)."""
    target = os.path.realpath(path)
    pids = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.scandir(f"{proc}/{entry.name}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) == target:
                        pids.append(int(entry.name))
                        break
                except OSError:
                    continue
    return sorted(pids)


def _locked_error(directory: Path, path: Path, holder: str) -> SessionLockedError:
    """The refusal: by a live session, or a stale lock whose recorded pid is dead."""
    pid = int(holder) if holder.isdigit() else None
    if pid is None or pid_alive(pid):
        return SessionLockedError(
            f"{directory} is in use by another A-LEMS session (pid {holder}); two runs must not mix",
            "wait for it to finish, or give this session another directory",
        )
    others = [p for p in open_by(path) if p != os.getpid()]
    held_by = (
        f"process(es) {', '.join(map(str, others))} still hold it open"
        if others
        else "another process holds it"
    )
    return SessionLockedError(
        f"{directory} has a stale lock: the session that took it (pid {pid}) is no longer running, but "
        f"{held_by} (a child it forked, e.g. a multiprocessing worker)",
        f"stop {'those processes' if others else 'the processes the dead session started'} "
        f"(e.g. `kill {' '.join(map(str, others)) or 'PID'}`); the lock is freed when the last one ends",
    )


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
            raise _locked_error(self.directory, self.path, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        _HELD.add(self)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD.discard(self)
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
