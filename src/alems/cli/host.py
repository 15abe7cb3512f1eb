"""``alems doctor``, ``measure``, ``fingerprint``, ``baseline`` and ``verify``: this machine's
meters, its idle power and the provenance of a run. ``alems doctor`` and ``alems measure`` must
work with only the core dependencies installed (``tests/test_energy_cli.py``), so this module
imports no scipy, rich or jsonschema, directly or through the layers it calls.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from alems import baseline, contracts, provenance
from alems.cli.common import Command, energy_logging, print_json
from alems.config import load_config, model_file
from alems.energy import open_meter
from alems.energy.doctor import diagnose
from alems.energy.measure import measure_command
from alems.errors import AlemsError
from alems.llm.config import LLMConfig, llm_settings
from alems.llm.fetch import looks_like_path, model_sha256
from alems.llm.runtime import probe, read_build_record


# --------------------------------------------------------------------------- doctor
def _add_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--powercap-root", default=None, help="powercap sysfs root (default /sys/class/powercap)")
    p.add_argument("--no-calibrate", action="store_true", help="skip the short load that finds dead counters")
    p.add_argument("--config", default=None, help="probe the LLM runtime of this config's llm: section")
    p.add_argument(
        "--model", default=None, help="probe this catalog model or GGUF path (default: the config's)"
    )
    p.add_argument(
        "--base-url", default=None, help="probe an OpenAI-compatible server instead (openai backend)"
    )
    p.add_argument("--no-llm", action="store_true", help="skip the LLM runtime probe")


def _doctor_llm_config(args: argparse.Namespace) -> LLMConfig:
    llm: dict[str, Any] = llm_settings(load_config(args.config)["llm"]) if args.config else {}
    if args.base_url:
        llm.update(backend="openai", base_url=args.base_url)
    if args.model:
        is_path = looks_like_path(args.model)
        llm.update({"model_path": args.model} if is_path else {"model": args.model, "model_path": None})
    return LLMConfig.from_dict(llm)


def _cmd_doctor(args: argparse.Namespace) -> int:
    report = diagnose(args.powercap_root, calibrate=not args.no_calibrate)
    llm = None if args.no_llm else probe(_doctor_llm_config(args))
    if args.json:
        out = report.to_dict()
        if llm is not None:
            out["llm"] = llm.to_dict()
        out["llama_build"] = read_build_record()
        print_json(out)
    else:
        print(report.render())
        if llm is not None:
            print()
            print(llm.render())
    return 0


# --------------------------------------------------------------------------- measure
def _add_measure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--meter", default="auto", choices=["auto", "rapl", "nvml", "model"])
    p.add_argument("--powercap-root", default=None, help="powercap sysfs root (default /sys/class/powercap)")
    p.add_argument("--interval-ms", type=float, default=10.0, help="sampling interval (default 10 ms)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    p.add_argument("--no-calibrate", action="store_true", help="auto: skip the dead-counter calibration load")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="the command to measure")


def _cmd_measure(args: argparse.Namespace) -> int:
    energy_logging()
    result = measure_command(
        args.cmd,
        meter=args.meter,
        powercap_root=args.powercap_root,
        interval_s=args.interval_ms / 1000.0,
        calibrate=not args.no_calibrate,
    )
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.render(), file=sys.stderr)
    return result.exit_code


# --------------------------------------------------------------------------- fingerprint
def _add_fingerprint(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="machine-readable output (everything, volatile readings included)"
    )
    p.add_argument(
        "--config",
        action="append",
        default=None,
        metavar="FILE",
        help="study config (validated, defaults filled, as the workflow resolves it); "
        "adds config_hash and run_id. Repeat to overlay files like --configfile",
    )
    p.add_argument(
        "--model-file",
        default=None,
        metavar="PATH",
        help="GGUF whose sha256 goes into the environment (default: the config's model, if present)",
    )
    p.add_argument("--powercap-root", default=None, help="powercap sysfs root (default /sys/class/powercap)")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="also write DIR/{hardware,environment,config,hashes}.json (e.g. results/provenance)",
    )


def _fingerprint_summary(fp: provenance.Fingerprint) -> str:
    hw, env, h = fp.hardware, fp.environment, fp.hashes
    cpu, freq = hw["cpu"], hw["cpufreq"]
    turbo = freq["turbo"]["enabled"]
    gb = (hw["memory"]["total_bytes"] or 0) / 2**30
    zones = ", ".join(f"{z['name']} ({z['zone']})" for z in hw["rapl_zones"]) or "none"
    gpus = "; ".join(f"{g['name']} ({g['power_limit_w']} W limit, driver {g['driver']})" for g in hw["gpus"])
    virt = hw["virtualisation"]
    git = env["git"]
    build = env["llama_cpp_build"]
    lines = [
        f"cpu          {cpu['model_name']} ({cpu['vendor']} family {cpu['family']} model {cpu['model']} "
        f"stepping {cpu['stepping']}, microcode {cpu['microcode']})",
        f"topology     {cpu['sockets']} socket(s), {cpu['cores']} core(s), {cpu['threads']} thread(s)",
        f"cpufreq      governor {freq['governor']}, driver {freq['driver']}, "
        f"turbo {'unknown' if turbo is None else 'on' if turbo else 'off'}",
        f"memory       {gb:.1f} GiB",
        f"rapl         {zones}",
        f"gpus         {gpus or 'none' + (' (' + fp.volatile['gpu_note'] + ')' if fp.volatile.get('gpu_note') else '')}",
        f"kernel       {hw['kernel']['release']} ({hw['kernel']['machine']})",
        f"virtualised  {virt['virtualised']} (vm {virt['vm']}, container {virt['container']})",
        f"python       {env['python']['version']}, {len(env['distributions'])} distributions",
        f"llama.cpp    {build.get('version') if build else 'not built'}"
        f"{' ' + build.get('CMAKE_ARGS', '') if build else ''}",
        f"model        {env['model']['name']} sha256 {env['model']['sha256']}",
        f"git          {git['commit']}{' (dirty)' if git['dirty'] else ''}",
        "",
        f"hw_hash      {h.hw_hash}",
        f"env_hash     {h.env_hash}",
        f"config_hash  {h.config_hash if h.config_hash else '- (pass --config)'}",
        f"run_id       {h.run_id if h.run_id else '-'}",
    ]
    return "\n".join(lines)


def _cmd_fingerprint(args: argparse.Namespace) -> int:
    paths = provenance.HostPaths().with_powercap(args.powercap_root)
    cfg = None
    model_name = model_path = None
    if args.config:
        resolved = load_config(args.config)
        cfg = contracts.hashed_config(resolved)
        model_name = resolved.get("llm", {}).get("model")
        model_path = model_file(resolved)
    if args.model_file:
        model_path = args.model_file
    model_sha = None
    if model_path:
        if Path(model_path).is_file():
            model_sha = model_sha256(model_path)
        else:
            print(
                f"alems fingerprint: note: model file {model_path} is not present; its sha256 is "
                "recorded as null, so env_hash differs from a run that has it",
                file=sys.stderr,
            )
    if args.out:
        fp = provenance.write_provenance(
            args.out, cfg, paths=paths, model_sha256=model_sha, model_name=model_name
        )
    else:
        fp = provenance.fingerprint(cfg, paths=paths, model_sha256=model_sha, model_name=model_name)
    if args.json:
        print_json(fp.to_dict())
    else:
        print(_fingerprint_summary(fp))
    return 0


# --------------------------------------------------------------------------- baseline
def _add_baseline(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="S",
        help="length of each measurement window in seconds (default 3)",
    )
    p.add_argument("--windows", type=int, default=None, metavar="N", help="number of windows (default 10)")
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="S",
        help="seconds to wait before the first window (default 5)",
    )
    p.add_argument(
        "--cv-threshold",
        type=float,
        default=None,
        metavar="X",
        help="a judged domain's CV above X triggers a re-measurement (default 0.10)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=None,
        metavar="K",
        help="re-measurements before the baseline is marked unstable (default 2)",
    )
    p.add_argument(
        "--max-host-util",
        type=float,
        default=None,
        metavar="X",
        help="largest busy share of all CPU time (0-1) in an idle window (default 0.10)",
    )
    p.add_argument("--meter", choices=["auto", "rapl", "nvml", "model"], default="auto", help="energy meter")
    p.add_argument("--powercap-root", default=None, help="powercap sysfs root (default /sys/class/powercap)")
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="write the baseline here (e.g. results/baseline/idle.json)",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the baseline at --out if hw_hash, governor and turbo match and it is younger "
        "than --max-age (default: always measure)",
    )
    p.add_argument(
        "--max-age",
        type=float,
        default=None,
        metavar="S",
        help="oldest reusable baseline in seconds (default 21600)",
    )
    p.add_argument(
        "--json", action="store_true", help="machine-readable output (the baseline file's content)"
    )
    p.epilog = (
        "Protocol: settle for --settle seconds, then --windows contiguous windows of --seconds each; "
        "total time is about settle + windows x seconds, times up to 1 + --max-retries if unstable."
    )


def _baseline_table(base: baseline.Baseline) -> str:
    kind = "modeled" if base.modeled else "measured"
    turbo = "unknown" if base.turbo is None else "on" if base.turbo else "off"
    lines = [
        f"idle baseline {base.baseline_id}: {base.status.upper()} ({kind}; meter {base.meter}, "
        f"governor {base.governor}, turbo {turbo}, {len(base.windows)} x {base.config.window_s:g} s, "
        f"{len(base.attempts)} attempt(s))",
        f"{'domain':12} {'source':9} {'mean W':>10} {'std W':>9} {'CV':>8}  verdict",
    ]
    for k, s in base.stats.items():
        verdict = ("ok" if s.stable else "HIGH CV") if s.judged else "not judged"
        lines.append(f"{k:12} {s.source:9} {s.mean_w:10.3f} {s.std_w:9.3f} {s.cv * 100:7.2f}%  {verdict}")
    if base.host_util is not None:
        lines.append(
            f"host CPU busy during the windows: {base.host_util:.1%} of all CPU time "
            f"(max_host_util {base.config.max_host_util:.0%})"
        )
    if not base.stable:
        lines.append(
            f"UNSTABLE: {'; '.join(base.unstable_reasons)}, after {len(base.attempts)} attempt(s); every table "
            "that uses this baseline says so (flag baseline_unstable). Quiet the machine (stop other jobs) "
            "and measure again."
        )
    if base.modeled:
        lines.append(
            "MODELED: at least one domain comes from the CPU-utilisation power model, not a counter."
        )
    return "\n".join(lines)


def _obtain_baseline(
    args: argparse.Namespace, cfg: baseline.BaselineConfig
) -> tuple[baseline.Baseline, bool, str]:
    """Measure the idle baseline, or reuse the one at ``--out``; its cache warnings go to stderr.
    Returns the baseline, whether it was reused, and why (or why not)."""
    paths = provenance.HostPaths().with_powercap(args.powercap_root)
    hw_hash = provenance.short_hash(provenance.collect_hardware(paths)[0])
    governor, turbo = provenance.cpu_power_state(paths)
    tty = sys.stderr.isatty()

    def progress(attempt: int, done: int, total: int) -> None:
        end = "\n" if done == total or not tty else "\r"
        print(f"baseline attempt {attempt}: window {done}/{total}", end=end, file=sys.stderr, flush=True)

    with (
        open_meter(args.meter, powercap_root=args.powercap_root) as meter,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", baseline.BaselineCacheWarning)
        if args.out:
            res = baseline.obtain_baseline(
                meter,
                cfg,
                args.out,
                hw_hash=hw_hash,
                governor=governor,
                turbo=turbo,
                reuse=args.reuse,
                progress=progress,
            )
            base, reused, reason = res.baseline, res.reused, res.reason
        else:
            base = baseline.measure_baseline(
                meter, cfg, hw_hash=hw_hash, governor=governor, turbo=turbo, progress=progress
            )
            reused, reason = False, "not cached (no --out)"
    for w in caught:
        print(f"alems baseline: warning: {w.message}", file=sys.stderr)
    return base, reused, reason


def _cmd_baseline(args: argparse.Namespace) -> int:
    given = {
        "window_s": args.seconds,
        "windows": args.windows,
        "settle_s": args.settle,
        "cv_threshold": args.cv_threshold,
        "max_retries": args.max_retries,
        "max_age_s": args.max_age,
        "max_host_util": args.max_host_util,
    }
    cfg = baseline.BaselineConfig.from_dict({k: v for k, v in given.items() if v is not None})
    if args.reuse and not args.out:
        raise AlemsError(
            "--reuse needs --out FILE (the cached baseline)", fix="add --out results/baseline/idle.json"
        )
    base, reused, reason = _obtain_baseline(args, cfg)
    if args.json:
        print_json({**base.to_dict(), "reused": reused, "reason": reason})
    else:
        print(_baseline_table(base))
        if reused:
            print(reason)
        elif args.out:
            print(f"written to {args.out}")
    return 0


# --------------------------------------------------------------------------- verify
def _add_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--manifest",
        default="results/manifest.json",
        help="manifest to check (default results/manifest.json)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _cmd_verify(args: argparse.Namespace) -> int:
    report = provenance.verify_manifest(args.manifest)
    if args.json:
        print_json(report.to_dict())
    else:
        for c in report.changed:
            print(
                f"CHANGED  {c['path']}  (sha256 {c['expected_sha256'][:16]} -> {c['actual_sha256'][:16]}, "
                f"size {c['expected_size']} -> {c['actual_size']})"
            )
        for m in report.missing:
            print(f"MISSING  {m}")
        bad = len(report.changed) + len(report.missing)
        h = report.hashes
        print(
            f"{report.checked - bad}/{report.checked} files match {report.manifest} "
            f"(run_id {h.get('run_id')}, hw_hash {h.get('hw_hash')}, env_hash {h.get('env_hash')}, "
            f"config_hash {h.get('config_hash')})"
        )
    return 0 if report.ok else 1


# --------------------------------------------------------------------------- registry
COMMANDS = [
    Command(
        "doctor",
        "what meters and LLM runtime work here, and the exact fix for each missing one",
        _add_doctor,
        _cmd_doctor,
    ),
    Command(
        "measure", "run a command and report the energy it moved the counters by", _add_measure, _cmd_measure
    ),
    Command(
        "fingerprint",
        "hardware and environment fingerprint, with the hashes",
        _add_fingerprint,
        _cmd_fingerprint,
    ),
    Command(
        "baseline",
        "measure the idle power of every energy domain (settle, then N windows)",
        _add_baseline,
        _cmd_baseline,
    ),
    Command(
        "verify",
        "re-hash the outputs listed in the manifest; non-zero exit if any changed or is missing",
        _add_verify,
        _cmd_verify,
    ),
]
