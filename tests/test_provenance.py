"""Fingerprint, hashes, manifest and the refusal to mix runs, on a fake host."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from alems import provenance as pv
from alems.contracts import hashed_config
from alems.energy.rapl import discover
from alems.energy.simulated import LAYOUTS, make_powercap_tree
from alems.errors import ConfigError, ProvenanceError
from alems.io import canonical_json, file_sha256
from alems.llm import fetch

CPUINFO = """processor\t: {i}
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
stepping\t: 8
microcode\t: 0x2b000461
cpu MHz\t\t: {mhz}
physical id\t: {pkg}
core id\t\t: {core}
flags\t\t: fpu sse avx2 avx512f hypervisor
"""


def _w(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_host(root: Path) -> pv.HostPaths:
    """A two-socket, 2-cores-per-socket, 2-threads-per-core Intel host with RAPL and cpufreq."""
    cpus = []
    i = 0
    for pkg in range(2):
        for core in range(2):
            for _thread in range(2):
                cpus.append((i, pkg, core))
                i += 1
    _w(
        root / "proc/cpuinfo",
        "\n".join(CPUINFO.format(i=i, pkg=p, core=c, mhz=2000.0 + i) for i, p, c in cpus),
    )
    _w(root / "proc/meminfo", "MemTotal:       65536000 kB\nMemFree: 1000 kB\n")
    _w(root / "proc/sys/kernel/osrelease", "6.1.0-test")
    _w(root / "proc/uptime", "1234.5 999.0")
    _w(root / "proc/loadavg", "0.10 0.20 0.30 1/100 42")
    _w(root / "etc/os-release", 'NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    cpu_sys = root / "sys/devices/system/cpu"
    for i, p, c in cpus:
        _w(cpu_sys / f"cpu{i}/topology/physical_package_id", str(p))
        _w(cpu_sys / f"cpu{i}/topology/core_id", str(c))
        _w(cpu_sys / f"cpu{i}/topology/die_id", "0")
        _w(cpu_sys / f"cpu{i}/cpufreq/scaling_cur_freq", str(2_000_000 + i * 1000))
        pol = cpu_sys / f"cpufreq/policy{i}"
        _w(pol / "scaling_governor", "performance")
        _w(pol / "scaling_driver", "intel_pstate")
        _w(pol / "cpuinfo_min_freq", "800000")
        _w(pol / "cpuinfo_max_freq", "3800000")
        _w(pol / "scaling_min_freq", "800000")
        _w(pol / "scaling_max_freq", "3800000")
        _w(pol / "energy_performance_preference", "performance")
    _w(cpu_sys / "intel_pstate/no_turbo", "0")
    _w(cpu_sys / "intel_pstate/status", "active")
    pc = root / "sys/class/powercap"
    for pkg in range(2):
        z = pc / f"intel-rapl:{pkg}"
        _w(z / "name", f"package-{pkg}")
        _w(z / "max_energy_range_uj", "262143328850")
        _w(z / "energy_uj", str(1000 + pkg))
        _w(z / "constraint_0_name", "long_term")
        _w(z / "constraint_0_power_limit_uw", "350000000")
        _w(z / "constraint_0_time_window_us", "999424")
        _w(z / "constraint_0_max_power_uw", "350000000")
        _w(z / "constraint_1_name", "short_term")
        _w(z / "constraint_1_power_limit_uw", "420000000")
        sub = z / f"intel-rapl:{pkg}:0"
        _w(sub / "name", "dram")
        _w(sub / "max_energy_range_uj", "65712999613")
        _w(sub / "constraint_0_name", "long_term")
        _w(sub / "constraint_0_power_limit_uw", "0")
    for n, t in enumerate(["x86_pkg_temp", "acpitz"]):
        _w(root / f"sys/class/thermal/thermal_zone{n}/type", t)
        _w(root / f"sys/class/thermal/thermal_zone{n}/temp", str(45000 + n))
    _w(root / "sys/class/dmi/id/sys_vendor", "Amazon EC2")
    _w(root / "sys/class/dmi/id/product_name", "m7i.metal")
    return pv.HostPaths.under(root)


class FakeRunner:
    """Answers systemd-detect-virt and git like the real programs; ``git=False`` means no git."""

    def __init__(
        self, *, commit: str = "a" * 40, status: str = "", diff: str = "", git: bool = True, vm: str = "kvm"
    ) -> None:
        self.commit, self.status, self.diff, self.git, self.vm = commit, status, diff, git, vm
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str] | None:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "systemd-detect-virt":
            if argv[1] == "--vm":
                return (0 if self.vm != "none" else 1, self.vm + "\n")
            return (1, "none\n")
        if argv[0] == "git":
            if not self.git:
                return None
            sub = argv[3]
            if sub == "rev-parse" and argv[4] == "--show-toplevel":
                return (0, "/repo\n")
            if sub == "rev-parse":
                return (0, self.commit + "\n")
            if sub == "status":
                return (0, self.status)
            if sub == "diff":
                return (0, self.diff)
        return None


class FakeNVML:
    """The pynvml calls the fingerprint makes, for one GPU."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(
        self,
        *,
        name: str = "NVIDIA H100 80GB HBM3",
        limit_mw: int = 700_000,
        temp: int = 33,
        power_mw: int = 71_000,
        uuid: str = "GPU-1234",
        fail_init: bool = False,
    ) -> None:
        self.name, self.limit_mw, self.temp, self.power_mw, self.uuid = name, limit_mw, temp, power_mw, uuid
        self.fail_init = fail_init
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> object:
        return ("h", i)

    def nvmlDeviceGetName(self, h: object) -> bytes:
        return self.name.encode()

    def nvmlDeviceGetMemoryInfo(self, h: object) -> object:
        return type("Mem", (), {"total": 85_520_809_984, "used": 5})()

    def nvmlDeviceGetEnforcedPowerLimit(self, h: object) -> int:
        return self.limit_mw

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: object) -> int:
        return 700_000

    def nvmlDeviceGetArchitecture(self, h: object) -> int:
        return 9

    def nvmlDeviceGetCudaComputeCapability(self, h: object) -> tuple[int, int]:
        return (9, 0)

    def nvmlDeviceGetTemperature(self, h: object, sensor: int) -> int:
        return self.temp

    def nvmlDeviceGetPowerUsage(self, h: object) -> int:
        return self.power_mw

    def nvmlDeviceGetUUID(self, h: object) -> str:
        return self.uuid


DISTS = {"numpy": "1.26.4", "pandas": "2.2.2", "alems": "0.1.0"}
LLAMA = {
    "package": "llama-cpp-python",
    "version": "0.3.36",
    "CMAKE_ARGS": "-DLLAVA_BUILD=OFF",
    "wheel_cache": "/home/u/.cache/alems/wheels",
}
CFG = {"families": ["arith", "sql"], "reps": 3, "baseline": {"windows": 10}}


@pytest.fixture
def host(tmp_path: Path) -> pv.HostPaths:
    return make_host(tmp_path / "host")


def fp(
    host: pv.HostPaths, cfg=CFG, *, runner=None, nvml=None, clock=lambda: 1_700_000_000.0, **kw
) -> pv.Fingerprint:
    kw.setdefault("distributions", DISTS)
    kw.setdefault("llama_build", LLAMA)
    kw.setdefault("model_sha256", "1d96" * 16)
    kw.setdefault("model_name", "qwen2.5-coder-0.5b")
    return pv.fingerprint(
        cfg, paths=host, nvml=nvml or FakeNVML(), run=runner or FakeRunner(), wall_clock=clock, **kw
    )


# --------------------------------------------------------------------------- fingerprint content
def test_hardware_record_reads_the_fake_host(host: pv.HostPaths) -> None:
    hw = fp(host).hardware
    cpu = hw["cpu"]
    assert cpu["vendor"] == "GenuineIntel"
    assert cpu["model_name"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert (cpu["family"], cpu["model"], cpu["stepping"], cpu["microcode"]) == ("6", "143", "8", "0x2b000461")
    assert (cpu["sockets"], cpu["cores"], cpu["threads"]) == (2, 4, 8)
    f = hw["cpufreq"]
    assert f["governor"] == "performance" and f["driver"] == "intel_pstate"
    assert f["turbo"] == {"enabled": True, "mechanism": "intel_pstate/no_turbo"}
    assert f["limits_khz"] == {
        "cpuinfo_min": 800000,
        "cpuinfo_max": 3800000,
        "scaling_min": 800000,
        "scaling_max": 3800000,
    }
    assert hw["memory"]["total_bytes"] == 65536000 * 1024
    zones = {z["zone"]: z for z in hw["rapl_zones"]}
    assert set(zones) == {"intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"}
    assert zones["intel-rapl:1"]["name"] == "package-1"
    assert zones["intel-rapl:0"]["max_energy_range_uj"] == 262143328850
    assert zones["intel-rapl:0"]["constraints"][0]["power_limit_uw"] == 350000000
    assert zones["intel-rapl:0"]["constraints"][1]["name"] == "short_term"
    assert zones["intel-rapl:0:0"]["name"] == "dram" and zones["intel-rapl:0:0"]["parent"] == "intel-rapl:0"
    gpu = hw["gpus"][0]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["driver"] == "550.54.15"
    assert gpu["power_limit_w"] == 700.0 and gpu["memory_total_bytes"] == 85_520_809_984
    assert hw["kernel"]["release"] == "6.1.0-test"
    v = hw["virtualisation"]
    assert v["virtualised"] is True and v["vm"] == "kvm" and v["hypervisor_flag"] is True
    assert v["dmi"]["product_name"] == "m7i.metal"


def test_volatile_fields_are_recorded_but_not_in_hardware(host: pv.HostPaths) -> None:
    f = fp(host)
    vol = f.volatile
    assert vol["timestamp_unix"] == 1_700_000_000.0 and vol["timestamp_utc"].startswith("2023-11-14")
    assert vol["uptime_s"] == 1234.5
    assert vol["cpu_mhz"]["min"] == 2000.0 and vol["cpu_mhz"]["max"] == 2007.0
    assert vol["temperatures_c"]["thermal_zone0:x86_pkg_temp"] == 45.0
    assert vol["gpus"][0]["uuid"] == "GPU-1234" and vol["gpus"][0]["power_w"] == 71.0
    assert vol["llama_build_local"] == {"wheel_cache": "/home/u/.cache/alems/wheels"}
    text = canonical_json(f.hardware) + canonical_json(f.environment)
    for leaked in ("GPU-1234", "1234.5", "2001000", "wheel_cache", "45000"):
        assert leaked not in text


def test_environment_record(host: pv.HostPaths) -> None:
    env = fp(host, runner=FakeRunner(status=" M src/alems/x.py\n", diff="diff --git a b\n")).environment
    assert env["distributions"] == dict(sorted(DISTS.items()))
    assert env["llama_cpp_build"] == {
        "package": "llama-cpp-python",
        "version": "0.3.36",
        "CMAKE_ARGS": "-DLLAVA_BUILD=OFF",
    }
    assert env["model"] == {"name": "qwen2.5-coder-0.5b", "sha256": "1d96" * 16}
    assert env["git"]["commit"] == "a" * 40 and env["git"]["dirty"] is True
    assert len(env["git"]["diff_sha256"]) == 64
    assert env["os"]["name"] == "Debian GNU/Linux 12 (bookworm)"
    assert env["python"]["version"]


def test_rapl_zones_of_the_energy_layers_fake_trees(tmp_path: Path) -> None:
    """Real layout: sub-zones nested and symlinked at the root; mmio duplicate listed too."""
    make_powercap_tree(tmp_path / "pc", "intel-mmio", package_limit_w=65.0)
    zones = pv.collect_rapl(tmp_path / "pc")
    assert [(z["zone"], z["name"], z["parent"]) for z in zones] == [
        ("intel-rapl-mmio:0", "package-0", None),
        ("intel-rapl:0", "package-0", None),
        ("intel-rapl:0:0", "core", "intel-rapl:0"),
        ("intel-rapl:0:1", "uncore", "intel-rapl:0"),
    ]
    pkg = zones[1]
    assert [c["name"] for c in pkg["constraints"]] == ["long_term", "short_term"]
    assert pkg["constraints"][0]["power_limit_uw"] == 65_000_000
    assert pkg["max_energy_range_uj"] == 262_143_328_850


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("symlinks", [True, False])
def test_rapl_zones_cover_every_zone_the_rapl_meter_reads(
    tmp_path: Path, layout: str, symlinks: bool
) -> None:
    """The fingerprint reads powercap through the energy layer: each zone the meter measures is
    recorded with the name, parent and counter range the meter found."""
    make_powercap_tree(tmp_path / "pc", layout, symlinks=symlinks)
    recorded = {z["zone"]: z for z in pv.collect_rapl(tmp_path / "pc")}
    measured = discover(tmp_path / "pc").zones.values()
    assert measured
    for zone in measured:
        record = recorded[zone.zone_id]
        assert (record["name"], record["parent"], record["max_energy_range_uj"]) == (
            zone.name,
            zone.parent_id,
            zone.max_energy_range_uj,
        )


def test_git_absent_records_null(host: pv.HostPaths) -> None:
    git = fp(host, runner=FakeRunner(git=False)).environment["git"]
    assert git["commit"] is None and git["dirty"] is None and git["diff_sha256"] is None


def test_llama_build_read_from_file(tmp_path: Path, host: pv.HostPaths) -> None:
    p = tmp_path / "llama_build.json"
    p.write_text(json.dumps(LLAMA))
    env = fp(host, llama_build=None, llama_build_path=p).environment
    assert env["llama_cpp_build"]["CMAKE_ARGS"] == "-DLLAVA_BUILD=OFF"
    env = fp(host, llama_build=None, llama_build_path=tmp_path / "absent.json").environment
    assert env["llama_cpp_build"] is None


def test_no_nvml_means_no_gpus_with_reason(host: pv.HostPaths) -> None:
    f = fp(host, nvml=FakeNVML(fail_init=True))
    assert f.hardware["gpus"] == []
    assert "NVML unavailable: NVML Shared Library Not Found" in f.volatile["gpu_note"]


def test_empty_host_does_not_crash(tmp_path: Path) -> None:
    f = pv.fingerprint(
        None,
        paths=pv.HostPaths.under(tmp_path / "nothing"),
        nvml=False,
        run=lambda argv: None,
        distributions={},
        llama_build=None,
    )
    assert f.hardware["cpu"]["sockets"] is None and f.hardware["rapl_zones"] == []
    assert f.hardware["cpufreq"]["turbo"] == {"enabled": None, "mechanism": None}
    assert f.hashes.config_hash is None and f.hashes.run_id is None
    assert len(f.hashes.hw_hash) == 16


def test_real_host_smoke() -> None:
    """The defaults read this machine without error (whatever it has)."""
    f = pv.fingerprint({"a": 1}, nvml=False, distributions={"x": "1"})
    assert len(f.hashes.run_id or "") == 16
    assert f.hardware["kernel"]["release"]


# --------------------------------------------------------------------------- hash stability and sensitivity
def test_two_calls_on_unchanged_machine_give_equal_hashes(host: pv.HostPaths) -> None:
    a = fp(host, clock=lambda: 1.0)
    # volatile readings move between the calls; the hashes must not
    _w(host.cpu_sys / "cpu0/cpufreq/scaling_cur_freq", "3500000")
    _w(host.thermal / "thermal_zone0/temp", "88000")
    _w(host.uptime, "99999.0 1.0")
    _w(host.powercap_root / "intel-rapl:0/energy_uj", "555555")
    b = fp(host, clock=lambda: 2.0, nvml=FakeNVML(temp=80, power_mw=400_000, uuid="GPU-other"))
    assert a.hashes == b.hashes
    assert a.volatile != b.volatile
    for h in (a.hashes.hw_hash, a.hashes.env_hash, a.hashes.config_hash, a.hashes.run_id):
        assert h is not None and len(h) == 16 and int(h, 16) >= 0


def test_hash_is_sha256_of_canonical_json(host: pv.HostPaths) -> None:
    import hashlib

    f = fp(host)
    assert f.hashes.hw_hash == hashlib.sha256(canonical_json(f.hardware).encode()).hexdigest()[:16]
    assert f.hashes.config_hash == hashlib.sha256(canonical_json(f.config).encode()).hexdigest()[:16]
    assert f.hashes.run_id == pv.compute_run_id(f.hashes.hw_hash, f.hashes.env_hash, f.hashes.config_hash)


@pytest.mark.parametrize(
    "path, old, new",
    [
        ("proc/cpuinfo", "8480+", "8490H"),
        ("proc/cpuinfo", "0x2b000461", "0x2b000999"),
        ("proc/cpuinfo", "avx512f", "avx512f amx_tile"),
        ("sys/devices/system/cpu/cpufreq/policy3/scaling_governor", "performance", "powersave"),
        ("sys/devices/system/cpu/intel_pstate/no_turbo", "0", "1"),
        ("sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq", "3800000", "2000000"),
        ("sys/devices/system/cpu/cpufreq/policy0/energy_performance_preference", "performance", "power"),
        ("proc/meminfo", "65536000", "32768000"),
        ("sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw", "350000000", "200000000"),
        ("sys/class/powercap/intel-rapl:1/intel-rapl:1:0/max_energy_range_uj", "65712999613", "1000"),
        ("proc/sys/kernel/osrelease", "6.1.0-test", "6.9.0-other"),
        ("sys/class/dmi/id/product_name", "m7i.metal", "c7i.large"),
    ],
    ids=[
        "cpu-model",
        "microcode",
        "flags",
        "governor",
        "turbo",
        "freq-limit",
        "epp",
        "ram",
        "rapl-limit",
        "rapl-range",
        "kernel",
        "dmi",
    ],
)
def test_hw_hash_moves_with_each_hardware_input(tmp_path: Path, path: str, old: str, new: str) -> None:
    host = make_host(tmp_path / "h")
    before = fp(host).hashes
    f = tmp_path / "h" / path
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new))
    after = fp(host).hashes
    assert after.hw_hash != before.hw_hash
    assert after.env_hash == before.env_hash and after.config_hash == before.config_hash
    assert after.run_id != before.run_id


def test_topology_changes_move_hw_hash(tmp_path: Path) -> None:
    host = make_host(tmp_path / "h")
    before = fp(host).hashes.hw_hash
    (host.cpu_sys / "cpu7" / "online").write_text("0")  # one thread offline
    assert fp(host).hashes.hw_hash != before


def test_hw_hash_moves_with_gpu_and_virtualisation(host: pv.HostPaths) -> None:
    base = fp(host).hashes.hw_hash
    assert fp(host, nvml=FakeNVML(limit_mw=500_000)).hashes.hw_hash != base
    assert fp(host, nvml=FakeNVML(name="NVIDIA A100")).hashes.hw_hash != base
    assert fp(host, nvml=FakeNVML(fail_init=True)).hashes.hw_hash != base
    assert fp(host, runner=FakeRunner(vm="none")).hashes.hw_hash != base


@pytest.mark.parametrize(
    "change",
    [
        {"distributions": {**DISTS, "numpy": "2.0.0"}},
        {"distributions": {**DISTS, "torch": "2.3.0"}},
        {"llama_build": {**LLAMA, "CMAKE_ARGS": "-DGGML_CUDA=on"}},
        {"model_sha256": "b179" * 16},
        {"runner": FakeRunner(commit="b" * 40)},
        {"runner": FakeRunner(status=" M src/alems/x.py\n", diff="+1\n")},
    ],
    ids=["dist-version", "dist-added", "llama-flags", "model", "commit", "dirty"],
)
def test_env_hash_moves_with_each_environment_input(host: pv.HostPaths, change: dict) -> None:
    before = fp(host).hashes
    after = fp(host, **change).hashes
    assert after.env_hash != before.env_hash
    assert after.hw_hash == before.hw_hash and after.config_hash == before.config_hash


def test_env_hash_moves_with_the_uncommitted_diff(host: pv.HostPaths) -> None:
    a = fp(host, runner=FakeRunner(status=" M src/x.py\n", diff="+a\n")).hashes.env_hash
    b = fp(host, runner=FakeRunner(status=" M src/x.py\n", diff="+b\n")).hashes.env_hash
    assert a != b


def test_llama_wheel_cache_path_does_not_move_env_hash(host: pv.HostPaths) -> None:
    assert fp(host).hashes == fp(host, llama_build={**LLAMA, "wheel_cache": "/elsewhere"}).hashes


def test_config_change_moves_only_config_hash(host: pv.HostPaths) -> None:
    a = fp(host).hashes
    b = fp(host, cfg={**CFG, "reps": 4}).hashes
    assert b.config_hash != a.config_hash and b.run_id != a.run_id
    assert (b.hw_hash, b.env_hash) == (a.hw_hash, a.env_hash)


def test_config_canonical_form() -> None:
    a = pv.canonical_config({"b": 1, "a": {"y": (1, 2), "x": {3, 1}}, "p": Path("/x")})
    assert list(a) == ["a", "b", "p"] and list(a["a"]) == ["x", "y"]
    assert a["a"] == {"x": [1, 3], "y": [1, 2]} and a["p"] == "/x"
    # key order does not matter; defaults fill gaps but never override
    defaults = {"reps": 1, "baseline": {"windows": 10, "window_s": 3.0}}
    c1 = pv.canonical_config({"baseline": {"windows": 5}, "families": ["a"]}, defaults)
    c2 = pv.canonical_config({"families": ["a"], "baseline": {"windows": 5}, "reps": 1}, defaults)
    assert c1 == c2 == {"baseline": {"window_s": 3.0, "windows": 5}, "families": ["a"], "reps": 1}
    assert pv.short_hash(c1) == pv.short_hash(c2)
    with pytest.raises(ConfigError, match=r"config value at a\.b has type object"):
        pv.canonical_config({"a": {"b": object()}})


def test_figures_section_is_not_hashed(host: pv.HostPaths) -> None:
    a = fp(host, cfg=hashed_config({**CFG, "figures": {"timeline_family": "arith"}})).hashes
    b = fp(host, cfg=hashed_config({**CFG, "figures": {"timeline_family": "sql"}})).hashes
    assert a == b == fp(host).hashes


# --------------------------------------------------------------------------- provenance files
def test_write_provenance_files_match_their_hashes(tmp_path: Path, host: pv.HostPaths) -> None:
    out = tmp_path / "results" / "provenance"
    f = pv.write_provenance(
        out, CFG, paths=host, nvml=FakeNVML(), run=FakeRunner(), distributions=DISTS, llama_build=LLAMA
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "environment.json", "hardware.json", "hashes.json"]
    assert pv.short_hash(json.loads((out / "hardware.json").read_text())) == f.hashes.hw_hash
    assert pv.short_hash(json.loads((out / "environment.json").read_text())) == f.hashes.env_hash
    assert pv.short_hash(json.loads((out / "config.json").read_text())) == f.hashes.config_hash
    hashes = json.loads((out / "hashes.json").read_text())
    assert hashes["run_id"] == f.hashes.run_id and "timestamp_utc" in hashes["volatile"]
    assert pv.load_hashes(out / "hashes.json") == f.hashes


def test_load_hashes_errors(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="cannot read provenance hashes"):
        pv.load_hashes(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ProvenanceError, match="not valid JSON"):
        pv.load_hashes(tmp_path / "bad.json")
    (tmp_path / "part.json").write_text('{"hw_hash": "x"}')
    with pytest.raises(ProvenanceError, match="incomplete"):
        pv.load_hashes(tmp_path / "part.json")


# --------------------------------------------------------------------------- manifest
HASHES = pv.Hashes("1" * 16, "2" * 16, "3" * 16, "4" * 16)


def _outputs(root: Path) -> list[Path]:
    files = {
        "tables/goals.csv": "a,b\n1,2\n",
        "tables/epg.csv": "x\n",
        "runs/arith/rep0/events.jsonl": "{}\n",
    }
    for rel, text in files.items():
        _w(root / rel, text)
    return [root / "tables", root / "runs"]


def test_manifest_lists_every_output_and_verifies(tmp_path: Path) -> None:
    res = tmp_path / "results"
    manifest = pv.write_manifest(res / "manifest.json", _outputs(res), HASHES)
    assert [e["path"] for e in manifest["files"]] == [
        "runs/arith/rep0/events.jsonl",
        "tables/epg.csv",
        "tables/goals.csv",
    ]
    goals = next(e for e in manifest["files"] if e["path"] == "tables/goals.csv")
    assert goals["size"] == 8 and goals["sha256"] == pv.file_sha256(res / "tables/goals.csv")
    assert (manifest["hw_hash"], manifest["env_hash"], manifest["config_hash"], manifest["run_id"]) == (
        "1" * 16,
        "2" * 16,
        "3" * 16,
        "4" * 16,
    )
    report = pv.verify_manifest(res / "manifest.json")
    assert report.ok and report.checked == 3 and report.hashes["run_id"] == "4" * 16


def test_file_sha256_is_the_chunked_sha256_of_the_bytes(tmp_path: Path) -> None:
    f = tmp_path / "blob.bin"
    data = bytes(range(256)) * 37
    f.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(f) == file_sha256(f, chunk=7) == expected
    assert pv.file_sha256 is file_sha256
    assert fetch.model_sha256(f, use_sidecar=False) == expected  # the model cache's version agrees


def test_manifest_mismatch_and_missing_detected(tmp_path: Path) -> None:
    res = tmp_path / "results"
    pv.write_manifest(res / "manifest.json", _outputs(res), HASHES)
    (res / "tables/goals.csv").write_text("a,b\n1,3\n")  # same size, other bytes
    (res / "tables/epg.csv").unlink()
    report = pv.verify_manifest(res / "manifest.json")
    assert not report.ok
    assert [c["path"] for c in report.changed] == ["tables/goals.csv"]
    assert report.changed[0]["expected_size"] == report.changed[0]["actual_size"] == 8
    assert report.missing == ["tables/epg.csv"]


def test_manifest_rooted_elsewhere_is_relocatable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workflow lists paths relative to the repository (root=".") with the manifest in results/."""
    repo = tmp_path / "repo"
    _outputs(repo / "results")
    monkeypatch.chdir(repo)
    m = pv.write_manifest("results/manifest.json", ["results/tables", "results/runs"], HASHES, root=".")
    assert m["root"] == ".." and m["files"][0]["path"] == "runs/arith/rep0/events.jsonl".join(
        ["results/", ""]
    )
    moved = tmp_path / "moved"
    repo.rename(moved)
    monkeypatch.chdir(tmp_path)
    assert pv.verify_manifest(moved / "results/manifest.json").ok
    (moved / "results/tables/epg.csv").write_text("changed\n")
    assert [c["path"] for c in pv.verify_manifest(moved / "results/manifest.json").changed] == [
        "results/tables/epg.csv"
    ]


def test_manifest_of_missing_output_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="cannot list outputs that do not exist: .*nope.csv"):
        pv.build_manifest([tmp_path / "nope.csv"], HASHES, root=tmp_path)


def test_verify_bad_manifest_files(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="manifest .* not found"):
        pv.verify_manifest(tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text("[1, 2")
    with pytest.raises(ProvenanceError, match="not valid JSON"):
        pv.verify_manifest(tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text('{"files": [{"nopath": 1}]}')
    with pytest.raises(ProvenanceError, match="no valid `files` list"):
        pv.verify_manifest(tmp_path / "manifest.json")


# --------------------------------------------------------------------------- mixing runs
def test_consistent_runs_aggregate() -> None:
    c = pv.check_compatible({"arith/rep0": HASHES, "arith/rep1": HASHES.to_dict()})
    assert c.label == "consistent" and not c.mixed and c.run_id == HASHES.run_id
    assert c.hashes == {"hw_hash": "1" * 16, "env_hash": "2" * 16, "config_hash": "3" * 16}


def test_mixing_refusal_names_runs_and_fields() -> None:
    other_env = pv.Hashes("1" * 16, "9" * 16, "3" * 16, "8" * 16)
    other_cfg = pv.Hashes("1" * 16, "2" * 16, "7" * 16, "6" * 16)
    records = {"arith/rep0": HASHES, "arith/rep1": other_env, "sql/rep0": other_cfg}
    with pytest.raises(ProvenanceError) as err:
        pv.check_compatible(records)
    msg = str(err.value)
    assert "refusing to mix runs with different provenance (env_hash, config_hash)" in msg
    assert f"env_hash differs: {'2' * 16} in arith/rep0, sql/rep0; {'9' * 16} in arith/rep1" in msg
    assert f"config_hash differs: {'3' * 16} in arith/rep0, arith/rep1; {'7' * 16} in sql/rep0" in msg
    assert "hw_hash differs" not in msg
    assert "allow_mixed_runs: true" in msg

    mixed = pv.check_compatible(records, allow_mixed=True)
    assert mixed.mixed and mixed.label == "mixed"
    assert mixed.hashes == {"hw_hash": "1" * 16, "env_hash": "mixed", "config_hash": "mixed"}
    assert set(mixed.differing) == {"env_hash", "config_hash"}
    assert mixed.run_id is not None and mixed.run_id.startswith("mixed-")


def test_missing_hash_field_counts_as_a_difference() -> None:
    with pytest.raises(ProvenanceError, match=r"hw_hash differs: 1{16} in a; <missing> in b"):
        pv.check_compatible({"a": HASHES, "b": {"env_hash": "2" * 16, "config_hash": "3" * 16}})
