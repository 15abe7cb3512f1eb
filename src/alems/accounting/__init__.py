"""Energy accounting: samples + events + idle baseline -> per-attempt energy (layers L0-L4).

This package owns the temporal boundary model of DESIGN.md. It is pure: every function
works on its arguments (a ``samples`` frame, the domain list, the event records, the
per-attempt outcomes and the idle power) and does no I/O, except :func:`write_goals`,
which writes a finished table atomically for the workflow scripts.

The chain, per window ``[t0, t1]`` (an attempt, an LLM call, a tool call, a gap, or a
stretch of framework overhead):

- **L0** ``raw_j``: for every summable domain (:func:`alems.energy.base.summable_keys`)
  the cumulative, wrap-corrected counter is read at ``t0`` and ``t1`` and differenced;
  the per-domain differences are summed. A counter value at an instant where a sample
  exists (the sampler's exact boundary reads at event edges) is that sample's value,
  bit for bit; between samples it is interpolated linearly between the two neighbours.
  Instants before the first or after the last sample are **not** extrapolated: they are
  clamped to the sampled span and the window is flagged ``outside_samples`` (its
  ``coverage`` drops below 1 accordingly). A **stepwise** domain (NVML energy, updated
  about every 100 ms; :func:`alems.energy.stepwise.is_stepwise`) is first reconstructed
  from its update instants; a window edge outside its first and last update is
  extrapolated and flagged ``unbracketed``.
- **L1** ``dynamic_j`` = Σ_domain (raw_d − P_idle,d · Δt), where Δt is the part of the
  window inside the sampled span (the part whose raw energy was measured). A negative
  result is kept as computed and flagged ``negative_dynamic``; it is never clipped.
- **L2** ``attributed_j`` = α_cpu · Σ_CPU-side dynamic + α_gpu · Σ_GPU dynamic, per
  domain kind (:func:`attribution_modes`). With the CPU mode ``cpu_share``,
  α_cpu = Δproc_cpu_s / (Δsys_cpu_s − b · Δt), where b (``idle_busy_cpu_per_s``) is the
  busy CPU-seconds per second of the idle baseline: a steady background load is already
  inside P_idle, so it is not removed a second time (DESIGN.md has the derivation). Where
  that net busy time is not positive (a window shorter than the CPU-time tick) α falls
  back to the enclosing window's α (phase and gap windows: the attempt's; attempts and
  overhead: the whole run's; the run: 1) and the window is flagged ``alpha_fallback``.
  α outside [0, 1] is clipped, and flagged ``alpha_clipped`` beyond the CPU-time
  resolution (:data:`ALPHA_SLACK`). GPU mode ``exclusive`` (the default): α_gpu = 1, and
  a window during which the sampler saw another process on a GPU (``gpu_foreign``
  column) is flagged ``gpu_shared``. ``attribution="none"``: α = 1 everywhere.
- **L3** ``llm_j`` and ``tool_j``: the L0-L2 chain applied to every LLM and tool window
  of the attempt (clipped to the attempt window), summed; ``orchestration_j`` is the
  residual ``energy_j - llm_j - tool_j``, so the three phases always sum to the attempt.
- **L4** ``energy_j`` = ``attributed_j``: the number EpG uses.

``gap_j`` is the attributed energy between the end of attempt k-1 and the start of
attempt k of the same execution; it is written on the row of the **later** attempt
(attempt k), and is 0 on an execution's first attempt. ``coverage`` is the span covered
by samples inside the window (last sample time minus first sample time, both inside
``[t0, t1]``) divided by the window length: 1 where the sampler made boundary reads at
both edges. Attempts under ``min_coverage`` are flagged ``low_coverage``.

Everything inside the sampled span that is in no attempt window and no gap (set-up,
teardown, time between goals, between ``goal_start`` and the first attempt) is the run's
``framework_overhead_j``, accounted the same way and never added to a goal.

Output: :attr:`AccountingResult.goals` has the ``goals.csv`` contract columns in contract
order (:data:`alems.contracts.GOALS_COLUMNS`), followed by the extra columns (:data:`alems.contracts.GOALS_EXTRA_COLUMNS`):
``alpha`` (the attempt window's CPU α), ``flags`` (``;``-separated, sorted, empty when
none), and ``gap_raw_j`` / ``gap_dynamic_j`` (the gap in layers L0 / L1, for the metrics'
``total`` and ``dynamic`` layers). Flags on a goal row: ``low_coverage``,
``outside_samples``, ``negative_dynamic``, ``unbracketed``, ``gpu_shared``,
``alpha_fallback``, ``alpha_clipped``, ``phase_alpha_fallback``, ``gap_alpha_fallback``,
``gap_outside_samples``, ``phase_outside_attempt``, ``overlapping_phases``,
``overlapping_attempts``, ``unclosed_attempt``, ``unclosed_phase``, ``no_window``
(the outcome has no attempt events; its energies are NaN). When the outcomes carry them,
the task columns :data:`alems.contracts.GOALS_TASK_COLUMNS` (``check_reason``, ``truncated``, ``steps``,
``template``) follow. Last come the phases of the total and dynamic layers
(:data:`alems.contracts.GOALS_PHASE_COLUMNS`: ``llm_raw_j, tool_raw_j, orchestration_raw_j,
llm_dynamic_j, tool_dynamic_j, orchestration_dynamic_j``): each LLM and tool call window has
its own L0-L2, the phases sum them per attempt, and orchestration is the rest of the attempt
window, so in every layer llm + tool + orchestration = the attempt's energy.

:attr:`AccountingResult.calls` is the ``calls.csv`` table (:data:`alems.contracts.CALLS_COLUMNS`):
one row per LLM or tool call window, its energy in each layer (``raw_j, dynamic_j,
attributed_j``), its role, tokens and, where the backend reported its own timings, the
attributed energy of its prefill and decode spans on the power timeline. The calls of an
attempt sum to its phases; :attr:`AccountingResult.conservation_residual` is the largest
relative residual of both checks (:func:`conservation_residual`).

``energy_source`` per row is ``measured`` when every summed domain is measured,
``modeled`` when every one is modeled, ``mixed`` otherwise; :func:`contains_modeled`
tells tables and figures when to say so.

Modules, each one step of the chain:

- :mod:`~alems.accounting.config`: :class:`AccountingConfig` (the ``accounting:`` section)
  and :func:`attribution_modes`;
- :mod:`~alems.accounting.sources`: the ``energy_source`` label;
- :mod:`~alems.accounting.windows`: :class:`CounterSeries` and :func:`window_energy`
  (L0-L2 of any window);
- :mod:`~alems.accounting.events`: :func:`parse_events`, the event log as attempt, LLM and
  tool windows;
- :mod:`~alems.accounting.account`: :func:`account`, the run's attempts, phases, gaps and
  framework overhead;
- :mod:`~alems.accounting.goals`: the outcomes in, the goals table out (:func:`write_goals`);
- :mod:`~alems.accounting.calls`: the calls table (:func:`write_calls`) and the conservation check;
- :mod:`~alems.accounting.errors`: :class:`AccountingInputError`.
"""

from __future__ import annotations

from alems.accounting.account import AccountingResult, account, account_config
from alems.accounting.calls import calls_table, conservation_residual, empty_calls, events_calls, write_calls
from alems.accounting.config import ATTRIBUTIONS, GPU_ATTRIBUTIONS, AccountingConfig, attribution_modes
from alems.accounting.errors import AccountingInputError
from alems.accounting.events import AttemptKey, AttemptWindows, parse_events, unknown_kinds
from alems.accounting.goals import as_bool, write_goals
from alems.accounting.sources import combine_sources, contains_modeled, energy_source_of
from alems.accounting.windows import ALPHA_SLACK, CounterSeries, WindowEnergy, window_energy

__all__ = [
    "ALPHA_SLACK",
    "ATTRIBUTIONS",
    "GPU_ATTRIBUTIONS",
    "AccountingConfig",
    "AccountingInputError",
    "AccountingResult",
    "AttemptKey",
    "AttemptWindows",
    "CounterSeries",
    "WindowEnergy",
    "account",
    "account_config",
    "as_bool",
    "attribution_modes",
    "calls_table",
    "combine_sources",
    "conservation_residual",
    "contains_modeled",
    "empty_calls",
    "energy_source_of",
    "events_calls",
    "parse_events",
    "unknown_kinds",
    "window_energy",
    "write_calls",
    "write_goals",
]
