"""What the use cases need from the outside world, besides the unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auth_listener.domain.model import AccountState, Identifier


class AccountReader(Protocol):
    """The busy path's read, outside any unit of work: one statement, no transaction of ours,
    no lock, nothing written. Only ever used to conclude that there is nothing to do (the
    account is active or deactivated); anything else is decided again in a unit of work."""

    async def state_of(self, identifiers: Sequence[Identifier]) -> AccountState | None:
        """Id and status of the account the most specific identifier names, as committed."""
