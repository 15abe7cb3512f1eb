"""Per-module mutation score from ``mutmut results --all true`` (stdin): killed / all, and
the surviving mutants by name. ``make mutation`` prints it after each module's run.

Run: ``mutmut results --all true | python tools/mutation_score.py [MODULE_PREFIX ...]``
"""

from __future__ import annotations

import re
import signal
import sys
from collections import Counter, defaultdict

KILLED = {"killed", "caught by type check"}
LINE = re.compile(r"^\s*(?P<name>[\w.ǁ]+)__mutmut_\d+: (?P<status>.+?)\s*$")


def main(argv: list[str]) -> int:
    prefixes = argv or [""]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for raw in sys.stdin:
        m = LINE.match(raw)
        if not m:
            continue
        full = raw.strip().split(":")[0]
        module = m["name"].rsplit(".", 1)[0]
        if not any(module.startswith(p) for p in prefixes):
            continue
        counts[module][m["status"]] += 1
        if m["status"] not in KILLED:
            survivors[module].append(f"{full} ({m['status']})")
    print(f"{'module':34} {'mutants':>7} {'killed':>7} {'score':>6}  other")
    for module in sorted(counts):
        c = counts[module]
        total, killed = sum(c.values()), sum(c[s] for s in KILLED)
        other = ", ".join(f"{s} {n}" for s, n in sorted(c.items()) if s not in KILLED)
        print(f"{module:34} {total:7d} {killed:7d} {killed / total:6.1%}  {other}")
    for module in sorted(survivors):
        print(f"\n{module}: not killed")
        for s in survivors[module]:
            print(f"  {s}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` closes the pipe early: stop quietly
    raise SystemExit(main(sys.argv[1:]))
