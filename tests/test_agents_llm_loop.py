"""The agent loop's recovery paths on a real model (smollm2-135m, llama.cpp): the react
loop and the verify-retry loop run end to end, grammar-constrained. Success is not asserted
(this model cannot do agent work); the loop is."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from isolated import isolated
from test_agents_llm import run_goal

from alems.agents import AgentConfig, read_events
from alems.agents.executors import VERIFY_REJECTED
from alems.llm.config import LLMConfig
from alems.llm.factory import make_backend

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "resources" / "models"
SMOL = MODELS / "smollm2-135m.gguf"

pytestmark = pytest.mark.slow


def _smol():
    if not SMOL.is_file():
        pytest.skip(f"{SMOL} is absent: run `alems models fetch smollm2-135m` (make test does)")
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: run `make llama`")
    return make_backend(
        LLMConfig(model="smollm2-135m", models_dir=str(MODELS), n_ctx=2048, prompt_cache=True), threads=2
    )


class CallLog:
    """Passes calls through and keeps (last user message, reply, finish) per call."""

    def __init__(self, backend) -> None:
        self.backend, self.name, self.model = backend, backend.name, backend.model
        self.calls: list[tuple[str, str, str]] = []

    def complete(self, messages, **kw):
        c = self.backend.complete(messages, **kw)
        self.calls.append((messages[-1]["content"], c.text, c.finish_reason))
        return c


@isolated  # a llama.cpp build that crashes on this CPU fails this test, not the suite
def test_real_model_react_loop(tmp_path) -> None:
    """The react loop on a real model: grammar-constrained steps, real tool calls, a synthesis."""
    backend = _smol()
    log = CallLog(backend)
    cfg = AgentConfig(
        style="react", max_attempts=1, max_steps=3, verify=False, max_tokens={"answer": 24, "react": 64}
    )
    try:
        outcomes = run_goal("gsm8k_basic_local", ("agentic",), log, cfg, tmp_path)
    finally:
        backend.close()
    events = read_events(tmp_path / "events.jsonl")
    names = [e["name"] for e in events if e["kind"] == "llm_start"]
    (row,) = outcomes
    assert names[0] == "react" and len(names) <= 4
    # the loop ends in a synthesis, or a step the parser rejects (e.g. cut at its cap) ends the attempt
    if row.error:
        assert row.error.startswith("react step parse error") and names[-1] == "react", (row.error, names)
    else:
        assert names[-1] == "synthesise" and set(names[:-1]) == {"react"}
    steps = [reply for last, reply, _ in log.calls if "as JSON" in last]
    assert steps, log.calls
    first = steps[0].replace(" ", "")
    assert first.startswith('{"thought":"'), first  # the grammar puts the thought first
    # every tool call the log shows was a react step that named a tool, and came back as an observation
    tools = [e for e in events if e["kind"] == "tool_start"]
    observations = [last for last, _, _ in log.calls if last.startswith("Observation (")]
    assert len(observations) == len(tools)
    assert sum(o.final_attempt for o in outcomes) == 1


@isolated
def test_real_model_verify_retry_loop(tmp_path) -> None:
    """Verify on a real model: each self-check is a schema-constrained JSON verdict; a NO
    starts another attempt (while max_attempts allows) that is told the reason."""
    backend = _smol()
    log = CallLog(backend)
    cfg = AgentConfig(
        max_attempts=2,
        backoff_s=0,
        verify=True,
        max_tokens={"answer": 24, "plan": 128, "step": 16, "verify": 48},
    )
    try:
        rows = run_goal("gsm8k_basic_local", ("agentic",), log, cfg, tmp_path)
    finally:
        backend.close()
    assert 1 <= len(rows) <= 2 and sum(r.final_attempt for r in rows) == 1
    verifies = [
        (reply, finish) for last, reply, finish in log.calls if last.startswith("Check your final answer")
    ]
    for reply, finish in verifies:
        if finish == "stop":
            obj = json.loads(reply)
            assert obj["verdict"] in ("YES", "NO") and isinstance(obj["reason"], str)
    plans = [last for last, _, _ in log.calls if "Write the plan now" in last]
    by_goal: dict[str, list] = {}
    for r in rows:
        by_goal.setdefault(r.goal_id, []).append(r)
    retries_told = 0
    for attempts in by_goal.values():
        for a, _b in itertools.pairwise(attempts):
            assert a.error  # only a failed attempt is followed by another
            if a.error.startswith(VERIFY_REJECTED):
                retries_told += 1
    told = [p for p in plans if "a self-check rejected it" in p]
    assert len(told) == retries_told  # each verify NO that was retried told the retry why
    assert all(r.check_reason for r in rows)
