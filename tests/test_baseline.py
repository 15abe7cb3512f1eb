"""Idle baseline: statistics at known power, the stability verdict, the cache rules. Fake time only."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from alems.baseline import (
    Baseline,
    BaselineCacheWarning,
    BaselineConfig,
    BaselineError,
    load_baseline,
    measure_baseline,
    obtain_baseline,
    write_baseline,
)
from alems.energy.base import Domain, Meter
from alems.energy.procstat import CpuTimes
from alems.errors import ConfigError, CounterReadError


class FakeTime:
    """A monotonic clock that only moves when ``sleep`` is called (plus a tiny read cost)."""

    def __init__(self, start: float = 1000.0, read_cost_s: float = 0.0) -> None:
        self.now = start
        self.read_cost_s = read_cost_s
        self.slept: list[float] = []

    def clock(self) -> float:
        self.now += self.read_cost_s
        return self.now

    def sleep(self, s: float) -> None:
        assert s >= 0
        self.slept.append(s)
        self.now += s


PowerFn = Callable[[float], float]


class FakeMeter(Meter):
    """Counters that integrate a power profile ``P(t)`` exactly, wrapping at ``max_range_j``."""

    name = "fake"

    def __init__(
        self,
        time: FakeTime,
        profiles: Mapping[str, PowerFn],
        *,
        kinds: Mapping[str, str] | None = None,
        source: str = "measured",
        max_range_j: float | None = None,
        max_power_w: float | None = None,
        steps: int = 200,
    ) -> None:
        self.time = time
        self.profiles = dict(profiles)
        self.kinds = dict(kinds or {})
        self.source = source
        self.max_range_j, self.max_power_w = max_range_j, max_power_w
        self.energy = {k: 0.0 for k in profiles}
        self.t_last = time.now
        self.steps = steps
        self.reads = 0

    def domains(self) -> list[Domain]:
        return [
            Domain(
                k,
                self.kinds.get(k, k.split("-")[0]),
                self.source,
                "rapl",
                max_range_j=self.max_range_j,
                max_power_w=self.max_power_w,
            )
            for k in self.profiles
        ]

    def read_raw(self) -> dict[str, float]:
        self.reads += 1
        t0, t1 = self.t_last, self.time.now
        for k, p in self.profiles.items():  # midpoint integration of P(t) over [t0, t1]
            h = (t1 - t0) / self.steps
            self.energy[k] += sum(p(t0 + (i + 0.5) * h) for i in range(self.steps)) * h
        self.t_last = t1
        return {k: (e % self.max_range_j if self.max_range_j else e) for k, e in self.energy.items()}


def const(w: float) -> PowerFn:
    return lambda t: w


FAST = BaselineConfig(settle_s=5.0, windows=10, window_s=3.0)


def run(meter: FakeMeter, cfg: BaselineConfig = FAST, **kw) -> Baseline:
    t = meter.time
    return measure_baseline(
        meter, cfg, clock=t.clock, sleep=t.sleep, wall_clock=lambda: 1_700_000_000.0, **kw
    )


# --------------------------------------------------------------------------- statistics
def test_constant_power_mean_within_half_percent() -> None:
    t = FakeTime(read_cost_s=0.0004)
    m = FakeMeter(t, {"package-0": const(23.7), "dram-0": const(4.2)})
    b = run(m, hw_hash="abcd", governor="performance", turbo=True)
    assert b.status == "stable" and b.stable
    assert abs(b.power_w["package-0"] - 23.7) / 23.7 < 0.005
    assert abs(b.power_w["dram-0"] - 4.2) / 4.2 < 0.005
    assert b.std_w["package-0"] < 1e-6 and b.cv["package-0"] < 1e-6
    assert len(b.windows) == 10
    for w in b.windows:
        assert w.t1 - w.t0 == pytest.approx(3.0, abs=0.01)
        assert w.power_w["package-0"] == pytest.approx(23.7, rel=1e-3)
    assert t.slept[0] == 5.0  # settled first
    assert t.now - 1000.0 == pytest.approx(5.0 + 30.0, abs=0.1)
    assert (b.governor, b.turbo, b.hw_hash) == ("performance", True, "abcd")
    assert b.source == {"package-0": "measured", "dram-0": "measured"} and not b.modeled
    assert len(b.baseline_id) == 16 and len(b.attempts) == 1


def test_known_statistics_of_alternating_power() -> None:
    """Windows alternate 10 W / 12 W: mean 11, sample std known, CV = std / mean."""
    t = FakeTime(start=0.0)

    def alt(x: float) -> float:
        return 10.0 if int((x - 5.0) // 3.0) % 2 == 0 else 12.0

    m = FakeMeter(t, {"package-0": alt}, steps=1000)
    b = run(m, BaselineConfig(settle_s=5.0, windows=10, window_s=3.0, cv_threshold=0.2))
    s = b.stats["package-0"]
    want_std = math.sqrt(10 * 1.0 / 9)  # deviations of +-1 W around 11 W, ddof=1
    assert s.mean_w == pytest.approx(11.0, rel=1e-3)
    assert s.std_w == pytest.approx(want_std, rel=1e-2)
    assert s.cv == pytest.approx(want_std / 11.0, rel=1e-2)
    assert [round(w.power_w["package-0"]) for w in b.windows] == [10, 12] * 5


def test_wrapping_counter_is_tracked_across_windows() -> None:
    """A counter that wraps every ~2 s (range 100 J at 50 W) still gives the exact mean."""
    t = FakeTime()
    m = FakeMeter(t, {"package-0": const(50.0)}, max_range_j=100.0, max_power_w=60.0)
    b = run(m, hw_hash="x")
    assert b.power_w["package-0"] == pytest.approx(50.0, rel=1e-4)
    assert max(t.slept[1:]) <= 100.0 / 60.0 * 0.5 + 1e-9  # polled inside each window
    assert m.reads > 11


def test_modeled_meter_gives_modeled_baseline() -> None:
    t = FakeTime()
    m = FakeMeter(t, {"cpu-model": const(8.0)}, kinds={"cpu-model": "cpu-model"}, source="modeled")
    b = run(m)
    assert b.modeled and b.source == {"cpu-model": "modeled"}
    assert b.to_dict()["modeled"] is True


def test_progress_is_reported_per_window() -> None:
    t = FakeTime()
    seen: list[tuple[int, int, int]] = []
    run(
        FakeMeter(t, {"package-0": const(5.0)}),
        BaselineConfig(settle_s=0, windows=3, window_s=1),
        progress=lambda a, d, n: seen.append((a, d, n)),
    )
    assert seen == [(1, 1, 3), (1, 2, 3), (1, 3, 3)]


# --------------------------------------------------------------------------- stability
def noisy(lo: float, hi: float) -> PowerFn:
    """Alternates lo/hi every 3 s of fake time."""
    return lambda x: lo if int(x // 3.0) % 2 == 0 else hi


def test_unstable_baseline_is_detected_after_k_retries() -> None:
    t = FakeTime(start=0.0)
    m = FakeMeter(t, {"package-0": noisy(10.0, 20.0), "dram-0": const(2.0)})
    cfg = BaselineConfig(settle_s=5.0, windows=4, window_s=3.0, cv_threshold=0.10, max_retries=2)
    b = run(m, cfg)
    assert b.status == "unstable" and not b.stable
    assert len(b.attempts) == 3 and all(not a["stable"] for a in b.attempts)
    assert all(a["max_cv"] > 0.10 for a in b.attempts)
    assert b.stats["package-0"].cv > 0.10 and not b.stats["package-0"].stable
    assert b.stats["dram-0"].stable
    assert t.now == pytest.approx(5.0 + 3 * 12.0, abs=0.01)


def test_noise_that_settles_is_remeasured_then_stable() -> None:
    t = FakeTime(start=0.0)

    def settling(x: float) -> float:  # noisy during the first attempt only
        return (10.0 if int(x // 3.0) % 2 == 0 else 20.0) if x < 17.0 else 10.0

    m = FakeMeter(t, {"package-0": settling})
    b = run(m, BaselineConfig(settle_s=5.0, windows=4, window_s=3.0, max_retries=3))
    assert b.status == "stable" and len(b.attempts) == 2
    assert not b.attempts[0]["stable"] and b.attempts[1]["stable"]
    assert b.power_w["package-0"] == pytest.approx(10.0, rel=1e-3)  # the stable attempt is kept


class FakeCpu:
    """System-wide CPU times that advance with fake time at a scripted busy share per attempt."""

    def __init__(self, t: FakeTime, busy_shares: list[float], n_cpus: int = 2) -> None:
        self.t, self.shares, self.n = t, list(busy_shares), n_cpus
        self.busy = self.total = 0.0
        self.last = t.now
        self.reads = 0

    def __call__(self) -> CpuTimes:
        dt = self.t.now - self.last
        share = self.shares[min(self.reads // 2, len(self.shares) - 1)]  # two reads per attempt
        self.total += dt * self.n
        self.busy += dt * self.n * share
        self.last = self.t.now
        self.reads += 1
        return CpuTimes(self.busy, self.total, self.n)


def test_a_busy_host_is_remeasured_then_unstable_even_at_low_cv() -> None:
    """A steady load elsewhere keeps the CV low but raises 'idle' power: not a baseline."""
    t = FakeTime(start=0.0)
    m = FakeMeter(t, {"package-0": const(30.0)})
    cfg = BaselineConfig(settle_s=1.0, windows=4, window_s=3.0, max_retries=2, max_host_util=0.10)
    b = run(m, cfg, cpu_times=FakeCpu(t, [0.55, 0.40, 0.30]))
    assert b.status == "unstable" and b.busy
    assert [a["busy"] for a in b.attempts] == [True, True, True]
    assert [a["host_util"] for a in b.attempts] == pytest.approx([0.55, 0.40, 0.30])
    assert all(a["max_cv"] == pytest.approx(0.0, abs=1e-9) for a in b.attempts)
    assert b.host_util == pytest.approx(0.30)  # the least busy attempt is kept
    assert b.stats["package-0"].stable  # its CV is fine; the host was not idle
    (reason,) = b.unstable_reasons
    assert "30.0% busy" in reason and "max_host_util 10%" in reason
    assert load_back(b).host_util == pytest.approx(0.30)
    from alems.cli.host import _baseline_table

    text = _baseline_table(b)
    assert "host CPU busy during the windows: 30.0% of all CPU time (max_host_util 10%)" in text
    assert "UNSTABLE: the host was 30.0% busy" in text and "baseline_unstable" in text


def test_load_that_goes_away_is_remeasured_then_stable() -> None:
    t = FakeTime(start=0.0)
    m = FakeMeter(t, {"package-0": const(12.0)})
    b = run(m, BaselineConfig(settle_s=0, windows=4, window_s=3.0), cpu_times=FakeCpu(t, [0.9, 0.02]))
    assert b.status == "stable" and not b.busy and b.unstable_reasons == []
    assert [a["stable"] for a in b.attempts] == [False, True]
    assert b.host_util == pytest.approx(0.02)


def test_host_load_is_not_judged_in_fake_time_or_over_too_short_a_span() -> None:
    t = FakeTime(start=0.0)
    b = run(FakeMeter(t, {"package-0": const(5.0)}), BaselineConfig(settle_s=0, windows=2, window_s=1.0))
    assert b.host_util is None and b.stable  # injected clock: the real /proc/stat is not read
    t2 = FakeTime(start=0.0)  # 2 windows x 0.2 s on 2 CPUs = 0.8 CPU-s: 10 ms ticks are too coarse
    short = BaselineConfig(settle_s=0, windows=2, window_s=0.2, max_retries=0)
    b2 = run(FakeMeter(t2, {"package-0": const(5.0)}), short, cpu_times=FakeCpu(t2, [1.0]))
    assert b2.host_util is None and b2.stable


def load_back(b: Baseline) -> Baseline:
    return Baseline.from_dict(json.loads(json.dumps(b.to_dict())))


def test_subzone_noise_does_not_fail_the_verdict_unless_judged() -> None:
    t = FakeTime(start=0.0)
    prof = {"package-0": const(20.0), "uncore-0": noisy(0.1, 0.5)}
    kinds = {"uncore-0": "uncore"}
    b = run(
        FakeMeter(t, prof, kinds=kinds), BaselineConfig(settle_s=0, windows=4, window_s=3.0, max_retries=0)
    )
    assert b.status == "stable" and not b.stats["uncore-0"].judged and not b.stats["uncore-0"].stable
    t2 = FakeTime(start=0.0)
    cfg = BaselineConfig(settle_s=0, windows=4, window_s=3.0, max_retries=0, stability_domains=("uncore-0",))
    assert run(FakeMeter(t2, prof, kinds=kinds), cfg).status == "unstable"


def test_zero_power_domain_has_zero_cv() -> None:
    t = FakeTime()
    b = run(FakeMeter(t, {"package-0": const(0.0)}), BaselineConfig(settle_s=0, windows=3, window_s=1))
    assert b.cv["package-0"] == 0.0 and b.status == "stable"


def test_counter_read_error_propagates() -> None:
    t = FakeTime()

    class Broken(FakeMeter):
        def read_raw(self) -> dict[str, float]:
            if self.reads >= 3:
                raise CounterReadError("package-0: cannot read energy_uj", "check permissions")
            return super().read_raw()

    with pytest.raises(CounterReadError, match="cannot read energy_uj"):
        run(Broken(t, {"package-0": const(1.0)}))


# --------------------------------------------------------------------------- config
def test_config_from_dict_and_validation() -> None:
    cfg = BaselineConfig.from_dict(
        {"settle_s": 1, "windows": 4, "window_s": 0.5, "stability_domains": ["psys"]}
    )
    assert cfg.settle_s == 1.0 and cfg.windows == 4 and cfg.stability_domains == ("psys",)
    assert BaselineConfig.from_dict(cfg.to_dict()) == cfg
    assert BaselineConfig.from_dict(None) == BaselineConfig()
    d = BaselineConfig()
    assert (d.settle_s, d.windows, d.window_s, d.cv_threshold) == (5.0, 10, 3.0, 0.10)
    with pytest.raises(ConfigError, match="unknown baseline config key.*: window") as e:
        BaselineConfig.from_dict({"window": 3})
    assert "window_s" in str(e.value)
    with pytest.raises(ConfigError, match=r"baseline.windows has the wrong type: 2.5 \(expected int\)"):
        BaselineConfig.from_dict({"windows": 2.5})
    with pytest.raises(
        ConfigError, match=r"baseline.windows = 1 is invalid\nFix: set baseline.windows to an integer >= 2"
    ):
        BaselineConfig.from_dict({"windows": 1})
    with pytest.raises(ConfigError, match=r"baseline.window_s has the wrong type: 'x' \(expected float\)"):
        BaselineConfig.from_dict({"window_s": "x"})


def test_config_matches_workflow_schema_defaults() -> None:
    """BaselineConfig and the workflow schema's baseline section agree on keys and defaults."""
    import yaml

    schema = Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"
    if not schema.is_file():
        pytest.skip("no workflow schema in this checkout")
    props = yaml.safe_load(schema.read_text())["properties"]["baseline"]["properties"]
    defaults = {k: v.get("default") for k, v in props.items()}
    assert BaselineConfig.from_dict(defaults) == BaselineConfig()


# --------------------------------------------------------------------------- file and cache
def test_round_trip_and_load(tmp_path: Path) -> None:
    t = FakeTime()
    b = run(
        FakeMeter(t, {"package-0": const(12.0), "gpu-0": const(71.0)}, kinds={"gpu-0": "gpu"}), hw_hash="h"
    )
    p = tmp_path / "baseline" / "idle.json"
    write_baseline(p, b)
    back = load_baseline(p)
    assert back.to_dict() == b.to_dict()
    assert back.power_w == pytest.approx({"package-0": 12.0, "gpu-0": 71.0}, rel=1e-3)
    assert back.status == "stable" and back.source["gpu-0"] == "measured"
    assert len(back.windows) == 10 and set(back.windows[0].power_w) == {"package-0", "gpu-0"}
    data = json.loads(p.read_text())
    assert data["baseline_id"] == b.baseline_id and data["governor"] is None


def test_load_errors_carry_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        BaselineError, match=r"no baseline at .*idle.json\nFix: measure it again: `alems baseline"
    ):
        load_baseline(tmp_path / "idle.json")
    (tmp_path / "idle.json").write_text('{"schema": "alems.baseline/2", "status": "stable"')
    with pytest.raises(BaselineError, match="is not valid JSON"):
        load_baseline(tmp_path / "idle.json")
    (tmp_path / "idle.json").write_text('{"schema": "alems.baseline/2", "status": "stable"}')
    with pytest.raises(BaselineError, match="is malformed"):
        load_baseline(tmp_path / "idle.json")


class Env:
    """A cache scenario: fake time, a fake meter and a wall clock."""

    def __init__(self, power: float = 10.0, wall: float = 1_700_000_000.0) -> None:
        self.t = FakeTime()
        self.meter = FakeMeter(self.t, {"package-0": const(power)})
        self.wall = wall

    def obtain(self, path: Path, cfg: BaselineConfig | None = None, **kw):
        kw.setdefault("hw_hash", "hw1")
        kw.setdefault("governor", "performance")
        kw.setdefault("turbo", True)
        kw.setdefault("host", "node-a")
        return obtain_baseline(
            self.meter,
            cfg or BaselineConfig(settle_s=1, windows=3, window_s=1),
            path,
            clock=self.t.clock,
            sleep=self.t.sleep,
            wall_clock=lambda: self.wall,
            **kw,
        )


def test_cache_is_reused_when_everything_matches(tmp_path: Path) -> None:
    p = tmp_path / "idle.json"
    e = Env()
    with pytest.warns(BaselineCacheWarning, match="no baseline at"):
        first = e.obtain(p)
    assert not first.reused and p.is_file()
    e.wall += 3600
    slept = len(e.t.slept)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = e.obtain(p)
    assert second.reused and second.baseline.baseline_id == first.baseline.baseline_id
    assert len(e.t.slept) == slept  # nothing measured


@pytest.mark.parametrize(
    "change, why",
    [
        ({"host": "node-b"}, "measured on another host"),
        ({"hw_hash": "hw2"}, "hw_hash changed"),
        ({"governor": "powersave"}, "governor changed"),
        ({"turbo": False}, "turbo changed"),
        ({"age": 7 * 3600}, "s old"),
        ({"cfg": BaselineConfig(settle_s=1, windows=4, window_s=1)}, "protocol"),
        ({"cfg": BaselineConfig(settle_s=1, windows=3, window_s=1, max_host_util=0.5)}, "max_host_util"),
    ],
)
def test_cache_is_remeasured_when_something_differs(tmp_path: Path, change: dict, why: str) -> None:
    p = tmp_path / "idle.json"
    e = Env()
    with pytest.warns(BaselineCacheWarning):
        first = e.obtain(p)
    e.wall += change.pop("age", 60)
    with pytest.warns(BaselineCacheWarning, match=why):
        again = e.obtain(p, **change)
    assert not again.reused and why in again.reason
    assert again.baseline.baseline_id != first.baseline.baseline_id
    assert load_baseline(p).baseline_id == again.baseline.baseline_id


def test_baseline_records_its_host_and_schema_2_files_still_load(tmp_path: Path) -> None:
    """A baseline names its host; a schema-2 file (before hosts) still loads and verifies, but is not reused."""
    import dataclasses

    from alems.baseline import SCHEMA, SCHEMA_V2

    p = tmp_path / "idle.json"
    e = Env()
    with pytest.warns(BaselineCacheWarning):
        first = e.obtain(p).baseline
    data = json.loads(p.read_text())
    assert data["schema"] == SCHEMA and data["host"] == "node-a" == first.host
    old = dataclasses.replace(first, schema=SCHEMA_V2, host=None, baseline_id="")
    write_baseline(p, old)
    assert "host" not in json.loads(p.read_text())
    loaded = load_baseline(p)
    assert loaded.host is None and loaded.schema == SCHEMA_V2 and loaded.baseline_id == old.baseline_id
    write_baseline(tmp_path / "copy.json", loaded)  # written back as it was read
    assert load_baseline(tmp_path / "copy.json").baseline_id == old.baseline_id
    with pytest.warns(BaselineCacheWarning, match=r"another host \(None -> node-a\)"):
        assert not e.obtain(p).reused


def test_host_cache_path_is_one_file_per_host_and_hardware() -> None:
    from alems.baseline import host_cache_path

    assert host_cache_path("resources/baseline", "node-7.cluster", "ab12") == Path(
        "resources/baseline/hosts/node-7.cluster_ab12.json"
    )
    assert host_cache_path("r", "we/ird host", None) == Path("r/hosts/we_ird_host_unknown.json")
    assert (
        host_cache_path("r", "a", "h1") != host_cache_path("r", "b", "h1") != host_cache_path("r", "b", "h2")
    )


def test_unstable_cache_is_not_reused(tmp_path: Path) -> None:
    p = tmp_path / "idle.json"
    e = Env()
    e.meter.profiles = {"package-0": noisy(1.0, 9.0)}
    with pytest.warns(BaselineCacheWarning):
        assert (
            e.obtain(p, BaselineConfig(settle_s=1, windows=3, window_s=3, max_retries=0)).baseline.status
            == "unstable"
        )
    with pytest.warns(BaselineCacheWarning, match="it was unstable"):
        e.obtain(p, BaselineConfig(settle_s=1, windows=3, window_s=3, max_retries=0))


def test_cache_from_another_meter_is_not_reused(tmp_path: Path) -> None:
    p = tmp_path / "idle.json"
    e = Env()
    with pytest.warns(BaselineCacheWarning):
        e.obtain(p)
    e.meter.profiles = {"cpu-model": const(5.0)}
    e.meter.energy = {"cpu-model": 0.0}
    e.meter.source = "modeled"
    with pytest.warns(BaselineCacheWarning, match="domains"):
        b = e.obtain(p).baseline
    assert b.modeled


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        "[1, 2, 3]",
        '{"schema": "alems.baseline/2"}',
        '{"schema": "other/9"}',
        "\x00\x01binary",
    ],
    ids=["empty", "truncated", "list", "missing-keys", "wrong-schema", "binary"],
)
def test_corrupted_cache_is_remeasured_with_warning(tmp_path: Path, content: str) -> None:
    p = tmp_path / "idle.json"
    p.write_text(content)
    e = Env(power=33.0)
    with pytest.warns(BaselineCacheWarning, match="measuring a new idle baseline"):
        res = e.obtain(p)
    assert not res.reused and res.baseline.power_w["package-0"] == pytest.approx(33.0, rel=1e-3)
    assert load_baseline(p).baseline_id == res.baseline.baseline_id  # repaired on disk


def test_corrupted_field_value_is_remeasured(tmp_path: Path) -> None:
    p = tmp_path / "idle.json"
    e = Env()
    with pytest.warns(BaselineCacheWarning):
        e.obtain(p)
    data = json.loads(p.read_text())
    data["stats"]["package-0"]["mean_w"] = "lots"
    p.write_text(json.dumps(data))
    with pytest.warns(BaselineCacheWarning, match="malformed"):
        assert not e.obtain(p).reused


def test_edited_cache_fails_its_id_check(tmp_path: Path) -> None:
    p = tmp_path / "idle.json"
    e = Env()
    with pytest.warns(BaselineCacheWarning):
        e.obtain(p)
    data = json.loads(p.read_text())
    data["stats"]["package-0"]["mean_w"] = 1.0  # a plausible but edited value
    p.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="does not match baseline_id"):
        load_baseline(p)
    with pytest.warns(BaselineCacheWarning, match="edited or corrupted"):
        assert not e.obtain(p).reused


def test_reuse_disabled_always_measures(tmp_path: Path) -> None:
    p = tmp_path / "idle.json"
    e = Env()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = e.obtain(p, reuse=False)
        b = e.obtain(p, reuse=False)
    assert not a.reused and not b.reused


def test_host_state_defaults_come_from_provenance(tmp_path: Path) -> None:
    """Without explicit hw_hash/governor/turbo, they are read from the (fake) host."""
    from alems.provenance import HostPaths

    root = tmp_path / "host"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n")
    pol = root / "sys/devices/system/cpu/cpufreq/policy0"
    pol.mkdir(parents=True)
    (pol / "scaling_governor").write_text("schedutil\n")
    (root / "sys/devices/system/cpu/cpufreq/boost").write_text("1\n")
    e = Env()
    res = obtain_baseline(
        e.meter,
        BaselineConfig(settle_s=0, windows=2, window_s=1),
        tmp_path / "idle.json",
        host_paths=HostPaths.under(root),
        reuse=False,
        clock=e.t.clock,
        sleep=e.t.sleep,
    )
    assert res.baseline.governor == "schedutil" and res.baseline.turbo is True
    assert res.baseline.hw_hash is not None and len(res.baseline.hw_hash) == 16


# --------------------------------------------------------------------------- a fake powercap tree
class DrivenTree:
    """A fake powercap tree (the energy layer's real layout) whose counters move at constant
    power as fake time passes. Layout ``intel-1s-dram``: package-0 with ``dram`` at
    sub-zone 0 and ``core`` at 1; a 60 J ``max_energy_range_uj`` wraps the package
    counter every 2.4 s at 25 W."""

    RANGE_UJ = 60_000_000

    def __init__(self, root: Path, powers: Mapping[str, float], start: float = 500.0) -> None:
        from alems.energy.simulated import make_powercap_tree

        self.now = start
        self.powers = dict(powers)
        self.total_j = {k: 0.0 for k in powers}
        self.fake = make_powercap_tree(
            root,
            "intel-1s-dram",
            max_energy_range_uj=self.RANGE_UJ,
            initial_uj=7_000_000,
            package_limit_w=80.0,
            max_power_w=100.0,
        )
        assert set(self.fake.keys) == set(powers)

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s
        for key, p in self.powers.items():
            self.fake.add_j(key, p * s)
            self.total_j[key] += p * s


def test_fake_powercap_tree_at_known_constant_power(tmp_path: Path) -> None:
    """The real RAPL meter on a driven fake tree: every mean within 0.5 % of the truth."""
    from alems.energy.rapl import RaplMeter

    truth = {"package-0": 25.0, "core-0": 10.0, "dram-0": 3.0}
    tree = DrivenTree(tmp_path / "powercap", truth)
    with RaplMeter(tmp_path / "powercap") as meter:
        assert sorted(d.key for d in meter.domains()) == sorted(truth)
        b = measure_baseline(
            meter,
            BaselineConfig(),
            clock=tree.clock,
            sleep=tree.sleep,
            wall_clock=lambda: 1_700_000_000.0,
            hw_hash="tree",
        )
    assert b.status == "stable" and not b.modeled
    for key, watts in truth.items():
        assert abs(b.power_w[key] - watts) / watts < 0.005, (key, b.power_w[key])
        for w in b.windows:
            assert w.power_w[key] == pytest.approx(watts, rel=0.005)
    # 35 s at 25 W is 875 J: the 60 J counter wrapped 14 times and every wrap was caught
    assert tree.total_j["package-0"] == pytest.approx((5.0 + 30.0) * 25.0)
    assert b.stats["core-0"].judged is False and b.stats["package-0"].judged and b.stats["dram-0"].judged
