"""The records of the task layer: a :class:`Goal` (one task instance with its ground truth)
and a :class:`Family` (a generator ``(seed, n) -> goals`` and the checker).

A family's generator is *prefix-stable*: ``generate(seed, 5)`` is the first five goals of
``generate(seed, 10)``, because each instance draws from its own generator seeded with
``(seed, index)`` (or, for curated sets, from one seeded permutation). The same seed gives
the same goals on every machine.

This layer never calls an LLM.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alems.contracts import GROUPS
from alems.tasks.checkers import ANSWER_KINDS, AnswerFormat, AnswerKind, ValueKind, Verdict, judge

__all__ = ["ANSWER_KINDS", "AnswerKind", "Family", "Goal", "ValueKind", "materialise_db"]


@dataclass(frozen=True)
class Goal:
    """One task instance and everything its checker and tools need.

    ``answer_kind``:
      * ``numeric``: ``expected`` is a number; compared within ``rel_tol``/``abs_tol``
        (both 0 means exact, used for big-integer arithmetic);
      * ``string``: ``expected`` or an alias must be named; with ``choices`` exactly one
        choice must be named; ``value_kind`` ``choice`` (multiple choice: ``expected`` is
        the right option's letter, ``choices`` the options' texts in order) or ``open``
        (open-domain QA: any of ``expected`` and ``aliases``, normalised as NQ-open does);
      * ``db``: the answer is compared with what ``db_query`` returns on the database that
        ``db_sql`` builds (``value_kind`` says numeric or string);
      * ``file``: the file ``output_file`` inside the attempt's sandbox must hold that value.
    ``tools`` names the tools an agent may use on this goal (the agentic executor adds
    its own ``llm`` step). ``db_schema`` is the human-readable schema shown to agents.
    ``steps`` is how hard the goal is (arithmetic steps of a word problem, chain length or
    premises of a deduction, operators of a calculation; None when unknown) and
    ``template`` the id of the structure it was generated from ("" when none); both are
    carried into ``goals.csv`` so results can be stratified by difficulty.
    """

    family: str
    goal_id: str
    prompt: str
    expected: str
    answer_kind: AnswerKind
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    value_kind: AnswerFormat = "string"
    rel_tol: float = 1e-6
    abs_tol: float = 1e-6
    tools: tuple[str, ...] = ()
    db_sql: str | None = None
    db_query: str | None = None
    db_schema: str | None = None
    output_file: str | None = None
    steps: int | None = None
    template: str = ""

    def __post_init__(self) -> None:
        if self.answer_kind not in ANSWER_KINDS:
            raise ValueError(f"answer_kind must be one of {ANSWER_KINDS}, got {self.answer_kind!r}")
        if self.answer_kind == "numeric" and self.value_kind != "numeric":
            object.__setattr__(self, "value_kind", "numeric")
        if self.answer_kind == "db" and not (self.db_sql and self.db_query):
            raise ValueError(f"db goal {self.goal_id} needs db_sql and db_query")
        if self.answer_kind == "file" and not self.output_file:
            raise ValueError(f"file goal {self.goal_id} needs output_file")

    @property
    def has_db(self) -> bool:
        return bool(self.db_sql)


@dataclass(frozen=True)
class Family:
    """A named task family: ``generate(seed, n)`` and ``check(goal, answer, workdir)``."""

    name: str
    group: str  # one of alems.contracts.GROUPS
    generator: Callable[[int, int], list[Goal]] = field(repr=False)
    description: str = ""
    size: int | None = None  # number of distinct instances for curated sets, None = unbounded

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {self.group!r}")

    def generate(self, seed: int, n: int) -> list[Goal]:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return self.generator(int(seed), int(n))

    def check(self, goal: Goal, answer: str | None, workdir: str | Path | None = None) -> bool:
        """The same checker for both modes. ``workdir`` is the attempt's sandbox (file goals)."""
        return judge(goal, answer, workdir).success

    def judge(
        self, goal: Goal, answer: str | None, workdir: str | Path | None = None, *, truncated: bool = False
    ) -> Verdict:
        """:meth:`check` with its reason (``alems.tasks.checkers.judge``)."""
        return judge(goal, answer, workdir, truncated=truncated)


def materialise_db(goal: Goal, path: str | Path) -> Path:
    """Write the goal's SQLite database to ``path`` (replacing it) and return the path."""
    if not goal.db_sql:
        raise ValueError(f"goal {goal.goal_id} has no database")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(goal.db_sql)
        con.commit()
    finally:
        con.close()
    tmp.replace(target)
    return target
