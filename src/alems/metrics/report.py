"""The tables for readers: JSON-safe records (``alems metrics --json``), the text rendering
for the terminal, and the CLI's ``--group FAMILY=GROUP`` parsing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from alems.errors import ConfigError


def _json_value(v: Any) -> Any:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        x = float(v)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return v


def table_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: ``inf`` -> ``"inf"``, ``-inf`` -> ``"-inf"``, NaN -> ``None``."""
    cols = list(df.columns)
    return [{c: _json_value(v) for c, v in zip(cols, row, strict=True)} for row in df.itertuples(index=False)]


def tables_to_json(
    epg_df: pd.DataFrame, ooi_df: pd.DataFrame, decomposition_df: pd.DataFrame | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The ``alems metrics --json`` document: ``{"epg": [...], "ooi": [...]}``, plus
    ``"decomposition": [...]`` (the ooi_decomposition.csv rows) when given."""
    doc = {"epg": table_records(epg_df), "ooi": table_records(ooi_df)}
    if decomposition_df is not None:
        doc["decomposition"] = table_records(decomposition_df)
    return doc


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        x = float(v)
        if math.isnan(x):
            return "-"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.4g}"
    return str(v)


def format_tables(epg_df: pd.DataFrame, ooi_df: pd.DataFrame) -> str:
    """A readable text rendering of both tables (for the terminal)."""
    epg_cols = [
        "family",
        "mode",
        "executions",
        "successes",
        "success_rate",
        "epg_j",
        "epg_ci_low",
        "epg_ci_high",
        "epg_success_only_j",
        "energy_source",
        "flags",
    ]
    ooi_cols = [
        "scope",
        "ooi",
        "ci_low",
        "ci_high",
        "n_pairs",
        "n_missing_pairs",
        "method",
        "n_degenerate_resamples",
        "flags",
    ]
    if "estimand" in ooi_df.columns:
        ooi_cols[1:1] = ["estimand"]
        ooi_cols[-1:-1] = ["n_goals", "ci_low_adj", "ci_high_adj", "p_value_holm"]
    parts = []
    for title, df, cols in (("EpG (J per successful goal)", epg_df, epg_cols), ("OOI", ooi_df, ooi_cols)):
        shown = df[cols].map(_fmt) if len(df) else df[cols]
        parts.append(f"{title}\n{shown.to_string(index=False) if len(df) else '(no rows)'}")
    if len(epg_df):
        b, level = int(epg_df["B"].iloc[0]), float(epg_df["level"].iloc[0])
        parts.append(
            f"bootstrap: B={b}, level={level:g} (paired; goals resampled within each family; "
            "*_adj: Bonferroni over families, p_value_holm: Holm)"
        )
        if "energy_layer" in epg_df.columns:
            parts.append(
                f"energy layer: {epg_df['energy_layer'].iloc[0]} (alems metrics --layer total|dynamic|attributed)"
            )
    srcs = list(epg_df["energy_source"]) + list(ooi_df["energy_source"])
    if any(s in ("modeled", "mixed") for s in srcs):
        parts.append("note: these tables contain modeled energy (energy_source modeled/mixed)")
    return "\n\n".join(parts)


def parse_group_args(items: Sequence[str]) -> dict[str, str]:
    """``["fam=group", ...]`` (the CLI's ``--group``) -> mapping."""
    out: dict[str, str] = {}
    for item in items:
        fam, sep, grp = item.partition("=")
        if not sep or not fam or not grp:
            raise ConfigError(f"--group {item!r} is not FAMILY=GROUP", "write e.g. --group my_family=tool")
        out[fam.strip()] = grp.strip()
    return out
