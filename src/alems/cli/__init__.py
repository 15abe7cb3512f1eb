"""The ``alems`` command. It parses arguments and calls into the layers and jobs; it holds no
logic of its own. One module per kind of work, each listing its subcommands in ``COMMANDS``:

- ``host``: doctor, measure, fingerprint, baseline, verify (this machine's meters, provenance);
- ``study``: models, metrics, run, tasks (a study's models, families, runs and tables);
- ``own_agent``: track, proxy (measuring an agent of your own);
- ``common``: the registry entry and the output helpers they share.

Building the parser imports every module, so none imports scipy, rich or jsonschema at top
level: ``study`` imports ``alems.metrics`` and ``alems.jobs.standalone`` in the handlers that
need them, and ``alems doctor`` and ``alems measure`` run with only the core dependencies
installed (``tests/test_energy_cli.py``).

The command-line contract is in DESIGN.md; keep to it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alems import __version__
from alems.cli import host, own_agent, study
from alems.cli.common import Command
from alems.errors import AlemsError

# In the order ``alems --help`` lists them.
COMMANDS: list[Command] = [*host.COMMANDS, *study.COMMANDS, *own_agent.COMMANDS]


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
