"""What every service's adapters share around SQLAlchemy: the tables each database has besides
its own, repositories over the unit of work's session, and the unit of work that makes them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from sqlalchemy import MetaData, Select, Table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry

from onboarding_shared.db import map_once, new_metadata
from onboarding_shared.messaging.inbox import define_inbox_table
from onboarding_shared.messaging.outbox import define_outbox_table
from onboarding_shared.unit_of_work import MessagingTables, SqlAlchemyUnitOfWork

EntityT = TypeVar("EntityT")
RepositoryT = TypeVar("RepositoryT")
SelectT = TypeVar("SelectT", bound=Select[Any])


@dataclass(frozen=True)
class ServiceTables:
    """A service's database: its MetaData, already holding the outbox and inbox every service
    has, and the registry its domain classes are mapped with."""

    metadata: MetaData
    mapper_registry: registry
    messaging: MessagingTables

    def map(self, *mappings: tuple[type[Any], Table]) -> None:
        map_once(self.mapper_registry, *mappings)


def service_tables() -> ServiceTables:
    metadata = new_metadata()
    return ServiceTables(
        metadata=metadata,
        mapper_registry=registry(metadata=metadata),
        messaging=MessagingTables(
            outbox=define_outbox_table(metadata), inbox=define_inbox_table(metadata)
        ),
    )


def locked(query: SelectT) -> SelectT:
    """The rows locked until the transaction ends, and read as the previous holder of the lock
    left them: without populate_existing the session would hand back the objects it already
    holds, as they were before the wait."""
    return query.with_for_update().execution_options(populate_existing=True)


class SessionRepository:
    """A repository over the session of the unit of work that made it."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session


class AddingRepository(SessionRepository, Generic[EntityT]):
    """A repository of new domain objects: added to the session, written at commit."""

    def add(self, entity: EntityT) -> None:
        self._session.add(entity)


class SessionBound(Generic[RepositoryT]):
    """A repository attribute of a RepositoriesUnitOfWork, made anew on the session of each
    unit it begins. Declared as a descriptor (not assigned in __aenter__) so that mypy checks it
    against the attribute's type in the service layer's unit of work."""

    def __init__(self, make: Callable[[AsyncSession], RepositoryT]) -> None:
        self.make = make
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, uow: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, uow: object, owner: type[Any]) -> RepositoryT: ...

    def __get__(self, uow: object | None, owner: type[Any]) -> RepositoryT | Self:
        if uow is None:
            return self
        # Reached only before the unit begins: __aenter__ shadows it with the repository.
        raise AttributeError(f"{self._name}: a repository exists only inside `async with uow`")


class RepositoriesUnitOfWork(SqlAlchemyUnitOfWork):
    """A unit of work whose repositories are its SessionBound attributes."""

    _repositories: ClassVar[dict[str, SessionBound[Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._repositories = {
            name: bound
            for name in dir(cls)
            if isinstance(bound := inspect.getattr_static(cls, name), SessionBound)
        }

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        for name, bound in self._repositories.items():
            setattr(self, name, bound.make(self.session))
        return self
