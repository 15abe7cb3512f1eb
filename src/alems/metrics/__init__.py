"""Metrics: Energy per Successful Goal (EpG), the Orchestration Overhead Index (OOI), and
their paired, stratified, goal-level (cluster) bootstrap confidence intervals.

This module owns the numbers in ``epg.csv`` and ``ooi.csv``. It reads only the
``goals.csv`` table (one row per attempt, see :mod:`alems.accounting`) and never plots.

Definitions (DESIGN.md):

- An **execution** is ``(family, mode, goal_id, rep)``. Its energy E is the sum of
  ``energy_j + gap_j`` over its attempts (failed attempts included); its success is the
  success of its final attempt (the row with ``final_attempt`` true; the highest
  ``attempt`` if none is marked). A missing (NaN) energy propagates: it is never read as 0.
- **EpG** of a cell = Σ E over all executions / number of successful executions.
  ``epg_success_only_j`` = Σ E over successful executions / their number. With zero
  successes both are ``inf`` and the row is flagged ``zero_successes``; nothing is
  divided by zero and nothing crashes.
- **OOI** of a scope = EpG(agentic) / EpG(linear), computed over the complete
  ``(goal_id, rep)`` pairs only (those measured in both modes). Pairs missing a mode are
  left out and counted in ``n_missing_pairs``. OOI therefore may differ from the ratio of
  the ``epg.csv`` cells when pairs are missing. When either mode has no success in the
  scope, its EpG is undefined and so is the OOI: ``ooi``, ``ci_low`` and ``ci_high`` are
  NaN (empty in the CSV), ``method`` is ``none``, and the row is flagged
  ``zero_successes_agentic`` and/or ``zero_successes_linear``. It is never written as the
  arithmetic ``0`` (finite / inf) or ``inf``.
- **Scopes and rows.** ``epg.csv`` has one row per (family, mode), then one per (group,
  mode) with ``family`` = ``group`` = the group name (e.g. ``reasoning``), then one per
  mode with ``family`` = ``group`` = ``overall``. ``ooi.csv`` has one row per family
  (``estimand`` = ``family``), then three per group and three for ``overall``, one per
  pooled estimand, the headline (``metrics.pooled_estimand``) first. Groups come from the
  ``groups`` mapping (family -> group); a family not in it is ``tool`` when its name
  starts with ``tg_`` and ``reasoning`` otherwise.
- **Pooled estimands** take only the families whose OOI is defined (the others are
  flagged ``excluded:FAMILY`` on the row): ``ratio_of_means`` = mean EpG(agentic) over
  those families / mean EpG(linear) over the same families (the paper's headline; its
  ``epg_*_j`` columns are those means), ``geomean_ooi`` = the geometric mean of the family
  OOIs (``epg_*_j``: geometric means of the family EpGs), ``pooled_ratio`` = EpG(agentic)
  / EpG(linear) of the pooled energy and successes (``epg_*_j``: the pooled EpGs).

Bootstrap (:func:`bootstrap_strata`, :func:`bootstrap_scope`):

- The resampling unit is the **goal**: for EpG the goal's executions in the cell (all its
  reps) summed; for OOI the goal's complete ``(goal_id, rep)`` pairs summed, both modes
  together. Reps of a goal share the goal's difficulty, so resampling them as if they
  were independent would pass copies off as data (duplicating every rep would narrow the
  interval by 1/sqrt(2)); resampling goals does not. Goals are resampled with
  replacement **within each family** (stratified); a pooled scope combines its families'
  resampled totals, so the family, group and overall intervals of one table share
  resamples. ``n_goals`` counts the goals (clusters), ``n_pairs`` the pairs.
- Each resample is a row of a count-weight matrix built with one ``bincount`` per
  stratum; totals are weighted column sums. There is no Python loop over resamples
  (large strata are processed in blocks of resamples to bound memory).
- The interval is **BCa** (bias correction from the share of resamples below the
  estimate, acceleration from the grouped, stratified jackknife: leave one goal out of
  its family) where it is defined: finite estimate, finite jackknife values that are not
  all equal, a bias-correction share strictly between 0 and 1. Otherwise it is the
  **percentile** interval; ``method`` (EpG: ``ci_method``) says which. ``none``: no
  interval (B = 0, no data, or insufficient data).
- The tables read each interval at an **expanded** level (:func:`expanded_level`): as wide
  as ``sqrt(n/(n-1)) t_df`` standard errors instead of ``z``, n the goals of the smallest
  stratum and df = Σ(n_s - 1), which undoes the bootstrap's known narrowness with few
  goals. The ``level`` column stays the nominal level. ``benchmarks/coverage.py`` checks
  the coverage on simulated studies with a known OOI.
- **Insufficient data**: with fewer than ``min_goals`` goals in a family (in any family of
  a pooled scope), or more than 5 % degenerate resamples, a row keeps its estimate but
  gets no interval (empty ``ci_low``/``ci_high``, ``method`` ``none``) and the flag
  ``insufficient_data``.
- **Multiplicity** (family rows of ``ooi.csv``): ``ci_low_adj``/``ci_high_adj`` are
  Bonferroni-simultaneous intervals over the m families that have an interval (each read
  at level 1 - (1 - level)/m); ``p_value`` is the two-sided bootstrap p-value for OOI = 1
  (:func:`p_value`: the interval inverted, floor 1/B) and ``p_value_holm`` its Holm
  adjustment over the same m families. Pooled rows have ``p_value`` only.
- A resample with zero successes on one side (OOI) or zero successes (EpG) is
  **degenerate**: the statistic is undefined there (an OOI of 0 or ``inf`` is impossible
  once both modes have succeeded), so it gives no value. It is counted in
  ``n_degenerate_resamples`` and left out: every interval endpoint, the BCa bias correction
  and the p-value come from the defined resamples only, and above 5 % degenerate the
  interval is withheld (above). When a leave-one-goal-out estimate is degenerate (the mode
  succeeded on one goal only), the jackknife and so the BCa acceleration are undefined and
  the interval is the percentile one (``method`` says which).
- Every stratum gets its own generator seeded by ``(seed, a stable hash of the stratum
  name)``: the same seed and inputs give byte-identical tables, and adding a family does
  not change the others' resamples.

Extra columns after the contract columns: ``epg.csv`` adds ``ci_method, B, level,
n_degenerate_resamples, flags``, then ``n_goals``, ``energy_layer``, and last ``truncation_rate`` (the share of
the cell's executions whose final attempt has ``check_reason == "truncated"``: its final
answer was cut at the token cap; NaN when the goals table has no ``check_reason`` column, as
older ones do); ``ooi.csv`` adds ``n_missing_pairs,
n_degenerate_resamples, epg_agentic_j, epg_linear_j, energy_source, flags``, then
``estimand, n_goals, ci_low_adj, ci_high_adj, p_value, p_value_holm``. ``flags`` is
``;``-separated (``zero_successes``, ``zero_successes_agentic``, ``zero_successes_linear``,
``no_pairs``, ``missing_energy``, ``insufficient_data``, ``excluded:FAMILY``,
``low_coverage:N`` = attempts under ``min_coverage``,
``negative_energy:N`` = executions with negative energy; :func:`flag_families` adds
``baseline_unstable`` where the pipeline measured against an unstable idle baseline).

JSON (:func:`tables_to_json`): ``inf`` / ``-inf`` become the strings ``"inf"`` /
``"-inf"``, NaN becomes ``null``; the ``flags`` column says why.
"""

from __future__ import annotations

from alems.metrics.bootstrap import (
    MAX_DEGENERATE_SHARE,
    BootstrapResult,
    Stratum,
    bootstrap_scope,
    bootstrap_strata,
    expanded_level,
    holm,
    interval_at,
    make_stratum,
    p_value,
    resample_totals,
    stratum_rng,
)
from alems.metrics.config import MetricsConfig
from alems.metrics.decomposition import (
    DECOMPOSITION_COLUMNS,
    DECOMPOSITION_EXTRA_COLUMNS,
    FACTORS,
    compute_layer_decomposition,
    compute_with_decomposition,
    decomposition_from_executions,
)
from alems.metrics.estimands import (
    FAMILY_ESTIMAND,
    POOLED_STATS,
    any_family_degenerate,
    epg_degenerate,
    epg_stat,
    estimand_order,
    geomean_ooi_stat,
    ooi_degenerate,
    ooi_stat,
    pooled_degenerate,
    pooled_ratio_stat,
    ratio_of_means_stat,
)
from alems.metrics.executions import (
    MetricsInputError,
    executions,
    goal_clusters,
    group_of,
    layer_energy,
    read_goals,
)
from alems.metrics.report import format_tables, parse_group_args, table_records, tables_to_json
from alems.metrics.roles import ROLES_COLUMNS, roles_table
from alems.metrics.tables import (
    EPG_COLUMNS,
    EPG_EXTRA_COLUMNS,
    EPG_STAT_COLUMNS,
    EPG_TASK_COLUMNS,
    LAYER_EXTRA_COLUMNS,
    OOI_COLUMNS,
    OOI_EXTRA_COLUMNS,
    OOI_STAT_COLUMNS,
    compute_layer_tables,
    compute_tables,
    epg_table,
    flag_families,
    ooi_from_executions,
    ooi_table,
    write_table,
    write_tables,
)

__all__ = [
    "DECOMPOSITION_COLUMNS",
    "DECOMPOSITION_EXTRA_COLUMNS",
    "EPG_COLUMNS",
    "EPG_EXTRA_COLUMNS",
    "EPG_STAT_COLUMNS",
    "EPG_TASK_COLUMNS",
    "FACTORS",
    "FAMILY_ESTIMAND",
    "LAYER_EXTRA_COLUMNS",
    "MAX_DEGENERATE_SHARE",
    "OOI_COLUMNS",
    "OOI_EXTRA_COLUMNS",
    "OOI_STAT_COLUMNS",
    "POOLED_STATS",
    "ROLES_COLUMNS",
    "BootstrapResult",
    "MetricsConfig",
    "MetricsInputError",
    "Stratum",
    "any_family_degenerate",
    "bootstrap_scope",
    "bootstrap_strata",
    "compute_layer_decomposition",
    "compute_layer_tables",
    "compute_tables",
    "compute_with_decomposition",
    "decomposition_from_executions",
    "epg_degenerate",
    "epg_stat",
    "epg_table",
    "estimand_order",
    "executions",
    "expanded_level",
    "flag_families",
    "format_tables",
    "geomean_ooi_stat",
    "goal_clusters",
    "group_of",
    "holm",
    "interval_at",
    "layer_energy",
    "make_stratum",
    "ooi_degenerate",
    "ooi_from_executions",
    "ooi_stat",
    "ooi_table",
    "p_value",
    "parse_group_args",
    "pooled_degenerate",
    "pooled_ratio_stat",
    "ratio_of_means_stat",
    "read_goals",
    "resample_totals",
    "roles_table",
    "stratum_rng",
    "table_records",
    "tables_to_json",
    "write_table",
    "write_tables",
]
