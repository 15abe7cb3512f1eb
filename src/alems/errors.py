"""Typed errors a user can meet. Each carries the fix as text a user can act on."""

from __future__ import annotations


class AlemsError(Exception):
    """Base class: ``message`` says what is wrong, ``fix`` says what to do about it."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\nFix: {self.fix}"
        return self.message


class ConfigError(AlemsError):
    """A config key is unknown, ill-typed or inconsistent."""


class MeterError(AlemsError):
    """An energy meter cannot be used (absent, unreadable, dead).

    ``absent`` is True when there is simply no such hardware here (nothing is broken)."""

    absent: bool = False


class CounterReadError(MeterError):
    """One domain's counter could not be read, or went backwards after wrap correction.

    ``domain`` is the key of the domain it is about, when known."""

    domain: str | None = None


class PermissionDeniedError(MeterError):
    """RAPL ``energy_uj`` files are root-only (CVE-2020-8694 mitigation)."""


class ModelError(AlemsError):
    """A model is missing, or its file failed its sha256 check."""


class ProvenanceError(AlemsError):
    """Runs with different hashes were about to be mixed, or outputs changed."""


class LLMRuntimeError(AlemsError):
    """The LLM runtime cannot generate here: a native crash, a hang, or an unreachable server."""


class BenchmarkError(AlemsError):
    """A benchmark data set is unknown, not fetched, or failed its sha256 check."""
