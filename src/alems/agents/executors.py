"""The two executors of one goal execution ``(goal, rep, mode)``, with retries, failure
injection and the event log.

**linear**: per attempt, one LLM call (system prompt + the task text), no tools
(``cfg.linear_tools = "none"``). With ``"single_pass"`` and a goal that has tools: one
*decide* call names at most one tool call (JSON), the tool runs, and one *answer* call
answers with the result in view; still no loop. For a file goal the harness, not the
model, writes the answer text into the expected file in the attempt's sandbox, so the same
file checker judges both modes.

**agentic**, ``cfg.style = "plan_execute"``: per attempt,

1. *plan*: one call that returns JSON steps (constrained by a JSON schema when
   ``cfg.json_schema``); a parse failure ends the attempt;
2. *execute*: each step is a tool call (calculator, sql, write_file: run for real) or an
   ``llm`` sub-question. After a tool call the raw result comes back as a user message that
   asks for one plain sentence, and the model answers it (an LLM call). A tool error ends
   the attempt;
3. *synthesise*: one call for the final answer;
4. *verify* (``cfg.verify``): a self-check call; an explicit NO ends the attempt.

**agentic**, ``cfg.style = "react"``: per attempt, up to ``cfg.max_steps`` *react* calls,
each a JSON ``{thought, tool, tool_input}``; a tool named there runs and its output (or
its error: the model may correct itself) comes back as an Observation; the loop ends when
the model names ``final`` or the steps run out. Then *synthesise* and *verify* as above.
An unparsable step ends the attempt.

The final-answer call of both modes (linear *answer*, agentic *synthesise*) has the same
output cap, ``cfg.max_tokens["answer"]``. Its ``finish_reason == "length"`` marks the
attempt ``truncated``, which the checker reports as ``check_reason = truncated`` when the
answer line was cut.

A failed attempt is followed by another while ``cfg.max_attempts`` allows, after the
backoff (``sleep`` is injected). The next attempt is told why the previous one failed: its
error, or the self-check's NO with its reason and the rejected answer.
Failures of the LLM backend (:class:`~alems.llm.base.LLMCallError`: server down,
timeout) fail the attempt in both modes and are retried the same way; they never escape.

Events: ``goal_start``/``goal_end`` (attempt 0) around the execution; ``attempt_start``/
``attempt_end`` around each attempt (its energy window); ``llm_start``/``llm_end``
(``name`` = answer|decide|plan|step|react|synthesise|verify, with token counts) and ``tool_start``/
``tool_end`` (``name`` = the tool) inside. Errors, injected ones included, are on the end
records (``error="injected: timeout"``, ``error="injected: tool failure"``).

The checker runs after ``goal_end``, outside every window. An execution succeeds when its
final attempt produced an answer and the checker accepts it; the self-check never
overrides the checker (a final attempt rejected by its self-check still has its answer
checked). ``success`` is true only on that final attempt's row; ``answer_correct`` keeps
the checker's verdict on every attempt's answer and ``check_reason`` its reason
(:data:`alems.tasks.checkers.REASONS`); an attempt that produced no answer has
``no_marker``, or ``truncated`` when one of its calls stopped at its token cap.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alems.agents import prompts
from alems.agents.config import AgentConfig
from alems.agents.events import EventLog, EventScope
from alems.agents.plan import (
    LLM_STEP,
    PlanParseError,
    parse_plan,
    parse_tool_call,
    plan_schema,
    substitute,
    tool_call_schema,
)
from alems.agents.tools import Toolbox, ToolResult
from alems.contracts import MODES
from alems.llm.base import Backend, Completion, LLMCallError, LLMTimeout, Message
from alems.tasks import Family, Goal, materialise_db
from alems.tasks.checkers import read_answer_file

INJECTED_TIMEOUT = "injected: timeout"
INJECTED_TOOL_FAILURE = "injected: tool failure"
VERIFY_REJECTED = "verify: the self-check answered NO"
REACT_FINAL = "final"


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
    check_reason: str = ""
    truncated: bool = False
    steps: int | None = None
    template: str = ""


ATTEMPT_FIELDS: tuple[str, ...] = tuple(AttemptOutcome.__dataclass_fields__)
"""Every field of :class:`AttemptOutcome`, in order: the columns of ``attempts.csv``. Accounting needs
only :data:`alems.contracts.OUTCOME_COLUMNS` of them."""


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
    truncated: bool = False  # the final-answer call stopped at its token cap
    cut_calls: int = 0  # calls of any kind that stopped at their cap
    feedback: str | None = None  # what the next attempt is told, when not just the error


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
    def _llm(
        self,
        att: _Attempt,
        name: str,
        messages: list[Message],
        *,
        max_tokens: int,
        json_schema: dict | None = None,
    ) -> Completion:
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
        att.cut_calls += int(c.finish_reason == "length")
        self.scope.emit(
            "llm_end",
            att.number,
            name=name,
            tokens_in=c.tokens_in,
            tokens_out=c.tokens_out,
            prefill_s=c.prefill_s,
            decode_s=c.decode_s,
        )
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

    def _final_answer(self, att: _Attempt, name: str, messages: list[Message]) -> str:
        """The final-answer call of either mode: the shared cap, truncation recorded."""
        c = self._llm(att, name, messages, max_tokens=self.cfg.max_tokens["answer"])
        att.answer = c.text
        att.truncated = c.finish_reason == "length"
        return c.text

    def _linear(self, att: _Attempt, feedback: str | None) -> None:
        att.sandbox.mkdir(parents=True, exist_ok=True)
        goal = self.goal
        if self.cfg.linear_tools == "single_pass" and goal.tools:
            self._linear_single_pass(att)
        else:
            messages = [
                {"role": "system", "content": prompts.LINEAR_SYSTEM},
                {"role": "user", "content": goal.prompt},
            ]
            self._final_answer(att, "answer", messages)
        if goal.answer_kind == "file" and goal.output_file and att.answer is not None:
            # The harness writes the answer where the checker looks (no write loop in linear mode).
            (att.sandbox / goal.output_file).write_text(att.answer, encoding="utf-8")

    def _linear_single_pass(self, att: _Attempt) -> None:
        """One decide call (a tool call or none), the tool, one answer call. No loop."""
        goal = self.goal
        box = Toolbox(att.sandbox.parent, master_db=self.master_db, allowed=goal.tools)
        messages: list[Message] = [
            {"role": "system", "content": prompts.linear_tool_system(goal)},
            {"role": "user", "content": goal.prompt},
        ]
        c = self._llm(
            att,
            "decide",
            messages,
            max_tokens=self.cfg.max_tokens["decide"],
            json_schema=tool_call_schema(goal.tools, "none"),
        )
        messages.append({"role": "assistant", "content": c.text})
        try:
            call = parse_tool_call(c.text, goal.tools, "none")
        except PlanParseError as exc:  # an unusable decision: answer without a tool
            call = None
            note = f"(no tool was run: {exc})"
        if call is not None and call.tool != "none":
            res = self._tool(att, box, call.tool, call.input, call.file)
            messages.append({"role": "user", "content": prompts.linear_after_tool(call.tool, res.output)})
        else:
            extra = "" if call is not None else note + "\n"
            messages.append({"role": "user", "content": extra + prompts.linear_after_tool("none", "")})
        self._final_answer(att, "answer", messages)

    def _agentic(self, att: _Attempt, feedback: str | None) -> None:
        if self.cfg.style == "react":
            messages = self._react(att, feedback)
        else:
            messages = self._plan_execute(att, feedback)
        messages.append({"role": "user", "content": prompts.SYNTHESISE})
        final = self._final_answer(att, "synthesise", messages)
        if self.cfg.verify:
            messages.append({"role": "assistant", "content": final})
            messages.append({"role": "user", "content": prompts.VERIFY})
            v = self._llm(
                att,
                "verify",
                messages,
                max_tokens=self.cfg.max_tokens["verify"],
                json_schema=prompts.VERIFY_SCHEMA,
            )
            verdict, reason = parse_verification(v.text)
            if verdict is False:
                att.feedback = prompts.verify_feedback(final, reason)
                raise _AttemptFailed(f"{VERIFY_REJECTED}: {reason.strip() or 'no reason given'}")

    def _plan_execute(self, att: _Attempt, feedback: str | None) -> list[Message]:
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
            messages.append(
                {"role": "user", "content": prompts.tool_result_message(k, step.tool, res.output)}
            )
            c = self._llm(att, "step", messages, max_tokens=cfg.max_tokens["step"])
            messages.append({"role": "assistant", "content": c.text})
        return messages

    def _react(self, att: _Attempt, feedback: str | None) -> list[Message]:
        goal, cfg = self.goal, self.cfg
        box = Toolbox(att.sandbox.parent, master_db=self.master_db, allowed=goal.tools)
        schema = tool_call_schema(goal.tools, REACT_FINAL, thought=True)
        messages: list[Message] = [
            {"role": "system", "content": prompts.react_system(goal, cfg.max_steps)},
            {"role": "user", "content": prompts.react_request(goal, feedback)},
        ]
        for _ in range(cfg.max_steps):
            c = self._llm(att, "react", messages, max_tokens=cfg.max_tokens["react"], json_schema=schema)
            messages.append({"role": "assistant", "content": c.text})
            try:
                call = parse_tool_call(c.text, goal.tools, REACT_FINAL)
            except PlanParseError as exc:
                raise _AttemptFailed(f"react step parse error: {exc}") from None
            if call.tool == REACT_FINAL:
                break
            res = self._tool(att, box, call.tool, call.input, call.file)
            messages.append({"role": "user", "content": prompts.observation_message(call.tool, res.output)})
        return messages

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
            feedback = att.feedback or att.error
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
        has_answer = att.answer is not None and (att.error is None or att.error.startswith(VERIFY_REJECTED))
        if has_answer:
            # the cap matters for a file only where the answer text is the file (linear mode)
            cut = att.truncated and (goal.answer_kind != "file" or self.mode == "linear")
            verdict = self.family.judge(goal, att.answer, att.sandbox, truncated=cut)
            correct, reason = verdict.success, verdict.reason
        else:
            correct, reason = False, "truncated" if att.cut_calls else "no_marker"
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
            check_reason=reason,
            truncated=att.truncated,
            steps=goal.steps,
            template=goal.template,
        )


def parse_verification(text: str) -> tuple[bool | None, str]:
    """The self-check's verdict and reason: from a JSON ``{"reason", "verdict"}`` object, or
    from free text (the first word is the verdict, the rest the reason)."""
    raw = (text or "").strip()
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        return parse_verdict(str(obj.get("verdict", ""))), str(obj.get("reason", "") or "")
    verdict = parse_verdict(raw)
    rest = raw.split(None, 1)[1] if verdict is not None and len(raw.split(None, 1)) > 1 else ""
    return verdict, rest.strip(" ,.:;-")


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
        family=family,
        goal=goal,
        mode=mode,
        rep=rep,
        backend=backend,
        events=events,
        cfg=cfg,
        workdir=Path(workdir),
        master_db=Path(master_db) if master_db else None,
        sleep=sleep,
    ).run()
