"""``alems track``, ``alems recover`` and ``alems proxy``: measure your own agent, one goal
execution per ``track`` call (``--repair`` recovers killed calls), recover a killed
:class:`~alems.session.Session`, and record LLM calls through a proxy."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from alems.cli.common import Command, energy_logging, print_json
from alems.contracts import MODES
from alems.errors import ConfigError
from alems.proxy import LlmProxy, serve
from alems.session import recover
from alems.track import repair, track_command

#: The options ``alems track`` needs unless it is repairing.
TRACK_REQUIRED = ("out", "family", "mode", "goal_id")


# --------------------------------------------------------------------------- track
def _add_track(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="run directory; repeated calls append to it as one run")
    p.add_argument(
        "--repair",
        metavar="DIR",
        default=None,
        help="recover the calls of DIR that were killed before they finished (status killed), "
        "merge again, and exit; nothing is deleted",
    )
    p.add_argument("--family", help="your family's name (EpG is per family and mode)")
    p.add_argument("--mode", choices=MODES, help="OOI = EpG(agentic) / EpG(linear)")
    p.add_argument("--goal-id", metavar="ID", help="the goal instance this execution works on")
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


def _cmd_repair(args: argparse.Namespace) -> int:
    report = repair(args.repair)
    if args.json:
        print(json.dumps(report, sort_keys=True, default=str), file=sys.stderr)
        return 0
    for r in report["repaired"]:
        cut = ", ".join(f"{i['goal_id']} ({i['mode']}, rep {i['rep']})" for i in r["interrupted"])
        print(
            f"alems track --repair: call {r['call']}: {r['action']} (status {r['status']}), "
            f"{r['executions']} execution(s) counted" + (f"; cut short, run again: {cut}" if cut else ""),
            file=sys.stderr,
        )
    print(
        f"alems track --repair: {len(report['repaired'])} call(s) repaired; {args.repair} holds "
        f"{report['executions']} execution(s) in {report['calls']} counted call(s)",
        file=sys.stderr,
    )
    return 0


def _cmd_track(args: argparse.Namespace) -> int:
    energy_logging()
    if args.repair is not None:
        return _cmd_repair(args)
    missing = [f"--{k.replace('_', '-')}" for k in TRACK_REQUIRED if getattr(args, k) is None]
    if missing:
        raise ConfigError(
            f"alems track needs {', '.join(missing)}",
            "e.g. alems track --out runs/a --family f --mode agentic --goal-id q1 -- CMD "
            "(or alems track --repair DIR)",
        )
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


# --------------------------------------------------------------------------- recover
def _add_recover(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="the directory of a Session that was killed")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _cmd_recover(args: argparse.Namespace) -> int:
    res = recover(args.dir)
    if args.json:
        print_json(res.to_dict())
        return 0
    d = res.to_dict()
    if res.action == "recovered":
        cut = ", ".join(f"{i['goal_id']} ({i['mode']}, rep {i['rep']})" for i in d["interrupted"])
        print(
            f"alems recover: {args.dir}: the four files written (status killed): {d['executions']} "
            f"execution(s), {d['samples']} sample(s)"
            + (f"; cut short by the kill, not counted: {cut}" if cut else "")
        )
    elif res.action == "complete":
        print(
            f"alems recover: {args.dir} already holds its files; removed the leftover {', '.join(d['removed'])}"
        )
    else:
        print(f"alems recover: {args.dir} holds no killed run (nothing to recover)")
    return 0


# --------------------------------------------------------------------------- proxy
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
    p.add_argument("--mode", choices=MODES, default="agentic", help="mode of the recorded events")
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
    energy_logging()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    check_no_partial(args.events)

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


def check_no_partial(events: str) -> None:
    """Refuse to start over the partial event file a killed proxy left next to ``events``
    (``.NAME.partial``: the proxy writes there and moves it into place when it stops), and say
    how to finalize it: the new proxy would truncate it."""
    p = Path(events)
    old = p.with_name(f".{p.name}.partial")
    if not old.is_file() or not old.stat().st_size:
        return
    with open(old, "rb") as fh:
        n = sum(1 for line in fh if line.strip())
    dest = p if not p.exists() else p.with_name(f"{p.stem}-killed{p.suffix or '.jsonl'}")
    raise ConfigError(
        f"{old} holds {n} event(s) from an earlier alems proxy that was killed before it moved them "
        f"to {p}; this proxy would overwrite them",
        f"finalize them with `mv {old} {dest}` (they are complete records, one per line), then start "
        "the proxy again",
    )


# --------------------------------------------------------------------------- registry
COMMANDS = [
    Command(
        "track",
        "run any command as one measured goal execution, appended to a run directory",
        _add_track,
        _cmd_track,
    ),
    Command(
        "recover",
        "write the four files of a Session that was killed (status killed) from what it spooled",
        _add_recover,
        _cmd_recover,
    ),
    Command("proxy", "a recording OpenAI-compatible proxy: one LLM phase per call", _add_proxy, _cmd_proxy),
]
