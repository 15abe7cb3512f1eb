"""The ``alems`` command. It parses arguments and calls into the layers; it holds no logic
of its own. Heavy imports happen inside each handler so ``alems doctor`` stays fast
and works with only the core dependencies installed.

The command-line contract is in DESIGN.md; keep to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from alems import __version__
from alems.errors import AlemsError

Handler = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str, allow_nan=True))


# --------------------------------------------------------------------------- doctor
def _add_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--powercap-root", default=None, help="powercap sysfs root (default /sys/class/powercap)")


def _cmd_doctor(args: argparse.Namespace) -> int:
    raise AlemsError("alems doctor is not implemented yet")


# --------------------------------------------------------------------------- registry
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = [
    ("doctor", "what meters exist here, and the exact fix for each missing one", _add_doctor, _cmd_doctor),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alems", description="A-LEMS: energy per successful goal for LLM workflows"
    )
    parser.add_argument("--version", action="version", version=f"alems {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add_args, handler in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(_handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._handler(args) or 0)
    except AlemsError as exc:
        print(f"alems {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
