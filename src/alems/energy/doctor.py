"""``alems doctor``: which meters work here, which do not, and the exact fix for each.

It probes RAPL (at the powercap root), NVML and the CPU model, runs the same short
calibration load ``auto`` runs to find dead counters, and reports what ``auto`` would
choose. Nothing here is cached: each call looks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from alems.energy.auto import DEFAULT_CALIBRATION_S, Probe, Selection, probe, select_auto
from alems.energy.base import Meter
from alems.energy.model import CpuModelMeter, ModelParams, as_model_params
from alems.energy.rapl import absent_fix
from alems.energy.wrap import safe_poll_interval_s, wrap_period_s
from alems.errors import MeterError

DEAD_FIX = (
    "nothing to repair: this counter is not implemented (common for psys in VMs and on some "
    "firmware). auto leaves it out; an explicit --meter rapl still reads it and flags it 'static'"
)


@dataclass
class Finding:
    meter: str  # rapl | nvml | model
    status: str  # ok | absent | permission | dead | error
    summary: str
    fix: str | None = None
    domains: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DoctorReport:
    powercap_root: str
    findings: list[Finding]
    auto: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "powercap_root": self.powercap_root,
            "findings": [asdict(f) for f in self.findings],
            "auto": self.auto,
        }

    def render(self) -> str:
        out = []
        for f in self.findings:
            out.append(f"[{f.status:10}] {f.meter:5} {f.summary}")
            if f.fix:
                out += [
                    "             fix: " + ln if i == 0 else "             " + ln
                    for i, ln in enumerate(f.fix.splitlines())
                ]
        out.append("")
        out.append(self.auto["line"])
        for w in self.auto.get("warnings", []):
            out.append("warning: " + w.splitlines()[0])
        return "\n".join(out)


def _err_fix(exc: MeterError | None) -> tuple[str, str | None]:
    return (exc.message, exc.fix) if exc is not None else ("unknown", None)


def _rapl_findings(p: Probe) -> list[Finding]:
    """RAPL: its live domains with their wrap details, one finding per dead counter, or why it is missing."""
    if p.rapl is None:
        msg, fix = _err_fix(p.rapl_error)
        if p.rapl_status == "absent":
            fix = absent_fix(p.powercap_root)
        return [Finding("rapl", p.rapl_status, msg, fix)]
    doms = p.rapl.domains()
    live = [d.key for d in doms if d.key not in p.dead]
    summary = f"RAPL at {p.powercap_root}: {', '.join(live) or 'no live domain'}"
    if not p.calibrated:
        summary += " (not calibrated)"
    details = {
        "domains": {
            d.key: {
                "zone": d.info.get("zone"),
                "file": d.location,
                "max_range_j": d.max_range_j,
                "max_power_w": d.max_power_w,
                "wrap_period_s": wrap_period_s(d),
            }
            for d in doms
        },
        "safe_poll_interval_s": safe_poll_interval_s(doms),
        "skipped_zones": p.rapl.discovery.skipped,
    }
    findings = [Finding("rapl", "ok" if live else "dead", summary, None if live else DEAD_FIX, live, details)]
    findings += [
        Finding("rapl", "dead", f"{d.key} ({d.location}) {p.dead[d.key]}", DEAD_FIX, [d.key])
        for d in doms
        if d.key in p.dead
    ]
    return findings


def _nvml_findings(p: Probe) -> list[Finding]:
    """NVML: its GPUs and how each is read, one finding per dead counter, or why it is missing."""
    if p.nvml is None:
        msg, fix = _err_fix(p.nvml_error)
        return [Finding("nvml", p.nvml_status, msg, fix)]
    doms = p.nvml.domains()
    live = [d.key for d in doms if d.key not in p.dead]
    desc = ", ".join(
        f"{d.key} {d.info.get('name')} ({d.info.get('method')}, limit {d.info.get('power_limit_w')} W)"
        for d in doms
    )
    details = {"gpus": {d.key: dict(d.info) for d in doms}, "warnings": p.nvml.warnings()}
    findings = [
        Finding(
            "nvml",
            "ok" if live else "dead",
            f"NVML driver {p.nvml.driver_version}: {desc}",
            None,
            live,
            details,
        )
    ]
    findings += [
        Finding(
            "nvml",
            "dead",
            f"{d.key} {p.dead[d.key]}",
            "check nvidia-smi -q -d POWER; reset or reboot the GPU",
            [d.key],
        )
        for d in doms
        if d.key in p.dead
    ]
    return findings


def _model_finding(
    meter: Meter, sel: Selection, model_params: ModelParams | Mapping[str, object] | None
) -> Finding:
    """The CPU model's parameters, from ``auto``'s model meter or (when ``auto`` needs none) a fresh one."""
    model_dom = next((d for d in meter.domains() if d.key == "cpu-model"), None)
    if model_dom is None:
        with CpuModelMeter(as_model_params(model_params)) as mm:
            model_dom = mm.domains()[0]
    info = model_dom.info
    return Finding(
        "model",
        "ok",
        f"cpu-model from {model_dom.location}: P_idle {info['p_idle_w']:.2f} W, "
        f"P_max {info['p_max_w']:.2f} W over {info['n_cpus']} CPUs "
        f"({'used by auto' if sel.modeled else 'not needed: a live CPU counter exists'})",
        None,
        ["cpu-model"],
        dict(info),
    )


def diagnose(
    powercap_root: str | None = None,
    *,
    calibrate: bool = True,
    calibration_s: float = DEFAULT_CALIBRATION_S,
    pynvml_module: ModuleType | None = None,
    model_params: ModelParams | Mapping[str, object] | None = None,
) -> DoctorReport:
    """Look at this machine's meters and say what to do about each missing one."""
    p = probe(powercap_root, calibrate=calibrate, calibration_s=calibration_s, pynvml_module=pynvml_module)
    try:
        findings = _rapl_findings(p) + _nvml_findings(p)
        meter, sel = select_auto(p, model_params)  # builds the model meter when needed
        try:
            findings.append(_model_finding(meter, sel, model_params))
        finally:
            meter.close()
    finally:
        p.close()
    auto = {
        "measured": sel.measured,
        "modeled": sel.modeled,
        "left_out": sel.left_out,
        "line": sel.line,
        "warnings": sel.warnings,
    }
    return DoctorReport(p.powercap_root, findings, auto)
