"""Prompt texts of both modes. Fairness rules:

* Both modes get the same task text (``goal.prompt``) as the user message and are asked
  for the same final form, a last line ``Answer: <answer>``.
* The linear system prompt says there are no tools and, for tasks that ask for a file,
  that the final answer will be written to the file for it (the harness does that).
* The agentic system prompt explains the plan format (``plan_execute``) or the
  thought/action format (``react``) and exactly the tools the goal offers; every tool
  result comes back as a user message.
* With ``linear_tools: single_pass`` the linear system prompt offers the same tools for
  one call, made before the answer; without tools it is the plain prompt above.
* A retry is told why the previous attempt failed (the error, or the self-check's NO
  with its reason and the rejected answer).
"""

from __future__ import annotations

from collections.abc import Sequence

from alems.agents.tools import TOOL_NAMES
from alems.tasks import Goal

ANSWER_FORMAT = "End your reply with a final line of the form 'Answer: <answer>'."

LINEAR_SYSTEM = (
    "You are a careful assistant. Solve the user's task yourself; you cannot run tools or "
    "programs. When the task needs working (arithmetic, logic, reading a table), first reason "
    "step by step, briefly. "
    + ANSWER_FORMAT
    + " If the task asks you to write a file, give the file's content as your answer; it "
    "will be written to the file for you."
)

_TOOL_HELP = {
    "calculator": (
        '- "calculator": exact arithmetic. "input" is only numbers and operators, no words or units, '
        'such as "(1250 + 38) * 12 / 4". Operators: + - * / // % ** (or ^) and parentheses.'
    ),
    "sql": '- "sql": runs one read-only SQLite SELECT query. "input" is the query.',
    "write_file": (
        '- "write_file": writes text to a file. "file" is the file name and "input" is the text. '
        "Only this tool creates files."
    ),
}


def _example(tools: Sequence[str]) -> str:
    """A format example for a *different* task, so that it shows the plan format (and a
    {N} reference) without handing the model operations it could copy into this task."""
    if "sql" in tools:
        task = "how many orders have more than 10 units"
        steps = ['{"action": "sql", "input": "SELECT COUNT(*) FROM orders WHERE units > 10"}']
        if "write_file" in tools:
            task += ", written to count.txt"
            steps.append('{"action": "write_file", "file": "count.txt", "input": "{1}"}')
    elif "calculator" in tools:
        task = "the cost of 3 pens at $2 and 4 pads at $5"
        steps = [
            '{"action": "calculator", "input": "3 * 2"}',
            '{"action": "calculator", "input": "4 * 5"}',
            '{"action": "calculator", "input": "{1} + {2}"}',
        ]
    else:
        return 'Example: {"steps": [{"action": "llm", "input": "Which facts does the task give?"}]}'
    return f"Example for a different task ({task}): " + '{"steps": [' + ", ".join(steps) + "]}"


def agentic_system(goal: Goal, max_steps: int) -> str:
    tools = [t for t in TOOL_NAMES if t in goal.tools]
    lines = [
        "You solve tasks by writing a short plan of steps. The steps are carried out for you, "
        "one by one, and you see each result. Each step does one small thing.",
        'Each step has an "action" (a tool name) and an "input". Tools:',
        *(_TOOL_HELP[t] for t in tools),
        '- "llm": you answer a sub-question yourself in plain text. "input" is the sub-question.',
    ]
    if "sql" in tools and goal.db_schema:
        lines.append(
            f"The database has this schema: {goal.db_schema}. It holds the same rows as the table in the task."
        )
    lines += [
        'In an "input", write {1}, {2}, ... to insert the result of step 1, step 2, ... '
        "A value that a step will compute is not known yet: refer to it as {N}, never guess it.",
        f'Reply with only a JSON object {{"steps": [...]}} with 1 to {max_steps} steps.',
        _example(tools),
    ]
    return "\n".join(lines)


def _tool_call_help(goal: Goal) -> list[str]:
    """The tools of one-tool-call formats (react, linear single_pass): help, schema, file field."""
    lines = ["Tools:", *(_TOOL_HELP[t] for t in TOOL_NAMES if t in goal.tools)]
    if "sql" in goal.tools and goal.db_schema:
        lines.append(
            f"The database has this schema: {goal.db_schema}. It holds the same rows as the table in the task."
        )
    if "write_file" in goal.tools:
        lines.append('For "write_file" also give "tool_file", the file name.')
    return lines


def _request(goal: Goal, ask: str, feedback: str | None, again: str) -> str:
    """The task, what to reply, and (on a retry) why the previous attempt failed."""
    text = f"{goal.prompt}\n\n{ask}"
    if feedback:
        text += f"\nYour previous attempt failed: {feedback}. {again}"
    return text


def plan_request(goal: Goal, feedback: str | None) -> str:
    return _request(goal, "Write the plan now, as JSON only.", feedback, "Make a better plan.")


# --------------------------------------------------------------------------- react
def react_system(goal: Goal, max_steps: int) -> str:
    lines = [
        "You solve tasks step by step. At each step reply with one JSON object: "
        '"thought" (one short sentence), "tool" (a tool name, or "final" when you know the answer) '
        'and "tool_input" (the tool\'s input, or your answer when the tool is "final"). '
        "After each tool call you see its result as an Observation.",
        *_tool_call_help(goal),
        f"You have at most {max_steps} steps.",
    ]
    return "\n".join(lines)


def react_request(goal: Goal, feedback: str | None) -> str:
    return _request(goal, "Give your first step as JSON.", feedback, "Do better this time.")


def observation_message(tool: str, output: str) -> str:
    return f"Observation ({tool}): {output}\nGive your next step as JSON."


# --------------------------------------------------------------------------- linear with one tool call
def linear_tool_system(goal: Goal) -> str:
    lines = [
        "You are a careful assistant. Before you answer you may make ONE tool call. "
        'Reply now with only a JSON object: "tool" (a tool name, or "none") and "tool_input" '
        "(the tool's input, or an empty string).",
        *_tool_call_help(goal),
    ]
    return "\n".join(lines)


def linear_after_tool(tool: str, output: str) -> str:
    head = f"Result of {tool}: {output}\n" if tool != "none" else ""
    return (
        head
        + "Now solve the task. When it needs working, reason step by step, briefly. "
        + ANSWER_FORMAT
        + " If the task asks you to write a file, give the file's content as your answer; "
        "it will be written to the file for you."
    )


def tool_result_message(k: int, tool: str, output: str) -> str:
    return f"Result of step {k} ({tool}): {output}\nState this result in one plain sentence."


def llm_step_message(k: int, question: str) -> str:
    return f"Step {k}: {question}\nAnswer in one or two plain sentences."


SYNTHESISE = (
    "Now give the final answer to the original task in plain text (not JSON), using the results above. "
    + ANSWER_FORMAT
)
VERIFY = (
    "Check your final answer against the task and the results above. "
    'Reply with a JSON object: "reason" (a few words: is the answer right, and if not, what is wrong) '
    'and "verdict" (YES if the answer is correct, NO if it is wrong).'
)
VERIFY_SCHEMA = {
    "type": "object",
    "properties": {"reason": {"type": "string", "maxLength": 160}, "verdict": {"enum": ["YES", "NO"]}},
    "required": ["reason", "verdict"],
    "additionalProperties": False,
}


def verify_feedback(answer: str, reason: str) -> str:
    """What a retry is told after its self-check said NO: the answer and why."""
    last = next((ln.strip() for ln in reversed((answer or "").splitlines()) if ln.strip()), "")
    why = reason.strip() or "no reason given"
    return f"your answer was {last[:200]!r}, and a self-check rejected it ({why})"
