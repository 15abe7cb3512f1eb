"""The study config: schema validation, defaults, the shipped configs and their documentation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alems.agents.config import AgentConfig
from alems.config import (
    default_schema_path,
    load_config,
    load_schema,
    model_file,
    needs_fetch,
    validate_config,
)
from alems.contracts import default_group
from alems.errors import ConfigError
from alems.tasks import FAMILIES

REPO = Path(__file__).resolve().parents[1]


def _err(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as ei:
        validate_config(raw, known_families=FAMILIES)
    return str(ei.value)


def test_defaults_fill_every_section() -> None:
    cfg = validate_config({})
    fams = cfg["study"]["families"]  # the default study (the pilot's choice): reasoning, then tool families
    assert set(fams) <= set(FAMILIES) and [default_group(f) for f in fams] == ["reasoning"] * 4 + ["tool"] * 3
    assert cfg["study"]["modes"] == ["linear", "agentic"]
    assert cfg["llm"]["backend"] == "llamacpp" and cfg["llm"]["model"] == "qwen2.5-coder-0.5b"
    assert cfg["energy"]["meter"] == "auto"
    assert cfg["agents"]["max_tokens"]["plan"] == AgentConfig().max_tokens["plan"]
    assert cfg["accounting"] == {"attribution": "cpu_share", "min_coverage": 0.8}
    assert cfg["metrics"] == {
        "bootstrap": 10000,
        "level": 0.95,
        "seed": 0,
        "energy_layer": "total",
        "min_goals": 10,
        "pooled_estimand": "ratio_of_means",
    }
    assert cfg["allow_mixed_runs"] is False


def test_unknown_key_is_named_with_a_suggestion() -> None:
    msg = _err({"llm": {"temprature": 0.0}})
    assert "unknown config key 'llm.temprature'" in msg
    assert "did you mean 'llm.temperature'" in msg
    assert "Fix:" in msg and "config/README.md" in msg
    assert "unknown config key 'studdy'" in _err({"studdy": {}})


def test_ill_typed_key_is_named() -> None:
    msg = _err({"study": {"tasks": "five"}})
    assert "config key 'study.tasks' must be integer, got 'five'" in msg
    assert "config key 'energy.meter' must be one of 'auto', 'rapl', 'nvml', 'model'" in _err(
        {"energy": {"meter": "x"}}
    )
    assert "config key 'agents.verify' must be boolean" in _err({"agents": {"verify": 1}})
    assert "'study.reps' is invalid" in _err({"study": {"reps": 0}})
    # bool is not an integer
    assert "'study.tasks' must be integer" in _err({"study": {"tasks": True}})


def test_unknown_family_is_named() -> None:
    msg = _err({"study": {"families": ["gsm8k_basc"]}})
    assert "study.families[0]" in msg and "did you mean 'gsm8k_basic'" in msg


def test_user_family_and_its_defaults(tmp_path: Path) -> None:
    cfg = validate_config(
        {"user_families": {"mine": {"path": "x.jsonl"}}, "study": {"families": ["mine"]}},
        known_families=FAMILIES,
    )
    assert cfg["user_families"]["mine"] == {"path": "x.jsonl", "group": "reasoning", "tools": ["calculator"]}
    assert "reuses a built-in family name" in _err({"user_families": {"gsm8k_basic": {"path": "x"}}})


def test_timeline_family_must_be_studied() -> None:
    assert "figures.timeline_family" in _err(
        {"figures": {"timeline_family": "science_qa"}, "study": {"families": ["gsm8k_basic"]}}
    )


def test_openai_server_by_config_alone() -> None:
    cfg = validate_config(
        {
            "llm": {
                "backend": "openai",
                "base_url": "http://127.0.0.1:8080/v1",
                "model": "qwen",
                "api_key_env": "MY_KEY",
            }
        }
    )
    assert model_file(cfg) is None and not needs_fetch(cfg)


def test_user_gguf_skips_fetch() -> None:
    cfg = validate_config({"llm": {"model_path": "/data/my.gguf"}})
    assert model_file(cfg) == "/data/my.gguf" and not needs_fetch(cfg)
    cfg = validate_config({})
    assert model_file(cfg) == "resources/models/qwen2.5-coder-0.5b.gguf" and needs_fetch(cfg)


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    paths = [REPO / "config" / "config.yaml"] + ([REPO / "config" / name] if name != "config.yaml" else [])
    cfg = load_config(paths, known_families=FAMILIES)
    if name == "smoke.yaml":
        assert cfg["study"]["families"] == ["gsm8k_basic", "tg_single_calc"]
        assert cfg["study"]["tasks"] == 2 and cfg["study"]["reps"] == 1
        assert cfg["llm"]["model"] == "smollm2-135m"
    if name == "config.yaml":
        assert len(cfg["study"]["families"]) == 7 and cfg["energy"]["meter"] == "auto"
        assert cfg["llm"]["backend"] == "llamacpp" and cfg["llm"]["model"] == "qwen2.5-coder-0.5b"


def _key_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        out.append(path)
        out += _key_paths(sub, path)
    return out


def test_every_key_is_documented() -> None:
    text = (REPO / "config" / "README.md").read_text()
    missing = [p for p in _key_paths(load_schema()) if f"`{p}`" not in text]
    assert not missing, f"config/README.md does not document: {missing}"


def test_layer_dataclasses_accept_their_sections() -> None:
    """The schema mirrors each layer's settings dataclass: defaults build without error."""
    from alems.accounting import AccountingConfig
    from alems.agents.config import AgentConfig
    from alems.baseline import BaselineConfig
    from alems.energy import ModelParams
    from alems.llm.config import LLMConfig, llm_settings
    from alems.metrics import MetricsConfig

    cfg = validate_config({})
    LLMConfig.from_dict(llm_settings(cfg["llm"]))
    AgentConfig.from_dict(cfg["agents"])
    BaselineConfig.from_dict(cfg["baseline"])
    ModelParams.from_dict(cfg["energy"]["model"])
    AccountingConfig.from_dict(cfg["accounting"])
    MetricsConfig.from_dict(cfg["metrics"])
    # and every default equals the layer's own default
    assert AgentConfig.from_dict(cfg["agents"]) == AgentConfig()
    assert BaselineConfig.from_dict(cfg["baseline"]) == BaselineConfig()
    assert MetricsConfig.from_dict(cfg["metrics"]) == MetricsConfig()
    assert AccountingConfig.from_dict(cfg["accounting"]) == AccountingConfig()
    assert ModelParams.from_dict(cfg["energy"]["model"]) == ModelParams()
    llm = LLMConfig.from_dict(llm_settings(cfg["llm"]))
    assert llm == LLMConfig()


def test_schema_sections_mirror_the_layer_dataclasses() -> None:
    """Every field of each layer's settings dataclass is a config key, and no key is unknown to it."""
    import dataclasses

    from alems.accounting import AccountingConfig
    from alems.agents.config import AgentConfig
    from alems.baseline import BaselineConfig
    from alems.energy import ModelParams
    from alems.llm.config import LLMConfig
    from alems.metrics import MetricsConfig

    props = load_schema()["properties"]
    pairs = [
        ("llm", LLMConfig, {"oracle"}),
        ("agents", AgentConfig, set()),
        ("baseline", BaselineConfig, set()),
        ("accounting", AccountingConfig, set()),
        ("metrics", MetricsConfig, set()),
    ]
    for section, cls, extra in pairs:
        fields = {f.name for f in dataclasses.fields(cls)}
        keys = set(props[section]["properties"]) - extra
        assert keys == fields, (
            f"{section}: schema-only {sorted(keys - fields)}, dataclass-only {sorted(fields - keys)}"
        )
    model_keys = set(props["energy"]["properties"]["model"]["properties"])
    assert model_keys == {f.name for f in dataclasses.fields(ModelParams)}


def _dry_run(tmp_path: Path, cfg: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    cf = tmp_path / "c.yaml"
    cf.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(cf),
            "-n",
            "--cores",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dry_run_fails_naming_an_unknown_key(tmp_path: Path) -> None:
    res = _dry_run(tmp_path, {"llm": {"temprature": 0.1}})
    assert res.returncode != 0
    assert "unknown config key 'llm.temprature'" in res.stdout + res.stderr


def test_dry_run_fails_naming_an_ill_typed_key(tmp_path: Path) -> None:
    res = _dry_run(tmp_path, {"study": {"reps": "two"}})
    assert res.returncode != 0
    assert "config key 'study.reps' must be integer, got 'two'" in res.stdout + res.stderr


def test_schema_file_is_the_workflow_one() -> None:
    assert default_schema_path().is_file()
    assert (REPO / "workflow" / "schemas" / "config.schema.yaml").resolve() == default_schema_path()


def test_unknown_model_and_benchmark_fail_validation_with_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="'llm.model' names unknown 'nosuch-model'") as exc:
        validate_config({"llm": {"model": "nosuch-model"}}, known_families=FAMILIES)
    assert "qwen2.5-coder-0.5b" in str(exc.value) and "llm.model_path" in str(exc.value)
    # a user GGUF or a server model needs no catalog name
    validate_config({"llm": {"model": "nosuch-model", "model_path": "x.gguf"}}, known_families=FAMILIES)
    validate_config(
        {"llm": {"backend": "openai", "model": "any", "base_url": "http://h:1/v1"}}, known_families=FAMILIES
    )
    bad = {"user_families": {"obq": {"benchmark": "openbookq"}}, "study": {"families": ["obq"]}}
    with pytest.raises(ConfigError, match="did you mean 'openbookqa'") as exc:
        validate_config(bad, known_families=FAMILIES)
    assert "nq_open" in str(exc.value)
    ok = validate_config({"user_families": {"obq": {"benchmark": "openbookqa"}}}, known_families=FAMILIES)
    assert ok["user_families"]["obq"]["group"] == "reasoning"
