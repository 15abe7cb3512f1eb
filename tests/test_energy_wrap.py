"""Wraparound tracking: exact over many wraps, errors (never 0) when it cannot be exact."""

from __future__ import annotations

import math

import pytest

from alems.energy.base import Domain
from alems.energy.wrap import CounterTracker, TrackerSet, safe_poll_interval_s, wrap_period_s
from alems.errors import CounterReadError


def dom(key: str, rng: float | None = 10.0, power: float | None = 100.0) -> Domain:
    return Domain(key, "package", "measured", "rapl", max_range_j=rng, max_power_w=power)


def test_first_reading_is_zero_then_deltas_accumulate() -> None:
    tr = CounterTracker("package-0", max_range_j=10.0)
    assert tr.update(3.0) == 0.0
    assert tr.update(4.5) == pytest.approx(1.5)
    assert tr.update(4.5) == pytest.approx(1.5)  # a still counter adds nothing
    assert tr.wraps == 0


def test_one_wrap_is_corrected() -> None:
    tr = CounterTracker("package-0", max_range_j=10.0)
    tr.update(9.0)
    assert tr.update(1.0) == pytest.approx(2.0)  # 9 -> 10 == 0 -> 1
    assert tr.wraps == 1


def test_many_wraps_in_one_window_come_out_exact() -> None:
    """37 wraps of a 1 J counter: the window is exact, whatever its length."""
    rng = 1.0
    tr = CounterTracker("package-0", max_range_j=rng, max_power_w=100.0)
    raw, t, truth = 0.731, 0.0, 0.0
    tr.update(raw, t)
    for i in range(200):
        step = 0.05 + (i % 17) * 0.03  # 0.05 .. 0.53 J per read, always under one range
        truth += step
        raw = math.fmod(raw + step, rng)
        t += 0.004
        tr.update(raw, t)
    assert tr.cumulative_j == pytest.approx(truth, rel=1e-12)
    assert tr.wraps == int((0.731 + truth) // rng)
    assert tr.wraps > 30


def test_negative_after_correction_is_an_error_not_zero() -> None:
    # without a range, a counter going backwards cannot be corrected
    tr = CounterTracker("dram-0", max_range_j=None)
    tr.update(5.0)
    with pytest.raises(CounterReadError) as e:
        tr.update(4.0)
    assert "dram-0: counter went backwards from 5.000000 J to 4.000000 J and it does not wrap" in str(e.value)
    assert e.value.domain == "dram-0"
    assert tr.cumulative_j == 0.0  # nothing committed
    # with a range, a raw value beyond the range is still negative after correction
    tr2 = CounterTracker("package-0", max_range_j=1.0)
    tr2.update(5.0)
    with pytest.raises(CounterReadError, match=r"after wrap correction by 1 J"):
        tr2.update(2.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_unreadable_value_is_an_error(bad: float | None) -> None:
    tr = CounterTracker("psys", max_range_j=10.0)
    tr.update(1.0)
    with pytest.raises(CounterReadError, match="psys: unreadable counter value"):
        tr.update(bad)  # type: ignore[arg-type]


def test_gap_longer_than_wrap_period_is_refused() -> None:
    tr = CounterTracker("package-0", max_range_j=10.0, max_power_w=100.0)  # wraps every 0.1 s at most
    tr.update(1.0, t=0.0)
    tr.update(2.0, t=0.09)
    with pytest.raises(CounterReadError) as e:
        tr.update(3.0, t=0.2)
    msg = str(e.value)
    assert "0.110 s between reads, but the counter can wrap every 0.100 s" in msg
    assert "wraps may have been missed" in msg and "poll at least every 0.050 s" in msg


def test_tracker_set_is_all_or_nothing() -> None:
    ts = TrackerSet([dom("package-0"), dom("dram-0", rng=None)])
    assert ts.update({"package-0": 1.0, "dram-0": 1.0}) == {"package-0": 0.0, "dram-0": 0.0}
    with pytest.raises(CounterReadError, match="dram-0: counter went backwards"):
        ts.update({"package-0": 2.0, "dram-0": 0.5})
    # package-0 was not advanced by the failed read
    assert ts.update({"package-0": 3.0, "dram-0": 1.5}) == {"package-0": 2.0, "dram-0": 0.5}
    with pytest.raises(CounterReadError, match="package-0: no reading returned by the meter"):
        ts.update({"dram-0": 2.0})
    assert ts.wraps() == {"package-0": 0, "dram-0": 0}


def test_safe_poll_interval() -> None:
    a = dom("package-0", rng=262143.0, power=250.0)
    b = dom("psys", rng=1.0, power=20.0)
    assert wrap_period_s(a) == pytest.approx(1048.572)
    assert safe_poll_interval_s([a, b]) == pytest.approx(0.025)
    assert safe_poll_interval_s([dom("gpu-0", rng=None)]) is None
    assert wrap_period_s(dom("x", power=None)) is None


def test_the_wrap_period_is_the_boundary_and_the_errors_say_the_fix() -> None:
    tr = CounterTracker.for_domain(dom("package-0"))  # 10 J at up to 100 W: a wrap every 0.1 s
    assert (tr.key, tr.max_range_j, tr.max_power_w) == ("package-0", 10.0, 100.0)
    tr.update(1.0, t=0.0)
    with pytest.raises(CounterReadError) as e:
        tr.update(2.0, t=0.125)  # a gap longer than one period
    assert e.value.domain == "package-0"
    assert e.value.message == (
        "package-0: 0.125 s between reads, but the counter can wrap every 0.100 s (range 10 J at up to "
        "100 W): wraps may have been missed, so the energy is unknown"
    )
    assert e.value.fix == "poll at least every 0.050 s (keep the sampler running; lower --interval-ms)"
    tr2 = CounterTracker.for_domain(dom("package-0"))
    tr2.update(1.0, t=0.0)
    with pytest.raises(CounterReadError):
        tr2.update(2.0, t=0.1)  # exactly one period is already ambiguous
    assert CounterTracker.for_domain(dom("package-0")).update(1.0, t=0.0) == 0.0
    tr3 = CounterTracker.for_domain(dom("package-0"))
    tr3.update(1.0, t=0.0)
    assert tr3.update(2.0, t=0.0999) == pytest.approx(1.0)
    assert tr3.update(2.5) == pytest.approx(1.5)  # no time given: no gap check
    tr4 = CounterTracker("dram-0")
    tr4.update(5.0)
    with pytest.raises(CounterReadError) as back:
        tr4.update(4.0)
    assert back.value.fix == (
        "the counter was reset (driver reload, suspend) or is not monotonic; re-run the measurement"
    )
    assert str(back.value).endswith("\nFix: " + back.value.fix)


def test_no_power_bound_means_no_gap_check() -> None:
    for power in (None, 0.0, -5.0):
        d = dom("package-0", rng=10.0, power=power)
        assert wrap_period_s(d) is None
        tr = CounterTracker.for_domain(d)
        tr.update(1.0, t=0.0)
        assert tr.update(9.0, t=100.0) == pytest.approx(8.0)
    assert wrap_period_s(dom("x", rng=0.0)) is None and wrap_period_s(dom("x", rng=None)) is None
    assert safe_poll_interval_s([]) is None
    assert wrap_period_s(dom("x", rng=10.0, power=0.5)) == 20.0  # under a watt is still a bound
    assert safe_poll_interval_s([dom("psys", rng=1.0, power=20.0)], safety=0.25) == pytest.approx(0.0125)


def test_tracker_set_counts_wraps_and_lists_its_keys() -> None:
    ts = TrackerSet([dom("package-0"), dom("dram-0", rng=None)])
    assert ts.keys == ["package-0", "dram-0"]
    ts.update({"package-0": 9.0, "dram-0": 1.0}, 0.0)
    assert ts.update({"package-0": 1.0, "dram-0": 2.0}, 0.05) == {
        "package-0": pytest.approx(2.0),
        "dram-0": pytest.approx(1.0),
    }
    assert ts.wraps() == {"package-0": 1, "dram-0": 0}
    tr = ts.trackers["package-0"]
    assert (tr.last_raw, tr.last_t, tr.wraps) == (1.0, 0.05, 1)


def test_the_gap_check_reaches_through_the_tracker_set_and_below_a_watt() -> None:
    ts = TrackerSet([dom("package-0")])  # wraps every 0.1 s at most
    ts.update({"package-0": 1.0}, 0.0)
    with pytest.raises(CounterReadError, match="wraps may have been missed"):
        ts.update({"package-0": 2.0}, 0.5)
    slow = CounterTracker.for_domain(dom("x", rng=10.0, power=0.5))  # a wrap every 20 s at most
    slow.update(1.0, t=0.0)
    with pytest.raises(CounterReadError, match="can wrap every 20.000 s"):
        slow.update(2.0, t=30.0)
