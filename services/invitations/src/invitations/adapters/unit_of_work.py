from __future__ import annotations

from invitations.adapters.repository import (
    SqlAlchemyImportRepository,
    SqlAlchemyInvitationRepository,
    SqlAlchemyInviterSettingsRepository,
    SqlAlchemyLinkRepository,
    SqlAlchemyMemberRepository,
    SqlAlchemyQuotaRepository,
)
from invitations.service_layer.unit_of_work import InvitationsUnitOfWork
from onboarding_shared.orm import RepositoriesUnitOfWork, SessionBound


class SqlAlchemyInvitationsUnitOfWork(RepositoriesUnitOfWork, InvitationsUnitOfWork):
    invitations = SessionBound(SqlAlchemyInvitationRepository)
    members = SessionBound(SqlAlchemyMemberRepository)
    quotas = SessionBound(SqlAlchemyQuotaRepository)
    inviter_settings = SessionBound(SqlAlchemyInviterSettingsRepository)
    imports = SessionBound(SqlAlchemyImportRepository)
    links = SessionBound(SqlAlchemyLinkRepository)
