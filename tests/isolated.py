"""Run a test body in a forked child, so a native crash fails that one test, not the suite.

A llama.cpp build that does not fit the CPU dies with SIGSEGV or SIGILL inside ``decode``;
in process that kills pytest before it prints a summary. Tests that generate with a real
model wrap their body in :func:`isolated`: the body runs in a fork (fixtures were resolved
in the parent, so ``tmp_path`` and friends work), an assertion error or skip comes back
as text, and a death by signal fails the test with the runtime's diagnosis (the signal,
the build flags of ``.venv/llama_build.json`` and the command that rebuilds portably).

Nothing heavy may be loaded in the parent: fixtures hand over paths and settings, and the
body loads the model itself.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from alems.llm.runtime import crash_diagnosis

DEFAULT_TIMEOUT_S = 300.0


def _child(fn: Callable[..., Any], args: tuple, kwargs: dict, conn: Any) -> None:
    try:
        fn(*args, **kwargs)
        conn.send(("pass", ""))
    except pytest.skip.Exception as exc:
        conn.send(("skip", str(exc)))
    except BaseException:
        conn.send(("fail", traceback.format_exc()))
    finally:
        conn.close()
        os._exit(0)


def run_isolated(
    fn: Callable[..., Any], *args: Any, timeout_s: float = DEFAULT_TIMEOUT_S, **kwargs: Any
) -> None:
    """Call ``fn(*args, **kwargs)`` in a forked child and turn its outcome into this test's."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, kwargs, send))
    proc.start()
    send.close()
    outcome: tuple[str, str] | None = None
    if recv.poll(timeout_s):
        try:
            outcome = recv.recv()
        except EOFError:  # the child died before it could answer
            outcome = None
    proc.join(timeout=None if outcome is not None else 10)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"the test body did not finish within {timeout_s:g} s (child killed)", pytrace=False)
    code = proc.exitcode or 0
    if code < 0:
        pytest.fail(crash_diagnosis(-code), pytrace=False)
    if outcome is None:
        pytest.fail(f"the test body's child exited with status {code} and no result", pytrace=False)
    kind, text = outcome
    if kind == "skip":
        pytest.skip(text)
    if kind == "fail":
        pytest.fail(f"in the isolated child:\n{text}", pytrace=False)


def isolated(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator form of :func:`run_isolated` for a whole test function."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        run_isolated(fn, *args, **kwargs)

    return wrapper
