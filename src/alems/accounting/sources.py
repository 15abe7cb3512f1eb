"""Where an energy figure came from: the ``energy_source`` label (``measured``/``modeled``/``mixed``).

A sum is ``measured`` when every summed domain is measured, ``modeled`` when every one
is modeled, ``mixed`` otherwise; :func:`contains_modeled` tells tables and figures when
to say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alems.energy.base import Domain, summable_keys


def combine_sources(sources: Iterable[str]) -> str:
    """``measured`` / ``modeled`` when all agree, ``mixed`` otherwise (``mixed`` is sticky)."""
    seen = {str(s) for s in sources if isinstance(s, str) and s}
    if not seen:
        return "unknown"
    if seen == {"measured"}:
        return "measured"
    if seen == {"modeled"}:
        return "modeled"
    return "mixed"


def contains_modeled(sources: str | Iterable[str]) -> bool:
    """True when any of ``sources`` (labels as in ``energy_source``) involves modeled energy."""
    if isinstance(sources, str):
        sources = [sources]
    return any(s in ("modeled", "mixed") for s in sources)


def energy_source_of(domains: Sequence[Domain], keys: Sequence[str] | None = None) -> str:
    """The ``energy_source`` label of a sum over ``keys`` (default: the summable keys)."""
    keys = list(summable_keys(domains) if keys is None else keys)
    by_key = {d.key: d for d in domains}
    return combine_sources(by_key[k].source for k in keys)
