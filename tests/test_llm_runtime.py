"""The LLM runtime's preflight (alems.llm.runtime): a native crash, a hang or a server that is
down becomes a diagnosis that names the cause and the fix; the Makefile never builds native.

The crashing runtime is a stand-in ``llama_cpp`` package (tests/fakes/crashing_llama) put
first on the PYTHONPATH of the probe's child process: it kills itself with SIGSEGV or SIGILL
where a wrong-CPU build would, and this test process never imports it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from alems.errors import LLMRuntimeError
from alems.jobs.preflight import preflight_study
from alems.llm.config import LLMConfig
from alems.llm.runtime import (
    REBUILD_CMD,
    crash_diagnosis,
    missing_features,
    preflight,
    probe,
    write_build_record,
)

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fakes" / "crashing_llama"
SMOL = ROOT / "resources" / "models" / "smollm2-135m.gguf"


def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "wrong-cpu.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    return path


def crash_env(mode: str = "segv") -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["ALEMS_FAKE_LLAMA"] = mode
    return env


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("mode", "sig"), [("segv", "SIGSEGV"), ("ill", "SIGILL")])
def test_a_native_crash_is_a_diagnosis_not_an_exit_status(tmp_path: Path, mode: str, sig: str) -> None:
    cfg = LLMConfig(model_path=str(fake_gguf(tmp_path)), threads=1)
    result = probe(cfg, env=crash_env(mode), timeout_s=60)
    assert (result.status, result.signal) == ("crashed", sig)
    assert sig in result.summary and "-11" not in result.summary and "-4" not in result.summary
    assert "make llama" in (result.fix or "")
    with pytest.raises(LLMRuntimeError) as ei:
        result.raise_for_status()
    assert sig in str(ei.value) and "Fix:" in str(ei.value)


def test_a_hang_is_bounded_and_diagnosed(tmp_path: Path) -> None:
    cfg = LLMConfig(model_path=str(fake_gguf(tmp_path)), threads=1)
    result = probe(cfg, env=crash_env("hang"), timeout_s=3)
    assert result.status == "hung" and "within 3 s" in result.summary
    assert 3 <= (result.seconds or 0) < 30


def test_the_diagnosis_names_the_build_flags_and_the_portable_rebuild() -> None:
    build = {"version": "0.3.36", "cpu_level": "x86-64-v3", "CMAKE_ARGS": "-DGGML_NATIVE=OFF -DGGML_AVX2=ON"}
    text = crash_diagnosis(11, build)
    assert "SIGSEGV" in text and "CMAKE_ARGS=-DGGML_NATIVE=OFF -DGGML_AVX2=ON" in text
    assert REBUILD_CMD in text or "x86-64-v2" in text  # the latter on a host without AVX2
    # a pip-installed build with no record is called out as probably native
    assert "GGML_NATIVE" in crash_diagnosis(4, {}) and "SIGILL" in crash_diagnosis(4, {})


def test_a_host_missing_the_levels_features_is_told_to_build_for_older_cpus() -> None:
    assert missing_features("x86-64-v3", ["sse4_2", "avx"]) == ["avx2", "fma", "f16c", "bmi2"]
    assert missing_features("x86-64-v3", ["sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"]) == []
    assert missing_features("generic", []) == []


def test_a_missing_model_is_an_error_with_the_fetch_command(tmp_path: Path) -> None:
    result = probe(LLMConfig(model="smollm2-135m", models_dir=str(tmp_path)))
    assert result.status in ("error", "missing")
    if result.status == "error":
        assert "alems models fetch smollm2-135m" in (result.fix or "")


def test_an_unreachable_server_stops_the_study_naming_the_url_and_what_was_tried(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    cfg = LLMConfig(backend="openai", base_url=url, model="m", connect_timeout_s=2, timeout_s=5)
    with pytest.raises(LLMRuntimeError) as ei:
        preflight(cfg)
    text = str(ei.value)
    assert url in text and f"GET {url}/models" in text and f"POST {url}/chat/completions" in text
    assert "llm.base_url" in text
    with pytest.raises(LLMRuntimeError, match="cannot serve the study"):
        preflight_study(LLMConfig(backend="openai", base_url=url, model="m", connect_timeout_s=2))


def test_the_oracle_backend_has_nothing_to_probe() -> None:
    assert preflight_study(LLMConfig(backend="scripted"))["status"] == "skipped"
    rec = preflight_study(LLMConfig(backend="scripted", script=("OK",)))
    assert rec["status"] == "ok" and rec["tokens_out"] == 1


def test_a_scripted_backend_is_probed_in_a_child(tmp_path: Path) -> None:
    result = probe(LLMConfig(backend="scripted", script=("OK then",)))
    assert result.ok and result.tokens_out == 2 and result.text == "OK then"


def test_doctor_reports_the_crash_beside_the_meters(tmp_path: Path) -> None:
    model = fake_gguf(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "alems", "doctor", "--json", "--no-calibrate", "--model", str(model)],
        capture_output=True,
        text=True,
        timeout=120,
        env=crash_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["llm"]["status"] == "crashed" and report["llm"]["signal"] == "SIGSEGV"
    assert "make llama" in report["llm"]["fix"] and "findings" in report
    text = subprocess.run(
        [sys.executable, "-m", "alems", "doctor", "--no-calibrate", "--model", str(model)],
        capture_output=True,
        text=True,
        timeout=120,
        env=crash_env(),
        cwd=tmp_path,
    ).stdout
    assert "[crashed   ] llm" in text and "SIGSEGV" in text and "fix: " in text


@pytest.mark.slow
def test_the_real_build_generates_and_records_its_flags(tmp_path: Path) -> None:
    if not SMOL.is_file():
        pytest.skip(f"{SMOL} is absent: run `alems models fetch smollm2-135m` (make test does)")
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: run `make llama`")
    result = probe(LLMConfig(model="smollm2-135m", models_dir=str(SMOL.parent), n_ctx=256), threads=1)
    assert result.ok, result.render()
    assert result.tokens_out and 1 <= result.tokens_out <= 4
    rec = write_build_record(
        tmp_path / "b.json",
        version="0.3.36",
        cpu_level="x86-64-v3",
        cmake_args="-DGGML_NATIVE=OFF",
        flags_hash="abc",
        wheel_dir="/w",
    )
    assert rec["system_info"] and "CPU" in rec["system_info"] and rec["load_failure"] is None
    assert rec["native"] is False and json.loads((tmp_path / "b.json").read_text())["flags_hash"] == "abc"


# --------------------------------------------------------------------------- the Makefile
def make_flags(*assignments: str) -> str:
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "llama-flags", *assignments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.strip()


def make_dry_llama(*assignments: str) -> str:
    # WHEELS points at an empty directory, so the dry run shows the whole build
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "-W", "pyproject.toml", "llama", *assignments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="instruction-set levels are x86-64 flags")
def test_the_default_llama_build_is_portable_never_native() -> None:
    flags = make_flags().split()
    assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_NATIVE=ON" not in flags
    assert "-DGGML_AVX2=ON" in flags and "-DGGML_FMA=ON" in flags
    on = {f for f in flags if f.endswith("=ON")}
    assert not {f for f in on if "AVX512" in f or "AMX" in f}, on
    # every level stays non-native, and none turns AMX on
    for level in ("x86-64-v2", "x86-64-v4"):
        other = make_flags(f"LLAMA_CPU={level}").split()
        assert "-DGGML_NATIVE=OFF" in other and not [f for f in other if "AMX" in f and f.endswith("=ON")]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="instruction-set levels are x86-64 flags")
def test_the_wheel_cache_is_keyed_by_flags_and_bypasses_pips_cache(tmp_path: Path) -> None:
    v3 = make_dry_llama(f"WHEELS={tmp_path}")
    v4 = make_dry_llama(f"WHEELS={tmp_path}", "LLAMA_CPU=x86-64-v4")

    def wheel_dir(text: str) -> str:
        return next(
            w
            for w in text.split()
            if w.startswith(f"{tmp_path}/llama_cpp_python-0.3.36-") and w.endswith(".tmp")
        )

    assert wheel_dir(v3) != wheel_dir(v4)
    assert "--no-cache-dir" in v3 and "PIP_NO_CACHE_DIR=1" in v3
    assert "alems.llm.runtime record" in v3
    assert make_flags() != make_flags("LLAMA_CPU=x86-64-v4")
