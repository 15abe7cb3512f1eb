"""RAPL over powercap: discovery by name for every layout, reads, wraps, errors with fixes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alems.energy.base import summable_keys
from alems.energy.rapl import RaplMeter, discover, permission_fix
from alems.energy.sampler import Sampler
from alems.energy.simulated import LAYOUTS, make_powercap_tree
from alems.errors import CounterReadError, MeterError, PermissionDeniedError

EXPECTED = {
    "intel-1s": (["package-0", "core-0", "uncore-0"], ["package-0"]),
    "intel-1s-dram": (["package-0", "core-0", "dram-0"], ["package-0", "dram-0"]),
    "intel-2s": (
        ["package-0", "core-0", "dram-0", "package-1", "core-1", "dram-1"],
        ["package-0", "dram-0", "package-1", "dram-1"],
    ),
    "intel-psys": (["package-0", "core-0", "uncore-0", "psys"], ["package-0"]),
    "intel-mmio": (["package-0", "core-0", "uncore-0"], ["package-0"]),
    "amd": (["package-0", "core-0"], ["package-0"]),
    "amd-2s": (["package-0", "core-0", "package-1", "core-1"], ["package-0", "package-1"]),
    "small-range": (["package-0", "core-0", "uncore-0"], ["package-0"]),
}


def test_every_layout_is_covered() -> None:
    assert set(EXPECTED) == set(LAYOUTS)


@pytest.mark.parametrize("layout", sorted(EXPECTED))
@pytest.mark.parametrize("symlinks", [True, False])
def test_discovery_by_name(powercap, layout: str, symlinks: bool) -> None:
    fake = powercap(layout, symlinks=symlinks)
    disc = discover(fake.root)
    keys, summable = EXPECTED[layout]
    assert [d.key for d in disc.domains] == keys
    assert summable_keys(disc.domains) == summable
    for d in disc.domains:
        assert d.source == "measured" and d.meter == "rapl"
        # the file read is the zone the fake says holds that key (selected by name, not index)
        assert Path(d.location) == fake.energy_file(d.key)
        if d.kind in ("core", "uncore", "dram"):
            assert d.parent == f"package-{d.key.rsplit('-', 1)[1]}"
        else:
            assert d.parent is None


def test_dram_found_by_name_at_any_index(powercap) -> None:
    fake = powercap("intel-2s")
    disc = discover(fake.root)
    zones = {d.key: d.info["zone"] for d in disc.domains}
    assert zones["dram-0"] == "intel-rapl:0:1" and zones["dram-1"] == "intel-rapl:1:0"
    assert zones["core-0"] == "intel-rapl:0:0" and zones["core-1"] == "intel-rapl:1:1"


def test_psys_at_intel_rapl_1_is_not_a_package(powercap) -> None:
    disc = discover(powercap("intel-psys").root)
    psys = next(d for d in disc.domains if d.key == "psys")
    assert psys.kind == "psys" and psys.info["zone"] == "intel-rapl:1"
    # psys alone is summed only where there is no package
    assert summable_keys([psys]) == ["psys"]


def test_mmio_duplicate_is_dropped_with_a_reason(powercap) -> None:
    disc = discover(powercap("intel-mmio").root)
    assert [d.info["zone"] for d in disc.domains if d.key == "package-0"] == ["intel-rapl:0"]
    assert disc.skipped == ["intel-rapl-mmio:0 (package-0): duplicates the MSR zone intel-rapl:0"]


def test_mmio_only_package_is_kept(tmp_path: Path) -> None:
    make_powercap_tree(tmp_path, [("intel-rapl-mmio:0", "package-0")])
    disc = discover(tmp_path)
    assert [(d.key, d.info["zone"]) for d in disc.domains] == [("package-0", "intel-rapl-mmio:0")]


def test_unknown_zone_names_are_skipped(tmp_path: Path) -> None:
    make_powercap_tree(tmp_path, [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "gpu")])
    disc = discover(tmp_path)
    assert [d.key for d in disc.domains] == ["package-0"]
    assert disc.skipped == ["intel-rapl:0:0 (gpu): not a RAPL domain A-LEMS reads"]


def test_ranges_and_power_limits_are_read(powercap) -> None:
    fake = powercap(
        "intel-1s-dram",
        max_energy_range_uj={"package-0": 262143328850, "dram-0": 65712999613},
        package_limit_w=45.0,
        max_power_w=95.0,
    )
    d = {x.key: x for x in discover(fake.root).domains}
    assert d["package-0"].max_range_j == pytest.approx(262143.32885)
    assert d["dram-0"].max_range_j == pytest.approx(65712.999613)
    # the largest of the limits: max_power_uw 95 W > short_term 56.25 W > long_term 45 W
    assert d["package-0"].max_power_w == pytest.approx(95.0)
    # sub-zones with a 0 limit inherit the package's bound
    assert d["dram-0"].max_power_w == pytest.approx(95.0)
    assert d["package-0"].info["constraints"]["long_term"]["power_limit_uw"] == 45_000_000


def test_meter_reads_joules(powercap) -> None:
    fake = powercap("intel-1s")
    fake.set_uj("package-0", 123_456_789)
    fake.set_uj("core-0", 1_000_000)
    with RaplMeter(fake.root) as m:
        raw = m.read_raw()
    assert raw == {"package-0": pytest.approx(123.456789), "core-0": pytest.approx(1.0), "uncore-0": 0.0}


def test_meter_keys_restrict_and_reject_unknown(powercap) -> None:
    fake = powercap("intel-psys")
    assert [d.key for d in RaplMeter(fake.root, keys=["package-0", "psys"]).domains()] == [
        "package-0",
        "psys",
    ]
    with pytest.raises(MeterError, match=r"RAPL domains \['dram-0'\] are not under"):
        RaplMeter(fake.root, keys=["dram-0"])


def test_absent_root_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MeterError) as e:
        RaplMeter(tmp_path / "nope")
    msg = str(e.value)
    assert f"no RAPL powercap zones under {tmp_path / 'nope'} (the directory does not exist)" in msg
    assert "sudo modprobe intel_rapl_msr" in msg and "--meter auto" in msg
    assert e.value.absent is True


def _assert_permission_message(err: PermissionDeniedError, files: list[Path]) -> None:
    msg = str(err)
    assert msg.startswith("permission denied reading RAPL energy counters: ")
    for f in files:
        assert str(f) in err.message
    # both fixes: a group grant at boot (tmpfiles or udev) and the one-off chmod
    assert "/etc/tmpfiles.d/alems-rapl.conf" in msg and "0440 root power" in msg
    assert 'SUBSYSTEM=="powercap"' in msg and "chmod g+r /sys%p/energy_uj" in msg
    assert "sudo chmod a+r " + " ".join(str(f) for f in files) in msg
    assert "CVE-2020-8694" in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="mode 000 does not stop root")
def test_unreadable_energy_file_mode_000(powercap) -> None:
    fake = powercap("intel-1s")
    fake.chmod("package-0", 0)
    with pytest.raises(PermissionDeniedError) as e:
        RaplMeter(fake.root)
    _assert_permission_message(e.value, [fake.energy_file("package-0")])


def deny_open(monkeypatch: pytest.MonkeyPatch, files: list[Path]) -> None:
    """Make os.open raise PermissionError for ``files`` (what mode 000 does to non-root)."""
    real_open = os.open
    denied = {str(f) for f in files}

    def fake_open(path, flags, *a, **kw):  # type: ignore[no-untyped-def]
        if str(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)


def test_unreadable_energy_file_as_root_via_open(powercap, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = powercap("intel-2s")
    files = [fake.energy_file("package-0"), fake.energy_file("dram-1")]
    deny_open(monkeypatch, files)
    with pytest.raises(PermissionDeniedError) as e:
        RaplMeter(fake.root)
    _assert_permission_message(e.value, files)
    assert str(fake.root) + "/intel-rapl*/energy_uj" in str(e.value)


def test_permission_fix_uses_the_real_root_by_default() -> None:
    fix = permission_fix(["/sys/class/powercap/intel-rapl:0/energy_uj"])
    assert "z /sys/class/powercap/intel-rapl*/energy_uj 0440 root power -" in fix
    assert "sudo chmod a+r /sys/class/powercap/intel-rapl:0/energy_uj" in fix


def test_counter_unreadable_mid_run_is_an_error_for_that_domain(powercap, monkeypatch) -> None:
    fake = powercap("intel-1s")
    m = RaplMeter(fake.root)
    fake.energy_file("core-0").unlink()
    with pytest.raises(CounterReadError) as e:
        m.read_raw()
    assert e.value.domain == "core-0"
    assert str(e.value).startswith(f"core-0: cannot read {fake.energy_file('core-0')}")
    fake.set_uj("core-0", 5)
    fake.energy_file("uncore-0").write_text("")  # empty read
    with pytest.raises(CounterReadError, match="uncore-0: cannot read"):
        m.read_raw()
    fake.set_uj("uncore-0", 5)
    m.read_raw()
    # the file is replaced (as the kernel would recreate it) and the new one is not readable
    fake.set_uj("package-0", 7)
    deny_open(monkeypatch, [fake.energy_file("package-0")])
    with pytest.raises(CounterReadError) as e2:
        m.read_raw()
    assert "package-0: permission denied reading" in str(e2.value) and "sudo chmod a+r" in str(e2.value)


def test_several_wraps_in_one_window_through_the_sampler(powercap, clock) -> None:
    """A scripted 1 J counter moved 23.7 J in 60 steps from 0.9 J: 24 wraps, and the window is exact."""
    fake = powercap("small-range", initial_uj=900_000, package_limit_w=40.0, max_power_w=40.0)
    with RaplMeter(fake.root) as m:
        s = Sampler(m, interval_s=0.01, clock=clock)
        a = s.boundary_read()
        moved = {"package-0": 0.0, "core-0": 0.0}
        for i in range(60):
            step = 0.395
            fake.add_j("package-0", step)
            fake.add_j("core-0", step * 0.6)
            moved["package-0"] += step
            moved["core-0"] += step * 0.6
            clock.advance(0.01)  # 39.5 W: under the 50 W (40 x 1.25) bound, < 1 wrap per read
            s.boundary_read() if i % 7 == 0 else s._read(False)
        b = s.boundary_read()
    assert b.energy_j["package-0"] - a.energy_j["package-0"] == pytest.approx(23.7, abs=1e-9)
    assert b.energy_j["core-0"] - a.energy_j["core-0"] == pytest.approx(moved["core-0"], abs=1e-6)
    assert b.energy_j["uncore-0"] == 0.0
    assert s.trackers.wraps()["package-0"] == 24  # 0.9 + 23.7 J on a 1 J counter


def test_a_missed_wrap_window_is_refused(powercap, clock) -> None:
    fake = powercap("small-range", package_limit_w=40.0, max_power_w=40.0)
    with RaplMeter(fake.root) as m:
        s = Sampler(m, interval_s=0.01, clock=clock)
        s.boundary_read()
        clock.advance(0.5)  # at 50 W a 1 J counter can wrap every 20 ms
        fake.add_j("package-0", 0.3)
        with pytest.raises(
            CounterReadError, match=r"package-0: 0.500 s between reads, but the counter can wrap"
        ):
            s.boundary_read()
