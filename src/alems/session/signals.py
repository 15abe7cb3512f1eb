"""Signals while a session or an ``alems track`` call runs: SIGTERM and SIGINT become
exceptions that unwind the user's ``with`` blocks, and are held while the files are written.

* SIGINT raises :class:`KeyboardInterrupt` (Python's own convention: uncaught, the process
  ends by SIGINT, exit status 130 in a shell).
* SIGTERM (SLURM's time limit, ``timeout``, ``docker stop``) raises :class:`Terminated`,
  a :class:`SystemExit` with code 143 (128 + 15): uncaught, the process exits 143.
* Inside :meth:`SignalGuard.deferred` (writing the four files, merging ``alems track``'s
  calls) a signal is remembered and raised when the block ends, so the files are whole.

Handlers can only be installed from the main thread; elsewhere the guard does nothing and
the process keeps its own handling. A signal the process ignores (``nohup``) stays ignored. :func:`fault_point` is the hook the interruption tests
use to stop a process at a named point (``ALEMS_FAULT=POINT:SIGNAL``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: The signals a guard turns into exceptions.
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Terminated(SystemExit):
    """SIGTERM arrived: unwinds like ``sys.exit(143)``, so the process exits with 128 + 15."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(128 + int(signum))
        self.signum = int(signum)


INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit)


def is_interrupt(exc: BaseException | None) -> bool:
    """An exception that stops the run from outside the work (a signal, Ctrl-C, ``sys.exit``):
    the execution it cuts short did not finish, so it has no outcome."""
    return isinstance(exc, INTERRUPTS)


def signal_name(exc: BaseException | None) -> str | None:
    """``SIGTERM``/``SIGINT`` for the exceptions a guard raises (KeyboardInterrupt counts as SIGINT)."""
    if isinstance(exc, Terminated):
        return signal.Signals(exc.signum).name
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    return None


def interrupt_for(signum: int) -> BaseException:
    """The exception a guard raises for ``signum``."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


class SignalGuard:
    """SIGTERM and SIGINT as exceptions while installed (main thread only; see the module)."""

    def __init__(self) -> None:
        self._old: dict[int, Any] = {}
        self._held = 0
        self.pending: int | None = None
        self.installed = False

    def install(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread() and not self.installed:
            for sig in SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:  # an ignored signal stays ignored (nohup)
                    self._old[sig] = signal.signal(sig, self._handle)
            self.installed = True
        return self

    def restore(self) -> None:
        if self.installed:
            for sig, old in self._old.items():
                signal.signal(sig, old)
            self._old.clear()
            self.installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._held:
            self.pending = signum
            return
        raise interrupt_for(signum)

    def hold(self) -> None:
        """Hold signals from now until :meth:`close` (which returns the one that came in)."""
        self._held += 1

    def close(self) -> int | None:
        """Restore the previous handlers; return the signal held meanwhile (None: none)."""
        self.restore()
        self._held = 0
        pending, self.pending = self.pending, None
        return pending

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold signals for the block; one that came in is raised when it ends."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        self.raise_pending()

    def raise_pending(self) -> None:
        if self.pending is not None and not self._held:
            signum, self.pending = self.pending, None
            raise interrupt_for(signum)

    def __enter__(self) -> SignalGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


#: ``ALEMS_FAULT=POINT[:SIGNAL]`` stops this process at the named point (tests only).
FAULT_ENV = "ALEMS_FAULT"


def fault_point(name: str) -> None:
    """Send this process ``SIGNAL`` (default SIGKILL) when ``ALEMS_FAULT`` names ``name``.

    The named points (``session.stopped``: recording stopped, nothing written;
    ``session.written``: run.json written, the spool not yet removed; ``track.merge``: the
    merged goals.csv written, not yet run.json; ``track.merged``: after the merge) let the
    interruption tests kill a run where it matters, with no sleeps."""
    spec = os.environ.get(FAULT_ENV, "")
    point, _, sig = spec.partition(":")
    if point == name:
        os.kill(os.getpid(), getattr(signal, sig or "SIGKILL"))


__all__ = [
    "FAULT_ENV",
    "SIGNALS",
    "SignalGuard",
    "Terminated",
    "fault_point",
    "interrupt_for",
    "is_interrupt",
    "signal_name",
]
