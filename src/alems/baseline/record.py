"""The baseline record: :class:`Baseline`, its windows and per-domain statistics, and its
(de)serialisation to the baseline file's JSON (schema ``alems.baseline/3``, version 2 still read).

The record's ``baseline_id`` is the short hash of its content, so an edited or corrupted
file is caught when read back.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alems.baseline.config import BaselineConfig
from alems.provenance import short_hash

SCHEMA = "alems.baseline/3"  # 3: host; 2: host_util, max_host_util
#: Still read (``host`` is then ``None``, so such a cache is never reused on a named host).
SCHEMA_V2 = "alems.baseline/2"


def this_host() -> str:
    """The name of this machine, as the baselines and runs record it."""
    return socket.gethostname()


@dataclass(frozen=True)
class BaselineWindow:
    """One measurement window: its monotonic bounds and the mean power per domain inside it."""

    index: int
    t0: float
    t1: float
    power_w: dict[str, float]

    @classmethod
    def from_dict(cls, w: Mapping[str, Any]) -> BaselineWindow:
        return cls(
            int(w["index"]),
            float(w["t0"]),
            float(w["t1"]),
            {k: float(p) for k, p in w["power_w"].items()},
        )


@dataclass(frozen=True)
class DomainStats:
    key: str
    kind: str
    source: str
    mean_w: float
    std_w: float
    cv: float
    judged: bool
    stable: bool

    @classmethod
    def from_dict(cls, v: Mapping[str, Any]) -> DomainStats:
        return cls(
            key=str(v["key"]),
            kind=str(v["kind"]),
            source=str(v["source"]),
            mean_w=float(v["mean_w"]),
            std_w=float(v["std_w"]),
            cv=float(v["cv"]),
            judged=bool(v["judged"]),
            stable=bool(v["stable"]),
        )


@dataclass
class Baseline:
    """An idle baseline. ``power_w`` (mean idle watts per domain) is what accounting subtracts.

    ``status`` is ``"stable"`` or ``"unstable"``; every downstream table must show an
    unstable one. ``source`` maps each domain to ``measured`` or ``modeled``.
    ``windows`` holds the accepted attempt's per-window powers (the distribution figure);
    ``attempts`` the CV and host load of every attempt made. ``host_util`` is the share
    of all CPU time that was busy during the accepted attempt's windows (``None`` where
    it was not measured: fake time, or no ``/proc/stat``). ``host`` is the name of the
    machine it was measured on (``None`` in a schema-2 file, which predates it).
    """

    status: str
    meter: str
    stats: dict[str, DomainStats]
    windows: list[BaselineWindow]
    attempts: list[dict[str, Any]]
    governor: Any
    turbo: bool | None
    hw_hash: str | None
    created_unix: float
    config: BaselineConfig
    domains: list[dict[str, Any]] = field(default_factory=list)
    host_util: float | None = None
    baseline_id: str = ""
    host: str | None = None
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if not self.baseline_id:
            self.baseline_id = short_hash(self._content())

    @property
    def power_w(self) -> dict[str, float]:
        return {k: s.mean_w for k, s in self.stats.items()}

    @property
    def std_w(self) -> dict[str, float]:
        return {k: s.std_w for k, s in self.stats.items()}

    @property
    def cv(self) -> dict[str, float]:
        return {k: s.cv for k, s in self.stats.items()}

    @property
    def source(self) -> dict[str, str]:
        return {k: s.source for k, s in self.stats.items()}

    @property
    def modeled(self) -> bool:
        return any(s.source == "modeled" for s in self.stats.values())

    @property
    def stable(self) -> bool:
        return self.status == "stable"

    @property
    def busy(self) -> bool:
        """The host was busier than ``max_host_util`` during the accepted windows."""
        return self.host_util is not None and self.host_util > self.config.max_host_util

    @property
    def unstable_reasons(self) -> list[str]:
        """Why the baseline is unstable, in words (empty when it is stable)."""
        if self.stable:
            return []
        reasons = []
        high = [k for k, st in self.stats.items() if st.judged and not st.stable]
        if high:
            reasons.append(f"CV above {self.config.cv_threshold:g} on {', '.join(high)}")
        if self.busy:
            assert self.host_util is not None
            reasons.append(
                f"the host was {self.host_util:.1%} busy (max_host_util {self.config.max_host_util:.0%})"
            )
        return reasons or ["marked unstable"]

    def _content(self) -> dict[str, Any]:
        host = {} if self.schema == SCHEMA_V2 else {"host": self.host}
        return {
            "schema": self.schema,
            **host,
            "status": self.status,
            "meter": self.meter,
            "modeled": self.modeled,
            "governor": self.governor,
            "turbo": self.turbo,
            "hw_hash": self.hw_hash,
            "created_unix": self.created_unix,
            "config": self.config.to_dict(),
            "domains": self.domains,
            "host_util": self.host_util,
            "stats": {k: dataclasses.asdict(s) for k, s in self.stats.items()},
            "power_w": self.power_w,
            "source": self.source,
            "windows": [dataclasses.asdict(w) for w in self.windows],
            "attempts": self.attempts,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_id": self.baseline_id, **self._content()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        schema = data.get("schema")
        if schema not in (SCHEMA, SCHEMA_V2):
            raise ValueError(f"schema is {schema!r}, expected {SCHEMA!r}")
        stats = {k: DomainStats.from_dict(v) for k, v in data["stats"].items()}
        windows = [BaselineWindow.from_dict(w) for w in data["windows"]]
        base = cls(
            status=str(data["status"]),
            meter=str(data["meter"]),
            stats=stats,
            windows=windows,
            attempts=list(data["attempts"]),
            governor=data["governor"],
            turbo=data["turbo"],
            hw_hash=data["hw_hash"],
            created_unix=float(data["created_unix"]),
            config=BaselineConfig.from_dict(data["config"]),
            domains=list(data["domains"]),
            host_util=None if data.get("host_util") is None else float(data["host_util"]),
            baseline_id=str(data["baseline_id"]),
            host=None if data.get("host") is None else str(data["host"]),
            schema=str(schema),
        )
        if base.status not in ("stable", "unstable"):
            raise ValueError(f"status {base.status!r} is neither stable nor unstable")
        if short_hash(base._content()) != base.baseline_id:
            raise ValueError(f"content does not match baseline_id {base.baseline_id} (edited or corrupted)")
        return base
