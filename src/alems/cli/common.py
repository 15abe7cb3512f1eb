"""What every ``alems`` subcommand module shares: the shape of a registry entry and the two
output helpers. Imports nothing beyond the standard library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

Handler = Callable[[argparse.Namespace], int]


class Command(NamedTuple):
    """One subcommand: its name, its one-line help (also its description), the function that
    declares its arguments and the one that runs it."""

    name: str
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    handler: Handler


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str, allow_nan=True))


def energy_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="alems: %(message)s", stream=sys.stderr)
