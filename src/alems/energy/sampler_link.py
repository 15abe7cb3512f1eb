"""The parent's side of the sampler's child process (:mod:`alems.energy.sampler_child`):
spawning it, taking in the rows it appends, the file lock both sides take, and stopping it.

A row is ``t, raw counter per key, proc_cpu_s, sys_cpu_s`` as little-endian float64
(:func:`row_struct`, the one definition both sides use).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alems.energy.childproc import child_env, terminate
from alems.errors import AlemsError


def row_struct(n_keys: int) -> struct.Struct:
    """The binary row of ``n_keys`` counters: ``t``, the counters, ``proc_cpu_s``, ``sys_cpu_s``."""
    return struct.Struct(f"<{n_keys + 3}d")


def journal_struct(n_keys: int) -> struct.Struct:
    """A parent's journal row (:class:`alems.energy.sampler.Sampler` with ``journal_dir``): a
    :func:`row_struct` row plus ``boundary`` (1.0 or 0.0)."""
    return struct.Struct(f"<{n_keys + 4}d")


class SamplerChild:
    """The parent's handle on a sampling child: its rows file, lock file and process."""

    def __init__(
        self, proc: subprocess.Popen[bytes], tmp: tempfile.TemporaryDirectory[str] | None, d: Path, n: int
    ) -> None:
        self.proc = proc
        self.tmp = tmp
        self.dir = d
        self.rows_path = d / "rows.bin"
        self.errors_path = d / "errors.txt"
        self.lock_fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.rows_fd = os.open(self.rows_path, os.O_RDONLY)
        self.fmt = row_struct(n)
        self.offset = 0
        self._buf = b""

    @classmethod
    def spawn(
        cls,
        settings: Mapping[str, Any],
        timeout_s: float = 20.0,
        directory: str | os.PathLike[str] | None = None,
    ) -> SamplerChild:
        """Start the child with the sampler's ``settings`` (``spec``, ``keys``, ``interval_s``, ``pid``,
        ``proc_stat``, ``proc_root``, ``tree_scan_s``, ``cpu_interval_s``) and wait for its ``ready``.

        The rows go to ``directory/rows.bin`` where given (kept after :meth:`stop`: a killed
        parent's rows survive it there), else to a temporary directory in memory (``/dev/shm``)."""
        tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # memory: no journal writes
            tmp = tempfile.TemporaryDirectory(prefix="alems-sampler-", dir=shm)
            d = Path(tmp.name)
        else:
            d = Path(directory)
            d.mkdir(parents=True, exist_ok=True)
        (d / "rows.bin").write_bytes(b"")
        config = {**settings, "parent": os.getpid(), "dir": str(d)}
        with open(d / "stderr.txt", "wb") as err_fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "alems.energy.sampler_child", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err_fh,
                env=child_env(),
            )
        assert proc.stdout is not None and proc.stdin is not None
        ready = readline_timeout(proc.stdout, timeout_s)
        if ready.strip() != b"ready":
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stdin.close()
            err = (d / "stderr.txt").read_text(errors="replace").strip().splitlines()
            if tmp is not None:
                tmp.cleanup()
            said = [ln[len("error: ") :] for ln in err if ln.startswith("error: ")]
            raise AlemsError(
                said[-1] if said else err[-1] if err else f"no 'ready' from the child (got {ready!r})"
            )
        return cls(proc, tmp, d, len(settings["keys"]))

    def go(self) -> None:
        """Let the child start its periodic reads (after the parent's first read)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def locked(self) -> FileLock:
        return FileLock(self.lock_fd)

    def drain(self) -> list[tuple[float, ...]]:
        """Whole rows appended since the last drain (call with the lock held)."""
        data = b""
        while True:  # the child cannot append while we hold the lock: a short read is the end
            chunk = os.pread(self.rows_fd, 1 << 20, self.offset + len(data))
            data += chunk
            if len(chunk) < 1 << 20:
                break
        if not data:
            return []
        self.offset += len(data)
        data = self._buf + data
        cut = len(data) - len(data) % self.fmt.size
        self._buf = data[cut:]
        return list(self.fmt.iter_unpack(data[:cut]))

    def stop(self) -> list[str]:
        """Stop the child; return the read errors it reported."""
        terminate(self.proc)
        for stream in (self.proc.stdout, self.proc.stdin):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        errors = []
        if self.errors_path.exists():
            errors = [ln for ln in self.errors_path.read_text().splitlines() if ln]
        if self.proc.returncode not in (0, -signal.SIGTERM):
            tail = (self.dir / "stderr.txt").read_text(errors="replace").strip()
            errors.append(f"sampler: child process exited with {self.proc.returncode}: {tail[-500:]}")
        os.close(self.rows_fd)
        os.close(self.lock_fd)
        if self.tmp is not None:
            self.tmp.cleanup()
        return errors

    def kill(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        except Exception:
            pass


class FileLock:
    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


def readline_timeout(stream: Any, timeout_s: float) -> bytes:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        if not sel.select(timeout_s):
            return b""
        return stream.readline()
    finally:
        sel.close()
