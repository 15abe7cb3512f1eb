"""The shared settings builder: unknown keys and per-annotation type checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from alems.errors import ConfigError
from alems.sections import annotation_text, settings_from_dict


@dataclass(frozen=True)
class Demo:
    flag: bool = False
    count: int = 1
    rate: float = 0.5
    name: str = "x"
    limit: int | None = None
    path: str | None = None
    items: tuple[str, ...] = field(default_factory=tuple)
    table: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"demo.count must be >= 1, got {self.count}", fix="set demo.count to 1 or more")


def test_defaults_and_conversion() -> None:
    assert settings_from_dict(Demo, None, "demo") == Demo()
    assert settings_from_dict(Demo, {}, "demo") == Demo()
    cfg = settings_from_dict(
        Demo,
        {
            "flag": True,
            "count": 3,
            "rate": 2,
            "name": "y",
            "limit": 4,
            "path": None,
            "items": ["a", "b"],
            "table": {"k": 1},
            "extra": {"z": [1]},
        },
        "demo",
    )
    assert cfg == Demo(True, 3, 2.0, "y", 4, None, ("a", "b"), {"k": 1}, {"z": [1]})
    assert isinstance(cfg.rate, float) and isinstance(cfg.items, tuple) and isinstance(cfg.table, dict)
    assert settings_from_dict(Demo, {"items": ("c",), "extra": None, "limit": None}, "demo").items == ("c",)


def test_unknown_keys_are_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as e:
        settings_from_dict(Demo, {"cuont": 2, "bogus": 1, "count": 2}, "demo")
    assert e.value.message == "unknown demo config key(s): bogus, cuont"
    assert e.value.fix == "valid keys are: flag, count, rate, name, limit, path, items, table, extra"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("flag", "yes", "bool"),
        ("flag", 1, "bool"),
        ("count", "3", "int"),
        ("count", True, "int"),
        ("count", 2.0, "int"),
        ("rate", True, "float"),
        ("rate", "0.5", "float"),
        ("name", 3, "str"),
        ("name", None, "str"),
        ("limit", "4", "int | None"),
        ("limit", False, "int | None"),
        ("path", 1, "str | None"),
        ("items", "a", "tuple[str, ...]"),
        ("items", {"a": 1}, "tuple[str, ...]"),
        ("table", ["k"], "dict[str, int]"),
        ("table", None, "dict[str, int]"),
        ("extra", "x", "dict[str, Any] | None"),
    ],
)
def test_wrong_types_name_the_key_and_the_expected_type(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        settings_from_dict(Demo, {key: value}, "demo")
    assert e.value.message == f"demo.{key} has the wrong type: {value!r} (expected {expected})"
    assert e.value.fix == f"set demo.{key} to a {expected}"


def test_class_checks_still_run() -> None:
    with pytest.raises(ConfigError, match="demo.count must be >= 1, got 0"):
        settings_from_dict(Demo, {"count": 0}, "demo")


def test_annotations_without_postponed_evaluation() -> None:
    assert annotation_text(int) == "int"
    assert annotation_text(int | None) == "int | None"
    assert annotation_text(tuple[str, ...]) == "tuple[str, ...]"
    assert annotation_text("float") == "float"

    @dataclass
    class Live:
        n: int = 0
        x: float = 0.0

    Live.__dataclass_fields__["n"].type = int  # as without `from __future__ import annotations`
    Live.__dataclass_fields__["x"].type = float
    assert settings_from_dict(Live, {"n": 2, "x": 1}, "live") == Live(2, 1.0)
    with pytest.raises(ConfigError, match=r"live\.n has the wrong type: '2' \(expected int\)"):
        settings_from_dict(Live, {"n": "2"}, "live")


def test_agent_and_llm_configs_use_it() -> None:
    from alems.agents.config import AgentConfig
    from alems.llm.config import LLMConfig

    with pytest.raises(ConfigError, match=r"^agents\.seed has the wrong type: 1\.5 \(expected int\)\n"):
        AgentConfig.from_dict({"seed": 1.5})
    with pytest.raises(ConfigError, match=r"^llm\.model has the wrong type: 3 \(expected str\)\n"):
        LLMConfig.from_dict({"model": 3})
    assert LLMConfig.from_dict({"script": ["a", "b"]}).script == ("a", "b")
