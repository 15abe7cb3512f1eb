"""User families in the formats datasets come in, so nobody writes a converter.

A user family names its file and, optionally, its ``format`` (``user_families.NAME``):

``alems`` (default)
    A-LEMS JSONL: ``{"id", "prompt", "answer", "aliases"?, "choices"?, "kind"?}`` per line
    (:func:`alems.tasks.jsonl.parse_items`).
``gsm8k``
    The GSM8K files as published: ``{"question": ..., "answer": "... #### 72"}`` per line.
    The expected answer is what follows ``####`` (thousands commas dropped); the goal id is
    ``NAME-LINE`` (1-based line number) unless the line has an ``id``.
``jsonl`` / ``parquet``
    Any table of questions, one row per item, with a column mapping ``columns:``
    ``question`` (required), ``answer`` (required), ``id`` (optional; default the row
    number), ``choices`` (optional: one column holding a list, or a list of columns, one
    candidate each) and ``aliases`` (optional, a column holding a list). When choices are
    mapped, the prompt lists them after the question (``Choices: A; B; C``) and the answer
    must name exactly one of them. An answer that is a number is judged as a number.

Every format yields the same :class:`~alems.tasks.base.Goal` records and is sampled the
same way (:func:`alems.tasks.jsonl.family_from_items`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alems.contracts import REASONING
from alems.errors import ConfigError
from alems.tasks.base import Family, Goal, ValueKind
from alems.tasks.jsonl import family_from_items, is_number, json_lines, parse_items

FORMATS: tuple[str, ...] = ("alems", "gsm8k", "jsonl", "parquet")
COLUMN_KEYS: tuple[str, ...] = ("question", "answer", "id", "choices", "aliases")
_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def _fix(name: str) -> str:
    return (
        f"set user_families.{name}.format to one of {', '.join(FORMATS)}; for jsonl/parquet add "
        f"columns: {{question: COL, answer: COL}} (optional id, choices, aliases)"
    )


def parse_gsm8k(text: str, *, family: str, source: str, tools: Sequence[str] = ()) -> list[Goal]:
    """GSM8K JSONL (``question`` and an ``answer`` ending in ``#### N``) to goals."""
    goals: list[Goal] = []
    fix = 'each line must be a GSM8K item: {"question": "...", "answer": "... #### 72"}'
    for lineno, item in json_lines(text, source=source, fix=fix):
        where = f"{source}:{lineno}"
        if "question" not in item or "answer" not in item:
            raise ConfigError(f"{where}: needs the keys question and answer", fix)
        m = _GSM8K_ANSWER.search(str(item["answer"]))
        if m is None:
            raise ConfigError(f"{where}: the answer has no '#### N' final line", fix)
        final = m.group(1).replace(",", "").replace("$", "").strip()
        if not is_number(final):
            raise ConfigError(f"{where}: the final answer {final!r} after #### is not a number", fix)
        goals.append(
            Goal(
                family=family,
                goal_id=str(item.get("id", f"{family}-{lineno:05d}")),
                prompt=str(item["question"]),
                expected=final,
                answer_kind="numeric",
                value_kind="numeric",
                tools=tuple(tools),
            )
        )
    if not goals:
        raise ConfigError(f"{source}: no items", fix="the file holds no GSM8K lines")
    return goals


def _mapping(name: str, columns: Any) -> dict[str, Any]:
    if not isinstance(columns, Mapping):
        raise ConfigError(f"user family {name}: columns must be a mapping", _fix(name))
    bad = [k for k in columns if k not in COLUMN_KEYS]
    if bad:
        raise ConfigError(f"user family {name}: unknown column key(s) {bad}", _fix(name))
    missing = [k for k in ("question", "answer") if k not in columns]
    if missing:
        raise ConfigError(f"user family {name}: columns lacks {missing}", _fix(name))
    return dict(columns)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _needed_columns(cols: Mapping[str, Any]) -> list[Any]:
    """The file columns a column mapping reads: question, answer, then id, choices, aliases."""
    needed = [cols["question"], cols["answer"]]
    if "id" in cols:
        needed.append(cols["id"])
    choice_cols = cols.get("choices")
    if isinstance(choice_cols, list):
        needed += choice_cols
    elif choice_cols is not None:
        needed.append(choice_cols)
    if "aliases" in cols:
        needed.append(cols["aliases"])
    return needed


def _record_goal(
    rec: Mapping[str, Any],
    cols: Mapping[str, Any],
    *,
    gid: str,
    where: str,
    family: str,
    tools: Sequence[str],
) -> Goal:
    """The goal of one row (its columns checked present), the choices listed after the question."""
    choice_cols = cols.get("choices")
    if isinstance(choice_cols, list):
        choices = [str(rec[c]) for c in choice_cols if rec[c] is not None]
    else:
        choices = _as_list(rec[choice_cols]) if choice_cols is not None else []
    aliases = _as_list(rec[cols["aliases"]]) if "aliases" in cols else []
    answer = rec[cols["answer"]]
    if hasattr(answer, "item"):
        answer = answer.item()
    question = str(rec[cols["question"]])
    if choices:
        question += "\nChoices: " + "; ".join(choices)
    if choices and str(answer) not in choices:
        raise ConfigError(
            f"{where}: answer {answer!r} is not one of the choices {choices}",
            "map columns.answer to the column that holds the correct choice's text",
        )
    kind: ValueKind = "numeric" if is_number(answer) and not choices else "string"
    return Goal(
        family=family,
        goal_id=gid,
        prompt=question,
        expected=str(answer).replace(",", "") if kind == "numeric" else str(answer),
        answer_kind=kind,
        value_kind=kind,
        aliases=tuple(aliases),
        choices=tuple(choices),
        tools=tuple(tools),
    )


def goals_from_records(
    records: Sequence[Mapping[str, Any]],
    columns: Mapping[str, Any],
    *,
    family: str,
    source: str,
    tools: Sequence[str] = (),
) -> list[Goal]:
    """Rows of a table (dicts) to goals through a column mapping (module docstring)."""
    cols = _mapping(family, columns)
    needed = _needed_columns(cols)
    goals: list[Goal] = []
    seen: set[str] = set()
    for row_no, rec in enumerate(records, 1):
        where = f"{source}: row {row_no}"
        absent = [c for c in needed if c not in rec]
        if absent:
            raise ConfigError(
                f"{where}: no column(s) {absent}; it has {sorted(rec)}",
                f"map user_families.{family}.columns to columns the file has",
            )
        gid = str(rec[cols["id"]]) if "id" in cols else f"{family}-{row_no:05d}"
        if gid in seen:
            raise ConfigError(
                f"{where}: duplicate id {gid!r}", "map columns.id to a column with unique values"
            )
        seen.add(gid)
        goals.append(_record_goal(rec, cols, gid=gid, where=where, family=family, tools=tools))
    if not goals:
        raise ConfigError(f"{source}: no rows", fix="the file holds no items")
    return goals


def read_records(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The rows of a JSONL or Parquet file as dicts."""
    if fmt == "parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise ConfigError(
                f"{path}: cannot read as Parquet ({type(exc).__name__}: {exc})",
                "point the family at a Parquet file, or set format: jsonl",
            ) from None
        return [{str(k): v for k, v in rec.items()} for rec in df.to_dict("records")]
    fix = "one JSON object per line"
    return [item for _, item in json_lines(path.read_text(encoding="utf-8"), source=str(path), fix=fix)]


def load_goals(
    name: str,
    path: str | Path,
    fmt: str = "alems",
    *,
    columns: Mapping[str, Any] | None = None,
    tools: Sequence[str] = (),
) -> list[Goal]:
    """The goals of a user family file in format ``fmt``."""
    if fmt not in FORMATS:
        raise ConfigError(f"user family {name}: unknown format {fmt!r}", _fix(name))
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"family {name}: file {p} not found",
            fix="point the family's path at a data file (relative paths are from the working directory)",
        )
    if fmt in ("jsonl", "parquet"):
        if columns is None:
            raise ConfigError(f"user family {name}: format {fmt} needs a columns mapping", _fix(name))
        return goals_from_records(read_records(p, fmt), columns, family=name, source=str(p), tools=tools)
    if columns is not None:
        raise ConfigError(f"user family {name}: columns apply to format jsonl or parquet only", _fix(name))
    text = p.read_text(encoding="utf-8")
    if fmt == "gsm8k":
        return parse_gsm8k(text, family=name, source=str(p), tools=tools)
    return parse_items(text, family=name, source=str(p), tools=tools)


def load_jsonl_family(
    name: str,
    path: str | Path,
    group: str = REASONING,
    *,
    tools: Sequence[str] = ("calculator",),
    description: str = "",
    fmt: str = "alems",
    columns: Mapping[str, Any] | None = None,
) -> Family:
    """A user family from a data file: A-LEMS JSONL ``{id, prompt, answer, aliases?}`` by
    default, or another format (:mod:`alems.tasks.formats`).

    ``tools`` are the tools its agentic executions may call (default: the calculator).
    """
    items = load_goals(name, path, fmt, columns=columns, tools=tools)
    return family_from_items(
        name, group, items, description=description or f"user family from {path} ({fmt})"
    )
