"""Task families: generators ``(seed, n) -> goals`` with ground truth, and the checker.

Built-in families (``FAMILIES``):

==================== ========= =====================================================
family               group     instances
==================== ========= =====================================================
factual_qa           reasoning curated, ``data/factual_qa.jsonl`` (55 items)
science_qa           reasoning curated, ``data/science_qa.jsonl`` (54 items)
logical_reasoning    reasoning seeded: orderings, syllogisms, conditionals, elimination
gsm8k_basic          reasoning seeded: GSM8K-grade word problems of 2-3 steps
gsm8k_multi_step     reasoning seeded: GSM8K-grade word problems of 4-8 steps
tg_single_calc       tool      seeded: exact arithmetic on large integers
tg_single_db         tool      seeded: one question on a generated SQLite table
tg_sequential_2      tool      seeded: query that table, then write the answer to a file
==================== ========= =====================================================

User families come from data files named in config, in A-LEMS JSONL or a dataset's own
format (:mod:`alems.tasks.formats`)::

    user_families:
      gsm8k: {path: data/gsm8k/test.jsonl, format: gsm8k, tools: [calculator]}
      sciq: {path: data/sciq.parquet, format: parquet, columns: {question: question, answer: correct_answer}}

``get_family(name, config)`` resolves both. This layer never calls an LLM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alems.contracts import BUILTIN_FAMILIES, GROUPS, REASONING, default_group, family_group
from alems.errors import ConfigError
from alems.tasks.arithmetic import (
    generate_gsm8k_basic,
    generate_gsm8k_multi_step,
    generate_tg_single_calc,
)
from alems.tasks.base import Family, Goal, materialise_db
from alems.tasks.checkers import check_answer
from alems.tasks.database import generate_tg_sequential_2, generate_tg_single_db
from alems.tasks.formats import load_jsonl_family
from alems.tasks.jsonl import load_packaged_family
from alems.tasks.logic import generate_logical_reasoning

__all__ = [
    "FAMILIES",
    "Family",
    "Goal",
    "check_answer",
    "describe_families",
    "family_group",
    "get_family",
    "load_jsonl_family",
    "materialise_db",
]

FAMILIES: tuple[str, ...] = BUILTIN_FAMILIES

_GENERATED = {
    "logical_reasoning": (generate_logical_reasoning, "syllogisms and deductions"),
    "gsm8k_basic": (generate_gsm8k_basic, "GSM8K-grade word problems of 2-3 steps"),
    "gsm8k_multi_step": (generate_gsm8k_multi_step, "GSM8K-grade word problems of 4-8 steps"),
    "tg_single_calc": (generate_tg_single_calc, "exact arithmetic on large integers"),
    "tg_single_db": (generate_tg_single_db, "one question on a generated SQLite table"),
    "tg_sequential_2": (generate_tg_sequential_2, "query the table, then write a result file"),
}
"""Generator and description of each generated built-in family (its group: :func:`default_group`)."""

_CURATED = {
    "factual_qa": "curated general-knowledge questions with aliases",
    "science_qa": "curated science questions with aliases",
}


def _user_families(config: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not config:
        return {}
    spec = config.get("user_families", {}) or {}
    if isinstance(spec, list):
        out = {}
        for entry in spec:
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise ConfigError(
                    "user_families entries need a name and a path",
                    fix="write user_families: {NAME: {path: FILE.jsonl, group: reasoning}}",
                )
            out[str(entry["name"])] = entry
        return out
    if not isinstance(spec, Mapping):
        raise ConfigError(
            "user_families must be a mapping",
            fix="write user_families: {NAME: {path: FILE.jsonl, group: reasoning}}",
        )
    return {str(k): v for k, v in spec.items()}


def get_family(name: str, config: Mapping[str, Any] | None = None) -> Family:
    """The family called ``name``: built-in, or a user family declared in ``config``."""
    users = _user_families(config)
    if name in users:
        entry = users[name]
        if not isinstance(entry, Mapping) or "path" not in entry:
            raise ConfigError(
                f"user family {name} has no path", fix=f"set user_families.{name}.path to a JSONL file"
            )
        group = str(entry.get("group", REASONING))
        if group not in GROUPS:
            raise ConfigError(
                f"user family {name}: group must be one of {GROUPS}, got {group!r}",
                fix=f"set user_families.{name}.group to reasoning or tool",
            )
        tools = tuple(entry.get("tools", ("calculator",)))
        return load_jsonl_family(
            name,
            entry["path"],
            group,
            tools=tools,
            fmt=str(entry.get("format", "alems")),
            columns=entry.get("columns"),
        )
    if name in _CURATED:
        return load_packaged_family(name, group=default_group(name), description=_CURATED[name])
    if name in _GENERATED:
        gen, desc = _GENERATED[name]
        return Family(name=name, group=default_group(name), generator=gen, description=desc)
    known = ", ".join([*FAMILIES, *users])
    raise ConfigError(
        f"unknown task family {name!r}",
        fix=f"use one of: {known}; or declare it under user_families in config",
    )


def describe_families(config: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per family (built-in, then the config's user families): ``family``, ``group``,
    ``tools`` (the tools its goals offer), ``size`` (None = generated without bound) and
    ``description``."""
    rows = []
    for name in [*FAMILIES, *_user_families(config)]:
        fam = get_family(name, config)
        first = fam.generate(0, 1)
        rows.append(
            {
                "family": name,
                "group": fam.group,
                "tools": list(first[0].tools) if first else [],
                "size": fam.size,
                "description": fam.description,
            }
        )
    return rows
