"""Helper processes that run A-LEMS code (the sampler child, the simulated RAPL writer, the
LLM preflight probe).

They start with ``python -m alems...``, so they must import the same A-LEMS as their
parent even when it is not installed (a checkout on ``PYTHONPATH``, a test run); and they
stop on SIGTERM, with a kill as the last resort.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import alems


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the directory holding this
    ``alems`` first on PYTHONPATH."""
    src = str(Path(alems.__file__).resolve().parents[1])
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def terminate(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout_s: float = 10.0) -> None:
    """SIGTERM a running child and wait for it; kill it if it has not exited within ``timeout_s``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
