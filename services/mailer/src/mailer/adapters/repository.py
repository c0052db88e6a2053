from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailer.adapters.locks import KeyedLocks
from mailer.adapters.orm import emails
from mailer.domain.model import Email
from mailer.service_layer.unit_of_work import EmailRepository
from onboarding_shared.db import insert_for


class SqlAlchemyEmailRepository(EmailRepository):
    def __init__(self, session: AsyncSession, locks: KeyedLocks, held: AsyncExitStack) -> None:
        self._session = session
        self._locks = locks
        self._held = held  # closed when the unit of work ends

    async def add_if_absent(self, email: Email) -> None:
        insert = insert_for(self._session)
        values = {column.name: getattr(email, column.name) for column in emails.columns}
        await self._session.execute(
            insert(emails).values(values).on_conflict_do_nothing(index_elements=["source_event_id"])
        )

    async def lock_for_event(self, source_event_id: uuid.UUID) -> Email | None:
        query = select(Email).where(emails.c.source_event_id == source_event_id)
        if self._dialect == "postgresql":
            # A row lock: other deliveries of this event, in any replica, wait for this one.
            return (await self._session.scalars(query.with_for_update())).first()
        return await self._lock_in_process(source_event_id, query)

    async def _lock_in_process(self, source_event_id: uuid.UUID, query: Any) -> Email | None:
        """SQLite: every transaction holds the whole database's write lock (db.py), so holding
        one while the mail goes out would send one mail at a time. One process owns an SQLite
        file, so a lock in this process excludes every other delivery of the event; the
        transaction ends once the row is read, and the writes begin a new one at commit."""
        # What this unit wrote so far is committed first: waiting for the lock while holding
        # the database's would stall every other delivery, and the holder, who needs it to
        # record its outcome.
        await self._session.commit()
        await self._held.enter_async_context(self._locks.hold(source_event_id))
        email = (await self._session.scalars(query)).first()
        await self._session.commit()
        return email

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name
