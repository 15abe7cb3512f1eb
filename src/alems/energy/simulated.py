"""Fake powercap trees and a simulated-RAPL writer, for machines with no RAPL.

* :func:`make_powercap_tree` lays out a powercap directory with the real structure
  (zones ``intel-rapl:N`` with sub-zones nested inside them and symlinked at the root,
  ``name``, ``energy_uj``, ``max_energy_range_uj``, ``constraint_*`` files) for every
  layout in :data:`LAYOUTS`. The returned :class:`FakePowercap` moves counters by
  script (``add_j`` wraps them like the hardware does).
* :func:`simulate` (and ``python -m alems.energy.simulated --root DIR ...``) is a
  writer that integrates a power profile into the ``energy_uj`` files, with a wrap
  range of your choice, so a whole run can go through the real RAPL code path.
  The ``model`` profile is :class:`alems.energy.model.CpuModelProfile`, the very
  function behind the ``cpu-model`` meter: on the same parameters and the same
  ``/proc/stat``, simulated RAPL and the model meter must agree (to within the
  writer's tick, ``--tick-ms``).
* :class:`SimulatedRapl` runs that writer as a child process for tests and pipelines.

Counters are written atomically (temporary file + rename), so a reader never sees a
half-written value.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from alems.energy.childproc import child_env, terminate
from alems.energy.model import CpuModelProfile, ModelParams

#: Real Intel value of max_energy_range_uj (2^32 units of 61 uJ).
DEFAULT_RANGE_UJ = 262_143_328_850
#: A small range that forces several wraps in any window of a second or so.
SMALL_RANGE_UJ = 1_000_000

#: zone id -> ``name`` file, per layout.
LAYOUTS: dict[str, tuple[tuple[str, str], ...]] = {
    # Intel client, one socket: package with core and uncore sub-zones.
    "intel-1s": (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core"), ("intel-rapl:0:1", "uncore")),
    # dram at sub-zone index 0 and core at 1: selection must go by name.
    "intel-1s-dram": (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram"), ("intel-rapl:0:1", "core")),
    # Two sockets, sub-zone order differing between them.
    "intel-2s": (
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "core"),
        ("intel-rapl:0:1", "dram"),
        ("intel-rapl:1", "package-1"),
        ("intel-rapl:1:0", "dram"),
        ("intel-rapl:1:1", "core"),
    ),
    # psys sitting at intel-rapl:1 (where a second package would be).
    "intel-psys": (
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "core"),
        ("intel-rapl:0:1", "uncore"),
        ("intel-rapl:1", "psys"),
    ),
    # intel-rapl-mmio:0 duplicating package-0.
    "intel-mmio": (
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "core"),
        ("intel-rapl:0:1", "uncore"),
        ("intel-rapl-mmio:0", "package-0"),
    ),
    # AMD Zen: package and core only.
    "amd": (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core")),
    "amd-2s": (
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "core"),
        ("intel-rapl:1", "package-1"),
        ("intel-rapl:1:0", "core"),
    ),
    # intel-1s with a tiny max_energy_range_uj (see make_powercap_tree).
    "small-range": (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core"), ("intel-rapl:0:1", "uncore")),
}


def _parent_id(zone_id: str) -> str | None:
    ctl, _, rest = zone_id.partition(":")
    parts = rest.split(":")
    return f"{ctl}:{':'.join(parts[:-1])}" if len(parts) > 1 else None


def _fake_key(zone_id: str, name: str, names: Mapping[str, str]) -> str:
    """The domain key the fake expects A-LEMS to give this zone (``mmio:`` marks duplicates)."""
    if zone_id.startswith("intel-rapl-mmio"):
        return f"mmio:{name}"
    parent = _parent_id(zone_id)
    if parent is None:
        return name
    socket = names[parent].rsplit("-", 1)[-1]
    return f"{name}-{socket}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class FakePowercap:
    """A fake powercap tree: where each domain's files are, and script-driven counters."""

    root: Path
    layout: str
    zone_ids: dict[str, str]  # expected domain key -> zone id
    dirs: dict[str, Path]  # expected domain key -> zone directory
    range_uj: dict[str, int] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """Expected A-LEMS domain keys (the ``mmio:`` duplicates are not domains)."""
        return [k for k in self.zone_ids if not k.startswith("mmio:")]

    def energy_file(self, key: str) -> Path:
        return self.dirs[key] / "energy_uj"

    def read_uj(self, key: str) -> int:
        return int(self.energy_file(key).read_text())

    def set_uj(self, key: str, value: int) -> None:
        _write_atomic(self.energy_file(key), f"{int(value)}\n")

    def add_uj(self, key: str, delta_uj: int) -> int:
        """Move a counter by ``delta_uj``, wrapping at its range like the hardware; returns the new value."""
        new = (self.read_uj(key) + int(delta_uj)) % self.range_uj[key]
        self.set_uj(key, new)
        return new

    def add_j(self, key: str, joules: float) -> int:
        return self.add_uj(key, round(joules * 1e6))

    def chmod(self, key: str, mode: int) -> None:
        os.chmod(self.energy_file(key), mode)


def make_powercap_tree(
    root: str | os.PathLike[str],
    layout: str | Sequence[tuple[str, str]] = "intel-1s",
    *,
    max_energy_range_uj: int | Mapping[str, int] | None = None,
    initial_uj: int | Mapping[str, int] = 0,
    package_limit_w: float = 65.0,
    max_power_w: float | None = None,
    symlinks: bool = True,
) -> FakePowercap:
    """Lay out a fake powercap tree under ``root`` and return its :class:`FakePowercap`.

    ``layout`` is a name in :data:`LAYOUTS` or a sequence of ``(zone_id, name)``.
    ``max_energy_range_uj`` (one value, or per expected key) defaults to the real
    Intel range, or :data:`SMALL_RANGE_UJ` for the ``small-range`` layout. Top-level
    zones get ``long_term``/``short_term`` constraints (``package_limit_w``, x1.25) and
    ``constraint_0_max_power_uw`` = ``max_power_w`` (default the limit); sub-zones get
    a ``long_term`` constraint with limit 0, as real core zones have.
    """
    rootp = Path(root)
    name = layout if isinstance(layout, str) else "custom"
    if isinstance(layout, str) and layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
    zones = LAYOUTS[layout] if isinstance(layout, str) else tuple(layout)
    default_range = SMALL_RANGE_UJ if name == "small-range" else DEFAULT_RANGE_UJ
    names = dict(zones)
    fake = FakePowercap(rootp, name, {}, {})
    rootp.mkdir(parents=True, exist_ok=True)
    for ctl in sorted({z.split(":", 1)[0] for z, _ in zones}):
        (rootp / ctl).mkdir(exist_ok=True)
        (rootp / ctl / "enabled").write_text("1\n")
    for zone_id, zname in zones:
        d = _zone_dir(rootp, zone_id)
        d.mkdir(parents=True, exist_ok=True)
        if symlinks and _parent_id(zone_id) is not None:
            link = rootp / zone_id
            if not link.exists():
                link.symlink_to(d.relative_to(rootp))
        key = _fake_key(zone_id, zname, names)
        if isinstance(max_energy_range_uj, Mapping):
            rng = int(max_energy_range_uj.get(key, default_range))
        else:
            rng = int(max_energy_range_uj or default_range)
        init = initial_uj.get(key, 0) if isinstance(initial_uj, Mapping) else initial_uj
        (d / "name").write_text(f"{zname}\n")
        (d / "enabled").write_text("1\n")
        (d / "max_energy_range_uj").write_text(f"{rng}\n")
        _write_atomic(d / "energy_uj", f"{int(init) % rng}\n")
        if _parent_id(zone_id) is None:
            _write_package_constraints(d, package_limit_w, max_power_w or package_limit_w)
        else:
            _write_subzone_constraints(d)
        _add_zone(fake, key, zone_id, d, rng)
    return fake


def _zone_dir(root: Path, zone_id: str) -> Path:
    """Where zone ``zone_id`` lives: nested inside its parents' directories."""
    chain = [zone_id]
    while (p := _parent_id(chain[-1])) is not None:
        chain.append(p)
    return root.joinpath(*reversed(chain))


def _write_package_constraints(d: Path, limit_w: float, max_power_w: float) -> None:
    """A top-level zone's ``long_term`` (``limit_w``) and ``short_term`` (x1.25) constraints."""
    lim = int(limit_w * 1e6)
    (d / "constraint_0_name").write_text("long_term\n")
    (d / "constraint_0_power_limit_uw").write_text(f"{lim}\n")
    (d / "constraint_0_time_window_us").write_text("27983872\n")
    (d / "constraint_0_max_power_uw").write_text(f"{int(max_power_w * 1e6)}\n")
    (d / "constraint_1_name").write_text("short_term\n")
    (d / "constraint_1_power_limit_uw").write_text(f"{int(lim * 1.25)}\n")
    (d / "constraint_1_time_window_us").write_text("2440\n")


def _write_subzone_constraints(d: Path) -> None:
    """A sub-zone's ``long_term`` constraint with limit 0, as real core zones have."""
    (d / "constraint_0_name").write_text("long_term\n")
    (d / "constraint_0_power_limit_uw").write_text("0\n")
    (d / "constraint_0_time_window_us").write_text("976\n")


def _add_zone(fake: FakePowercap, key: str, zone_id: str, d: Path, rng: int) -> None:
    """Record zone ``zone_id`` (domain ``key``) in ``fake``, where /sys/class/powercap shows it:
    every zone at the root (sub-zones via symlinks)."""
    fake.zone_ids[key] = zone_id
    fake.dirs[key] = fake.root / zone_id if (fake.root / zone_id).is_dir() else d
    fake.range_uj[key] = rng


# ---------------------------------------------------------------------- power profiles
class PowerProfile(Protocol):
    """Cumulative energy (J) at time ``t``; the writer differences it."""

    def energy_j(self, t: float) -> float: ...


@dataclass
class ConstantProfile:
    watts: float
    t0: float | None = None

    def energy_j(self, t: float) -> float:
        if self.t0 is None:
            self.t0 = t
        return self.watts * (t - self.t0)


@dataclass
class StepProfile:
    """Piecewise-constant power: ``steps`` = [(seconds after start, watts), ...], sorted."""

    steps: Sequence[tuple[float, float]]
    t0: float | None = None

    def energy_j(self, t: float) -> float:
        if self.t0 is None:
            self.t0 = t
        x = t - self.t0
        e = 0.0
        for i, (start, w) in enumerate(self.steps):
            end = self.steps[i + 1][0] if i + 1 < len(self.steps) else float("inf")
            if x <= start:
                break
            e += w * (min(x, end) - max(start, 0.0))
        return e

    @classmethod
    def parse(cls, text: str) -> StepProfile:
        """``"0:5,1.5:20"`` = 5 W from 0 s, 20 W from 1.5 s."""
        steps = []
        for part in text.split(","):
            at, w = part.split(":")
            steps.append((float(at), float(w)))
        return cls(sorted(steps))


def default_shares(keys: Iterable[str], dead: Iterable[str] = ()) -> dict[str, float]:
    """Fraction of the profile's power each counter gets.

    The summable domains (packages plus dram, or psys alone) add up to the whole
    profile, so ``total_j`` equals the profile's energy: packages share 90 % (100 %
    without dram), dram 10 %; core is 60 % and uncore 10 % of their package; psys
    is the whole profile. ``dead`` counters get no share (they stay still).
    """
    keys = list(keys)
    pk = [k for k in keys if k.startswith("package-")]
    dr = [k for k in keys if k.startswith("dram-")]
    dram_frac = 0.1 if dr and pk else 0.0
    shares: dict[str, float] = {}
    for k in keys:
        sock = k.rsplit("-", 1)[-1]
        pkg_share = (1.0 - dram_frac) / len(pk) if pk else 0.0
        if k.startswith("package-"):
            shares[k] = pkg_share
        elif k.startswith("dram-"):
            shares[k] = dram_frac / len(dr) if pk else 1.0 / len(dr)
        elif k.startswith("core-") and f"package-{sock}" in keys:
            shares[k] = 0.6 * pkg_share
        elif k.startswith("uncore-") and f"package-{sock}" in keys:
            shares[k] = 0.1 * pkg_share
        elif k == "psys":
            shares[k] = 1.0
        elif k.startswith("mmio:"):
            shares[k] = shares.get(k[5:], pkg_share)
    for k in dead:
        shares.pop(k, None)
    return shares


def simulate(
    tree: FakePowercap,
    profile: PowerProfile,
    shares: Mapping[str, float],
    *,
    tick_s: float = 0.002,
    duration_s: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Write ``base + share x profile energy`` (mod range) into each counter every tick.

    Returns the number of ticks written. Values are absolute (no drift); each tick
    moves a counter by much less than its range as long as ``tick_s`` is small.
    """
    base = {k: tree.read_uj(k) for k in shares}
    t_start = clock()
    e0 = profile.energy_j(t_start)
    if on_ready is not None:
        on_ready()
    ticks = 0
    next_t = t_start
    while not should_stop():
        t = clock()
        e = profile.energy_j(t) - e0
        for k, share in shares.items():
            tree.set_uj(k, (base[k] + round(e * share * 1e6)) % tree.range_uj[k])
        ticks += 1
        if duration_s is not None and t - t_start >= duration_s:
            break
        next_t += tick_s
        delay = next_t - clock()
        if delay > 0:
            time.sleep(delay)
        else:
            next_t = clock()
    return ticks


# ---------------------------------------------------------------------- child process
class SimulatedRapl:
    """The simulated-RAPL writer as a child process (``with SimulatedRapl(root, ...) as tree``).

    Keyword arguments become command-line options of ``python -m alems.energy.simulated``
    (``watts=10`` -> ``--watts 10``; ``dead=["psys"]`` -> ``--dead psys``).
    """

    def __init__(self, root: str | os.PathLike[str], layout: str = "intel-1s", **options: object) -> None:
        self.root = Path(root)
        self.layout = layout
        self.options = options
        self.proc: subprocess.Popen[str] | None = None
        self.tree: FakePowercap | None = None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "alems.energy.simulated",
            "--root",
            str(self.root),
            "--layout",
            self.layout,
        ]
        for k, v in self.options.items():
            flag = "--" + k.replace("_", "-")
            if v is True:
                cmd.append(flag)
            elif isinstance(v, (list, tuple)):
                cmd += [flag, *map(str, v)]
            elif v is not None and v is not False:
                cmd += [flag, str(v)]
        return cmd

    def start(self, timeout_s: float = 30.0) -> FakePowercap:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, text=True, env=child_env())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"simulated RAPL did not start (got {line!r}); command: {self.command()}")
        self.tree = _load_tree(self.root, self.layout)
        return self.tree

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakePowercap:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _load_tree(root: Path, layout: str) -> FakePowercap:
    """A :class:`FakePowercap` view of a tree that already exists (made by the writer)."""
    zones = LAYOUTS[layout]
    names = dict(zones)
    fake = FakePowercap(root, layout, {}, {})
    for zone_id, zname in zones:
        d = _zone_dir(root, zone_id)
        rng = int((d / "max_energy_range_uj").read_text())
        _add_zone(fake, _fake_key(zone_id, zname, names), zone_id, d, rng)
    return fake


def _profile_from_args(args: argparse.Namespace) -> tuple[PowerProfile, float]:
    """The profile and the most power it can draw (for the declared max power)."""
    if args.profile == "constant":
        return ConstantProfile(args.watts), args.watts
    if args.profile == "steps":
        steps = StepProfile.parse(args.steps)
        return steps, max(w for _, w in steps.steps)
    params = ModelParams(p_idle_w=args.p_idle_w, p_max_w=args.p_max_w, proc_stat=args.proc_stat)
    model = CpuModelProfile(params)
    return model, model.p_max_w


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m alems.energy.simulated",
        description="simulated RAPL: write energy_uj files at a fake powercap root from a power profile",
    )
    ap.add_argument("--root", required=True, help="fake powercap root (created)")
    ap.add_argument("--layout", default="intel-1s", choices=sorted(LAYOUTS))
    ap.add_argument("--profile", default="constant", choices=["constant", "steps", "model"])
    ap.add_argument("--watts", type=float, default=10.0, help="constant profile: watts")
    ap.add_argument("--steps", default="0:10", help="steps profile: 'SECONDS:WATTS,...'")
    ap.add_argument("--p-idle-w", type=float, default=None, help="model profile: P_idle (W)")
    ap.add_argument("--p-max-w", type=float, default=None, help="model profile: P_max (W)")
    ap.add_argument("--proc-stat", default="/proc/stat", help="model profile: /proc/stat path")
    ap.add_argument("--range-uj", type=int, default=None, help="max_energy_range_uj (wrap point)")
    ap.add_argument("--initial-uj", type=int, default=0, help="starting counter value")
    ap.add_argument(
        "--max-power-w",
        type=float,
        default=None,
        help="the power bound the tree declares (constraint_0_max_power_uw and the "
        "short_term limit; default 2x the profile's peak): sets the safe poll interval",
    )
    ap.add_argument("--tick-ms", type=float, default=2.0, help="write period")
    ap.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: SIGTERM)")
    ap.add_argument("--dead", nargs="*", default=[], help="domain keys that never move")
    ap.add_argument("--share", nargs="*", default=[], help="KEY=FRACTION overrides of the power split")
    return ap


def _shares(
    ap: argparse.ArgumentParser, args: argparse.Namespace, tree: FakePowercap, declared: float
) -> dict[str, float]:
    """Each counter's share of the profile (``--dead``, ``--share``); a tick long enough for a
    counter to wrap twice at the declared power is a usage error."""
    shares = default_shares(list(tree.zone_ids), args.dead)
    for item in args.share:
        k, _, v = item.partition("=")
        shares[k] = float(v)
    for k, share in shares.items():
        period = tree.range_uj[k] / 1e6 / max(declared * share, 1e-9)
        if args.tick_ms / 1000 >= period:
            ap.error(f"--tick-ms {args.tick_ms} lets {k} wrap more than once per write; lower it")
    return shares


def main(argv: Sequence[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    profile, peak = _profile_from_args(args)
    declared = args.max_power_w or max(2.0 * peak, 1.0)
    tree = make_powercap_tree(
        args.root,
        args.layout,
        max_energy_range_uj=args.range_uj,
        initial_uj=args.initial_uj,
        package_limit_w=declared / 1.25,  # so that the short_term limit (x1.25) is the declared bound
        max_power_w=declared,
    )
    shares = _shares(ap, args, tree, declared)

    stopping = {"flag": False}

    def _stop(*_: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def ready() -> None:
        print(f"ready {args.root}", flush=True)

    simulate(
        tree,
        profile,
        shares,
        tick_s=args.tick_ms / 1000.0,
        duration_s=args.duration,
        should_stop=lambda: stopping["flag"],
        on_ready=ready,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
