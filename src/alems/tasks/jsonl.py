"""Families read from JSONL files: the curated QA sets shipped under ``tasks/data/``, and the
A-LEMS JSONL format of user families named in config (this is how GSM8K or private tasks are
run; :func:`alems.tasks.formats.load_jsonl_family` reads every format).

One JSON object per line: ``{"id": ..., "prompt": ..., "answer": ..., "aliases": [...]}``.
``aliases`` is optional. Two optional keys refine checking: ``"kind"`` (``"numeric"`` or
``"string"``; by default an answer that is a number, like ``72`` or ``"1,234"``, is numeric)
and ``"choices"`` (a closed list of candidates, for multiple-choice items).

``generate(seed, n)`` takes the first ``n`` items of one seeded permutation of the file,
so it is reproducible and prefix-stable; asking for more items than the file holds is an
error that names the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any

import numpy as np

from alems.contracts import GROUPS
from alems.errors import ConfigError
from alems.tasks.base import Family, Goal, ValueKind
from alems.tasks.checkers import VALUE_KINDS

_NUMERIC = re.compile(r"^\s*[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?\s*$")


def is_number(value: object) -> bool:
    """True for an int/float (not bool) or a string like ``72``, ``-3.5`` or ``1,234``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_NUMERIC.match(value))


def json_lines(text: str, *, source: str, fix: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of JSONL text; a line that is not a JSON
    object is a :class:`ConfigError` naming ``source:line`` and ``fix``."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg})", fix) from None
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a JSON object", fix)
        yield lineno, item


def parse_items(text: str, *, family: str, source: str, tools: Sequence[str] = ()) -> list[Goal]:
    """Parse JSONL text into goals. Errors name the file, the line and the fix."""
    goals: list[Goal] = []
    seen: set[str] = set()
    fix = 'each line must be a JSON object like {"id": "q1", "prompt": "...", "answer": "...", "aliases": []}'
    for lineno, item in json_lines(text, source=source, fix=fix):
        where = f"{source}:{lineno}"
        missing = [k for k in ("id", "prompt", "answer") if k not in item]
        if missing:
            raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}", fix)
        gid = str(item["id"])
        if gid in seen:
            raise ConfigError(f"{where}: duplicate id {gid!r}", "give every item a unique id")
        seen.add(gid)
        aliases = item.get("aliases") or []
        choices = item.get("choices") or []
        if not isinstance(aliases, list) or not isinstance(choices, list):
            raise ConfigError(f"{where}: aliases and choices must be lists of strings", fix)
        answer = item["answer"]
        given = item.get("kind") or ("numeric" if is_number(answer) and not choices else "string")
        if given not in VALUE_KINDS:
            raise ConfigError(f"{where}: kind must be 'numeric' or 'string', got {given!r}", fix)
        kind: ValueKind = "numeric" if given == "numeric" else "string"
        if kind == "numeric" and not is_number(answer):
            raise ConfigError(f"{where}: kind is numeric but answer {answer!r} is not a number", fix)
        goals.append(
            Goal(
                family=family,
                goal_id=gid,
                prompt=str(item["prompt"]),
                expected=str(answer),
                answer_kind=kind,
                value_kind=kind,
                aliases=tuple(str(a) for a in aliases),
                choices=tuple(str(c) for c in choices),
                tools=tuple(tools),
            )
        )
    if not goals:
        raise ConfigError(f"{source}: no items", fix="add at least one JSONL item")
    return goals


def family_from_items(name: str, group: str, items: list[Goal], *, description: str = "") -> Family:
    """A :class:`Family` that samples from a fixed list of goals."""
    if group not in GROUPS:
        raise ConfigError(
            f"family {name}: group must be one of {GROUPS}, got {group!r}",
            fix="set group: reasoning or group: tool",
        )
    frozen = tuple(items)

    def generate(seed: int, n: int) -> list[Goal]:
        if n > len(frozen):
            raise ConfigError(
                f"family {name} has {len(frozen)} items; {n} were asked for",
                fix=f"ask for at most {len(frozen)} tasks (--tasks / tasks_per_family)",
            )
        order = np.random.default_rng([seed, 41]).permutation(len(frozen))
        return [frozen[int(j)] for j in order[:n]]

    return Family(name=name, group=group, generator=generate, description=description, size=len(frozen))


def load_packaged_family(
    name: str, *, group: str, tools: Sequence[str] = (), description: str = ""
) -> Family:
    """A curated family shipped as ``alems/tasks/data/{name}.jsonl``."""
    ref = resources.files("alems.tasks") / "data" / f"{name}.jsonl"
    items = parse_items(
        ref.read_text(encoding="utf-8"), family=name, source=f"tasks/data/{name}.jsonl", tools=tools
    )
    return family_from_items(name, group, items, description=description)
