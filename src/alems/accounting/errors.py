"""The error accounting raises when its inputs break their data contract."""

from __future__ import annotations

from alems.errors import AlemsError


class AccountingInputError(AlemsError):
    """The samples, events or outcomes handed to accounting break their data contract."""
