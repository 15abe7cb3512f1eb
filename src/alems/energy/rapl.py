"""RAPL energy counters through the Linux powercap sysfs interface.

Discovery walks a powercap root (default ``/sys/class/powercap``; configurable so
tests and the simulated-RAPL process can use a fake tree) and selects zones by their
``name`` file, never by index:

========================  ===========  ==========================================
zone ``name``             domain key   notes
========================  ===========  ==========================================
``package-N``             ``package-N``  one per socket
``core`` / ``uncore``     ``core-N`` / ``uncore-N``  N = socket of the parent package;
                                       inside the package, never summed with it
``dram``                  ``dram-N``   N = socket of the parent package
``psys``                  ``psys``     whole platform (may sit at ``intel-rapl:1``)
========================  ===========  ==========================================

``intel-rapl-mmio:*`` zones that duplicate a package read through MSRs are dropped.
Each zone's ``max_energy_range_uj`` is where its counter wraps, and the largest of
``max_power_range_uw`` / ``constraint_*_max_power_uw`` / ``constraint_*_power_limit_uw``
bounds how fast it moves (that sets the safe poll interval, see
:mod:`alems.energy.wrap`). Sub-zones without limits inherit their package's; a zone with
no limit anywhere gets a conservative bound by kind (:data:`FALLBACK_MAX_POWER_W`), so its
poll interval is still capped and a too-long gap between reads is an error, never a guess.

``energy_uj`` is root-only on kernels patched for CVE-2020-8694; opening the meter
then raises :class:`~alems.errors.PermissionDeniedError` with both fixes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alems.energy.base import Domain, Meter, absent
from alems.energy.kfile import KernelFile
from alems.energy.wrap import counter_error
from alems.errors import MeterError, PermissionDeniedError
from alems.io import read_int_or_none, read_text_or_none

DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
_ZONE_RE = re.compile(r"^(intel-rapl(?:-mmio)?):(\d+(?::\d+)*)$")
_PACKAGE_RE = re.compile(r"^package-(\d+)$")
SUBZONE_KINDS = ("core", "uncore", "dram")
_KIND_ORDER = {"package": 0, "core": 1, "uncore": 2, "dram": 3, "psys": 4}

#: Conservative power bounds (W) by zone kind, for zones that publish no limit at all
#: (no ``max_power_range_uw``, no ``constraint_*_power_limit_uw`` / ``_max_power_uw``).
#: They are above anything shipped (a 2024 server socket peaks near 500 W; a DRAM zone
#: draws tens of watts; psys covers the whole platform), so the safe poll interval they
#: give is short, and a gap long enough to hide a wrap at that power is an error.
FALLBACK_MAX_POWER_W: dict[str, float] = {
    "package": 600.0,
    "core": 600.0,
    "uncore": 600.0,
    "dram": 250.0,
    "psys": 1500.0,
}


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone as found on disk."""

    zone_id: str  # e.g. "intel-rapl:0:1"
    control: str  # "intel-rapl" | "intel-rapl-mmio"
    path: Path
    name: str
    parent_id: str | None
    max_energy_range_uj: int | None
    max_power_uw: int | None
    constraints: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"


@dataclass
class Discovery:
    """What a powercap root holds: usable domains and why other zones were left out."""

    root: Path
    domains: list[Domain]
    zones: dict[str, RaplZone]  # domain key -> zone
    skipped: list[str]  # human-readable reasons


def zone_dirs(root: Path) -> dict[str, Path]:
    """zone id -> directory, for zones at the root and nested inside other zones."""
    found: dict[str, Path] = {}
    seen: set[str] = set()
    stack: list[Path] = [root]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            m = _ZONE_RE.match(e.name)
            if not m or not e.is_dir():
                continue
            real = os.path.realpath(e.path)
            if real in seen:
                continue
            seen.add(real)
            found.setdefault(e.name, Path(e.path))
            stack.append(Path(e.path))
    return found


def read_zone(zone_id: str, path: Path) -> RaplZone | None:
    """The zone in ``path`` (``None`` for a directory that is not a readable RAPL zone). With
    :func:`zone_dirs`, the one walk of a powercap tree: the meter and the hardware fingerprint
    (:mod:`alems.provenance.meters`) both read zones through it."""
    m = _ZONE_RE.match(zone_id)
    if not m:
        return None
    name = read_text_or_none(path / "name")
    if name is None:
        return None
    parts = m.group(2).split(":")
    parent_id = f"{m.group(1)}:{':'.join(parts[:-1])}" if len(parts) > 1 else None
    constraints: dict[str, dict[str, int]] = {}
    for f in sorted(path.glob("constraint_*_name")):
        idx = f.name.split("_")[1]
        cname = read_text_or_none(f) or idx
        vals = {}
        for attr in ("power_limit_uw", "max_power_uw", "time_window_us"):
            v = read_int_or_none(path / f"constraint_{idx}_{attr}")
            if v is not None:
                vals[attr] = v
        constraints[cname] = vals
    powers = [read_int_or_none(path / "max_power_range_uw")]
    for vals in constraints.values():
        powers += [vals.get("max_power_uw"), vals.get("power_limit_uw")]
    good = [p for p in powers if p and p > 0]
    return RaplZone(
        zone_id=zone_id,
        control=m.group(1),
        path=path,
        name=name,
        parent_id=parent_id,
        max_energy_range_uj=read_int_or_none(path / "max_energy_range_uj"),
        max_power_uw=max(good) if good else None,
        constraints=constraints,
    )


def _zone_sort_key(zone_id: str) -> tuple:
    m = _ZONE_RE.match(zone_id)
    assert m
    return (m.group(1) != "intel-rapl", [int(x) for x in m.group(2).split(":")])


def _key_of(zid: str, z: RaplZone, parent: RaplZone | None) -> tuple[str, str, str | None] | str:
    """(domain key, kind, parent package) of zone ``zid``, or why it is left out."""
    if z.parent_id is None and _PACKAGE_RE.match(z.name):
        return z.name, "package", None
    if z.parent_id is None and z.name == "psys":
        return "psys", "psys", None
    if z.name not in SUBZONE_KINDS:
        return f"{zid} ({z.name}): not a RAPL domain A-LEMS reads"
    ppm = _PACKAGE_RE.match(parent.name) if parent is not None else None
    if ppm and parent is not None:
        return f"{z.name}-{ppm.group(1)}", z.name, parent.name
    if z.parent_id is None:  # a top-level dram zone (rare): socket = zone index
        return f"{z.name}-{zid.split(':')[1]}", z.name, None
    return f"{zid} ({z.name}): parent is not a package zone"


def _max_power_uw(kind: str, z: RaplZone, package: RaplZone | None) -> tuple[int, str]:
    """The zone's power bound (uW) and where it comes from: its limits, its package's, or the fallback."""
    if z.max_power_uw is not None:
        return z.max_power_uw, "zone limits"
    if package is not None and package.max_power_uw is not None:
        return package.max_power_uw, "package limits"
    return (
        int(FALLBACK_MAX_POWER_W[kind] * 1e6),
        f"fallback bound for a {kind} zone (it publishes no power limit)",
    )


def _rapl_domain(key: str, kind: str, z: RaplZone, parent: str | None, package: RaplZone | None) -> Domain:
    max_power, power_from = _max_power_uw(kind, z, package)
    return Domain(
        key=key,
        kind=kind,
        source="measured",
        meter="rapl",
        parent=parent,
        max_range_j=z.max_energy_range_uj / 1e6 if z.max_energy_range_uj else None,
        max_power_w=max_power / 1e6 if max_power else None,
        location=str(z.energy_file),
        info={
            "zone": z.zone_id,
            "name": z.name,
            "max_energy_range_uj": z.max_energy_range_uj,
            "max_power_uw": max_power,
            "max_power_from": power_from,
            "constraints": z.constraints,
        },
    )


def discover(root: str | os.PathLike[str] | None = None) -> Discovery:
    """Find RAPL zones under ``root`` and map them to domain keys (see module doc)."""
    rootp = Path(root or DEFAULT_POWERCAP_ROOT)
    dirs = zone_dirs(rootp)
    zones = {zid: z for zid, p in dirs.items() if (z := read_zone(zid, p)) is not None}
    skipped: list[str] = []
    keyed: dict[str, tuple[RaplZone, str, str | None]] = {}  # key -> (zone, kind, parent package)
    for zid in sorted(zones, key=_zone_sort_key):
        z = zones[zid]
        found = _key_of(zid, z, zones.get(z.parent_id) if z.parent_id else None)
        if isinstance(found, str):
            skipped.append(found)
            continue
        key, kind, parent = found
        if key in keyed:
            prev = keyed[key][0]
            why = (
                "duplicates the MSR zone " + prev.zone_id
                if z.control == "intel-rapl-mmio"
                else "same name as " + prev.zone_id
            )
            skipped.append(f"{zid} ({z.name}): {why}")
            continue
        keyed[key] = (z, kind, parent)
    domains = [
        _rapl_domain(key, kind, z, parent, keyed[parent][0] if parent in keyed else None)
        for key, (z, kind, parent) in keyed.items()
    ]
    domains.sort(key=lambda d: (d.kind == "psys", _socket(d.key), _KIND_ORDER.get(d.kind, 9), d.key))
    return Discovery(rootp, domains, {d.key: keyed[d.key][0] for d in domains}, skipped)


def _socket(key: str) -> int:
    tail = key.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def permission_fix(
    files: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
) -> str:
    """The two ways to make ``energy_uj`` readable, as commands a user can paste."""
    rootp = str(root or DEFAULT_POWERCAP_ROOT).rstrip("/")
    listed = " ".join(str(f) for f in files)
    return (
        "either grant a group read access at every boot (recommended):\n"
        "    sudo groupadd -f power && sudo usermod -aG power $USER   # then log in again\n"
        f"    echo 'z {rootp}/intel-rapl*/energy_uj 0440 root power -' "
        "| sudo tee /etc/tmpfiles.d/alems-rapl.conf\n"
        "    sudo systemd-tmpfiles --create /etc/tmpfiles.d/alems-rapl.conf\n"
        "  or the same as a udev rule, /etc/udev/rules.d/99-alems-rapl.rules:\n"
        '    SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chgrp power /sys%p/energy_uj", '
        'RUN+="/bin/chmod g+r /sys%p/energy_uj"\n'
        "or, once (until the next reboot or module reload):\n"
        f"    sudo chmod a+r {listed}\n"
        "(energy_uj is root-only to mitigate CVE-2020-8694; grant read access only to users you trust)"
    )


def absent_fix(root: str | os.PathLike[str] | None = None) -> str:
    rootp = str(root or DEFAULT_POWERCAP_ROOT)
    return (
        f"no RAPL zones under {rootp}. On bare-metal Intel or AMD (Zen, kernel >= 5.8): "
        "sudo modprobe intel_rapl_msr (and intel_rapl_common). In a VM or container RAPL is "
        "normally not passed through: use --meter auto, which models the CPU (source 'modeled')"
    )


class RaplMeter(Meter):
    """Reads every RAPL domain found under a powercap root.

    ``keys`` restricts the meter to some domains (``auto`` uses it to leave dead ones
    out). Raises :class:`MeterError` when the root holds no RAPL zone and
    :class:`PermissionDeniedError` when an ``energy_uj`` cannot be read.
    """

    name = "rapl"

    def __init__(
        self,
        powercap_root: str | os.PathLike[str] | None = None,
        *,
        keys: Iterable[str] | None = None,
    ) -> None:
        self.root = Path(powercap_root or DEFAULT_POWERCAP_ROOT)
        self.discovery = discover(self.root)
        doms = self.discovery.domains
        if keys is not None and doms:
            wanted = set(keys)
            unknown = wanted - {d.key for d in doms}
            if unknown:
                raise MeterError(
                    f"RAPL domains {sorted(unknown)} are not under {self.root}",
                    f"present: {[d.key for d in doms]}",
                )
            doms = [d for d in doms if d.key in wanted]
        if not doms:
            where = "" if self.root.is_dir() else " (the directory does not exist)"
            raise absent(
                MeterError(f"no RAPL powercap zones under {self.root}{where}", absent_fix(self.root))
            )
        self._domains = doms
        self._files: list[tuple[str, str, KernelFile]] = []
        denied = []
        for d in doms:
            path = str(d.location)
            try:
                kf = KernelFile(path)
                int(kf.read())
                self._files.append((d.key, path, kf))
            except PermissionError:
                denied.append(path)
            except (OSError, ValueError) as exc:
                self.close()
                raise counter_error(d.key, f"cannot read {path}: {exc}") from exc
        if denied:
            self.close()
            raise PermissionDeniedError(
                "permission denied reading RAPL energy counters: " + ", ".join(denied),
                permission_fix(denied, self.root),
            )

    def domains(self) -> list[Domain]:
        return list(self._domains)

    def spec(self) -> dict[str, object]:
        return {"kind": "rapl", "root": str(self.root), "keys": [d.key for d in self._domains]}

    def read_raw(self) -> dict[str, float]:
        out = {}
        for key, path, kf in self._files:
            try:
                out[key] = int(kf.read()) / 1e6
            except PermissionError as exc:
                raise counter_error(
                    key, f"permission denied reading {path}", permission_fix([path], self.root)
                ) from exc
            except (OSError, ValueError) as exc:
                raise counter_error(key, f"cannot read {path}: {exc}") from exc
        return out

    def close(self) -> None:
        for _, _, kf in getattr(self, "_files", []):
            kf.close()
