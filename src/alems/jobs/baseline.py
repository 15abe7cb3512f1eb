"""The Snakemake ``baseline`` rule (:func:`baseline_job`), and the idle baseline each measurement
job subtracts: its own host's, never another's (:func:`job_baseline`).

The reference baseline (``results/baseline/idle.json``) is measured, or reused from this
host's cache under :data:`BASELINE_CACHE`, by the ``baseline`` rule. A ``run_family`` job on
the same host with the same ``hw_hash`` uses it as it is; a job on another host (a cluster
node) measures that host's own with the reference's protocol, or reuses that host's cache.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

from alems.baseline import (
    Baseline,
    BaselineConfig,
    BaselineResult,
    host_cache_path,
    obtain_baseline,
    this_host,
    write_baseline,
)
from alems.energy import Meter
from alems.jobs.preflight import preflight_study
from alems.jobs.recording import open_study_meter
from alems.provenance import HostPaths, collect_hardware, load_hashes, short_hash
from alems.settings import EnergySettings, StudySettings

log = logging.getLogger("alems.jobs")

#: Where each host's idle baseline is cached (outside ``results/``, shared by the nodes of a cluster).
BASELINE_CACHE = "resources/baseline"


def host_hw_hash() -> str | None:
    """This machine's ``hw_hash`` (None if it cannot be computed)."""
    try:
        return short_hash(collect_hardware(HostPaths())[0])
    except Exception as exc:
        log.warning("could not fingerprint this host: %s", exc)
        return None


def _obtain_logged(
    meter: Meter,
    config: BaselineConfig,
    cache_path: str | os.PathLike[str],
    *,
    hw_hash: str | None,
    host: str,
    wall_clock: Any = time.time,
) -> BaselineResult:
    """:func:`alems.baseline.obtain_baseline`, its cache warnings sent to the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = obtain_baseline(meter, config, cache_path, hw_hash=hw_hash, host=host, wall_clock=wall_clock)
    for w in caught:
        log.warning("%s", w.message)
    log.info(
        "baseline %s (%s) of host %s: %s",
        res.baseline.baseline_id,
        res.baseline.status,
        res.baseline.host,
        res.reason,
    )
    return res


def measure_idle_baseline(
    energy: EnergySettings,
    baseline: BaselineConfig,
    out_path: str | os.PathLike[str],
    *,
    hashes_path: str | os.PathLike[str],
    cache_path: str | os.PathLike[str] | None = None,
    meter: Meter | None = None,
) -> Baseline:
    """Reuse this host's cached idle baseline when allowed, else measure it; write it to ``out_path``.

    The cache lives outside ``results/`` (Snakemake deletes an output before its job
    runs), so a config change that reruns this rule costs seconds, not the protocol.
    By default it is this host's file under :data:`BASELINE_CACHE`
    (:func:`alems.baseline.host_cache_path`), the one ``run_family`` jobs on this host
    reuse.
    """
    hw = host_hw_hash() or load_hashes(hashes_path).hw_hash
    host = this_host()
    path = cache_path if cache_path is not None else host_cache_path(BASELINE_CACHE, host, hw)
    meter = meter if meter is not None else open_study_meter(energy)
    try:
        res = _obtain_logged(meter, baseline, path, hw_hash=hw, host=host)
    finally:
        meter.close()
    write_baseline(out_path, res.baseline)
    return res.baseline


def baseline_job(
    config: Mapping[str, Any],
    out_path: str | os.PathLike[str],
    *,
    hashes_path: str | os.PathLike[str],
    threads: int,
) -> Baseline:
    """The Snakemake ``baseline`` job: the LLM preflight, then :func:`measure_idle_baseline`.

    ``config`` holds the sections the rule passes (``baseline``, ``energy``, ``llm``).
    """
    settings = StudySettings.from_config(config)
    preflight_study(settings.llm, threads=threads)
    return measure_idle_baseline(settings.energy, settings.baseline, out_path, hashes_path=hashes_path)


def job_baseline(
    reference: Baseline,
    energy: EnergySettings,
    *,
    host: str,
    hw_hash: str | None,
    cache_root: str | os.PathLike[str] = BASELINE_CACHE,
    meter: Meter | None = None,
    config: BaselineConfig | None = None,
    wall_clock: Any = time.time,
) -> tuple[Baseline, dict[str, Any]]:
    """The idle baseline a measurement job on ``host`` subtracts, and its record for ``run.json``.

    The reference baseline (``results/baseline/idle.json``) when it was measured on this
    host with this ``hw_hash``: on one machine, always, at no cost. Otherwise (a cluster
    node other than the one the ``baseline`` rule ran on) this host's own baseline with
    the reference's protocol, reused from its cache (:func:`alems.baseline.host_cache_path`)
    when allowed, else measured now, before the job's meter starts. ``meter`` is used for
    that measurement and left open.

    ``config`` is the study's *current* ``baseline`` section: its protocol and ``max_age_s``
    decide whether this host's cache may be reused (and how a new one is measured). Without
    it, the reference's stored config stands in, which is the config it was measured under:
    a reference the ``baseline`` rule reused from its cache carries an old ``max_age_s``.
    """
    cfg = config if config is not None else reference.config
    if reference.host == host and (hw_hash is None or reference.hw_hash == hw_hash):
        base, origin, path = reference, "reference", None
    else:
        path = host_cache_path(cache_root, host, hw_hash)
        log.info(
            "the reference baseline is from host %s (hw_hash %s); this job runs on %s (hw_hash %s)",
            reference.host,
            reference.hw_hash,
            host,
            hw_hash,
        )
        meter = meter if meter is not None else open_study_meter(energy)
        res = _obtain_logged(meter, cfg, path, hw_hash=hw_hash, host=host, wall_clock=wall_clock)
        base, origin = res.baseline, "host cache" if res.reused else "measured"
    info = {
        "baseline_id": base.baseline_id,
        "status": base.status,
        "modeled": base.modeled,
        "host": base.host,
        "hw_hash": base.hw_hash,
        "origin": origin,
        "path": None if path is None else str(path),
        "power_w": base.power_w,
        "age_s": max(0.0, float(wall_clock()) - base.created_unix),
        "max_age_s": cfg.max_age_s,
    }
    return base, info
