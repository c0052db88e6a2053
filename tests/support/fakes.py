"""In-memory stand-ins for the unit of work's messaging side, shared by every service's fakes."""

from __future__ import annotations

import uuid
from typing import Any

from onboarding_shared.contract import Envelope
from onboarding_shared.unit_of_work import AbstractUnitOfWork


class FakeMessagingUnitOfWork(AbstractUnitOfWork):
    """Subclass it and add fake repositories. Events count only once committed."""

    producer = "tests"

    def __init__(self) -> None:
        self.published: list[Envelope[Any]] = []
        self.processed: set[tuple[str, uuid.UUID]] = set()
        self.commits = 0
        self._staged: list[Envelope[Any]] = []
        self._claimed: set[tuple[str, uuid.UUID]] = set()

    def _stage(self, envelope: Envelope[Any]) -> None:
        self._staged.append(envelope)

    async def claim(self, consumer: str, event_id: uuid.UUID) -> bool:
        key = (consumer, event_id)
        if key in self.processed or key in self._claimed:
            return False
        self._claimed.add(key)
        return True

    async def commit(self) -> None:
        self.published.extend(self._staged)
        self.processed |= self._claimed
        self._staged, self._claimed = [], set()
        self.commits += 1

    async def rollback(self) -> None:
        self._staged, self._claimed = [], set()

    def events(self, event_type: str) -> list[Envelope[Any]]:
        return [e for e in self.published if e.event_type == event_type]
