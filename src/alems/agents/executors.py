"""The two executors of one goal execution ``(goal, rep, mode)``, with retries, failure
injection and the event log.

**linear**: per attempt, one LLM call (system prompt + the task text), no tools. For a
file goal the harness, not the model, writes the answer text into the expected file in
the attempt's sandbox, so the same file checker judges both modes.

**agentic**: per attempt,

1. *plan*: one call that returns JSON steps (constrained by a JSON schema when
   ``cfg.json_schema``); a parse failure ends the attempt;
2. *execute*: each step is a tool call (calculator, sql, write_file: run for real) or an
   ``llm`` sub-question. After a tool call the raw result comes back as a user message that
   asks for one plain sentence, and the model answers it (an LLM call). A tool error ends
   the attempt;
3. *synthesise*: one call for the final answer;
4. *verify* (``cfg.verify``): a self-check call; an explicit NO ends the attempt.

A failed attempt is followed by another while ``cfg.max_attempts`` allows, after the
backoff (``sleep`` is injected). The next plan request names the previous failure.
Failures of the LLM backend (:class:`~alems.llm.base.LLMCallError`: server down,
timeout) fail the attempt in both modes and are retried the same way; they never escape.

Events: ``goal_start``/``goal_end`` (attempt 0) around the execution; ``attempt_start``/
``attempt_end`` around each attempt (its energy window); ``llm_start``/``llm_end``
(``name`` = answer|plan|step|synthesise|verify, with token counts) and ``tool_start``/
``tool_end`` (``name`` = the tool) inside. Errors, injected ones included, are on the end
records (``error="injected: timeout"``, ``error="injected: tool failure"``).

The checker runs after ``goal_end``, outside every window. An execution succeeds when its
final attempt produced an answer and the checker accepts it; the self-check never
overrides the checker (a final attempt rejected by its self-check still has its answer
checked). ``success`` is true only on that final attempt's row; ``answer_correct`` keeps
the checker's verdict on every attempt's answer.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alems.agents import prompts
from alems.agents.config import AgentConfig
from alems.agents.events import MODES, EventLog, EventScope
from alems.agents.plan import LLM_STEP, PlanParseError, parse_plan, plan_schema, substitute
from alems.agents.tools import Toolbox, ToolResult
from alems.llm.base import Backend, Completion, LLMCallError, LLMTimeout, Message
from alems.tasks import Family, Goal, materialise_db
from alems.tasks.checkers import read_answer_file

INJECTED_TIMEOUT = "injected: timeout"
INJECTED_TOOL_FAILURE = "injected: tool failure"
VERIFY_REJECTED = "verify: the self-check answered NO"


@dataclass
class AttemptOutcome:
    """One row per attempt (the per-attempt outcome contract)."""

    family: str
    mode: str
    goal_id: str
    rep: int
    attempt: int
    success: bool
    final_attempt: bool
    answer: str
    expected: str
    error: str
    llm_calls: int = 0
    tool_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    answer_correct: bool = False


OUTCOME_COLUMNS: tuple[str, ...] = tuple(AttemptOutcome.__dataclass_fields__)


@dataclass
class _Attempt:
    number: int
    sandbox: Path
    answer: str | None = None
    error: str | None = None
    llm_calls: int = 0
    tool_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


class _AttemptFailed(Exception):
    """Internal: ends an attempt with ``message`` as its error."""


def stable_int(text: str) -> int:
    """A platform-independent 64-bit integer from a string (for seeding)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def injection_rng(cfg: AgentConfig, goal_id: str, rep: int, mode: str) -> np.random.Generator:
    """The failure-injection generator of one execution: independent of execution order."""
    return np.random.default_rng([cfg.seed, stable_int(goal_id), rep, MODES.index(mode)])


@dataclass
class Execution:
    """Everything one goal execution needs. Build it and call :meth:`run`."""

    family: Family
    goal: Goal
    mode: str
    rep: int
    backend: Backend
    events: EventLog
    cfg: AgentConfig
    workdir: Path
    master_db: Path | None = None
    sleep: Callable[[float], None] = time.sleep
    scope: EventScope = field(init=False)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self.workdir = Path(self.workdir)
        self.scope = self.events.scope(goal_id=self.goal.goal_id, rep=self.rep, mode=self.mode)
        self.rng = injection_rng(self.cfg, self.goal.goal_id, self.rep, self.mode)
        if self.goal.has_db and self.master_db is None and self.mode == "agentic":
            # Harness set-up, before goal_start: outside every measured window.
            self.master_db = materialise_db(self.goal, self.workdir / self.goal.goal_id / "db.sqlite")

    # ------------------------------------------------------------------ calls
    def _llm(self, att: _Attempt, name: str, messages: list[Message], *, max_tokens: int,
             json_schema: dict | None = None) -> Completion:
        """One LLM call between llm_start and llm_end. Raises _AttemptFailed on LLM errors."""
        self.scope.emit("llm_start", att.number, name=name)
        att.llm_calls += 1
        if self.cfg.inject_timeout_rate > 0 and self.rng.random() < self.cfg.inject_timeout_rate:
            if self.cfg.inject_timeout_s > 0:
                self.sleep(self.cfg.inject_timeout_s)
            self.scope.emit("llm_end", att.number, name=name, error=INJECTED_TIMEOUT)
            raise _AttemptFailed(f"{name}: {LLMTimeout.__name__}: {INJECTED_TIMEOUT}")
        try:
            c = self.backend.complete(
                list(messages),  # a snapshot: the conversation grows after this call
                max_tokens=max_tokens,
                temperature=self.cfg.temperature,
                seed=self.cfg.seed + self.rep,  # rep r samples with its own seed: reps are not copies
                json_schema=json_schema if self.cfg.json_schema else None,
            )
        except LLMCallError as exc:
            err = f"{type(exc).__name__}: {exc.message}"
            self.scope.emit("llm_end", att.number, name=name, error=err)
            raise _AttemptFailed(f"{name}: {err}") from None
        att.tokens_in += c.tokens_in
        att.tokens_out += c.tokens_out
        self.scope.emit("llm_end", att.number, name=name, tokens_in=c.tokens_in, tokens_out=c.tokens_out)
        return c

    def _tool(self, att: _Attempt, box: Toolbox, tool: str, argument: str, file: str | None) -> ToolResult:
        self.scope.emit("tool_start", att.number, name=tool)
        att.tool_calls += 1
        if self.cfg.inject_tool_failure_rate > 0 and self.rng.random() < self.cfg.inject_tool_failure_rate:
            self.scope.emit("tool_end", att.number, name=tool, error=INJECTED_TOOL_FAILURE)
            return ToolResult.error(INJECTED_TOOL_FAILURE)
        res = box.call(tool, argument, file=file)
        self.scope.emit("tool_end", att.number, name=tool, error=None if res.ok else res.output)
        return res

    # ------------------------------------------------------------------ attempts
    def _attempt_dir(self, n: int) -> Path:
        return self.workdir / self.goal.goal_id / f"rep{self.rep}" / self.mode / f"attempt{n}"

    def _linear(self, att: _Attempt, feedback: str | None) -> None:
        att.sandbox.mkdir(parents=True, exist_ok=True)
        messages = [
            {"role": "system", "content": prompts.LINEAR_SYSTEM},
            {"role": "user", "content": self.goal.prompt},
        ]
        c = self._llm(att, "answer", messages, max_tokens=self.cfg.max_tokens["linear"])
        att.answer = c.text
        if self.goal.answer_kind == "file" and self.goal.output_file:
            # No tools in linear mode: the harness writes the answer where the checker looks.
            (att.sandbox / self.goal.output_file).write_text(c.text, encoding="utf-8")

    def _agentic(self, att: _Attempt, feedback: str | None) -> None:
        goal, cfg = self.goal, self.cfg
        box = Toolbox(att.sandbox.parent, master_db=self.master_db, allowed=goal.tools)
        schema = cfg.plan_schema or plan_schema(goal.tools, cfg.max_steps)
        messages: list[Message] = [
            {"role": "system", "content": prompts.agentic_system(goal, cfg.max_steps)},
            {"role": "user", "content": prompts.plan_request(goal, feedback)},
        ]
        plan = self._llm(att, "plan", messages, max_tokens=cfg.max_tokens["plan"], json_schema=schema)
        try:
            steps = parse_plan(plan.text, goal.tools, cfg.max_steps)
        except PlanParseError as exc:
            raise _AttemptFailed(f"plan parse error: {exc}") from None
        messages.append({"role": "assistant", "content": plan.text})
        results: list[str] = []
        for k, step in enumerate(steps, 1):
            if step.tool == LLM_STEP:
                arg = substitute(step.input, results, strict=False)
            else:
                try:
                    arg = substitute(step.input, results)
                except ValueError as exc:  # a bad reference is a bad tool argument
                    self.scope.emit("tool_start", att.number, name=step.tool)
                    att.tool_calls += 1
                    err = f"error: {exc}"
                    self.scope.emit("tool_end", att.number, name=step.tool, error=err)
                    raise _AttemptFailed(f"step {k} ({step.tool}): {err}") from None
            if step.tool == LLM_STEP:
                messages.append({"role": "user", "content": prompts.llm_step_message(k, arg)})
                c = self._llm(att, "step", messages, max_tokens=cfg.max_tokens["step"])
                messages.append({"role": "assistant", "content": c.text})
                results.append(c.text.strip())
                continue
            res = self._tool(att, box, step.tool, arg, step.file)
            if not res.ok:
                raise _AttemptFailed(f"step {k} ({step.tool}): {res.output}")
            results.append(res.output)
            messages.append({"role": "user", "content": prompts.tool_result_message(k, step.tool, res.output)})
            c = self._llm(att, "step", messages, max_tokens=cfg.max_tokens["step"])
            messages.append({"role": "assistant", "content": c.text})
        messages.append({"role": "user", "content": prompts.SYNTHESISE})
        final = self._llm(att, "synthesise", messages, max_tokens=cfg.max_tokens["synthesise"])
        att.answer = final.text
        if cfg.verify:
            messages.append({"role": "assistant", "content": final.text})
            messages.append({"role": "user", "content": prompts.VERIFY})
            v = self._llm(att, "verify", messages, max_tokens=cfg.max_tokens["verify"],
                          json_schema=prompts.VERIFY_SCHEMA)
            if parse_verdict(v.text) is False:
                raise _AttemptFailed(VERIFY_REJECTED)

    def _run_attempt(self, n: int, feedback: str | None) -> _Attempt:
        att = _Attempt(number=n, sandbox=self._attempt_dir(n) / "sandbox")
        body = self._linear if self.mode == "linear" else self._agentic
        self.scope.emit("attempt_start", n)
        try:
            body(att, feedback)
        except _AttemptFailed as exc:
            att.error = str(exc)
        except OSError as exc:  # sandbox or database copy could not be made
            att.error = f"harness: {type(exc).__name__}: {exc}"
        self.scope.emit("attempt_end", n, error=att.error)
        return att

    # ------------------------------------------------------------------ execution
    def run(self) -> list[AttemptOutcome]:
        """Run all attempts, then check; return one outcome per attempt."""
        attempts: list[_Attempt] = []
        feedback: str | None = None
        self.scope.emit("goal_start", 0)
        for n in range(1, self.cfg.max_attempts + 1):
            att = self._run_attempt(n, feedback)
            attempts.append(att)
            if att.error is None:
                break
            feedback = att.error
            if n < self.cfg.max_attempts:
                self.sleep(self.cfg.backoff(n))
        self.scope.emit("goal_end", 0, error=attempts[-1].error)
        outcomes = [self._outcome(a, a is attempts[-1]) for a in attempts]
        if not self.cfg.keep_workdirs:
            shutil.rmtree(self.workdir / self.goal.goal_id / f"rep{self.rep}" / self.mode, ignore_errors=True)
        return outcomes

    def _outcome(self, att: _Attempt, final: bool) -> AttemptOutcome:
        goal = self.goal
        judged = att.answer
        if goal.answer_kind == "file" and goal.output_file:
            content = read_answer_file(att.sandbox, goal.output_file)
            judged = content if content is not None else att.answer
        has_answer = att.answer is not None and (att.error is None or att.error == VERIFY_REJECTED)
        correct = bool(has_answer and self.family.check(goal, att.answer, att.sandbox))
        return AttemptOutcome(
            family=self.family.name,
            mode=self.mode,
            goal_id=goal.goal_id,
            rep=self.rep,
            attempt=att.number,
            success=bool(final and correct),
            final_attempt=final,
            answer=judged or "",
            expected=goal.expected,
            error=att.error or "",
            llm_calls=att.llm_calls,
            tool_calls=att.tool_calls,
            tokens_in=att.tokens_in,
            tokens_out=att.tokens_out,
            answer_correct=correct,
        )


def parse_verdict(text: str) -> bool | None:
    """True for YES, False for NO, None when the self-check says neither (then it passes)."""
    words = "".join(ch if ch.isalpha() else " " for ch in (text or "")).split()
    if not words:
        return None
    first = words[0].lower()
    if first in ("yes", "correct", "true"):
        return True
    if first in ("no", "incorrect", "wrong", "false"):
        return False
    return None


def run_execution(
    family: Family,
    goal: Goal,
    mode: str,
    *,
    rep: int,
    backend: Backend,
    events: EventLog,
    cfg: AgentConfig,
    workdir: str | Path,
    master_db: str | Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[AttemptOutcome]:
    """Run one goal in one mode (all its attempts) and return its per-attempt outcomes."""
    return Execution(
        family=family, goal=goal, mode=mode, rep=rep, backend=backend, events=events, cfg=cfg,
        workdir=Path(workdir), master_db=Path(master_db) if master_db else None, sleep=sleep,
    ).run()
