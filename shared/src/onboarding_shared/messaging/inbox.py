"""Idempotent consumers: an event id is recorded in the same transaction as its effect."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, MetaData, String, Table, Uuid, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from onboarding_shared.db import UtcDateTime, utcnow


def define_inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("processed_at", UtcDateTime, nullable=False),
    )


async def claim_event(
    session: AsyncSession, table: Table, consumer: str, event_id: uuid.UUID
) -> bool:
    """Record the event as processed by ``consumer``; False when it already was.

    Call it first in the transaction that applies the effect: a concurrent duplicate then
    blocks on the primary key until this transaction ends, and fails if it committed.
    """
    seen = await session.execute(
        select(table.c.event_id).where(table.c.consumer == consumer, table.c.event_id == event_id)
    )
    if seen.first() is not None:
        return False
    try:
        await session.execute(
            insert(table).values(consumer=consumer, event_id=event_id, processed_at=utcnow())
        )
    except IntegrityError:
        return False  # the transaction is now unusable; the caller rolls it back
    return True
