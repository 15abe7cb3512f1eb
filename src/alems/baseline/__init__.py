"""Idle baseline: the power each energy domain draws while nothing runs.

This package owns the protocol (settle for ``settle_s``, then ``windows`` contiguous
windows of ``window_s`` each), the statistics per domain (mean, standard deviation and
coefficient of variation of window power), the stability verdict (a CV above
``cv_threshold`` on a judged domain, or a host busier than ``max_host_util``, triggers
up to ``max_retries`` re-measurements, after which the baseline is marked
``unstable``), the baseline file
(``results/baseline/idle.json``) and the cache rule: a stored baseline is reused only
when ``hw_hash``, governor and turbo state all match, its domains and protocol match,
it was stable, and it is younger than ``max_age_s``. A missing or corrupted cache is
re-measured with a :class:`BaselineCacheWarning`, never a crash.

**A baseline belongs to one host.** Each records the ``host`` (name) it was measured on,
and a cache is reused only on that host: nodes of one type share an ``hw_hash`` but not
their idle power. On a cluster every node keeps its own cache file,
:func:`host_cache_path` (``resources/baseline/hosts/<host>_<hw_hash>.json``).

Example (measures for real, about 35 s with the defaults)::

    from alems.energy import open_meter
    from alems.baseline import BaselineConfig, measure_baseline

    with open_meter("auto") as meter:
        base = measure_baseline(meter, BaselineConfig(settle_s=1, windows=5, window_s=1))
    print(base.status, base.power_w, base.source)

A modeled meter gives a modeled baseline: each domain carries its meter's ``source``
and :attr:`Baseline.modeled` says so. The clock and sleep are injected, so tests drive
a fake meter in fake time. This package runs no workload.

**A busy host is not idle.** A steady load from other processes keeps the CV low, so
the CV alone passes it, but it raises every "idle" power and so removes real work from
``dynamic_j`` (on the 2-vCPU development VM, the default study run while other jobs
loaded both cores, baseline included, gave EpG values 20-25x smaller than on the idle
machine). Each attempt therefore also records the
share of all CPU time that was busy (``/proc/stat``) during its windows, ``host_util``;
above ``max_host_util`` the attempt counts as unstable and is re-measured.

Modules: :mod:`~alems.baseline.config` (:class:`BaselineConfig`), :mod:`~alems.baseline.record`
(the :class:`Baseline` record and its JSON), :mod:`~alems.baseline.measure` (the protocol,
:func:`measure_baseline`) and :mod:`~alems.baseline.cache` (the file, the reuse rule, the
per-host cache and :func:`obtain_baseline`).
"""

from alems.baseline.cache import (
    BaselineCacheWarning,
    BaselineError,
    BaselineResult,
    host_cache_path,
    load_baseline,
    obtain_baseline,
    reuse_problem,
    write_baseline,
)
from alems.baseline.config import BaselineConfig
from alems.baseline.measure import (
    MIN_JUDGED_CPU_S,
    Clock,
    Progress,
    Sleep,
    idle_busy_cpu_per_s,
    measure_baseline,
)
from alems.baseline.record import SCHEMA, SCHEMA_V2, Baseline, BaselineWindow, DomainStats, this_host

__all__ = [
    "MIN_JUDGED_CPU_S",
    "SCHEMA",
    "SCHEMA_V2",
    "Baseline",
    "BaselineCacheWarning",
    "BaselineConfig",
    "BaselineError",
    "BaselineResult",
    "BaselineWindow",
    "Clock",
    "DomainStats",
    "Progress",
    "Sleep",
    "host_cache_path",
    "idle_busy_cpu_per_s",
    "load_baseline",
    "measure_baseline",
    "obtain_baseline",
    "reuse_problem",
    "this_host",
    "write_baseline",
]
