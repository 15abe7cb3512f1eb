"""What a running session keeps on disk so that a killed run loses nothing: the spool.

While a :class:`~alems.session.Session` runs, its directory holds, next to the lock::

    DIR/.session.json            written at start: host, pid, hashes, baseline, idle power,
                                 meter, settings and the run.json extras (alems track's call)
    DIR/.events.jsonl.partial    the event log, one flushed line per event (alems.agents.events)
    DIR/.outcomes.jsonl          one flushed line per attempt of each goal execution that ended
    DIR/.sampler/                the sampler's journal: every row as it is read
                                 (alems.energy.sampler.replay_journal)

Once ``run.json`` is written the spool is removed. A run killed before that (``kill -9``,
a power cut) leaves it, and :func:`alems.session.recover.recover` turns it into the four
files with ``status: killed``. A new session refuses a directory with a spool, so nothing
in it is ever deleted unseen.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from alems.agents.executors import AttemptOutcome
from alems.io import atomic_write_json

HEADER = ".session.json"
OUTCOMES = ".outcomes.jsonl"
SAMPLER = ".sampler"
EVENTS_PARTIAL = ".events.jsonl.partial"
SPOOL_SCHEMA = "alems.session-spool/1"


@dataclass(frozen=True)
class Spool:
    """The spool paths of one session directory."""

    directory: Path

    @property
    def header(self) -> Path:
        return self.directory / HEADER

    @property
    def outcomes(self) -> Path:
        return self.directory / OUTCOMES

    @property
    def sampler(self) -> Path:
        return self.directory / SAMPLER

    @property
    def events(self) -> Path:
        return self.directory / EVENTS_PARTIAL

    def present(self) -> list[Path]:
        """The spool entries that exist (a killed run's, when no run.json is there)."""
        return [p for p in (self.header, self.events, self.outcomes, self.sampler) if p.exists()]

    def write_header(self, header: Mapping[str, Any]) -> None:
        atomic_write_json(self.header, {"schema": SPOOL_SCHEMA, **header})

    def read_header(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.header.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def open_outcomes(self) -> TextIO:
        return open(self.outcomes, "a", encoding="utf-8")

    def read_outcomes(self) -> list[AttemptOutcome]:
        """The outcomes of the goal executions that ended (a torn last line is dropped)."""
        try:
            lines = self.outcomes.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(AttemptOutcome(**json.loads(line)))
            except (ValueError, TypeError):
                break  # only the last line can be torn (each line is written and flushed whole)
        return out

    def remove(self) -> None:
        """Remove the spool (once run.json holds everything it had)."""
        for p in (self.header, self.outcomes, self.events):
            p.unlink(missing_ok=True)
        shutil.rmtree(self.sampler, ignore_errors=True)


def write_outcomes(fh: TextIO, outcomes: Iterable[AttemptOutcome]) -> None:
    """Append one goal execution's attempt outcomes as one write, flushed to the kernel."""
    fh.write("".join(json.dumps(asdict(o), ensure_ascii=False) + "\n" for o in outcomes))
    fh.flush()  # in the kernel's page cache: a killed process loses none of it (no fsync per goal)


__all__ = ["EVENTS_PARTIAL", "HEADER", "OUTCOMES", "SAMPLER", "Spool", "write_outcomes"]
