"""The agentic plan: its JSON schema and a strict-but-forgiving parser.

A plan is ``{"steps": [{"action": T, "file": F?, "input": S}, ...]}`` where ``T`` is one
of the goal's tools or ``llm`` (a sub-question the model answers itself). ``file`` is
used by ``write_file`` only. An ``input`` may contain ``{1}``, ``{2}``, ... (also
``{step1}``/``{result1}``), replaced at execution time by the raw output of that
earlier step.

The parser accepts what a small model plausibly emits around valid JSON (a code fence,
text before or after the object, a bare list of steps, ``tool`` for ``action``, a
non-string ``input``) and rejects everything else with a :class:`PlanParseError` whose
message says what was wrong; the executor turns that into a failed attempt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

LLM_STEP = "llm"
_REF = re.compile(r"\{\s*(?:step|result)?\s*_?(\d+)\s*\}", re.IGNORECASE)


class PlanParseError(ValueError):
    """The plan text is not a usable plan."""


@dataclass(frozen=True)
class Step:
    tool: str
    input: str
    file: str | None = None


def _call_shape(
    tool: str, *, name_key: str, file_key: str, input_key: str, thought: bool = False
) -> dict[str, Any]:
    """One tool call's object schema, every key required: an optional thought, the tool
    (a constant), a file for ``write_file`` only, the input."""
    props: dict[str, Any] = {}
    if thought:
        props["thought"] = {"type": "string", "maxLength": 300}
    props[name_key] = {"const": tool}
    if tool == "write_file":
        props[file_key] = {"type": "string"}
    props[input_key] = {"type": "string"}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def plan_schema(tools: tuple[str, ...], max_steps: int) -> dict[str, Any]:
    """The JSON schema the plan call is constrained with: one object shape per step tool
    (``file`` exists, and is required, only on ``write_file`` steps).

    The keys ``action`` < ``file`` < ``input`` are in alphabetical order on purpose: a
    grammar built from the schema fixes the key order, and some serialisations sort keys.
    Either way the model names the tool first, then (for ``write_file``) the file."""

    def step(tool: str) -> dict[str, Any]:
        return _call_shape(tool, name_key="action", file_key="file", input_key="input")

    return {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {"anyOf": [step(t) for t in (*tools, LLM_STEP)]},
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def _extract_json(text: str) -> Any:
    t = (text or "").strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", t, re.DOTALL)
    if fence:
        t = fence.group(1).strip()
    try:
        return json.loads(t)
    except json.JSONDecodeError:
        pass
    starts = [i for i in (t.find("{"), t.find("[")) if i >= 0]
    if not starts:
        raise PlanParseError("the plan is not JSON: no '{' or '[' found")
    try:
        obj, _ = json.JSONDecoder().raw_decode(t[min(starts) :])
    except json.JSONDecodeError as exc:
        raise PlanParseError(f"the plan is not valid JSON ({exc.msg} at char {exc.pos})") from None
    return obj


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        return _as_text(next(iter(value.values())))
    return None


def parse_plan(text: str, tools: tuple[str, ...], max_steps: int) -> list[Step]:
    """Parse plan text into steps; raise :class:`PlanParseError` with the reason."""
    obj = _extract_json(text)
    if isinstance(obj, dict):
        if "steps" not in obj:
            raise PlanParseError("the plan has no 'steps' list")
        steps_raw = obj["steps"]
    else:
        steps_raw = obj
    if not isinstance(steps_raw, list):
        raise PlanParseError("'steps' must be a list")
    if not steps_raw:
        raise PlanParseError("the plan has no steps")
    if len(steps_raw) > max_steps:
        raise PlanParseError(f"the plan has {len(steps_raw)} steps; at most {max_steps} are allowed")
    allowed = (*tools, LLM_STEP)
    steps = []
    for k, raw in enumerate(steps_raw, 1):
        if not isinstance(raw, dict):
            raise PlanParseError(f"step {k} is not an object")
        tool = raw.get("action", raw.get("tool"))
        if not isinstance(tool, str) or tool.strip() not in allowed:
            raise PlanParseError(f"step {k} names action {tool!r}; allowed: {', '.join(allowed)}")
        arg = _as_text(raw.get("input", raw.get("args", raw.get("arguments"))))
        if arg is None or not arg.strip():
            raise PlanParseError(f"step {k} has no 'input' text")
        file = raw.get("file")
        steps.append(Step(tool=tool.strip(), input=arg, file=str(file) if file is not None else None))
    return steps


def substitute(text: str, results: list[str], *, strict: bool = True) -> str:
    """Replace ``{N}`` references with the raw output of step N (1-based).

    A reference to a step that has not run yet raises ``ValueError`` when ``strict``,
    and is left as it is otherwise.
    """

    def repl(m: re.Match[str]) -> str:
        k = int(m.group(1))
        if not 1 <= k <= len(results):
            if not strict:
                return m.group(0)
            raise ValueError(f"reference {m.group(0)} points to a step that has no result yet")
        return results[k - 1]

    return _REF.sub(repl, text)


# --------------------------------------------------------------------------- one tool call (react, linear single_pass)
def tool_call_schema(tools: tuple[str, ...], stop: str, *, thought: bool = False) -> dict[str, Any]:
    """The schema of one tool call ``{"thought"?, "tool", "tool_file"?, "tool_input"}``, where
    ``tool`` is one of ``tools`` or ``stop`` (``final`` for react, ``none`` for linear
    single_pass). The keys are in alphabetical order on purpose (see :func:`plan_schema`):
    the thought comes first, then the tool, then its file and input."""

    return {
        "anyOf": [
            _call_shape(t, name_key="tool", file_key="tool_file", input_key="tool_input", thought=thought)
            for t in (*tools, stop)
        ]
    }


def parse_tool_call(text: str, tools: tuple[str, ...], stop: str) -> Step:
    """Parse one tool call (:func:`tool_call_schema`) into a :class:`Step` whose ``tool`` is
    one of ``tools`` or ``stop``. Accepts ``action``/``input``/``file`` as synonyms."""
    obj = _extract_json(text)
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        raise PlanParseError("the step is not a JSON object")
    tool = obj.get("tool", obj.get("action"))
    allowed = (*tools, stop)
    if not isinstance(tool, str) or tool.strip() not in allowed:
        raise PlanParseError(f"the step names tool {tool!r}; allowed: {', '.join(allowed)}")
    tool = tool.strip()
    arg = _as_text(obj.get("tool_input", obj.get("input", "")))
    if arg is None:
        arg = ""
    if tool != stop and not arg.strip():
        raise PlanParseError(f"the step calls {tool} with no 'tool_input'")
    file = obj.get("tool_file", obj.get("file"))
    return Step(tool=tool, input=arg, file=str(file) if file is not None else None)
