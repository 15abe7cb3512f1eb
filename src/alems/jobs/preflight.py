"""The first step of every measurement job (``baseline``, ``run_family``): the study's LLM must
generate before anything is measured."""

from __future__ import annotations

import logging
from typing import Any

from alems.llm.config import LLMConfig
from alems.llm.oracle import uses_oracle
from alems.llm.runtime import probe

log = logging.getLogger("alems.jobs")


def preflight_study(llm: LLMConfig, *, threads: int | None = None) -> dict[str, Any]:
    """The study's backend must generate a few tokens, in a child process (:mod:`alems.llm.runtime`),
    before anything is measured. A native crash, a hang, a missing model or an unreachable server
    raises :class:`~alems.errors.LLMRuntimeError` with the diagnosis, so the job's log says
    what happened and what to do. The oracle policy runs in process: nothing to probe."""
    if uses_oracle(llm):
        log.info("LLM preflight: the scripted oracle runs in process, nothing to probe")
        return {"backend": "scripted", "status": "skipped"}
    result = probe(llm, threads=threads)
    log.info("LLM preflight:\n%s", result.render())
    result.raise_for_status()
    return result.to_dict()
