"""A measurement job subtracts the idle baseline of its own host (alems.jobs.baseline.job_baseline).

On one machine the reference baseline (``results/baseline/idle.json``) is that host's, so
a job uses it as it is and measures nothing. A job on another host (a cluster node) gets
that host's own baseline, with the reference's protocol: measured once, then reused from
the host's cache file. The model meter in real time, with windows of 50 ms.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from alems.baseline import BaselineConfig, host_cache_path, load_baseline, measure_baseline
from alems.energy import open_meter
from alems.jobs.baseline import job_baseline
from alems.settings import EnergySettings

MODEL = {"p_idle_w": 3.0, "p_max_w": 15.0}
ENERGY = EnergySettings.from_dict({"meter": "model", "calibrate": False, "model": MODEL})
# Stability is not the subject here: the model meter follows this busy machine's CPU load.
PROTOCOL = BaselineConfig(
    settle_s=0, windows=2, window_s=0.05, max_retries=0, max_host_util=1.0, cv_threshold=1e9
)


def _reference(host: str, hw: str = "hw1"):  # type: ignore[no-untyped-def]
    with open_meter("model", calibrate=False, model_params=MODEL) as meter:
        return measure_baseline(meter, PROTOCOL, hw_hash=hw, host=host)


def test_the_reference_is_used_as_it_is_on_its_own_host(tmp_path: Path) -> None:
    ref = _reference("node-a")
    unusable = EnergySettings(meter="rapl", powercap_root=str(tmp_path / "absent"))  # opening it would fail
    base, info = job_baseline(ref, unusable, host="node-a", hw_hash="hw1", cache_root=tmp_path)
    assert base is ref
    age = info.pop("age_s")
    assert 0 <= age < 60
    assert info == {
        "baseline_id": ref.baseline_id,
        "status": ref.status,
        "modeled": True,
        "host": "node-a",
        "hw_hash": "hw1",
        "origin": "reference",
        "path": None,
        "power_w": ref.power_w,
        "max_age_s": ref.config.max_age_s,
    }
    assert not (tmp_path / "hosts").exists()


@pytest.mark.parametrize(
    "host, hw", [("node-b", "hw1"), ("node-a", "hw2")], ids=["other-host", "other-hardware"]
)
def test_another_host_measures_its_own_then_reuses_it(tmp_path: Path, host: str, hw: str) -> None:
    ref = _reference("node-a")
    base, info = job_baseline(ref, ENERGY, host=host, hw_hash=hw, cache_root=tmp_path)
    cache = host_cache_path(tmp_path, host, hw)
    assert info["origin"] == "measured" and info["path"] == str(cache)
    assert base.host == info["host"] == host and base.hw_hash == info["hw_hash"] == hw
    assert base.baseline_id != ref.baseline_id and base.config == ref.config  # the reference's protocol
    assert load_baseline(cache).baseline_id == base.baseline_id
    again, info2 = job_baseline(ref, ENERGY, host=host, hw_hash=hw, cache_root=tmp_path)
    assert info2["origin"] == "host cache" and again.baseline_id == base.baseline_id
    # a third host gets a file of its own and never this one
    _, info3 = job_baseline(ref, ENERGY, host="node-c", hw_hash=hw, cache_root=tmp_path)
    assert info3["origin"] == "measured" and info3["path"] != str(cache)
    assert json.loads(cache.read_text())["baseline_id"] == base.baseline_id


def test_a_node_judges_its_cache_by_the_current_max_age(tmp_path: Path) -> None:
    """Finding 4 of issue 25: the reference was made under max_age_s = 7 days; the config now says
    3600 s. A node's 72-hour-old cache must be measured again, not reused under the old limit."""
    week = dataclasses.replace(PROTOCOL, max_age_s=7 * 86400.0)
    with open_meter("model", calibrate=False, model_params=MODEL) as meter:
        ref = measure_baseline(meter, week, hw_hash="hw1", host="node-a")
    first, info = job_baseline(ref, ENERGY, host="node-b", hw_hash="hw1", cache_root=tmp_path)
    assert info["origin"] == "measured"
    later = time.time() + 72 * 3600.0
    now = dataclasses.replace(week, max_age_s=3600.0)
    _, old_rule = job_baseline(
        ref, ENERGY, host="node-b", hw_hash="hw1", cache_root=tmp_path, wall_clock=lambda: later
    )
    assert old_rule["origin"] == "host cache"  # what every node did: the reference's stored 7 days
    again, info2 = job_baseline(
        ref, ENERGY, host="node-b", hw_hash="hw1", cache_root=tmp_path, config=now, wall_clock=lambda: later
    )
    assert info2["origin"] == "measured" and again.baseline_id != first.baseline_id
    assert info2["max_age_s"] == 3600.0 and info2["age_s"] < 60
    assert old_rule["age_s"] == pytest.approx(72 * 3600.0, abs=120)


def test_run_family_jobs_get_the_baseline_section() -> None:
    """The workflow passes the current baseline section to every measurement job."""
    text = (Path(__file__).parent.parent / "workflow" / "rules" / "common.smk").read_text()
    params = text.split("def run_family_params", 1)[1].split("def ", 1)[0]
    assert '"baseline"' in params
