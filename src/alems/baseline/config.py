"""The settings of the idle-baseline protocol (the workflow's ``baseline:`` config section).

Defaults come from the workflow schema (:func:`alems.sections.schema_default`); unknown
keys and ill-typed values are checked by :func:`alems.sections.settings_from_dict`; the
ranges are checked here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alems.errors import ConfigError
from alems.sections import schema_default, settings_from_dict


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the idle-baseline protocol (the workflow's ``baseline:`` config section).

    ``poll_s``: how often counters are read inside a window so a wrapping counter is
    never missed (``None``: derived from each domain's wrap range and peak power).
    ``stability_domains``: the domain keys whose CV decides the verdict (``None``: the
    summable ones, i.e. packages, DRAM or psys, GPUs and the CPU model; core and uncore
    sub-zones are reported but not judged).
    ``max_host_util``: the largest share of all CPU time (0-1, from ``/proc/stat``) that
    may be busy during the windows of an idle baseline.
    """

    settle_s: float = schema_default("baseline", "settle_s")
    windows: int = schema_default("baseline", "windows")
    window_s: float = schema_default("baseline", "window_s")
    cv_threshold: float = schema_default("baseline", "cv_threshold")
    max_retries: int = schema_default("baseline", "max_retries")
    max_age_s: float = schema_default("baseline", "max_age_s")
    poll_s: float | None = schema_default("baseline", "poll_s")
    stability_domains: tuple[str, ...] | None = schema_default("baseline", "stability_domains")
    max_host_util: float = schema_default("baseline", "max_host_util")

    def __post_init__(self) -> None:
        for key in (
            "settle_s",
            "window_s",
            "cv_threshold",
            "max_age_s",
            "poll_s",
            "max_host_util",
        ):  # one type
            value = getattr(self, key)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, key, float(value))
        if self.stability_domains is not None and not isinstance(self.stability_domains, tuple):
            object.__setattr__(self, "stability_domains", tuple(self.stability_domains))
        checks = [
            ("settle_s", self.settle_s >= 0, "a number of seconds >= 0"),
            ("windows", isinstance(self.windows, int) and self.windows >= 2, "an integer >= 2"),
            ("window_s", self.window_s > 0, "a number of seconds > 0"),
            ("cv_threshold", self.cv_threshold > 0, "a number > 0 (e.g. 0.10)"),
            ("max_retries", isinstance(self.max_retries, int) and self.max_retries >= 0, "an integer >= 0"),
            ("max_age_s", self.max_age_s >= 0, "a number of seconds >= 0"),
            ("poll_s", self.poll_s is None or self.poll_s > 0, "null or a number of seconds > 0"),
            ("max_host_util", 0 < self.max_host_util <= 1, "a share of CPU time in (0, 1], e.g. 0.10"),
        ]
        for key, ok, want in checks:
            if not ok:
                raise ConfigError(
                    f"baseline.{key} = {getattr(self, key)!r} is invalid", fix=f"set baseline.{key} to {want}"
                )

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> BaselineConfig:
        """Build from a config mapping; unknown keys and ill-typed values are a :class:`ConfigError`."""
        return settings_from_dict(cls, mapping, "baseline")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stability_domains"] = list(self.stability_domains) if self.stability_domains is not None else None
        return d

    def protocol(self) -> dict[str, Any]:
        """The settings that change what is measured (a cache made under others is not reused)."""
        d = self.to_dict()
        keys = ("settle_s", "windows", "window_s", "cv_threshold", "stability_domains", "max_host_util")
        return {k: d[k] for k in keys}
