"""The unit of work every service builds on: one transaction for a change, its events and,
for consumers, the record that the incoming event was processed."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onboarding_shared.contract.envelope import Envelope, EventData, new_event
from onboarding_shared.messaging.inbox import claim_event
from onboarding_shared.messaging.outbox import outbox_row
from onboarding_shared.observability import USE_CASES_GROUPED
from onboarding_shared.tracing import current_trace_headers

if TYPE_CHECKING:
    from onboarding_shared.messaging.queues import QueueDefinition

log = logging.getLogger(__name__)

_GROUPED = USE_CASES_GROUPED.labels(how="grouped")
_ALONE = USE_CASES_GROUPED.labels(how="alone")
_REGROUPED_ALONE = USE_CASES_GROUPED.labels(how="regrouped_alone")


class AbstractUnitOfWork(abc.ABC):
    """What the service layer sees. Each service adds its repositories."""

    producer: str
    # Inside a group (GroupedUnitsOfWork): the transaction is the group's, not the use case's.
    _joined = False

    @contextlib.contextmanager
    def joined(self) -> Iterator[Self]:
        """Inside, the use cases' own `async with uow`, commit and rollback are left to the
        caller, who runs several of them in this one transaction and commits once."""
        self._joined = True
        try:
            yield self
        finally:
            self._joined = False

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
        if self._joined:
            return self
        self.session = self._sessions()
        self._staged = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._joined:
            return  # an error goes on up to the group, which rolls everything back
        await self.rollback()
        await self.session.close()

    def _stage(self, envelope: Envelope[Any]) -> None:
        self._staged.append(envelope)

    async def claim(self, consumer: str, event_id: uuid.UUID) -> bool:
        return await claim_event(self.session, self._tables.inbox, consumer, event_id)

    async def commit(self) -> None:
        if self._joined:
            return  # the group commits, once, after its last use case
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
        if self._joined:
            # Undoing one use case would undo the others: the group is abandoned instead, and
            # each of its use cases runs alone.
            raise GroupAbandoned("a use case rolled back inside a group")
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


class GroupAbandoned(Exception):
    """A group's transaction failed or was given up: each of its use cases runs alone."""


ALONE = "alone"  # the reason when there was nothing to group with


class GroupedUnitsOfWork(Generic[UnitOfWorkT]):
    """Use cases of messages in hand at the same moment, run one after the other in one
    transaction: one BEGIN and one COMMIT (one fsync on SQLite) for the lot, where each had its
    own. For consumers whose use cases are once_per_event: each still claims its event in the
    same transaction as its effect, so grouping changes no guarantee.

    A use case waits for the group being committed, if any, then joins the next one; one that
    finds no other waiting runs alone at once, as it would without grouping, so a quiet queue
    pays nothing. If the group fails for any reason (one bad message, a deadlock, the database
    away), it is rolled back and every one of its use cases runs again alone: its own outcome,
    retry or parking is then exactly what it would have been. What a use case does besides the
    database (metrics, memory) belongs after run() returns, when its effect is committed."""

    def __init__(self, units_of_work: Callable[[], UnitOfWorkT], *, max_size: int = 64) -> None:
        self._units_of_work = units_of_work
        self._max_size = max_size
        self._waiting: list[tuple[Callable[[UnitOfWorkT], Awaitable[Any]], asyncio.Future[Any]]]
        self._waiting = []
        self._grouping: asyncio.Task[None] | None = None

    async def run(self, use_case: Callable[[UnitOfWorkT], Awaitable[ResultT]]) -> ResultT:
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((use_case, future))
        if self._grouping is None or self._grouping.done():
            self._grouping = asyncio.create_task(self._run_groups())
        try:
            result = await future
        except GroupAbandoned as abandoned:
            (_ALONE if abandoned.args == (ALONE,) else _REGROUPED_ALONE).inc()
            return await use_case(self._units_of_work())
        _GROUPED.inc()
        return result

    async def _run_groups(self) -> None:
        # The deliveries that arrived with this one are running up to their run() call now.
        await asyncio.sleep(0)
        group: list[tuple[Any, asyncio.Future[Any]]] = []
        try:
            while self._waiting:
                group = [entry for entry in self._waiting[: self._max_size] if not entry[1].done()]
                del self._waiting[: self._max_size]
                if len(group) >= 2:  # alone, nothing is shared: run as without grouping
                    await self._run_group(group)
                _settle(group, GroupAbandoned(ALONE))
        finally:  # cancelled (the process is stopping): nobody is left waiting for nothing
            _settle([*group, *self._waiting], GroupAbandoned("stopping"))

    async def _run_group(self, group: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._commit_together([use_case for use_case, _ in group])
        except Exception as error:  # whatever it was, each use case meets it again alone
            log.info(
                "a group of use cases failed; each runs alone",
                extra={"size": len(group), "error": type(error).__name__},
            )
            _settle(group, GroupAbandoned(type(error).__name__))
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _commit_together(
        self, use_cases: list[Callable[[UnitOfWorkT], Awaitable[Any]]]
    ) -> list[Any]:
        uow = self._units_of_work()
        async with uow:
            with uow.joined():
                results = [await use_case(uow) for use_case in use_cases]
            await uow.commit()
        return results


def _settle(group: Sequence[tuple[Any, asyncio.Future[Any]]], error: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(error)
