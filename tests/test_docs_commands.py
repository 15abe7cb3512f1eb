"""The Snakemake commands the documentation gives parse as their readers expect.

``--configfile`` (like ``--forcerun``) takes every word after it, so
``snakemake --cores 1 --configfile config/smoke.yaml all`` reads ``all`` as a second config
file and fails. Every documented command line is parsed with Snakemake's own argument
parser: its config files must be YAML files that exist, and the target it names must be a
target, not swallowed by an option.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from snakemake.cli import get_argument_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    "README.md",
    "config/README.md",
    "config/smoke.yaml",
    "config/paper.yaml",
    "config/compare.yaml",
    "Snakefile",
]
TARGETS = {"all", "figures", "tables", "manifest"}


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for name in DOCS:
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            for m in re.finditer(r"(?:\.venv/bin/)?snakemake ([^`#|]*)", line):
                args = m.group(1).strip()
                if "--configfile" in args:
                    found.append((name, args))
    return found


def test_documentation_gives_configfile_commands() -> None:
    assert len(documented_commands()) >= 5


@pytest.mark.parametrize(("doc", "args"), documented_commands())
def test_documented_command_parses_with_its_target(doc: str, args: str) -> None:
    parsed = get_argument_parser().parse_args(shlex.split(args))
    configs = [str(c) for c in parsed.configfile or []]
    assert configs and all(c.endswith(".yaml") for c in configs), (doc, args, configs)
    words = set(shlex.split(args))
    named = words & TARGETS
    assert named <= set(parsed.targets), (doc, args, parsed.targets)
    for c in configs:
        if c.startswith("config/") and c != "config/server.yaml":  # server.yaml is the user's own file
            assert (ROOT / c).is_file(), (doc, c)
