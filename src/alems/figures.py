"""The six paper figures, drawn from finished tables only.

This module owns plotting. It computes no metric: EpG, OOI and their intervals come
from ``epg.csv`` and ``ooi.csv``; the phase breakdown sums ``goals.csv`` columns; the
power timeline differences one run's cumulative counters; the baseline figure reads
``idle.json``. Every figure is written as PNG and PDF (atomically) at a size that stays
readable in a two-column paper, with a small footer giving the ``run_id``, where the
energy came from (``measured``, ``modeled``, or e.g. ``mixed: gpu-0 measured, cpu-model
modeled``, from the run's domains) and, for figures drawn from epg/ooi, the energy layer
(``total``, ``dynamic`` or ``attributed``, the ``energy_layer`` column).

Zero and negative energies never vanish: an energy axis is logarithmic only when every
value is positive; bars at or below zero carry a marker; negative phase energies are
stacked below zero. The power timeline reconstructs stepwise counters (NVML) from their
update instants (:mod:`alems.energy.stepwise`), so it shows power, not the staircase.

1. ``fig1_epg``: EpG per family, linear vs agentic, with CIs (log axis when needed).
2. ``fig2_ooi_forest``: OOI per family, reasoning, tool and overall, with CIs and a line at 1.
3. ``fig3_phases``: LLM, tool and orchestration energy per execution, per mode and family.
4. ``fig4_power_timeline``: power over one goal pair, attempt and phase edges marked.
5. ``fig5_success_vs_energy``: success rate against energy per execution.
6. ``fig6_idle_baseline``: the idle-baseline window powers per domain.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alems.io import atomic_path

MODES = ("linear", "agentic")
COLORS = {"linear": "#4C72B0", "agentic": "#DD8452"}
PHASE_COLORS = {"llm_j": "#4C72B0", "tool_j": "#DD8452", "orchestration_j": "#8C8C8C", "gap_j": "#C9C9C9"}
PHASE_LABELS = {
    "llm_j": "LLM",
    "tool_j": "tool",
    "orchestration_j": "orchestration",
    "gap_j": "between attempts",
}
GROUP_SCOPES = ("reasoning", "tool", "overall")
FAMILY_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
WIDTH_IN = 7.0  # two-column figure width
FONT = 8
NAMES = (
    "fig1_epg",
    "fig2_ooi_forest",
    "fig3_phases",
    "fig4_power_timeline",
    "fig5_success_vs_energy",
    "fig6_idle_baseline",
)


def _is_modeled(label: Any) -> bool:
    return str(label) in ("modeled", "mixed")


def _any_modeled(values: Any) -> bool:
    return any(_is_modeled(v) for v in pd.Series(values).dropna().astype(str))


# --------------------------------------------------------------------------- inputs
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
    ) -> FigureInputs:
        read = {"keep_default_na": False, "na_values": [""]}
        g = pd.read_csv(goals, **read)
        e = pd.read_csv(epg, **read)
        o = pd.read_csv(ooi, **read)
        base = json.loads(Path(baseline).read_text())
        sdf, keys, sources, steps = None, [], {}, []
        if samples is not None:
            sdf, keys, sources, steps = _load_samples(samples)
        evs: list[dict[str, Any]] = []
        if events is not None:
            with open(events, encoding="utf-8") as fh:
                evs = [json.loads(line) for line in fh if line.strip()]
        return cls(g, e, o, base, sdf, keys, sources, evs, timeline_family, steps)

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


def _load_samples(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, list[str], dict[str, str], list[str]]:
    """Samples, the summable domain keys, their sources and the stepwise ones (from the parquet metadata)."""
    from alems.energy.base import summable_keys
    from alems.energy.sampler import read_samples
    from alems.energy.stepwise import stepwise_keys

    df, domains = read_samples(path)
    keys = [k for k in summable_keys(domains) if k in df.columns]
    sources = {d.key: d.source for d in domains if d.key in keys}
    return df, keys, sources, [k for k in stepwise_keys(domains) if k in keys]


# --------------------------------------------------------------------------- drawing helpers
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": FONT,
            "axes.titlesize": FONT + 1,
            "axes.labelsize": FONT,
            "legend.fontsize": FONT - 1,
            "xtick.labelsize": FONT - 1,
            "ytick.labelsize": FONT - 1,
            "pdf.fonttype": 42,
            "svg.hashsalt": "alems",
        }
    )
    return plt


def footer_text(run_id: str, modeled: bool | str, layer: str | None = None) -> str:
    """The footer: run_id, where the energy came from, and the energy layer where given.

    ``modeled`` is a bool (old form) or a label from :func:`source_label`, optionally
    followed by ``" | energy layer: ..."`` (:func:`_label`).
    """
    label = ("modeled" if modeled else "measured") if isinstance(modeled, bool) else str(modeled)
    label, _, rest = label.partition(" | ")
    if rest and not layer:
        layer = rest.removeprefix("energy layer: ")
    if label == "modeled":
        energy = "energy MODELED (CPU power model)"
    elif label.startswith("mixed"):
        energy = "energy " + label.replace("modeled", "MODELED (CPU power model)", 1)
    else:
        energy = "energy measured (hardware counters)"
    tail = f" | energy layer: {layer}" if layer else ""
    return f"A-LEMS run_id {run_id} | {energy}{tail}"


def _label(provenance: str, layer: str | None) -> str:
    """A footer label: the energy provenance and, where known, the energy layer."""
    return f"{provenance} | energy layer: {layer}" if layer else provenance


def _save(fig: Any, out_dir: Path, name: str, run_id: str, modeled: bool | str) -> list[Path]:
    import textwrap

    w_in, h_in = fig.get_size_inches()
    chars = max(40, int(w_in * 72 / (0.55 * (FONT - 2))))  # what fits across at the footer's size
    lines = textwrap.wrap(footer_text(run_id, modeled), chars, break_on_hyphens=False)
    if len(lines) > 1:  # lift the axes by the extra lines so the footer does not overlap them
        extra = (len(lines) - 1) * (FONT - 1) / 72 / h_in
        fig.subplots_adjust(bottom=min(0.6, fig.subplotpars.bottom + extra))
    fig.text(0.005, 0.004, "\n".join(lines), fontsize=FONT - 2, color="#555555", ha="left", va="bottom")
    out = []
    for ext in ("png", "pdf"):
        target = out_dir / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=200, metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(target)
    _plt().close(fig)
    return out


def _families(inp: FigureInputs) -> list[str]:
    fams = list(dict.fromkeys(inp.goals["family"].astype(str))) if "family" in inp.goals else []
    return fams


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _is_pos_inf(x: Any) -> bool:
    try:
        return float(x) == math.inf
    except (TypeError, ValueError):
        return False


def _needs_log(values: Sequence[float]) -> bool:
    """A log axis when positive values span more than 30x, and never when one is zero or negative
    (a log axis would drop it)."""
    finite = [float(x) for x in values if _finite(x)]
    if any(x <= 0 for x in finite):
        return False
    return len(finite) >= 2 and max(finite) / min(finite) > 30


def _mark_nonpositive(ax: Any, xs: Sequence[float], values: Sequence[float], color: str) -> None:
    """A marker on bars at or below zero, so they stay visible (on a linear axis a zero bar has no height)."""
    for x, v in zip(xs, values, strict=True):
        if _finite(v) and float(v) <= 0:
            ax.plot(
                x, float(v), marker="v" if float(v) < 0 else "o", color=color, mec="#AA0000", ms=5, zorder=4
            )
            ax.annotate(
                "<0" if float(v) < 0 else "0",
                (x, float(v)),
                xytext=(0, -9),
                textcoords="offset points",
                ha="center",
                fontsize=FONT - 2,
                color="#AA0000",
            )


def _epg_cells(inp: FigureInputs) -> pd.DataFrame:
    """The per-(family, mode) rows of epg.csv (group and overall rows left out)."""
    e = inp.epg
    fams = set(_families(inp))
    return e[e["family"].astype(str).isin(fams) & e["mode"].astype(str).isin(MODES)]


# --------------------------------------------------------------------------- figures
def fig_epg(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = _plt()
    cells = _epg_cells(inp)
    fams = _families(inp)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.3))
    width = 0.38
    x = np.arange(len(fams))
    finite_vals = [v for v in cells["epg_j"] if _finite(v)]
    finite_vals += [v for v in cells.get("epg_ci_high", []) if _finite(v)]
    top = max(finite_vals) if finite_vals else 1.0
    open_ci: list[tuple[float, float, float]] = []  # (x, value, low): intervals unbounded above
    no_ci: list[tuple[float, float]] = []  # (x, value): no interval (insufficient data)
    for j, mode in enumerate(MODES):
        sub = cells[cells["mode"] == mode].set_index("family")
        for i, fam in enumerate(fams):
            xi = x[i] + (j - 0.5) * width
            if fam not in sub.index:
                continue
            row = sub.loc[fam]
            v = float(row["epg_j"]) if _finite(row["epg_j"]) else math.inf
            if math.isfinite(v):
                lo, hi = row.get("epg_ci_low"), row.get("epg_ci_high")
                err = None
                if _finite(lo) and _finite(hi):
                    err = [[max(v - float(lo), 0.0)], [max(float(hi) - v, 0.0)]]
                elif _finite(lo) and _is_pos_inf(hi):
                    open_ci.append((xi, v, float(lo)))
                else:
                    no_ci.append((xi, v))
                ax.bar(
                    xi,
                    v,
                    width,
                    color=COLORS[mode],
                    yerr=err,
                    capsize=2,
                    ecolor="#333333",
                    label=mode if i == 0 else None,
                )
            else:
                ax.bar(xi, 0, width, color=COLORS[mode], label=mode if i == 0 else None)
                ax.text(
                    xi,
                    top * 0.02 if finite_vals and top > 0 else 0.02,
                    "no success",
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=FONT - 2,
                    color=COLORS[mode],
                )
    for j, mode in enumerate(MODES):
        sub = cells[cells["mode"] == mode].set_index("family")
        shown = [
            (x[i] + (j - 0.5) * width, sub.loc[f, "epg_j"]) for i, f in enumerate(fams) if f in sub.index
        ]
        _mark_nonpositive(ax, [a for a, _ in shown], [b for _, b in shown], COLORS[mode])
    if any(float(v) < 0 for v in finite_vals):
        ax.axhline(0.0, color="#333333", lw=0.6)
    if _needs_log(finite_vals):
        ax.set_yscale("log")
    elif not finite_vals:  # no cell has a success: nothing to scale
        ax.set_ylim(0.0, 1.0)
        ax.set_yticks([])
    if open_ci and finite_vals:  # whisker to the top edge, arrow-headed: the interval has no upper end
        y0, y1 = ax.get_ylim()
        y_top = y1 * 1.6 if ax.get_yscale() == "log" else y1 * 1.12
        ax.set_ylim(y0, y_top)
        for xi, _v, lo in open_ci:
            ax.plot([xi, xi], [max(lo, y0), y_top], color="#333333", lw=1.0, zorder=4)
            ax.plot(xi, y_top, marker="^", color="#333333", ms=4, clip_on=False, zorder=4)
    for xi, v in no_ci:  # a hollow dot on the bar: the estimate has no interval
        ax.plot(xi, v, marker="o", mfc="white", mec="#333333", ms=4, zorder=4)
    ax.set_xticks(x, [f.replace("_", "\n", 1) for f in fams])
    ax.set_ylabel("EpG (J per successful goal)")
    ax.set_title("Energy per successful goal, with bootstrap CIs (resampling goals)")
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    if open_ci:
        handles.append(Line2D([], [], color="#333333", lw=1.0, marker="^", ms=4))
        labels.append("CI unbounded above")
    if no_ci:
        handles.append(Line2D([], [], ls="none", marker="o", mfc="white", mec="#333333", ms=4))
        labels.append("no CI: too few goals or successes")
    if handles:
        ax.legend(
            handles, labels, frameon=False, ncols=len(handles), loc="upper center", bbox_to_anchor=(0.5, -0.2)
        )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, out_dir, "fig1_epg", inp.run_id, _label(inp.provenance(), inp.layer()))


ESTIMAND_WORDS = {
    "ratio_of_means": "ratio of mean family EpGs",
    "geomean_ooi": "geometric mean of family OOIs",
    "pooled_ratio": "pooled energy / pooled successes",
}


def forest_rows(ooi: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The rows figure 2 draws: the family rows and, per pooled scope, the headline estimand
    (the first row of the scope; :mod:`alems.metrics` lists the configured one first).
    A table without an ``estimand`` column (older contract) is drawn as it is."""
    if "estimand" not in ooi.columns:
        return ooi, None
    est = ooi["estimand"].astype(str)
    pooled = ooi[est != "family"].drop_duplicates("scope", keep="first")
    headline = str(pooled["estimand"].iloc[0]) if len(pooled) else None
    return pd.concat([ooi[est == "family"], pooled]), headline


def _as_float(x: Any) -> float:
    return float(x) if _finite(x) or str(x) in ("inf", "-inf") else float("nan")


def _undefined_reason(flags: str) -> str:
    """Why an OOI row has no value: a mode without success, or (pooled rows) no family to pool."""
    lin, agt = "zero_successes_linear" in flags, "zero_successes_agentic" in flags
    if lin or agt:
        return (
            "no success in either mode"
            if lin and agt
            else ("no linear success" if lin else "no agentic success")
        )
    if "excluded:" in flags:
        return "no family with a defined OOI to pool"
    return "no goal pairs" if "no_pairs" in flags else "no value"


def fig_ooi(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = _plt()
    o, headline = forest_rows(inp.ooi.copy())
    fams = [f for f in _families(inp) if f in set(o["scope"].astype(str))]
    groups = [g for g in GROUP_SCOPES if g in set(o["scope"].astype(str))]
    order = fams + groups
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 0.28 * len(order) + 1.5))
    by = o.set_index(o["scope"].astype(str))
    ys = list(range(len(order)))[::-1]
    finite_x: list[float] = []
    # (low, high, colour, y, line width): drawn once the axis is known, open ends arrow-headed
    segments: list[tuple[float, float, str, float, float]] = []
    n_adjusted, n_no_ci = 0, 0
    for y, scope in zip(ys, order, strict=True):
        row = by.loc[scope]
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        v = row["ooi"]
        bold = scope in GROUP_SCOPES
        color = "#222222" if bold else "#4C72B0"
        flags = str(row.get("flags") or "")
        if _finite(v) and float(v) > 0:
            finite_x.append(float(v))
            lo_f, hi_f = _as_float(row.get("ci_low")), _as_float(row.get("ci_high"))
            pairs = [(lo_f, hi_f, 2.4)]
            lo_a, hi_a = _as_float(row.get("ci_low_adj")), _as_float(row.get("ci_high_adj"))
            if not bold and not (math.isnan(lo_a) or math.isnan(hi_a)):
                pairs.append((lo_a, hi_a, 0.9))  # the simultaneous (Bonferroni) interval: thin
                n_adjusted += 1
            drawn = False
            for lo, hi, lw in pairs:
                if math.isnan(lo) or math.isnan(hi):
                    continue
                segments.append((lo, hi, color, y, lw))
                finite_x += [x for x in (lo, hi) if math.isfinite(x) and x > 0]
                drawn = True
            marker = "D" if bold else "o"
            if drawn:
                ax.plot(float(v), y, marker, color=color, ms=5 if bold else 4, zorder=3)
            else:  # an estimate without an interval: hollow, and the reason beside it
                n_no_ci += 1
                ax.plot(float(v), y, marker, mfc="white", mec=color, ms=5 if bold else 4, zorder=3)
                why = "insufficient data" if "insufficient_data" in flags else "no interval"
                ax.text(float(v), y + 0.3, why, ha="center", va="bottom", fontsize=FONT - 3, color="#555555")
        elif _finite(v):  # zero or negative (an energy layer below idle): no place on a log axis, so said
            ax.text(
                0.02,
                y,
                f"OOI {float(v):.3g} (not > 0: an EpG at or below 0)",
                va="center",
                fontsize=FONT - 2,
                color="#AA0000",
                transform=ax.get_yaxis_transform(),
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
            )
        else:
            ax.text(
                0.02,
                y,
                f"undefined ({_undefined_reason(flags)})",
                va="center",
                fontsize=FONT - 2,
                color="#AA0000",
                transform=ax.get_yaxis_transform(),
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
            )
    ax.axvline(1.0, color="#AA0000", ls="--", lw=0.8)
    if len(groups) and len(fams):
        ax.axhline(len(groups) - 0.5, color="#999999", lw=0.5)
    ax.set_yticks(ys, [f"{s}" if s not in GROUP_SCOPES else f"{s} (all)" for s in order])
    for lbl in ax.get_yticklabels():
        if lbl.get_text().endswith("(all)"):
            lbl.set_fontweight("bold")
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xscale("log")
    lo_x, hi_x = (min([*finite_x, 1.0]), max([*finite_x, 1.0])) if finite_x else (0.5, 2.0)
    x0, x1 = lo_x / 1.5, hi_x * 1.5
    ax.set_xlim(x0, x1)
    _ratio_ticks(ax, x0, x1)
    for lo_f, hi_f, color, y, lw in segments:  # an interval reaching 0 or inf runs off the axis, arrow-headed
        a = lo_f if lo_f > 0 and math.isfinite(lo_f) else x0
        b = hi_f if math.isfinite(hi_f) else x1
        ax.plot([a, b], [y, y], color=color, lw=lw, solid_capstyle="butt", alpha=0.55 if lw > 2 else 1.0)
        if a == x0:
            ax.plot(a, y, "<", color=color, ms=4)
        if b == x1:
            ax.plot(b, y, ">", color=color, ms=4)
    level = o["level"].dropna().iloc[0] if "level" in o and o["level"].notna().any() else 0.95
    notes = [f"thick: {float(level):.0%} CI"]
    if n_adjusted:
        notes.append(f"thin: simultaneous {float(level):.0%} CI over {n_adjusted} families (Bonferroni)")
    if n_no_ci:
        notes.append("hollow: no CI (goals < metrics.min_goals,\nor > 5 % of resamples without a success)")
    if headline:
        notes.append(f"(all) rows: {ESTIMAND_WORDS.get(headline, headline)}")
    ax.set_xlabel("OOI = EpG(agentic) / EpG(linear)\n" + "\n".join(notes), fontsize=FONT - 1)
    ax.set_title("Orchestration overhead index")
    ax.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, out_dir, "fig2_ooi_forest", inp.run_id, _label(inp.provenance(), inp.layer()))


def _ratio_ticks(ax: Any, lo: float, hi: float) -> None:
    """Plain-number ticks at powers of two on a log ratio axis (0.25, 0.5, 1, 2, 4, ...)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    k0, k1 = math.floor(math.log2(max(lo, 1e-12))), math.ceil(math.log2(max(hi, 1e-12)))
    step = max(1, (k1 - k0) // 8)
    ticks = [2.0**k for k in range(k0, k1 + 1, step) if lo <= 2.0**k <= hi] or [1.0]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def phase_means(goals: pd.DataFrame) -> pd.DataFrame:
    """Mean energy per execution in each phase, per (family, mode): sums over attempts / executions."""
    g = goals.copy()
    cols = [c for c in PHASE_COLORS if c in g.columns]
    for c in cols:
        g[c] = pd.to_numeric(g[c], errors="coerce").fillna(0.0)
    g["_exec"] = g["final_attempt"].astype(str).str.lower().isin(("true", "1"))
    agg = g.groupby(["family", "mode"], sort=False).agg({**{c: "sum" for c in cols}, "_exec": "sum"})
    n = agg.pop("_exec").clip(lower=1)
    return agg.div(n, axis=0).reset_index()


def fig_phases(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = _plt()
    means = phase_means(inp.goals)
    fams = _families(inp)
    phases = [c for c in ("llm_j", "tool_j", "orchestration_j", "gap_j") if c in means.columns]
    if "gap_j" in phases and not (means["gap_j"].abs() > 0).any():
        phases.remove("gap_j")
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.3))
    width = 0.38
    x = np.arange(len(fams))
    lows: list[float] = []
    highs: list[float] = []
    for j, mode in enumerate(MODES):
        sub = means[means["mode"] == mode].set_index("family")
        xs = x + (j - 0.5) * width
        bottom = np.zeros(len(fams))
        below = np.zeros(len(fams))  # negative phases (a residual can be) stack downwards from 0
        for ph in phases:
            vals = np.array([float(sub.loc[f, ph]) if f in sub.index else 0.0 for f in fams])
            pos = np.clip(vals, 0, None)
            neg = np.clip(vals, None, 0)
            ax.bar(
                xs,
                pos,
                width,
                bottom=bottom,
                color=PHASE_COLORS[ph],
                edgecolor="white",
                lw=0.3,
                hatch="//" if mode == "agentic" else None,
                label=PHASE_LABELS[ph] if j == 0 else None,
            )
            if (neg < 0).any():
                ax.bar(
                    xs,
                    neg,
                    width,
                    bottom=below,
                    color=PHASE_COLORS[ph],
                    edgecolor="#AA0000",
                    lw=0.6,
                    hatch="//" if mode == "agentic" else None,
                )
                below += neg
            bottom += pos
        lows.append(float(below.min(initial=0.0)))
        highs.append(float(bottom.max(initial=0.0)))
    if min(lows, default=0.0) < 0:  # both stacks in view, with a margin, and the zero line
        lo, hi = min(lows), max(highs, default=0.0)
        pad = 0.06 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
        ax.axhline(0.0, color="#333333", lw=0.6)
    ax.set_xticks(x, [f.replace("_", "\n", 1) for f in fams])
    ax.set_ylabel("energy per execution (J, attributed)")
    ax.set_title("Phase breakdown: left bar linear, right bar (hatched) agentic")
    ax.legend(frameon=False, ncols=len(phases), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, out_dir, "fig3_phases", inp.run_id, _label(inp.provenance(), "attributed (phases)"))


def binned_power(
    samples: pd.DataFrame, keys: Sequence[str], t0: float, t1: float, dt: float, stepwise: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Mean power in bins of ``dt`` over ``[t0, t1]`` from cumulative joule columns (interpolated at bin edges).

    ``stepwise`` columns (NVML energy, ~100 ms steps) are first reconstructed from their
    update instants (:func:`alems.energy.stepwise.reconstruct`); differenced raw, their
    staircase would show power as zero with spikes at every update.
    """
    from alems.energy.stepwise import reconstruct

    order = np.argsort(samples["t"].to_numpy(dtype=float), kind="stable")
    t = samples["t"].to_numpy(dtype=float)[order]
    cols = samples[list(keys)].to_numpy(dtype=float)[order] if keys else np.zeros((len(t), 0))
    for i, k in enumerate(keys):
        if k in set(stepwise):
            cols[:, i] = reconstruct(t, cols[:, i]).values
    e = cols.sum(axis=1) if keys else np.zeros_like(t)
    n = max(1, math.ceil((t1 - t0) / dt))
    edges = np.linspace(t0, t0 + n * dt, n + 1)
    edges = np.clip(edges, t[0], t[-1]) if len(t) else edges
    ce = np.interp(edges, t, e) if len(t) else np.zeros_like(edges)
    widths = np.diff(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(widths > 0, np.diff(ce) / widths, np.nan)
    return (edges[:-1] + edges[1:]) / 2, p


def fig_timeline(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.0))
    evs = inp.events
    starts = [e for e in evs if e.get("kind") == "goal_start"]
    modeled = source_label(inp.sample_sources) if inp.sample_sources else inp.provenance()
    if inp.samples is None or not starts or not len(inp.samples):
        ax.text(0.5, 0.5, "no samples or events for the timeline", ha="center", transform=ax.transAxes)
        return _save(fig, out_dir, "fig4_power_timeline", inp.run_id, modeled)
    goal_id = starts[0]["goal_id"]
    rep = starts[0].get("rep")
    mine = [e for e in evs if e.get("goal_id") == goal_id and e.get("rep") == rep]
    t_lo = min(float(e["t"]) for e in mine)
    t_hi = max(float(e["t"]) for e in mine)
    pad = 0.02 * (t_hi - t_lo) + 1e-3
    span = (t_hi - t_lo) + 2 * pad
    dt = max(span / 400.0, 0.02)
    mid, p = binned_power(inp.samples, inp.sample_keys, t_lo - pad, t_hi + pad, dt, inp.sample_stepwise)
    label = "power" + (
        f" ({', '.join(inp.sample_stepwise)} from counter updates)" if inp.sample_stepwise else ""
    )
    ax.plot(mid - t_lo, p, color="#222222", lw=0.8, drawstyle="steps-mid", label=label)
    opened: dict[tuple[Any, ...], float] = {}
    shaded = set()
    for e in sorted(mine, key=lambda r: float(r["t"])):
        kind, t = e.get("kind"), float(e["t"]) - t_lo
        key = (e.get("mode"), e.get("attempt"), e.get("name"), kind.split("_")[0])
        if kind in ("llm_start", "tool_start"):
            opened[key] = t
        elif kind in ("llm_end", "tool_end") and key in opened:
            ph = kind.split("_")[0]
            ax.axvspan(
                opened.pop(key),
                t,
                color=PHASE_COLORS[f"{ph}_j"],
                alpha=0.25,
                lw=0,
                label=f"{PHASE_LABELS[f'{ph}_j']} call" if ph not in shaded else None,
            )
            shaded.add(ph)
        elif kind == "attempt_start":
            ax.axvline(t, color=COLORS.get(e.get("mode"), "#000000"), lw=0.9)
        elif kind == "attempt_end":
            ax.axvline(t, color=COLORS.get(e.get("mode"), "#000000"), lw=0.9, ls="--")
        elif kind == "goal_start":
            ax.text(
                t,
                1.0,
                f" {e.get('mode')}",
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=FONT - 1,
                color=COLORS.get(e.get("mode"), "#000000"),
            )
    idle = sum(float((inp.baseline.get("power_w") or {}).get(k, float("nan"))) for k in inp.sample_keys)
    if math.isfinite(idle):
        ax.axhline(idle, color="#555555", ls=":", lw=0.9, label="idle baseline")
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="#555555", lw=0.9), Line2D([], [], color="#555555", lw=0.9, ls="--")]
    labels += ["attempt start", "attempt end"]
    ax.set_xlim(-pad, t_hi - t_lo + pad)
    top = np.nanmax(np.append(p[np.isfinite(p)], idle if math.isfinite(idle) else 0.0)) if len(p) else 1.0
    ax.set_ylim(min(0.0, float(np.nanmin(p)) if np.isfinite(p).any() else 0.0), max(float(top), 1e-3) * 1.15)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("time since the pair started (s)")
    ax.set_ylabel("power (W)")
    fam = inp.timeline_family or "?"
    ax.set_title(f"Power over one goal pair ({fam}, {goal_id}); line colour = mode")
    ax.legend(handles, labels, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=6)
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, out_dir, "fig4_power_timeline", inp.run_id, modeled)


def _dodge(x: pd.Series, y: pd.Series, step_pt: float = 7.0) -> list[float]:
    """Horizontal offsets (points) that spread markers which (nearly) coincide side by side.

    Points within 2 % in x (log scale) and 0.02 in y form a group; a group of k gets
    offsets (i - (k - 1) / 2) * step_pt. The data are unchanged; only the drawing moves.
    """
    xs = pd.to_numeric(x, errors="coerce").to_numpy(float)
    ys = pd.to_numeric(y, errors="coerce").to_numpy(float)
    with np.errstate(all="ignore"):
        kx = np.where(xs > 0, np.round(np.log10(np.where(xs > 0, xs, 1.0)) / 0.0086), np.nan)
    keys = [
        (a, round(b / 0.02)) if np.isfinite(a) and np.isfinite(b) else (i,)
        for i, (a, b) in enumerate(zip(kx, ys, strict=True))
    ]
    out = [0.0] * len(keys)
    for key in dict.fromkeys(keys):
        members = [i for i, k in enumerate(keys) if k == key]
        for j, i in enumerate(members):
            out[i] = (j - (len(members) - 1) / 2.0) * step_pt
    return out


def fig_success_energy(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = _plt()
    cells = _epg_cells(inp).copy()
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.85, 3.0))
    ex = pd.to_numeric(cells["executions"], errors="coerce").replace(0, np.nan)
    cells["per_exec"] = pd.to_numeric(cells["energy_total_j"], errors="coerce") / ex
    # One marker shape per family, colour per mode, and a legend instead of point labels:
    # cells that coincide (same success rate and energy) stay readable.
    from matplotlib.lines import Line2D

    fams = [f for f in _families(inp) if f in set(cells["family"].astype(str))]
    fams += sorted(set(cells["family"].astype(str)) - set(fams))
    marker = {f: FAMILY_MARKERS[i % len(FAMILY_MARKERS)] for i, f in enumerate(fams)}
    for _fam, sub in cells.groupby("family"):
        sub = sub.set_index("mode")
        if all(m in sub.index for m in MODES):
            ax.plot(
                [sub.loc[m, "per_exec"] for m in MODES],
                [sub.loc[m, "success_rate"] for m in MODES],
                color="#BBBBBB",
                lw=0.6,
                zorder=1,
            )
    from matplotlib.transforms import offset_copy

    for (_, r), dx in zip(cells.iterrows(), _dodge(cells["per_exec"], cells["success_rate"]), strict=True):
        ax.scatter(
            r["per_exec"],
            r["success_rate"],
            marker=marker[str(r["family"])],
            s=30,
            zorder=3,
            facecolors="none" if r["mode"] == "linear" else COLORS[str(r["mode"])],
            edgecolors=COLORS.get(str(r["mode"]), "#444444"),
            linewidths=1.1,
            alpha=0.9,
            clip_on=False,
            transform=offset_copy(ax.transData, fig=fig, x=dx, y=0.0, units="points"),
        )
    handles = [
        Line2D([], [], ls="none", marker="s", mfc="none", mec=COLORS["linear"], label="linear (hollow)"),
        Line2D([], [], ls="none", marker="s", color=COLORS["agentic"], label="agentic (filled)"),
    ]
    handles += [Line2D([], [], ls="none", marker=marker[f], mfc="none", mec="#444444", label=f) for f in fams]
    if _needs_log(cells["per_exec"].dropna()):
        ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("energy per execution (J, failed executions included)")
    ax.set_ylabel("success rate")
    ax.set_title("Success against energy (grey line joins a family's two modes)")
    ax.legend(
        handles=handles, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=FONT - 2
    )
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, out_dir, "fig5_success_vs_energy", inp.run_id, _label(inp.provenance(), inp.layer()))


def fig_baseline(inp: FigureInputs, out_dir: Path) -> list[Path]:
    plt = _plt()
    base = inp.baseline
    windows = base.get("windows") or []
    keys = list((base.get("power_w") or {}).keys())
    data = [[float(w["power_w"][k]) for w in windows if k in w.get("power_w", {})] for k in keys]
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.6, 2.6))
    if keys:
        pos = np.arange(len(keys))
        ax.boxplot(data, positions=pos, widths=0.5, showfliers=False)
        rng = np.random.default_rng(0)
        for i, vals in enumerate(data):
            ax.scatter(pos[i] + rng.uniform(-0.12, 0.12, len(vals)), vals, s=8, color="#4C72B0", zorder=3)
        src = base.get("source") or {}
        ax.set_xticks(pos, [f"{k}\n({src.get(k, '?')})" for k in keys])
    ax.set_ylabel("idle power per window (W)")
    cv = base.get("stats") or {}
    worst = max((float(s.get("cv", 0.0)) for s in cv.values() if s.get("judged", True)), default=float("nan"))
    util = base.get("host_util")
    busy = "" if util is None else f", host {float(util):.1%} busy"
    ax.set_title(
        f"Idle baseline: {base.get('status', '?')}\nmax CV {worst:.3f}, {len(windows)} windows{busy}"
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    src = {str(k): str(v) for k, v in (base.get("source") or {}).items()}
    label = source_label(src) if src else ("modeled" if base.get("modeled") else "measured")
    return _save(fig, out_dir, "fig6_idle_baseline", inp.run_id, label)


def make_all(inp: FigureInputs, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw all six figures into ``out_dir``; returns the files written (PNG and PDF each)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fn in (fig_epg, fig_ooi, fig_phases, fig_timeline, fig_success_energy, fig_baseline):
        written += fn(inp, out)
    return written
