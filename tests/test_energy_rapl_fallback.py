"""A RAPL zone that publishes no power limit gets a conservative bound by kind.

Without it the safe poll interval and the wrap-gap check were skipped, and a long poll
interval on a fast-wrapping zone under-counted silently (80 % at 500 ms on a zone that
wraps every 0.4 s: 10 J read as 2 J).
"""

from __future__ import annotations

import pytest

from alems.energy.rapl import FALLBACK_MAX_POWER_W, RaplMeter, discover
from alems.energy.sampler import Sampler
from alems.energy.wrap import TrackerSet
from alems.errors import CounterReadError

RANGE_UJ = 8_000_000  # 8 J: wraps every 0.4 s at 20 W


def _strip_limits(tree) -> None:
    for f in tree.root.rglob("*"):
        if f.is_file() and (f.name.startswith("constraint_") or f.name == "max_power_range_uw"):
            f.unlink()


def test_the_readme_fallback_bounds():
    """README: "now gets a conservative bound by kind (package 600 W, dram 250 W, psys 1500 W)"."""
    assert (FALLBACK_MAX_POWER_W["package"], FALLBACK_MAX_POWER_W["dram"], FALLBACK_MAX_POWER_W["psys"]) == (
        600.0,
        250.0,
        1500.0,
    )


def test_zone_without_limit_files_gets_the_fallback_bound(powercap):
    tree = powercap("intel-1s-dram", max_energy_range_uj=RANGE_UJ)
    _strip_limits(tree)
    doms = {d.key: d for d in discover(tree.root).domains}
    assert doms["package-0"].max_power_w == FALLBACK_MAX_POWER_W["package"]
    assert doms["dram-0"].max_power_w == FALLBACK_MAX_POWER_W["dram"]
    assert "fallback" in str(doms["package-0"].info["max_power_from"])
    # a zone with limits keeps its own
    limited = powercap("intel-1s", max_energy_range_uj=RANGE_UJ, package_limit_w=65.0)
    assert {d.key: d for d in discover(limited.root).domains}[
        "package-0"
    ].max_power_w == 65.0 * 1.25  # its short-term limit


def test_long_interval_is_capped_on_a_zone_without_limits(powercap, clock):
    tree = powercap("amd", max_energy_range_uj=RANGE_UJ)
    _strip_limits(tree)
    meter = RaplMeter(tree.root)
    sampler = Sampler(meter, interval_s=0.5, clock=clock, mode="thread")
    period = (RANGE_UJ / 1e6) / FALLBACK_MAX_POWER_W["package"]
    assert sampler.interval_s == pytest.approx(0.5 * period)
    assert any("safe poll interval" in w for w in sampler.warnings)
    meter.close()


def test_a_gap_that_could_hide_a_wrap_is_an_error_not_an_undercount(powercap, clock):
    tree = powercap("amd", max_energy_range_uj=RANGE_UJ)
    _strip_limits(tree)
    meter = RaplMeter(tree.root)
    trackers = TrackerSet(meter.domains())
    trackers.update(meter.read_raw(), clock())
    # 0.5 s at 20 W: 10 J moved, the counter wrapped once and reads 2 J further on
    before = tree.read_uj("package-0")
    tree.add_j("package-0", 10.0)
    tree.add_j("core-0", 5.0)
    clock.advance(0.5)
    # README: "`--interval-ms 500` on a zone that wraps every 0.4 s used to under-count by 80 %":
    # the difference of the two reads, modulo the range, is 2 J of the 10 J
    assert (tree.read_uj("package-0") - before) % RANGE_UJ == pytest.approx(2_000_000, abs=1)
    with pytest.raises(CounterReadError, match="wraps may have been missed"):
        trackers.update(meter.read_raw(), clock())
    meter.close()
