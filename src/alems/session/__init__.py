"""Measure your own agent: the ``Session`` / ``goal`` / ``attempt`` / ``llm`` / ``tool`` API.

This package owns the in-process recording of a user's own goal executions. It composes
the same layers as a pipeline job (:func:`alems.jobs.run_family.run_family`): one meter and one
:class:`~alems.energy.sampler.Sampler` for the session's life, an
:class:`~alems.agents.events.EventLog` whose clock is the sampler's boundary read (every
``goal``, ``attempt``, ``llm`` and ``tool`` edge is an exact counter read on the sampler's
monotonic clock), an idle baseline from :mod:`alems.baseline`, and at the end
:func:`alems.accounting.account`, the pipeline's own accounting. It writes the four
files of DESIGN.md's data contracts, atomically, ``goals.csv`` and ``run.json`` last::

    from alems import Session

    with Session("runs/my-agent", meter="auto", baseline="measure") as s:
        for task in my_tasks:
            with s.goal(task.id, family="support_bot", mode="agentic", rep=0) as g:
                with g.attempt() as a:
                    with a.llm(model="gpt-x") as call:
                        reply = client.chat(...)
                        call.tokens(tokens_in=..., tokens_out=...)
                    with a.tool("search"):
                        ...
                    a.succeed()            # or a.fail("wrong answer")

Rules:

* An attempt that ends without a verdict is a failed attempt with ``error = "no verdict"``.
* An exception inside an attempt is recorded as a failed attempt whose ``error`` is the
  exception's type name, and re-raised: a user's error is never swallowed. A session
  left by an exception still writes its files (``run.json`` says ``status: aborted``).
* A session holds an exclusive lock on its directory, and refuses a directory that
  already holds a run, or the spool of a killed one: two runs are never mixed, and
  nothing is deleted unseen.
* From the main thread, SIGTERM and SIGINT end the session cleanly: the execution they cut
  short is listed in ``run.json``'s ``interrupted`` (it has no outcome, so it is not in
  goals.csv), the executions that ended are written with their energy, ``status`` is
  ``aborted`` with the ``signal``, and the process exits 143 (SIGTERM, via
  :class:`~alems.session.signals.Terminated`) or 130 (SIGINT, via ``KeyboardInterrupt``).
  A signal that comes while the files are written is held until they are.
* ``kill -9`` loses nothing that reached the spool (:mod:`alems.session.spool`): events,
  outcomes and sampler rows go to disk as they happen, and :func:`recover`
  (``alems recover DIR``) writes the four files with ``status: killed``.
* ``run.json`` records the ``host`` and its baseline's ``host``, ``origin`` and ``age_s``;
  a baseline measured on another host is refused.
* ``meter=None`` records the same events and outcomes with no energy (dry runs, tests):
  the energy columns are empty and ``energy_source`` is ``none``.
* ``baseline``: ``"measure"`` (a short idle protocol before the sampler starts, stored
  as ``idle.json`` in the directory), a path to an ``idle.json``, a
  :class:`~alems.baseline.Baseline`, or ``"none"`` (idle power 0: ``dynamic_j`` equals
  ``raw_j``; ``run.json`` says so).

The LLM phase hooks :meth:`Attempt.llm_start` / :meth:`Attempt.llm_end` are thread-safe,
so :mod:`alems.proxy` can record calls that arrive on its own threads.

Modules: :mod:`~alems.session.core` (the :class:`Session`, and :func:`write_run`, which
writes a run's files), :mod:`~alems.session.records` (goals, attempts, phases and the event
recorder), :mod:`~alems.session.lock` (the directory lock and the errors),
:mod:`~alems.session.signals` (SIGTERM/SIGINT), :mod:`~alems.session.spool` (what a
running session keeps on disk) and :mod:`~alems.session.recover` (a killed run's files).
"""

from alems.session.core import METERS, SESSION_BASELINE, Session, SessionResult
from alems.session.lock import LOCK_NAME, DirLock, SessionError, SessionLockedError
from alems.session.records import NO_VERDICT, Attempt, Goal, LlmCall
from alems.session.recover import RecoverResult, recover
from alems.session.signals import Terminated

__all__ = [
    "LOCK_NAME",
    "METERS",
    "NO_VERDICT",
    "SESSION_BASELINE",
    "Attempt",
    "DirLock",
    "Goal",
    "LlmCall",
    "RecoverResult",
    "Session",
    "SessionError",
    "SessionLockedError",
    "SessionResult",
    "Terminated",
    "recover",
]
