from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from onboarding_shared.unit_of_work import AbstractUnitOfWork
from users.domain.audit import AuditAction, AuditEntry, TargetKind
from users.domain.avatars import Avatar
from users.domain.invitations import InvitationGrant
from users.domain.invite_links import InviteLinkGrant
from users.domain.model import User, UserStatus
from users.domain.throttling import LoginThrottle


@dataclass(frozen=True)
class UserPage:
    items: Sequence[User]
    total: int


class DuplicateField(Exception):
    """Another account already has this email and/or username."""

    def __init__(self, *fields: str) -> None:
        super().__init__(", ".join(fields) + " already in use")
        self.fields = fields


class UserRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, user: User) -> None: ...

    @abc.abstractmethod
    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None: ...

    @abc.abstractmethod
    async def find_by_login(self, login_key: str) -> User | None:
        """The account whose lower-cased email or username is ``login_key``."""

    @abc.abstractmethod
    async def email_taken(self, email_key: str, *, besides: uuid.UUID | None = None) -> bool: ...

    @abc.abstractmethod
    async def username_taken(
        self, username_key: str, *, besides: uuid.UUID | None = None
    ) -> bool: ...

    @abc.abstractmethod
    async def find_by_password_link(self, link_hash: str) -> User | None:
        """The account holding this link, locked until the unit of work ends."""

    @abc.abstractmethod
    async def any_admin(self) -> bool: ...

    @abc.abstractmethod
    async def lock_admin_ids(self) -> set[uuid.UUID]:
        """The admins who can log in, their rows locked (in id order) until the unit of work
        ends, so two admins cannot demote each other at the same time."""

    @abc.abstractmethod
    async def list(
        self, *, status: UserStatus | None, search: str | None, limit: int, offset: int
    ) -> UserPage: ...


class ThrottleRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, key: str) -> LoginThrottle | None: ...

    @abc.abstractmethod
    async def lock_or_create(self, throttle: LoginThrottle) -> LoginThrottle:
        """The stored throttle for ``throttle.key`` (created from ``throttle`` if none), locked
        until the unit of work ends, so concurrent failures all count."""


class AvatarRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, user_id: uuid.UUID) -> Avatar | None: ...

    @abc.abstractmethod
    async def put(self, avatar: Avatar) -> None: ...

    @abc.abstractmethod
    async def delete(self, user_id: uuid.UUID) -> None: ...


class InvitationGrantRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, grant: InvitationGrant) -> None: ...

    @abc.abstractmethod
    async def get(self, invitation_id: uuid.UUID) -> InvitationGrant | None:
        """The grant, locked until the unit of work ends."""

    @abc.abstractmethod
    async def find_by_token_hash(
        self, token_hash: str, *, for_update: bool = False
    ) -> InvitationGrant | None: ...


class InviteLinkGrantRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, grant: InviteLinkGrant) -> None: ...

    @abc.abstractmethod
    async def get(self, link_id: uuid.UUID) -> InviteLinkGrant | None:
        """The link's grant, locked until the unit of work ends."""

    @abc.abstractmethod
    async def find_by_token_hash(
        self, token_hash: str, *, for_update: bool = False
    ) -> InviteLinkGrant | None:
        """The grant whose current token has this hash; ``for_update`` locks it until the unit
        of work ends (on SQLite the transaction holds the database's write lock anyway), so
        concurrent redemptions count their uses one after the other."""


@dataclass(frozen=True)
class AuditQuery:
    action: AuditAction | None = None
    actor_id: uuid.UUID | None = None
    target_id: uuid.UUID | None = None
    search: str | None = None  # part of the target's label (an address, a username)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class AuditPage:
    items: Sequence[AuditEntry]
    total: int


class AuditRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, entry: AuditEntry) -> None: ...

    @abc.abstractmethod
    async def has_entries(self, kind: TargetKind, target_id: uuid.UUID) -> bool: ...

    @abc.abstractmethod
    async def label_of(self, kind: TargetKind, target_id: uuid.UUID) -> str | None:
        """The label of the target's latest entry that has one."""

    @abc.abstractmethod
    async def page(self, query: AuditQuery) -> AuditPage:
        """Newest first."""


class UsersUnitOfWork(AbstractUnitOfWork):
    users: UserRepository
    throttles: ThrottleRepository
    avatars: AvatarRepository
    grants: InvitationGrantRepository
    links: InviteLinkGrantRepository
    audit: AuditRepository
