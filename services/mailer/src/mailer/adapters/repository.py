from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailer.adapters.orm import emails
from mailer.domain.model import Email
from mailer.service_layer.unit_of_work import EmailRepository


class SqlAlchemyEmailRepository(EmailRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, email: Email) -> None:
        self._session.add(email)

    async def for_event(self, source_event_id: uuid.UUID) -> Email | None:
        query = select(Email).where(emails.c.source_event_id == source_event_id)
        return (await self._session.scalars(query)).first()
