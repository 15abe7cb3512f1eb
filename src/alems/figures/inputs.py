"""What the figures are drawn from: the finished tables, the idle baseline and one run's
samples and events (:class:`FigureInputs`), and where their energy came from."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alems.energy.base import summable_keys
from alems.energy.sampler import read_samples
from alems.energy.stepwise import stepwise_keys


def _is_modeled(label: Any) -> bool:
    return str(label) in ("modeled", "mixed")


def _any_modeled(values: Any) -> bool:
    return any(_is_modeled(v) for v in pd.Series(values).dropna().astype(str))


def _read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A table of the data contracts, empty cells read as missing (and nothing else)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


@dataclass
class FigureInputs:
    goals: pd.DataFrame
    epg: pd.DataFrame
    ooi: pd.DataFrame
    baseline: Mapping[str, Any]
    samples: pd.DataFrame | None = None
    sample_keys: list[str] = field(default_factory=list)
    sample_sources: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    timeline_family: str = ""
    sample_stepwise: list[str] = field(default_factory=list)
    decomposition: pd.DataFrame | None = None  # ooi_decomposition.csv (figure 7; None: not given)
    roles: pd.DataFrame | None = None  # roles.csv (figure 8)

    @classmethod
    def load(
        cls,
        *,
        goals: str | os.PathLike[str],
        epg: str | os.PathLike[str],
        ooi: str | os.PathLike[str],
        baseline: str | os.PathLike[str],
        samples: str | os.PathLike[str] | None = None,
        events: str | os.PathLike[str] | None = None,
        timeline_family: str = "",
        decomposition: str | os.PathLike[str] | None = None,
        roles: str | os.PathLike[str] | None = None,
    ) -> FigureInputs:
        g = _read_table(goals)
        e = _read_table(epg)
        o = _read_table(ooi)
        base = json.loads(Path(baseline).read_text())
        sdf: pd.DataFrame | None = None
        keys: list[str] = []
        sources: dict[str, str] = {}
        steps: list[str] = []
        if samples is not None:
            sdf, keys, sources, steps = load_samples(samples)
        evs: list[dict[str, Any]] = []
        if events is not None:
            with open(events, encoding="utf-8") as fh:
                evs = [json.loads(line) for line in fh if line.strip()]
        dec = _read_table(decomposition) if decomposition is not None else None
        rol = _read_table(roles) if roles is not None else None
        return cls(g, e, o, base, sdf, keys, sources, evs, timeline_family, steps, dec, rol)

    @property
    def run_id(self) -> str:
        ids = sorted({str(x) for x in self.goals.get("run_id", pd.Series(dtype=str)).dropna() if str(x)})
        if not ids:
            return "unknown"
        return ids[0] if len(ids) == 1 else "mixed: " + ", ".join(ids)

    def table_modeled(self) -> bool:
        return _any_modeled(self.goals.get("energy_source", [])) or _any_modeled(
            self.epg.get("energy_source", [])
        )

    def domain_sources(self) -> dict[str, str]:
        """Source per domain: the samples' domains where loaded, else the idle baseline's."""
        if self.sample_sources:
            return dict(self.sample_sources)
        return {str(k): str(v) for k, v in (self.baseline.get("source") or {}).items()}

    def provenance(self) -> str:
        """The tables' energy label: ``measured``, ``modeled`` or ``mixed: <domain> <source>, ...``."""
        labels = {
            str(v)
            for df in (self.goals, self.epg)
            for v in df.get("energy_source", pd.Series(dtype=str))
            if str(v) in ("measured", "modeled", "mixed")
        }
        doms = self.domain_sources()
        if not labels:
            labels = set(doms.values())
        if labels == {"measured"}:
            return "measured"
        if labels == {"modeled"}:
            return "modeled"
        return source_label(doms) if len(set(doms.values())) > 1 else "mixed"

    def layer(self) -> str | None:
        """The energy layer of epg.csv (``None`` for tables written before the column existed)."""
        col = self.epg.get("energy_layer")
        vals = sorted({str(v) for v in col.dropna()}) if col is not None else []
        return ", ".join(vals) if vals else None


def source_label(sources: Mapping[str, str]) -> str:
    """``measured`` / ``modeled`` when all domains agree, else ``mixed: gpu-0 measured, cpu-model modeled``."""
    kinds = set(sources.values())
    if kinds <= {"measured"}:
        return "measured"
    if kinds == {"modeled"}:
        return "modeled"
    parts = [f"{k} {v}" for k, v in sorted(sources.items(), key=lambda kv: (kv[1] != "measured", kv[0]))]
    return "mixed: " + ", ".join(parts)


def load_samples(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, list[str], dict[str, str], list[str]]:
    """Samples, the summable domain keys, their sources and the stepwise ones (from the parquet metadata)."""
    df, domains = read_samples(os.fspath(path))
    keys = [k for k in summable_keys(domains) if k in df.columns]
    sources: dict[str, str] = {d.key: d.source for d in domains if d.key in keys}
    return df, keys, sources, [k for k in stepwise_keys(domains) if k in keys]
