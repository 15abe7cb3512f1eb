"""Print ``name==version`` for the closure of A-LEMS's GPU-check requirements, as installed here.

Used by ``prep_wheels.sh``: the versions this (tested) environment resolved, evaluated for
CPython 3.12 on Linux x86_64, minus the distributions the GPU host already has (``--skip``).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: What the GPU check runs: the workflow up to the tables, and alems (figures are drawn only
#: where the host has matplotlib; figure 4's line is checked numerically either way).
ROOTS = ("snakemake", "jsonschema", "scipy", "pyyaml", "psutil", "rich", "nvidia-ml-py", "pygments")


def closure(roots: list[str], skip: set[str]) -> dict[str, str]:
    env = {
        **default_environment(),
        "python_version": "3.12",
        "python_full_version": "3.12.0",
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
    }
    seen: dict[str, str] = {}
    stack = [(r, "") for r in roots]
    while stack:
        name, extra = stack.pop()
        key = canonicalize_name(name)
        if key in skip or key in seen:
            continue
        dist = md.distribution(name)
        seen[key] = f"{dist.metadata['Name']}=={dist.version}"
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
                continue
            stack.append((req.name, ""))
    return seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip", default="", help="space-separated distributions the host has")
    args = ap.parse_args()
    skip = {canonicalize_name(s) for s in args.skip.split()}
    for pin in sorted(closure(list(ROOTS), skip).values(), key=str.lower):
        print(pin)


if __name__ == "__main__":
    main()
