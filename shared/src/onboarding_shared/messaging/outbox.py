"""Transactional outbox: events are rows written with the change that caused them, then relayed.

The relay takes due rows with ``FOR UPDATE SKIP LOCKED`` (so replicas share the work without
publishing a row twice at once), publishes them concurrently with confirms, and marks each one
published or schedules its next attempt with exponential backoff. It never gives up on a row.

Backoff is for a row that keeps failing on its own, not for an outage: once the broker is back
(a reconnection, or a publish that succeeds after failures) every pending row is due again at
once, so the outbox drains right away instead of row by row as their backoffs expire.

An event is held back (``hold_back``) while a queue that consumes it does not exist yet: published
then, it would be lost for that consumer even though another one's queue routed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onboarding_shared.contract.envelope import Envelope
from onboarding_shared.contract.events import spec_for_routing_key
from onboarding_shared.db import UtcDateTime, utcnow
from onboarding_shared.messaging.publisher import OutgoingMessage, Publisher
from onboarding_shared.observability import log_context
from onboarding_shared.tracing import continued_trace

log = logging.getLogger(__name__)


def define_outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("routing_key", String(255), nullable=False),
        Column("correlation_id", String(200), nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UtcDateTime, nullable=False),
        Column("last_error", String(500), nullable=True),
        # AMQP headers to publish with; today the W3C trace context of the work that wrote it.
        Column("headers", JSON, nullable=True),
        Index("ix_outbox_due", "published_at", "next_attempt_at"),
    )


def outbox_row(envelope: Envelope[Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    now = utcnow()
    return {
        "event_id": envelope.event_id,
        "event_type": envelope.event_type,
        "routing_key": envelope.routing_key,
        "correlation_id": envelope.correlation_id,
        "body": envelope.to_json(),
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
        "headers": headers,
    }


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 100
    poll_interval: float = 1.0
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    retention: timedelta = timedelta(days=7)
    last_pass_seconds: float = 5.0  # at most this long spent publishing while stopping


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    oldest_pending_age_seconds: float


# A row held back for a consumer queue that does not exist yet is tried again within this long,
# however often it was held: the consumer's service may start at any moment.
HOLD_BACK_MAX_SECONDS = 5.0

# Raises HeldBack when an event of this routing key must not be published yet.
HoldBack = Callable[[str], Awaitable[None]]


class HeldBack(Exception):
    """An event must wait, on purpose (e.g. a queue that consumes it is not declared yet)."""


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        table: Table,
        publisher: Publisher,
        settings: RelaySettings = RelaySettings(),
        *,
        hold_back: HoldBack | None = None,
    ) -> None:
        self._sessions = sessions
        self._table = table
        self._publisher = publisher
        self._settings = settings
        self._hold_back = hold_back
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        # Publishes failed, and none succeeded since: the broker is (probably) away.
        self._failing = False
        self._reset_requested = False

    def notify(self) -> None:
        """Tell the relay new rows were committed, so it need not wait for its next poll."""
        self._wakeup.set()

    def broker_returned(self) -> None:
        """The broker connection was re-established: every pending row is due now."""
        self._reset_requested = True
        self._wakeup.set()

    async def reset_backoff(self) -> int:
        """Make every pending row due now (an outage is over); return how many were waiting."""
        now = utcnow()
        table = self._table
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(table)
                .where(table.c.published_at.is_(None), table.c.next_attempt_at > now)
                .values(next_attempt_at=now)
            )
        reset = int(getattr(result, "rowcount", 0) or 0)
        if reset:
            log.info("broker back: pending outbox rows are due now", extra={"rows": reset})
        return reset

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Relay until stopped; the batch in hand when stop() is called is finished first, then
        one last pass takes what the service committed while stopping (its consumers' last
        handlers), so that it need not wait for the next start."""
        while not self._stopping.is_set():
            try:
                if self._reset_requested:
                    self._reset_requested = False
                    await self.reset_backoff()
                published = await self.relay_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                published = 0
            if published < self._settings.batch_size:
                await self._sleep(self._settings.poll_interval)
        await self._last_pass()

    async def _last_pass(self) -> None:
        try:
            async with asyncio.timeout(self._settings.last_pass_seconds):
                await self.relay_once()
        except Exception as error:  # the broker may be away: the rows wait for the next start
            log.warning(
                "outbox relay: last pass before stopping failed; rows wait for the next start",
                extra={"error": _describe(error)},
            )

    async def relay_once(self) -> int:
        """Publish one batch of due rows; return how many were published."""
        async with self._sessions() as session:
            if session.get_bind().dialect.name == "sqlite":
                outcomes = await self._relay_outside_the_transaction(session)
            else:
                # Replicas share the outbox: the rows stay locked (SKIP LOCKED) while published.
                async with session.begin():
                    rows = await self._take_due_rows(session)
                    outcomes = await self._publish_all(rows)
                    await self._record(session, rows, outcomes)
        return await self._settle(outcomes)

    async def _relay_outside_the_transaction(self, session: AsyncSession) -> list[object]:
        """SQLite: every transaction holds the database's one write lock (db.py), so holding
        one while publishing would make every request wait on the broker. One process owns an
        SQLite file, so no other relay can take these rows meanwhile."""
        async with session.begin():
            rows = await self._take_due_rows(session)
        outcomes = await self._publish_all(rows)
        if rows:
            async with session.begin():
                await self._record(session, rows, outcomes)
        return outcomes

    async def _publish_all(self, rows: Sequence[Any]) -> list[object]:
        if not rows:
            return []
        held = await self._held_back({row.routing_key for row in rows})
        return await asyncio.gather(
            *(self._publish(row, held.get(row.routing_key)) for row in rows),
            return_exceptions=True,
        )

    async def _settle(self, outcomes: Sequence[object]) -> int:
        """How many went out; and, once publishing works again, the end of the backoff."""
        published = sum(1 for outcome in outcomes if not isinstance(outcome, BaseException))
        failed = any(
            isinstance(outcome, BaseException) and not isinstance(outcome, HeldBack)
            for outcome in outcomes
        )
        if published and self._failing:
            # Publishing works again: what backed off during the outage need not wait more.
            self._failing = False
            await self.reset_backoff()
        elif failed and not published:
            self._failing = True
        return published

    async def _held_back(self, routing_keys: set[str]) -> dict[str, BaseException]:
        """Why each routing key must wait, if it must (asked once per batch and key). A check
        that cannot be made (the broker is away) fails those rows like a failed publish."""
        if self._hold_back is None:
            return {}
        keys = sorted(routing_keys)
        answers = await asyncio.gather(
            *(self._hold_back(key) for key in keys), return_exceptions=True
        )
        return {
            key: answer
            for key, answer in zip(keys, answers, strict=True)
            if isinstance(answer, BaseException)
        }

    async def _publish(self, row: Any, held: BaseException | None = None) -> None:
        # Its own task (gather), so the log and trace context stay with this row.
        with (
            log_context(event_id=str(row.event_id), correlation_id=row.correlation_id),
            continued_trace(row.headers),
        ):
            if held is not None:
                raise held
            await self._publisher.publish(_message(row))

    async def stats(self) -> OutboxStats:
        async with self._sessions() as session:
            pending, oldest = (
                await session.execute(
                    select(func.count(), func.min(self._table.c.created_at)).where(
                        self._table.c.published_at.is_(None)
                    )
                )
            ).one()
        age = (utcnow() - _aware(oldest)).total_seconds() if oldest else 0.0
        return OutboxStats(pending=pending, oldest_pending_age_seconds=max(age, 0.0))

    async def purge_published(self) -> int:
        cutoff = utcnow() - self._settings.retention
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(self._table).where(self._table.c.published_at < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def _take_due_rows(self, session: AsyncSession) -> Sequence[Any]:
        table = self._table
        query = (
            select(table)
            .where(table.c.published_at.is_(None), table.c.next_attempt_at <= utcnow())
            .order_by(table.c.id)
            .limit(self._settings.batch_size)
            .with_for_update(skip_locked=True)
        )
        return (await session.execute(query)).all()

    async def _record(
        self, session: AsyncSession, rows: Sequence[Any], outcomes: Sequence[object]
    ) -> None:
        now = utcnow()
        published = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
        if published:
            await session.execute(
                update(self._table).where(self._table.c.id.in_(published)).values(published_at=now)
            )
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                await self._schedule_retry(session, row, outcome, now)

    async def _schedule_retry(
        self, session: AsyncSession, row: Any, error: BaseException, now: Any
    ) -> None:
        attempts = row.attempts + 1
        delay = self._backoff(attempts)
        if isinstance(error, HeldBack):
            delay = min(delay, HOLD_BACK_MAX_SECONDS)
        log.warning(
            "outbox publish failed",
            extra={
                "event_id": str(row.event_id),
                "correlation_id": row.correlation_id,
                "attempts": attempts,
                "retry_in": delay,
                "error": _describe(error),
            },
        )
        await session.execute(
            update(self._table)
            .where(self._table.c.id == row.id)
            .values(
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=_describe(error)[:500],
            )
        )

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self._settings.backoff_max, self._settings.backoff_base * 2 ** (attempts - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()


def _message(row: Any) -> OutgoingMessage:
    spec = spec_for_routing_key(row.routing_key)
    return OutgoingMessage(
        body=row.body,
        routing_key=row.routing_key,
        message_id=str(row.event_id),
        correlation_id=row.correlation_id,
        message_type=row.event_type,
        headers=dict(row.headers or {}),
        mandatory=spec.mandatory if spec is not None else True,
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _aware(value: Any) -> Any:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
