from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from invitations.adapters.orm import invitations
from invitations.domain.model import Invitation, InvitationStatus
from invitations.service_layer.unit_of_work import InvitationPage, InvitationRepository


class SqlAlchemyInvitationRepository(InvitationRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, invitation: Invitation) -> None:
        self._session.add(invitation)

    async def get(self, invitation_id: uuid.UUID) -> Invitation | None:
        return await self._session.get(Invitation, invitation_id)

    async def list(
        self, *, status: InvitationStatus | None, limit: int, offset: int
    ) -> InvitationPage:
        where = [invitations.c.status == status] if status else []
        total = await self._session.scalar(
            select(func.count()).select_from(invitations).where(*where)
        )
        query = (
            select(Invitation)
            .where(*where)
            .order_by(invitations.c.created_at.desc(), invitations.c.id)
            .limit(limit)
            .offset(offset)
        )
        items = (await self._session.scalars(query)).all()
        return InvitationPage(items=items, total=total or 0)
