"""A stand-in for llama-cpp-python built for the wrong CPU: it imports, then dies the way
a native build with unsupported instructions does, inside model set-up.

``ALEMS_FAKE_LLAMA`` picks the death: ``segv`` (default), ``ill``, or ``hang`` (sleeps).
Tests put this directory first on PYTHONPATH of a child process; it is never imported
by the test process itself.
"""

import os
import signal
import time

__version__ = "0.0-fake-crash"


def llama_print_system_info() -> bytes:
    return b"CPU : AVX512 = 1 | AMX_INT8 = 1 | (fake)"


class Llama:
    def __init__(self, *args, **kwargs) -> None:
        mode = os.environ.get("ALEMS_FAKE_LLAMA", "segv")
        if mode == "hang":
            time.sleep(3600)
        os.kill(os.getpid(), signal.SIGILL if mode == "ill" else signal.SIGSEGV)
