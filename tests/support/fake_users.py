"""In-memory stand-ins for the users service's unit of work and ports."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from onboarding_shared.auth import BrowserSession, Principal
from tests.support.fakes import FakeMessagingUnitOfWork
from users.domain.avatars import Avatar
from users.domain.invitations import InvitationGrant
from users.domain.model import NewUser, User, UserStatus
from users.domain.passwords import PasswordPolicy
from users.domain.throttling import LoginThrottle, ThrottlePolicy
from users.service_layer.accounts import AccountPolicy
from users.service_layer.ports import IssuedToken, ProcessedImage
from users.service_layer.unit_of_work import (
    AvatarRepository,
    InvitationGrantRepository,
    ThrottleRepository,
    UserPage,
    UserRepository,
    UsersUnitOfWork,
)

ADMIN = Principal(user_id=uuid.uuid4(), roles=frozenset({"admin"}))
MEMBER = Principal(user_id=uuid.uuid4(), roles=frozenset({"user"}))


class FakeUserRepository(UserRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, User] = {}

    def add(self, user: User) -> None:
        self.rows[user.id] = user

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        return self.rows.get(user_id)

    async def find_by_login(self, login_key: str) -> User | None:
        return next(
            (u for u in self.rows.values() if login_key in (u.email_key, u.username_key)), None
        )

    async def email_taken(self, email_key: str, *, besides: uuid.UUID | None = None) -> bool:
        return any(u.email_key == email_key and u.id != besides for u in self.rows.values())

    async def username_taken(self, username_key: str, *, besides: uuid.UUID | None = None) -> bool:
        return any(u.username_key == username_key and u.id != besides for u in self.rows.values())

    async def find_by_password_link(self, link_hash: str) -> User | None:
        return next((u for u in self.rows.values() if u.password_link_hash == link_hash), None)

    async def any_admin(self) -> bool:
        return any(u.is_admin for u in self.rows.values())

    async def lock_admin_ids(self) -> set[uuid.UUID]:
        return {u.id for u in self.rows.values() if u.counts_as_admin}

    async def list(
        self, *, status: UserStatus | None, search: str | None, limit: int, offset: int
    ) -> UserPage:
        found = [u for u in self.rows.values() if status is None or u.status is status]
        found.sort(key=lambda u: (u.created_at, u.id), reverse=True)
        return UserPage(items=found[offset : offset + limit], total=len(found))


class FakeThrottleRepository(ThrottleRepository):
    def __init__(self) -> None:
        self.rows: dict[str, LoginThrottle] = {}

    async def get(self, key: str) -> LoginThrottle | None:
        return self.rows.get(key)

    async def lock_or_create(self, throttle: LoginThrottle) -> LoginThrottle:
        return self.rows.setdefault(throttle.key, throttle)


class FakeAvatarRepository(AvatarRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Avatar] = {}

    async def get(self, user_id: uuid.UUID) -> Avatar | None:
        return self.rows.get(user_id)

    async def put(self, avatar: Avatar) -> None:
        self.rows[avatar.user_id] = avatar

    async def delete(self, user_id: uuid.UUID) -> None:
        self.rows.pop(user_id, None)


class FakeInvitationGrantRepository(InvitationGrantRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, InvitationGrant] = {}

    def add(self, grant: InvitationGrant) -> None:
        self.rows[grant.invitation_id] = grant

    async def get(self, invitation_id: uuid.UUID) -> InvitationGrant | None:
        return self.rows.get(invitation_id)

    async def find_by_token_hash(
        self, token_hash: str, *, for_update: bool = False
    ) -> InvitationGrant | None:
        return next((g for g in self.rows.values() if g.token_hash == token_hash), None)


class FakeUsersUnitOfWork(FakeMessagingUnitOfWork, UsersUnitOfWork):
    """Changes to users stay only if committed: rollback restores the last committed state."""

    def __init__(self) -> None:
        super().__init__()
        self.fake_users = FakeUserRepository()
        self.users = self.fake_users
        self.throttles = FakeThrottleRepository()
        self.avatars = FakeAvatarRepository()
        self.fake_grants = FakeInvitationGrantRepository()
        self.grants = self.fake_grants
        self._saved: dict[uuid.UUID, User] = {}
        self._saved_grants: dict[uuid.UUID, InvitationGrant] = {}

    async def __aenter__(self) -> FakeUsersUnitOfWork:
        self._save()
        return self

    async def commit(self) -> None:
        await super().commit()
        self._save()

    async def rollback(self) -> None:
        await super().rollback()
        self.fake_users.rows = copy.deepcopy(self._saved)
        self.fake_grants.rows = copy.deepcopy(self._saved_grants)

    def _save(self) -> None:
        self._saved = copy.deepcopy(self.fake_users.rows)
        self._saved_grants = copy.deepcopy(self.fake_grants.rows)


class FakeHasher:
    """Reversible on purpose: the tests check what was hashed, never the real algorithm."""

    async def hash(self, password: str) -> str:
        return f"hashed:{password}"

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash == f"hashed:{password}"


@dataclass(frozen=True)
class IssuedSession:
    user_id: uuid.UUID
    roles: tuple[str, ...]
    session: BrowserSession
    expires_at: datetime


class FakeTokens:
    def __init__(self) -> None:
        self.sessions: list[IssuedSession] = []

    def issue(self, user: User) -> IssuedToken:
        return IssuedToken(access_token=f"token-for-{user.id}", expires_in=3600)

    def issue_session(
        self, user: User, session: BrowserSession, *, expires_at: datetime
    ) -> IssuedToken:
        """Records what it was asked for; the token names its user and session."""
        self.sessions.append(IssuedSession(user.id, tuple(user.roles), session, expires_at))
        return IssuedToken(access_token=f"session-{len(self.sessions)}-for-{user.id}", expires_in=0)


class FakeImages:
    def __init__(self) -> None:
        self.seen: list[bytes] = []

    async def normalise(self, data: bytes) -> ProcessedImage:
        self.seen.append(data)
        return ProcessedImage(b"png:" + data, "image/png")


class FixedSmtpStatus:
    def __init__(self, configured: bool | None) -> None:
        self.configured = configured

    def smtp_configured(self) -> bool | None:
        return self.configured


def event_types(published: Sequence[object]) -> list[str]:
    return [getattr(event, "event_type", "") for event in published]


# What the use-case tests share: the workspace's rules and one person to create.
POLICY = AccountPolicy(
    passwords=PasswordPolicy(min_length=10),
    workspace_name="Acme Chat",
    public_url="https://chat.acme.test",
    password_link_ttl=timedelta(hours=72),
)
ADA = NewUser(email="ada@example.com", name="Ada", username="ada", password="Analytical-1")
THROTTLING = ThrottlePolicy(max_failures_per_account=3, max_failures_per_address=5)
