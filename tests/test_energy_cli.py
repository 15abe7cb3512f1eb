"""``alems measure`` and ``alems doctor`` end to end, on fake and simulated powercap trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import alems
from alems.cli import main
from alems.energy.simulated import SimulatedRapl, make_powercap_tree

SRC = str(Path(alems.__file__).resolve().parents[1])


def run_alems(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHONPATH=SRC, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "alems", *args], capture_output=True, text=True, env=e, timeout=timeout
    )


def test_measure_rapl_on_the_simulated_writer(tmp_path: Path) -> None:
    """A whole `alems measure` through the real RAPL path: 10 W on a 5 J counter."""
    root = tmp_path / "pc"
    with SimulatedRapl(root, "intel-1s", watts=10, range_uj=5_000_000, tick_ms=2):
        r = run_alems(
            "measure",
            "--meter",
            "rapl",
            "--powercap-root",
            str(root),
            "--json",
            "--",
            "sh",
            "-c",
            "sleep 1.2",
        )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"meter", "duration_s", "energy_j", "sources", "total_j", "exit_code"} <= set(out)
    assert out["meter"] == "rapl" and out["exit_code"] == 0
    assert out["sources"] == {"package-0": "measured", "core-0": "measured", "uncore-0": "measured"}
    assert 1.2 <= out["duration_s"] < 3.0
    # 10 W for the command's window, through 2-3 wraps of the 5 J counter
    assert out["energy_j"]["package-0"] == pytest.approx(10.0 * out["duration_s"], rel=0.03)
    assert out["energy_j"]["package-0"] > 10.0
    assert out["energy_j"]["core-0"] == pytest.approx(0.6 * out["energy_j"]["package-0"], rel=0.03)
    assert out["total_j"] == out["energy_j"]["package-0"]  # core/uncore are inside the package
    assert out["static"] == [] and out["warnings"] == []


MOVER = textwrap.dedent("""
    import os, sys, time
    f, rng = sys.argv[1], int(sys.argv[2])
    for _ in range(24):
        v = (int(open(f).read()) + 250_000) % rng
        open(f + ".tmp", "w").write(str(v))
        os.replace(f + ".tmp", f)
        time.sleep(0.04)
""")


def test_measure_reports_what_the_command_moved_wraps_included(tmp_path: Path) -> None:
    """The command itself moves package-0 by 24 x 0.25 J = 6 J on a 2 J counter (3 wraps)."""
    fake = make_powercap_tree(
        tmp_path / "pc",
        "intel-1s",
        max_energy_range_uj=2_000_000,
        initial_uj=1_500_000,
        package_limit_w=8.0,
        max_power_w=8.0,
    )
    mover = tmp_path / "mover.py"
    mover.write_text(MOVER)
    r = run_alems(
        "measure",
        "--meter",
        "rapl",
        "--powercap-root",
        str(fake.root),
        "--interval-ms",
        "5",
        "--json",
        "--",
        sys.executable,
        str(mover),
        str(fake.energy_file("package-0")),
        "2000000",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["energy_j"] == {"package-0": pytest.approx(6.0, abs=1e-9), "core-0": 0.0, "uncore-0": 0.0}
    assert out["total_j"] == pytest.approx(6.0, abs=1e-9)
    assert out["static"] == ["core-0", "uncore-0"]  # present, read, did not move: flagged, not dropped
    assert out["interval_s"] == pytest.approx(0.005)
    assert out["proc_cpu_s"] > 0.0  # the child's own CPU time


def test_measure_model_exit_code_and_text(capsys) -> None:
    rc = main(["measure", "--meter", "model", "--", "sh", "-c", "exit 3"])
    assert rc == 3
    err = capsys.readouterr().err
    assert "meter model:" in err and "exit code 3" in err and "cpu-model" in err and "modeled" in err


def test_measure_errors(tmp_path: Path, capsys) -> None:
    assert main(["measure", "--meter", "model", "--", "no-such-command-xyz"]) == 2
    assert "alems measure: error: command not found: no-such-command-xyz" in capsys.readouterr().err
    assert main(["measure", "--meter", "model"]) == 2
    err = capsys.readouterr().err
    assert "no command to measure" in err and "alems measure [options] -- CMD" in err
    assert main(["measure", "--meter", "rapl", "--powercap-root", str(tmp_path), "--", "true"]) == 2
    err = capsys.readouterr().err
    assert f"no RAPL powercap zones under {tmp_path}" in err and "sudo modprobe intel_rapl_msr" in err


def test_measure_auto_json_labels_the_model(tmp_path: Path, no_pynvml, capsys) -> None:
    rc = main(["measure", "--powercap-root", str(tmp_path / "none"), "--json", "--", "sh", "-c", "true"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["meter"] == "auto" and out["sources"] == {"cpu-model": "modeled"}
    assert out["selection"].startswith("auto meter: no GPU")


def test_doctor_json_reports_dead_psys_with_fix(tmp_path: Path, no_pynvml, capsys) -> None:
    root = tmp_path / "pc"
    with SimulatedRapl(root, "intel-psys", watts=15, dead=["psys"]):
        assert main(["doctor", "--json", "--powercap-root", str(root)]) == 0
    rep = json.loads(capsys.readouterr().out)
    by = {(f["meter"], f["status"]): f for f in rep["findings"]}
    assert by[("rapl", "ok")]["domains"] == ["package-0", "core-0", "uncore-0"]
    dead = by[("rapl", "dead")]
    assert dead["domains"] == ["psys"] and "did not move under a 0.30 s calibration load" in dead["summary"]
    assert "auto leaves it out" in dead["fix"] and "flags it 'static'" in dead["fix"]
    assert by[("nvml", "absent")]["fix"].startswith("pip install nvidia-ml-py")
    assert rep["auto"]["measured"] == ["package-0", "core-0", "uncore-0"] and rep["auto"]["modeled"] == []
    assert list(rep["auto"]["left_out"]) == ["psys"]
    assert rep["auto"]["left_out"]["psys"].startswith("did not move under a 0.30 s calibration load")
    assert by[("rapl", "ok")]["details"]["safe_poll_interval_s"] > 0


def test_doctor_text_gives_the_permission_fix(tmp_path: Path, no_pynvml, monkeypatch, capsys) -> None:
    fake = make_powercap_tree(tmp_path / "pc", "amd")
    denied = {str(fake.energy_file("package-0")), str(fake.energy_file("core-0"))}
    real_open = os.open

    def fake_open(path, flags, *a, **kw):  # type: ignore[no-untyped-def]
        if str(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    assert main(["doctor", "--no-calibrate", "--powercap-root", str(fake.root)]) == 0
    out = capsys.readouterr().out
    assert "[permission] rapl  permission denied reading RAPL energy counters:" in out
    assert f"sudo chmod a+r {fake.energy_file('package-0')} {fake.energy_file('core-0')}" in out
    assert "/etc/tmpfiles.d/alems-rapl.conf" in out and 'SUBSYSTEM=="powercap"' in out
    assert "[absent    ] nvml" in out and "[ok        ] model cpu-model from /proc/stat" in out
    assert "modeled cpu-model for the CPU because RAPL at" in out


def test_doctor_on_this_machine_without_hardware(tmp_path: Path) -> None:
    r = run_alems("doctor", "--json", "--powercap-root", str(tmp_path / "none"))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["findings"][0]["status"] == "absent" and rep["auto"]["modeled"] == ["cpu-model"]


BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = {"scipy", "matplotlib", "snakemake", "pyarrow", "jsonschema", "rich", "llama_cpp", "pygments"}
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked for this test")
    sys.meta_path.insert(0, Block())
    from alems.cli import main
    rc1 = main(["doctor", "--json", "--powercap-root", sys.argv[1]])
    rc2 = main(["measure", "--json", "--powercap-root", sys.argv[1], "--", "true"])
    bad = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("LOADED", bad, rc1, rc2, file=sys.stderr)
    sys.exit(1 if bad or rc1 or rc2 else 0)
""")


def test_doctor_and_measure_need_only_the_core_dependencies(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=SRC),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "LOADED [] 0 0" in r.stderr
