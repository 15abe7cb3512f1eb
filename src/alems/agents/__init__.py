"""The ``linear`` and ``agentic`` executors, their tools, retries, failure injection and
the event log. This layer never reads energy counters: the integration passes an event
clock that does.

Entry points:

* :class:`~alems.agents.events.EventLog` / :func:`~alems.agents.events.read_events`;
* :class:`~alems.agents.config.AgentConfig` (``from_dict``);
* :func:`~alems.agents.executors.run_execution`: one goal in one mode, all attempts;
* :func:`~alems.agents.runner.execute_family`: one ``(family, rep)``, both modes,
  alternating order (the unit the measurement job, :mod:`alems.jobs.run_family`, runs).
"""

from alems.agents.config import AgentConfig
from alems.agents.events import EventLog, read_events
from alems.agents.executors import ATTEMPT_FIELDS, AttemptOutcome, run_execution
from alems.agents.runner import execute_family, mode_order, outcomes_frame, write_attempts_csv

__all__ = [
    "ATTEMPT_FIELDS",
    "AgentConfig",
    "AttemptOutcome",
    "EventLog",
    "execute_family",
    "mode_order",
    "outcomes_frame",
    "read_events",
    "run_execution",
    "write_attempts_csv",
]
