from __future__ import annotations

from typing import Self

from invitations.adapters.repository import (
    SqlAlchemyImportRepository,
    SqlAlchemyInvitationRepository,
    SqlAlchemyInviterSettingsRepository,
    SqlAlchemyLinkRepository,
    SqlAlchemyMemberRepository,
    SqlAlchemyQuotaRepository,
)
from invitations.service_layer.unit_of_work import InvitationsUnitOfWork
from onboarding_shared.unit_of_work import SqlAlchemyUnitOfWork


class SqlAlchemyInvitationsUnitOfWork(SqlAlchemyUnitOfWork, InvitationsUnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.invitations = SqlAlchemyInvitationRepository(self.session)
        self.members = SqlAlchemyMemberRepository(self.session)
        self.quotas = SqlAlchemyQuotaRepository(self.session)
        self.inviter_settings = SqlAlchemyInviterSettingsRepository(self.session)
        self.imports = SqlAlchemyImportRepository(self.session)
        self.links = SqlAlchemyLinkRepository(self.session)
        return self
