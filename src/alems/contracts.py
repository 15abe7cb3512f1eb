"""The one home of every list that more than one layer (or the workflow) shares.

Modes, event kinds, the columns of the data contracts, the task groups and the built-in
family order, the energy layers, the figures and the run files are defined here and
nowhere else. ``workflow/rules/common.smk`` imports its names from this module too, so the
DAG and the library can never disagree on a file name. DESIGN.md ("Data contracts")
documents the same lists for readers; ``tests/test_contracts.py`` keeps the two in step.

This module imports nothing from A-LEMS, so any layer may import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# --------------------------------------------------------------------------- modes and events
MODES: tuple[str, ...] = ("linear", "agentic")
"""Execution modes, in the order every table and figure lists them."""

EVENT_KINDS: tuple[str, ...] = (
    "goal_start",
    "goal_end",
    "attempt_start",
    "attempt_end",
    "llm_start",
    "llm_end",
    "tool_start",
    "tool_end",
)
"""``events.jsonl`` ``kind`` values. Anything else is kept in the file but ignored by accounting."""

LLM_ROLES: tuple[str, ...] = ("answer", "decide", "plan", "step", "react", "synthesise", "verify")
"""What an LLM call of the agents is for: the ``name`` (or ``role``) of its ``llm_start``/``llm_end``
events. A call whose events name none of these (the proxy's, a Session's without ``role``) has
the role ``llm``."""

GOAL_EVENT_KINDS: frozenset[str] = frozenset({"goal_start", "goal_end"})
WINDOW_EVENT_KINDS: frozenset[str] = frozenset(EVENT_KINDS) - GOAL_EVENT_KINDS
"""Event kinds that open or close an attempt, LLM or tool window."""

# --------------------------------------------------------------------------- goals.csv
ATTEMPT_IDENTITY: tuple[str, ...] = (
    "family",
    "mode",
    "goal_id",
    "rep",
    "attempt",
    "success",
    "final_attempt",
)
"""Which attempt of which execution a row is, and how it ended: the first columns of goals.csv
and of the agents' outcomes."""

GOALS_COLUMNS: tuple[str, ...] = (
    # identity and outcome
    *ATTEMPT_IDENTITY,
    "t0",
    "t1",
    "duration_s",
    # energy
    "raw_j",
    "dynamic_j",
    "attributed_j",
    "energy_j",
    "llm_j",
    "tool_j",
    "orchestration_j",
    "gap_j",
    "coverage",
    # work done
    "llm_calls",
    "tool_calls",
    "tokens_in",
    "tokens_out",
    # provenance
    "energy_source",
    "answer",
    "expected",
    "error",
    "run_id",
)
"""The ``goals.csv`` contract (DESIGN.md), in order."""

GOALS_EXTRA_COLUMNS: tuple[str, ...] = ("alpha", "flags", "gap_raw_j", "gap_dynamic_j")
"""Columns accounting writes after the contract columns (optional for readers)."""

GOALS_TASK_COLUMNS: tuple[str, ...] = ("check_reason", "truncated", "steps", "template")
"""Optional outcome columns carried into goals.csv after :data:`GOALS_EXTRA_COLUMNS`, when the
outcomes have them (readers default them when absent)."""

PHASES: tuple[str, ...] = ("llm", "tool", "orchestration")
"""The phases of an attempt (L3): LLM calls, tool calls, and the rest of the window."""

LAYER_PHASE_COLUMNS: dict[str, tuple[str, str, str]] = {
    "total": ("llm_raw_j", "tool_raw_j", "orchestration_raw_j"),
    "dynamic": ("llm_dynamic_j", "tool_dynamic_j", "orchestration_dynamic_j"),
    "attributed": ("llm_j", "tool_j", "orchestration_j"),
}
"""goals.csv phase columns of each energy layer (llm, tool, orchestration), in :data:`PHASES` order."""

GOALS_PHASE_COLUMNS: tuple[str, ...] = (*LAYER_PHASE_COLUMNS["total"], *LAYER_PHASE_COLUMNS["dynamic"])
"""Optional goals.csv columns written last (after the task columns): the phases of the total
and dynamic layers. A table without them has no phase split in those layers (NaN)."""

# --------------------------------------------------------------------------- calls.csv
CALLS_COLUMNS: tuple[str, ...] = (
    "family",
    "mode",
    "goal_id",
    "rep",
    "attempt",
    "call",
    "kind",
    "role",
    "t0",
    "t1",
    "duration_s",
    "tokens_in",
    "tokens_out",
    "raw_j",
    "dynamic_j",
    "attributed_j",
    "prefill_s",
    "decode_s",
    "prefill_j",
    "decode_j",
    "tokens_estimated",
    "error",
    "energy_source",
    "run_id",
    "flags",
)
"""The ``calls.csv`` contract (DESIGN.md): one row per LLM or tool call."""

GOALS_REQUIRED: tuple[str, ...] = (*ATTEMPT_IDENTITY, "energy_j", "gap_j")
"""The columns ``alems metrics`` cannot do without; every other column has a default."""

OUTCOME_COLUMNS: tuple[str, ...] = (*ATTEMPT_IDENTITY, "answer", "expected", "error")
"""The attempt-outcome columns accounting needs from the agents (they may carry more,
e.g. :data:`GOALS_TASK_COLUMNS`)."""

# --------------------------------------------------------------------------- groups and families
REASONING = "reasoning"
TOOL = "tool"
GROUPS: tuple[str, ...] = (REASONING, TOOL)
TOOL_PREFIX = "tg_"

REASONING_FAMILIES: tuple[str, ...] = (
    "factual_qa",
    "science_qa",
    "logical_reasoning",
    "gsm8k_basic",
    "gsm8k_multi_step",
)
TOOL_FAMILIES: tuple[str, ...] = ("tg_single_calc", "tg_single_db", "tg_sequential_2")
LOCAL_FAMILIES: tuple[str, ...] = tuple(f"{f}_local" for f in REASONING_FAMILIES)
"""The home-made reasoning generators and curated sets, kept under their own names since the
names in :data:`REASONING_FAMILIES` draw from established benchmarks (``alems.tasks.catalog``)."""
BENCHMARK_OF: dict[str, str] = {
    "factual_qa": "nq_open",
    "science_qa": "openbookqa",
    "logical_reasoning": "logiqa",
    "gsm8k_basic": "asdiv",
    "gsm8k_multi_step": "gsm_symbolic",
}
"""The benchmark (catalog name) each benchmark-backed family draws its goals from."""
BUILTIN_FAMILIES: tuple[str, ...] = REASONING_FAMILIES + LOCAL_FAMILIES + TOOL_FAMILIES
"""The built-in task families, in the order tables and figures list them."""


def family_benchmarks(families: Iterable[str], config: Mapping[str, Any] | None = None) -> list[str]:
    """The catalog benchmarks that ``families`` draw from (built-in ones, and user families of
    ``config`` declared with ``benchmark:``), in family order, once each."""
    users = (config or {}).get("user_families") or {}
    out: list[str] = []
    for f in families:
        spec = users.get(f)
        b = spec.get("benchmark") if isinstance(spec, Mapping) else BENCHMARK_OF.get(f)
        if b is not None and b not in out:
            out.append(str(b))
    return out


def default_group(family: str) -> str:
    """The group of a family nobody declared: ``tool`` for ``tg_*``, else ``reasoning``."""
    return TOOL if family.startswith(TOOL_PREFIX) else REASONING


def family_group(family: str, config: Mapping[str, Any] | None = None) -> str:
    """The group of ``family``: a user family's declared ``group``, else :func:`default_group`."""
    spec = (config or {}).get("user_families", {}).get(family)
    if spec is not None:
        return str(spec.get("group", REASONING))
    return default_group(family)


# --------------------------------------------------------------------------- tables
OVERALL = "overall"
"""The scope name of the pooled OOI row over every family."""

ENERGY_LAYERS: tuple[str, ...] = ("total", "dynamic", "attributed")
"""Which energy EpG and OOI are computed from (DESIGN.md, "Energy layers")."""

LAYER_SOURCE_COLUMNS: dict[str, tuple[str, str]] = {
    "total": ("raw_j", "gap_raw_j"),
    "dynamic": ("dynamic_j", "gap_dynamic_j"),
    "attributed": ("energy_j", "gap_j"),
}
"""goals.csv columns of each energy layer: (attempt energy, energy between attempts)."""

POOLED_ESTIMANDS: tuple[str, ...] = ("ratio_of_means", "geomean_ooi", "pooled_ratio")

# --------------------------------------------------------------------------- files
RUN_FILES: tuple[str, ...] = ("samples.parquet", "events.jsonl", "goals.csv", "run.json", "calls.csv")
"""What one measurement job writes into ``results/runs/{family}/rep{rep}/``."""

TABLE_FILES: tuple[str, ...] = (
    "goals.csv",
    "epg.csv",
    "ooi.csv",
    "epg_layers.csv",
    "ooi_layers.csv",
    "calls.csv",
    "ooi_decomposition.csv",
    "roles.csv",
)
"""What the tables rule writes into ``results/tables/``."""

PROVENANCE_FILES: tuple[str, ...] = ("hardware.json", "environment.json", "config.json", "hashes.json")
"""What the fingerprint rule writes into ``results/provenance/``."""

FIGURES: tuple[str, ...] = (
    "fig1_epg",
    "fig2_ooi_forest",
    "fig3_phases",
    "fig4_power_timeline",
    "fig5_success_vs_energy",
    "fig6_idle_baseline",
    "fig7_ooi_decomposition",
    "fig8_roles",
)
"""The paper's figures, each written as PNG and PDF (:data:`FIGURE_FORMATS`)."""

FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf")

ARMS_DIR = "arms"
"""What a study with arms writes each arm's runs, tables and figures under: ``results/arms/{arm}/``."""

COMPARE_DIR = "compare"
"""Where the cross-arm tables (``results/compare/``) and figures (``results/compare/figures/``) go."""

COMPARE_TABLE_FILES: tuple[str, ...] = ("epg.csv", "ooi.csv", "ratios.csv")
"""The cross-arm tables (``alems compare`` writes the same)."""

COMPARE_FIGURES: tuple[str, ...] = ("cmp1_epg_by_arm", "cmp2_ooi_forest_arms", "cmp3_success_vs_energy_arms")
"""The cross-arm figures, each as PNG and PDF."""

# --------------------------------------------------------------------------- hashing
UNHASHED_CONFIG_SECTIONS: tuple[str, ...] = ("figures",)
"""Config sections that change only how results are drawn, so they never enter config_hash
and editing them never invalidates a measurement."""


def hashed_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` without :data:`UNHASHED_CONFIG_SECTIONS`: what provenance hashes."""
    return {k: v for k, v in cfg.items() if k not in UNHASHED_CONFIG_SECTIONS}
