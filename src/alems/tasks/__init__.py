"""Task families: generators ``(seed, n) -> goals`` with ground truth, and the checker.

Built-in families (``FAMILIES``). The five reasoning families draw from established
benchmarks (:mod:`alems.tasks.catalog`; ``alems tasks fetch NAME`` gets the data, checked by
sha256); the home-made sets they replaced stay available under ``*_local`` names:

======================== ========= =================================================
family                   group     instances
======================== ========= =================================================
factual_qa               reasoning NQ-open test split; any accepted answer counts
science_qa               reasoning OpenBookQA test split, four-way multiple choice
logical_reasoning        reasoning LogiQA test split, four-way multiple choice
gsm8k_basic              reasoning ASDiv (numeric answers), arithmetic word problems
gsm8k_multi_step         reasoning GSM-Symbolic (reasoning-gym), GSM8K templates
factual_qa_local         reasoning curated, ``data/factual_qa.jsonl`` (55 items)
science_qa_local         reasoning curated, ``data/science_qa.jsonl`` (54 items)
logical_reasoning_local  reasoning seeded: orderings, syllogisms, conditionals, elimination
gsm8k_basic_local        reasoning seeded: GSM8K-grade word problems of 2-3 steps
gsm8k_multi_step_local   reasoning seeded: GSM8K-grade word problems of 4-8 steps
tg_single_calc           tool      seeded: arithmetic from one small step to large integers
tg_single_db             tool      seeded: one question on a generated SQLite table
tg_sequential_2          tool      seeded: query that table, then write the answer to a file
======================== ========= =================================================

User families come from data files named in config, in A-LEMS JSONL or a dataset's own
format (:mod:`alems.tasks.formats`)::

    user_families:
      gsm8k: {path: data/gsm8k/test.jsonl, format: gsm8k, tools: [calculator]}
      sciq: {path: data/sciq.parquet, format: parquet, columns: {question: question, answer: correct_answer}}

``get_family(name, config)`` resolves both. This layer never calls an LLM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from alems.contracts import BENCHMARK_OF, BUILTIN_FAMILIES, GROUPS, REASONING, default_group, family_group
from alems.errors import ConfigError
from alems.tasks.arithmetic import (
    generate_gsm8k_basic,
    generate_gsm8k_multi_step,
    generate_tg_single_calc,
)
from alems.tasks.base import Family, Goal, materialise_db
from alems.tasks.benchmark_families import benchmark_family
from alems.tasks.catalog import DEFAULT_BENCHMARKS_DIR
from alems.tasks.checkers import check_answer
from alems.tasks.database import generate_tg_sequential_2, generate_tg_single_db
from alems.tasks.formats import load_jsonl_family
from alems.tasks.jsonl import load_packaged_family
from alems.tasks.logic import generate_logical_reasoning

__all__ = [
    "FAMILIES",
    "Family",
    "Goal",
    "benchmarks_dir",
    "check_answer",
    "describe_families",
    "family_group",
    "get_family",
    "load_jsonl_family",
    "materialise_db",
]

FAMILIES: tuple[str, ...] = BUILTIN_FAMILIES

_GENERATED = {
    "logical_reasoning_local": (generate_logical_reasoning, "home-made: syllogisms and deductions"),
    "gsm8k_basic_local": (generate_gsm8k_basic, "home-made: GSM8K-grade word problems of 2-3 steps"),
    "gsm8k_multi_step_local": (
        generate_gsm8k_multi_step,
        "home-made: GSM8K-grade word problems of 4-8 steps",
    ),
    "tg_single_calc": (generate_tg_single_calc, "exact arithmetic on large integers"),
    "tg_single_db": (generate_tg_single_db, "one question on a generated SQLite table"),
    "tg_sequential_2": (generate_tg_sequential_2, "query the table, then write a result file"),
}
"""Generator and description of each generated built-in family (its group: :func:`default_group`)."""

_CURATED = {
    "factual_qa_local": "home-made: curated general-knowledge questions with aliases",
    "science_qa_local": "home-made: curated science questions with aliases",
}


def benchmarks_dir(config: Mapping[str, Any] | None) -> str:
    """Where fetched benchmark data lives: ``study.benchmarks_dir`` (default ``resources/benchmarks``)."""
    study = (config or {}).get("study") or {}
    return str(study.get("benchmarks_dir") or DEFAULT_BENCHMARKS_DIR)


def _renamed(gen: Callable[[int, int], list[Goal]], old: str, new: str) -> Callable[[int, int], list[Goal]]:
    """A home-made generator whose goals carry the ``*_local`` family name."""

    def generate(seed: int, n: int) -> list[Goal]:
        return [replace(g, family=new, goal_id=g.goal_id.replace(old, new, 1)) for g in gen(seed, n)]

    return generate


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
        if isinstance(entry, Mapping) and "benchmark" in entry and "path" not in entry:
            group = str(entry.get("group", REASONING))
            return benchmark_family(name, str(entry["benchmark"]), group, benchmarks_dir(config))
        if not isinstance(entry, Mapping) or "path" not in entry:
            raise ConfigError(
                f"user family {name} has no path",
                fix=f"set user_families.{name}.path to a JSONL file, or .benchmark to a catalog benchmark",
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
    if name in BENCHMARK_OF:
        return benchmark_family(name, BENCHMARK_OF[name], default_group(name), benchmarks_dir(config))
    if name in _CURATED:
        fam = load_packaged_family(
            name.removesuffix("_local"), group=default_group(name), description=_CURATED[name]
        )
        gen = _renamed(fam.generate, fam.name, name)
        return Family(name=name, group=fam.group, generator=gen, description=fam.description, size=fam.size)
    if name in _GENERATED:
        gen, desc = _GENERATED[name]
        if name.endswith("_local"):
            gen = _renamed(gen, name.removesuffix("_local"), name)
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
        if name in BENCHMARK_OF:  # no data needed to list them
            tools = ["calculator"] if name.startswith("gsm8k") else []
        else:
            first = fam.generate(0, 1)
            tools = list(first[0].tools) if first else []
        rows.append(
            {
                "family": name,
                "group": fam.group,
                "tools": tools,
                "size": fam.size,
                "description": fam.description,
            }
        )
    return rows
