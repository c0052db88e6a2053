from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mailer.adapters.orm import emails
from mailer.domain.model import Email
from mailer.service_layer.unit_of_work import EmailRepository


class SqlAlchemyEmailRepository(EmailRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_if_absent(self, email: Email) -> None:
        insert: Any = postgresql_insert if self._dialect == "postgresql" else sqlite_insert
        values = {column.name: getattr(email, column.name) for column in emails.columns}
        await self._session.execute(
            insert(emails).values(values).on_conflict_do_nothing(index_elements=["source_event_id"])
        )

    async def lock_for_event(self, source_event_id: uuid.UUID) -> Email | None:
        query = select(Email).where(emails.c.source_event_id == source_event_id).with_for_update()
        return (await self._session.scalars(query)).first()

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name
