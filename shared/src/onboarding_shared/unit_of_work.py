"""The unit of work every service builds on: one transaction for a change, its events and,
for consumers, the record that the incoming event was processed."""

from __future__ import annotations

import abc
import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onboarding_shared.contract.envelope import Envelope, EventData, new_event
from onboarding_shared.messaging.inbox import claim_event
from onboarding_shared.messaging.outbox import outbox_row
from onboarding_shared.tracing import current_trace_headers

if TYPE_CHECKING:
    from onboarding_shared.messaging.queues import QueueDefinition


class AbstractUnitOfWork(abc.ABC):
    """What the service layer sees. Each service adds its repositories."""

    producer: str

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.rollback()

    def emit(self, data: EventData) -> Envelope[Any]:
        """Queue an event to be written to the outbox when (and only if) the work commits."""
        envelope = new_event(data, producer=self.producer)
        self._stage(envelope)
        return envelope

    @abc.abstractmethod
    def _stage(self, envelope: Envelope[Any]) -> None: ...

    @abc.abstractmethod
    async def claim(self, consumer: str, event_id: uuid.UUID) -> bool:
        """Mark an incoming event processed by ``consumer``; False if it was already."""

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    session: AsyncSession

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        *,
        producer: str,
        on_commit: Callable[[], None] = lambda: None,
        on_events: Callable[[Sequence[Envelope[Any]]], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._tables = tables
        self.producer = producer
        self._on_commit = on_commit
        # Told what was committed: metrics count domain facts once they are facts.
        self._on_events = on_events
        self._staged: list[Envelope[Any]] = []

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        self._staged = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.rollback()
        await self.session.close()

    def _stage(self, envelope: Envelope[Any]) -> None:
        self._staged.append(envelope)

    async def claim(self, consumer: str, event_id: uuid.UUID) -> bool:
        return await claim_event(self.session, self._tables.inbox, consumer, event_id)

    async def commit(self) -> None:
        if self._staged:
            # The relay publishes later, elsewhere: the row keeps this trace for the consumer.
            headers = current_trace_headers()
            await self.session.execute(
                insert(self._tables.outbox),
                [outbox_row(envelope, headers) for envelope in self._staged],
            )
        await self.session.commit()
        committed, self._staged = self._staged, []
        if committed:
            self._on_commit()
            if self._on_events is not None:
                self._on_events(committed)

    async def rollback(self) -> None:
        self._staged = []
        # Detach what was loaded first, so results read in this unit stay usable after it.
        self.session.expunge_all()
        await self.session.rollback()


UnitOfWorkT = TypeVar("UnitOfWorkT", bound=AbstractUnitOfWork)
EnvelopeT = TypeVar("EnvelopeT", bound=Envelope[Any])
ResultT = TypeVar("ResultT")
P = ParamSpec("P")


def once_per_event(
    queue: QueueDefinition,
) -> Callable[
    [Callable[Concatenate[UnitOfWorkT, EnvelopeT, P], Awaitable[ResultT]]],
    Callable[Concatenate[UnitOfWorkT, EnvelopeT, P], Awaitable[ResultT | None]],
]:
    """Apply a handler's effect at most once per event delivered on ``queue``: in one
    transaction with the inbox record (keyed by the queue's name), committed together when the
    handler returns. A redelivery, or a concurrent duplicate, finds the record, changes nothing
    and gets None."""

    def decorate(
        handle: Callable[Concatenate[UnitOfWorkT, EnvelopeT, P], Awaitable[ResultT]],
    ) -> Callable[Concatenate[UnitOfWorkT, EnvelopeT, P], Awaitable[ResultT | None]]:
        @functools.wraps(handle)
        async def handle_once(
            uow: UnitOfWorkT, event: EnvelopeT, /, *args: P.args, **kwargs: P.kwargs
        ) -> ResultT | None:
            async with uow:
                if not await uow.claim(queue.name, event.event_id):
                    return None
                result = await handle(uow, event, *args, **kwargs)
                await uow.commit()
                return result

        return handle_once

    return decorate
