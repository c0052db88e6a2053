"""Idempotent consumers: an event id is recorded in the same transaction as its effect."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, MetaData, String, Table, Uuid
from sqlalchemy.ext.asyncio import AsyncSession

from onboarding_shared.db import UtcDateTime, insert_for, utcnow


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
    blocks on the primary key until this transaction ends, and finds the record if it
    committed. One statement (no read first), and a duplicate leaves the transaction usable.
    """
    claim = (
        insert_for(session)(table)
        .values(consumer=consumer, event_id=event_id, processed_at=utcnow())
        .on_conflict_do_nothing(index_elements=[table.c.consumer, table.c.event_id])
        .returning(table.c.event_id)
    )
    return (await session.execute(claim)).first() is not None
