"""CounterSeries and window_energy by hand: coverage, interpolation, GPU sharing, the
attribution modes' flags, the error messages and their fixes, and the numpy error state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alems.accounting import CounterSeries, window_energy
from alems.accounting.errors import AccountingInputError

# samples at 0, 1, 2, 4 s (a 2 s gap), a package at 10 W, the job busy half of 1 CPU, host 1 CPU
T = np.array([0.0, 1.0, 2.0, 4.0])


def frame(foreign=None) -> pd.DataFrame:
    df = pd.DataFrame(
        {"t": T, "package-0": 10.0 * T, "gpu-0": 100.0 * T, "proc_cpu_s": 0.5 * T, "sys_cpu_s": 1.0 * T}
    )
    if foreign is not None:
        df["gpu_foreign"] = foreign
    return df


def series(foreign=None) -> CounterSeries:
    return CounterSeries.from_samples(frame(foreign), ["package-0", "gpu-0"])


def test_coverage_by_hand():
    s = series()
    t0 = np.array([0.0, 0.5, 1.0, 2.5, 3.0, 1.0, 5.0, -1.0, 4.0, 6.0])
    t1 = np.array([4.0, 1.5, 1.0, 3.5, 5.0, 2.0, 6.0, 1.0, 4.0, 6.0])
    # full; one sample inside (0 s of 1 s); zero length inside; none inside; 1 s of 2; 1 of 1;
    # outside; 1 s of 2 (before the start); zero length at the last sample; zero length outside
    want = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0, 0.0]
    assert s.coverage(t0, t1).tolist() == want
    assert s.coverage([1], [3]).tolist() == [0.5]  # integer instants
    assert s.coverage(np.array([0.0]), np.array([0.0])).tolist() == [1.0]  # zero length at the first sample


def test_interpolation_exact_linear_and_clamped():
    s = series()
    e, p, sy, inside = s.at(np.array([0.0, 1.5, 3.0, 4.0, 5.0, -1.0]))
    assert e[:, 0].tolist() == [0.0, 15.0, 30.0, 40.0, 40.0, 0.0]
    assert p.tolist() == [0.0, 0.75, 1.5, 2.0, 2.0, 0.0]
    assert inside.tolist() == [True, True, True, True, False, False]
    # two reads at one instant (a boundary read): the query there returns the last one
    dup = pd.DataFrame(
        {"t": [0.0, 1.0, 1.0, 2.0], "package-0": [0.0, 9.0, 10.0, 20.0], "proc_cpu_s": 0.0, "sys_cpu_s": 0.0}
    )
    d = CounterSeries.from_samples(dup, ["package-0"])
    assert d.at(np.array([1.0, 0.5]))[0][:, 0].tolist() == [10.0, 4.5]


def test_gpu_shared_counts_the_check_before_the_window_and_none_after():
    s = series(foreign=[0.0, 1.0, 0.0, np.nan])  # a foreign process seen at 1 s only
    t0 = np.array([0.0, 1.5, 2.0, 2.5, 0.0, -1.0])
    t1 = np.array([0.5, 1.8, 3.0, 4.5, 1.0, -0.5])
    assert s.gpu_shared(t0, t1).tolist() == [False, True, False, False, True, False]
    assert series().gpu_shared(t0, t1).tolist() == [False] * 6
    assert series().gpu_shared(t0, t1).dtype == bool


def test_attribution_modes_and_their_flags():
    s = series(foreign=[0.0, 1.0, 0.0, 0.0])
    gpu = [False, True]
    t0, t1 = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    idle = np.array([4.0, 50.0])
    none = window_energy(s, t0, t1, idle, "none", gpu_mask=gpu)
    assert none.alpha.tolist() == [1.0, 1.0] and none.attributed_j.tolist() == [6.0 + 50.0, 6.0 + 50.0]
    assert not none.alpha_fallback.any() and not none.alpha_clipped.any() and not none.gpu_shared.any()
    share = window_energy(s, t0, t1, idle, "cpu_share", gpu_mask=gpu)  # cpu: alpha 0.5; gpu: whole
    assert share.alpha.tolist() == [0.5, 0.5] and share.attributed_j.tolist() == [3.0 + 50.0, 3.0 + 50.0]
    assert share.gpu_shared.tolist() == [True, True]  # both windows touch the check at 1 s
    gpu_share = window_energy(s, t0, t1, idle, {"cpu": "none", "gpu": "cpu_share"}, gpu_mask=gpu)
    assert gpu_share.alpha.tolist() == [1.0, 1.0] and gpu_share.attributed_j.tolist() == [
        6.0 + 25.0,
        6.0 + 25.0,
    ]
    assert not gpu_share.gpu_shared.any()
    # no net busy CPU time: the fallback alpha stands in, flagged
    quiet = window_energy(s, t0, t1, idle, "cpu_share", fallback_alpha=0.25, idle_busy_cpu_per_s=1.0)
    assert (
        quiet.alpha.tolist() == [0.25, 0.25] and quiet.alpha_fallback.all() and not quiet.alpha_clipped.any()
    )
    default = window_energy(s, t0, t1, idle, "cpu_share", idle_busy_cpu_per_s=1.0)
    assert default.alpha.tolist() == [1.0, 1.0] and default.alpha_fallback.dtype == bool
    # windows partly outside the samples are flagged and their idle time counts only inside
    out = window_energy(s, np.array([3.0]), np.array([6.0]), idle, "none")
    assert out.outside.tolist() == [True] and out.dynamic_j.tolist() == [
        (10.0 - 4.0) * 1.0 + (100.0 - 50.0) * 1.0
    ]
    early = window_energy(s, np.array([-2.0]), np.array([1.0]), idle, "none")
    assert early.dynamic_j.tolist() == [(10.0 - 4.0) + (100.0 - 50.0)] and early.raw_by_domain.shape == (1, 2)


def test_nothing_divides_by_zero_loudly():
    """Zero-length windows, duplicate instants and no busy CPU time under numpy's strictest state."""
    dup = pd.DataFrame(
        {"t": [0.0, 1.0, 1.0, 2.0], "package-0": [0.0, 9.0, 10.0, 20.0], "proc_cpu_s": 0.0, "sys_cpu_s": 0.0}
    )
    s = CounterSeries.from_samples(dup, ["package-0"])
    with np.errstate(all="raise"):
        we = window_energy(
            s, np.array([1.0, 0.5, 0.0]), np.array([1.0, 1.5, 2.0]), np.array([1.0]), "cpu_share"
        )
    assert we.coverage.tolist() == [1.0, 0.0, 1.0] and we.alpha_fallback.all()


def test_bad_samples_say_what_and_how_to_fix():
    with pytest.raises(AccountingInputError) as e:
        CounterSeries.from_samples(frame().drop(columns=["sys_cpu_s"]), ["package-0"])
    assert e.value.message.startswith("samples lack column(s) ['sys_cpu_s'] (have ['t', 'package-0'")
    assert e.value.fix == (
        "pass the frame from alems.energy.sampler (Sampler.frame() or read_samples) "
        "together with the same run's domain list"
    )
    with pytest.raises(AccountingInputError) as e:
        CounterSeries.from_samples(frame().iloc[:0], ["package-0"])
    assert e.value.message == "samples are empty: no counter was read during the run"
    assert e.value.fix == "check the run's samples.parquet; rerun the (family, rep) job"
    one = CounterSeries.from_samples(frame().iloc[:1], ["package-0"])  # one row is enough to read
    assert one.span == (0.0, 0.0)
    bad = frame()
    bad.loc[2, "package-0"] = np.nan
    with pytest.raises(AccountingInputError) as e:
        CounterSeries.from_samples(bad, ["package-0"])
    assert e.value.message == "samples hold NaN/inf times or counter values"
    assert e.value.fix == (
        "a failed counter read must raise upstream, never become a number; rerun the job and check the sampler log"
    )
    bad_t = frame()
    bad_t.loc[1, "t"] = np.inf
    with pytest.raises(AccountingInputError, match="NaN/inf"):
        CounterSeries.from_samples(bad_t, ["package-0"])
    down = frame()
    down.loc[3, "gpu-0"] = 1.0
    with pytest.raises(AccountingInputError) as e:
        CounterSeries.from_samples(down, ["package-0", "gpu-0"])
    assert e.value.message == (
        "cumulative counter 'gpu-0' decreases in the samples; the contract says wrap-corrected and non-decreasing"
    )
    assert e.value.fix == (
        "counters must be wrap-corrected by the sampler (Domain.max_range_j); rerun the job with the fixed sampler"
    )


def test_cpu_share_alpha_clipping_by_hand():
    """alpha = dproc / net busy, clipped to [0, 1]; flagged only beyond max(2 %, 2 ticks of the
    net busy time): net busy 0.5 s gives a 4 % slack (2 / (100 Hz x 0.5 s))."""
    from alems.accounting.windows import _cpu_share_alpha

    dproc = np.array([0.0, 0.515, 0.525, -0.25, 0.3])
    net = np.array([1.0, 0.5, 0.5, 0.5, 0.0])
    a, fell_back, clipped = _cpu_share_alpha(dproc, net, np.full(5, 0.75))
    assert a.tolist() == [0.0, 1.0, 1.0, 0.0, 0.75]
    assert fell_back.tolist() == [False, False, False, False, True]
    assert clipped.tolist() == [False, False, True, True, False]  # 1.03 within 4 %, 1.05 beyond
    assert fell_back.dtype == bool and clipped.dtype == bool


def test_flag_arrays_are_boolean_and_knots_bracket_inclusively():
    s = series()
    none = window_energy(s, np.array([0.0]), np.array([1.0]), np.array([4.0, 50.0]), "none")
    for arr in (none.alpha_fallback, none.alpha_clipped, none.gpu_shared, none.unbracketed):
        assert arr.dtype == bool and not arr.any()
    bare = CounterSeries(T, np.column_stack([10.0 * T]), 0.5 * T, T, ("package-0",))  # no bracket at all
    assert bare.unbracketed(np.array([0.0]), np.array([1.0])).tolist() == [False]
    t = np.array([0.00, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    step = pd.DataFrame(
        {"t": t, "gpu-0": [0.0, 0.0, 8.0, 8.0, 8.0, 16.0, 16.0], "proc_cpu_s": t, "sys_cpu_s": t}
    )
    st = CounterSeries.from_samples(step, ["gpu-0"], stepwise=["gpu-0"])
    got = st.unbracketed(np.array([0.015, 0.01, 0.02]), np.array([0.045, 0.03, 0.05]))
    assert got.tolist() == [False, True, True]


def test_more_edges_of_windows_and_checks():
    s = series(foreign=[np.nan, 1.0, 0.0, 0.0])  # a foreign process seen at 1 s; the first check missing
    assert s.gpu_shared(np.array([-1.0, 0.0]), np.array([1.5, 0.5])).tolist() == [True, False]
    late = series(foreign=[0.0, 0.0, 1.0, 0.0])  # seen at 2 s, gone by 4 s
    assert late.gpu_shared(np.array([4.5]), np.array([5.0])).tolist() == [False]
    idle = np.array([4.0, 50.0])
    # windows entirely before or after the samples: no time inside, no idle energy removed
    out = window_energy(s, np.array([-2.0, 5.0]), np.array([-1.0, 6.0]), idle, "none")
    assert out.dynamic_j.tolist() == [0.0, 0.0] and out.outside.all()
    # attribution none never falls back, even with no busy CPU time at all
    none = window_energy(s, np.array([0.0]), np.array([1.0]), idle, "none", idle_busy_cpu_per_s=1.0)
    assert not none.alpha_fallback.any() and none.alpha.tolist() == [1.0]
    # a boundary read sorts after a sample at its instant even when it comes first in the frame
    df = pd.DataFrame(
        {"t": [0.0, 1.0, 1.0, 2.0], "package-0": [0.0, 10.0, 9.0, 20.0], "proc_cpu_s": 0.0, "sys_cpu_s": 0.0}
    )
    df["boundary"] = pd.array([None, True, None, None], dtype="boolean")
    assert CounterSeries.from_samples(df, ["package-0"]).at(np.array([1.0]))[0][0, 0] == 10.0


def test_a_stepwise_counter_beside_a_plain_one_and_one_that_never_moves():
    t = np.array([0.00, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    df = pd.DataFrame(
        {
            "t": t,
            "gpu-0": [0.0, 0.0, 8.0, 8.0, 8.0, 16.0, 16.0],
            "package-0": 10.0 * t,
            "gpu-1": 5.0,
            "proc_cpu_s": t,
            "sys_cpu_s": t,
        }
    )
    mixed = CounterSeries.from_samples(df, ["gpu-0", "package-0"], stepwise=["gpu-0"])
    assert mixed.unbracketed(np.array([0.02]), np.array([0.04])).tolist() == [False]
    # beside a counter that updates, one that never moved brackets nothing: every window is flagged
    # (alone, it is not flagged at all: its bracket (inf, -inf) is not finite; reported, not pinned)
    still = CounterSeries.from_samples(df, ["gpu-0", "gpu-1"], stepwise=["gpu-0", "gpu-1"])
    assert still.unbracketed(np.array([0.02]), np.array([0.04])).tolist() == [True]
