"""Meters built from other meters: several meters behind one :class:`Meter`, or a subset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alems.energy.base import Domain, Meter
from alems.energy.model import CpuModelMeter, ModelParams
from alems.energy.nvml import NvmlMeter
from alems.energy.rapl import RaplMeter


class CompositeMeter(Meter):
    """Several meters read as one: the union of their domains (keys must not clash).

    ``notes`` carries free text about how the meter was assembled (``auto`` puts its
    selection line there); ``warnings()`` adds the parts' warnings.
    """

    def __init__(
        self,
        meters: Sequence[Meter],
        *,
        name: str = "composite",
        notes: Sequence[str] = (),
        warnings: Sequence[str] = (),
    ) -> None:
        self.meters = list(meters)
        self.name = name
        self.notes = list(notes)
        self._warnings = list(warnings)
        keys: list[str] = []
        for m in self.meters:
            for d in m.domains():
                if d.key in keys:
                    raise ValueError(f"domain {d.key} is reported by two meters")
                keys.append(d.key)

    def domains(self) -> list[Domain]:
        return [d for m in self.meters for d in m.domains()]

    def spec(self) -> dict[str, object] | None:
        parts = [m.spec() for m in self.meters]
        if any(p is None for p in parts):
            return None
        return {"kind": "composite", "name": self.name, "parts": parts}

    def read_raw(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in self.meters:
            out.update(m.read_raw())
        return out

    def warnings(self) -> list[str]:
        return self._warnings + [w for m in self.meters for w in m.warnings()]

    def device_processes(self) -> dict[str, set[int]] | None:
        found = [p for p in (m.device_processes() for m in self.meters) if p is not None]
        return {k: v for p in found for k, v in p.items()} if found else None

    def close(self) -> None:
        for m in self.meters:
            m.close()


class FilteredMeter(Meter):
    """Only some of another meter's domains (``auto`` uses it to leave dead ones out)."""

    def __init__(self, meter: Meter, keys: Iterable[str]) -> None:
        self.inner = meter
        wanted = set(keys)
        self._domains = [d for d in meter.domains() if d.key in wanted]
        self._keys = [d.key for d in self._domains]
        self.name = meter.name

    def domains(self) -> list[Domain]:
        return list(self._domains)

    def spec(self) -> dict[str, object] | None:
        inner = self.inner.spec()
        return None if inner is None else {"kind": "filtered", "inner": inner, "keys": list(self._keys)}

    def read_raw(self) -> dict[str, float]:
        raw = self.inner.read_raw()
        return {k: raw[k] for k in self._keys}

    def warnings(self) -> list[str]:
        return self.inner.warnings()

    def device_processes(self) -> dict[str, set[int]] | None:
        procs = self.inner.device_processes()
        return None if procs is None else {k: v for k, v in procs.items() if k in self._keys}

    def close(self) -> None:
        self.inner.close()


def meter_from_spec(spec: Mapping[str, Any]) -> Meter:
    """Open the meter a :meth:`Meter.spec` describes (in another process)."""
    kind = spec["kind"]
    if kind == "rapl":
        return RaplMeter(spec["root"], keys=spec["keys"])
    if kind == "nvml":
        return NvmlMeter(visible_devices=spec["visible"])
    if kind == "model":
        t0, busy0 = spec["origin"]
        return CpuModelMeter(ModelParams(**spec["params"]), origin=(t0, busy0))
    if kind == "composite":
        return CompositeMeter([meter_from_spec(p) for p in spec["parts"]], name=spec.get("name", "composite"))
    if kind == "filtered":
        return FilteredMeter(meter_from_spec(spec["inner"]), spec["keys"])
    raise ValueError(f"unknown meter spec kind {kind!r}")
