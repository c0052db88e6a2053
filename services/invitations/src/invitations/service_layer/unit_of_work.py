from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from invitations.domain.model import Invitation, InvitationStatus
from onboarding_shared.unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class InvitationPage:
    items: Sequence[Invitation]
    total: int


class InvitationRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, invitation: Invitation) -> None: ...

    @abc.abstractmethod
    async def get(self, invitation_id: uuid.UUID) -> Invitation | None: ...

    @abc.abstractmethod
    async def list(
        self, *, status: InvitationStatus | None, limit: int, offset: int
    ) -> InvitationPage: ...


class InvitationsUnitOfWork(AbstractUnitOfWork):
    invitations: InvitationRepository
