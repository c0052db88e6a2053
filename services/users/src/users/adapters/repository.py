from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select

from onboarding_shared.db import insert_for
from onboarding_shared.orm import AddingRepository, SessionRepository, locked
from users.adapters.orm import (
    audit_entries,
    avatars,
    invitation_grants,
    invite_link_grants,
    login_throttles,
    users,
)
from users.domain import rules
from users.domain.audit import AuditEntry, TargetKind
from users.domain.avatars import Avatar
from users.domain.invitations import InvitationGrant
from users.domain.invite_links import InviteLinkGrant
from users.domain.model import User, UserStatus
from users.domain.throttling import LoginThrottle
from users.service_layer.unit_of_work import (
    AuditPage,
    AuditQuery,
    AuditRepository,
    AvatarRepository,
    InvitationGrantRepository,
    InviteLinkGrantRepository,
    ThrottleRepository,
    UserPage,
    UserRepository,
)


class SqlAlchemyUserRepository(AddingRepository[User], UserRepository):
    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        query = select(User).where(users.c.id == user_id)
        return (await self._session.scalars(locked(query) if for_update else query)).first()

    async def find_by_login(self, login_key: str) -> User | None:
        query = select(User).where(
            or_(users.c.email_key == login_key, users.c.username_key == login_key)
        )
        # An email never matches a username (no @ allowed there): at most one row.
        return (await self._session.scalars(query.limit(1))).first()

    async def email_taken(self, email_key: str, *, besides: uuid.UUID | None = None) -> bool:
        return await self._taken(users.c.email_key == email_key, besides)

    async def username_taken(self, username_key: str, *, besides: uuid.UUID | None = None) -> bool:
        return await self._taken(users.c.username_key == username_key, besides)

    async def _taken(self, condition: Any, besides: uuid.UUID | None) -> bool:
        where = [condition] if besides is None else [condition, users.c.id != besides]
        return bool(await self._session.scalar(select(exists().where(*where))))

    async def find_by_password_link(self, link_hash: str) -> User | None:
        query = locked(select(User).where(users.c.password_link_hash == link_hash))
        return (await self._session.scalars(query)).first()

    async def any_admin(self) -> bool:
        return bool(await self._session.scalar(select(exists().where(users.c.is_admin))))

    async def lock_admin_ids(self) -> set[uuid.UUID]:
        query = (
            select(users.c.id)
            .where(users.c.is_admin, users.c.status != UserStatus.DEACTIVATED)
            .order_by(users.c.id)
            .with_for_update()
        )
        return set((await self._session.scalars(query)).all())

    async def list(
        self, *, status: UserStatus | None, search: str | None, limit: int, offset: int
    ) -> UserPage:
        where: list[Any] = []
        if status is not None:
            where.append(users.c.status == status)
        if search:
            # Compared as the keys are stored: NFKC, lower-cased.
            pattern = "%" + _escape_like(rules.search_key(search)) + "%"
            where.append(
                or_(
                    func.lower(users.c.name).like(pattern, escape="\\"),
                    users.c.username_key.like(pattern, escape="\\"),
                    users.c.email_key.like(pattern, escape="\\"),
                )
            )
        total = await self._session.scalar(select(func.count()).select_from(users).where(*where))
        query = (
            select(User)
            .where(*where)
            # The id breaks ties, so pages never repeat or skip an account.
            .order_by(users.c.created_at.desc(), users.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = (await self._session.scalars(query)).all()
        return UserPage(items=items, total=total or 0)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlAlchemyThrottleRepository(SessionRepository, ThrottleRepository):
    async def get(self, key: str) -> LoginThrottle | None:
        return await self._session.get(LoginThrottle, key)

    async def lock_or_create(self, throttle: LoginThrottle) -> LoginThrottle:
        insert = insert_for(self._session)
        await self._session.execute(
            insert(login_throttles)
            .values(
                key=throttle.key,
                failures=throttle.failures,
                window_started_at=throttle.window_started_at,
                blocked_until=throttle.blocked_until,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        query = locked(select(LoginThrottle).where(login_throttles.c.key == throttle.key))
        return (await self._session.scalars(query)).one()


class SqlAlchemyAvatarRepository(SessionRepository, AvatarRepository):
    async def get(self, user_id: uuid.UUID) -> Avatar | None:
        row = (
            await self._session.execute(select(avatars).where(avatars.c.user_id == user_id))
        ).first()
        if row is None:
            return None
        return Avatar(row.user_id, row.content, row.media_type, row.etag, row.updated_at)

    async def put(self, avatar: Avatar) -> None:
        insert = insert_for(self._session)
        values = {
            "user_id": avatar.user_id,
            "content": avatar.content,
            "media_type": avatar.media_type,
            "etag": avatar.etag,
            "updated_at": avatar.updated_at,
        }
        statement = insert(avatars).values(values)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id"],
                set_={name: statement.excluded[name] for name in values if name != "user_id"},
            )
        )

    async def delete(self, user_id: uuid.UUID) -> None:
        await self._session.execute(delete(avatars).where(avatars.c.user_id == user_id))


class SqlAlchemyInvitationGrantRepository(
    AddingRepository[InvitationGrant], InvitationGrantRepository
):
    async def get(self, invitation_id: uuid.UUID) -> InvitationGrant | None:
        query = select(InvitationGrant).where(invitation_grants.c.invitation_id == invitation_id)
        return (await self._session.scalars(locked(query))).first()

    async def find_by_token_hash(
        self, token_hash: str, *, for_update: bool = False
    ) -> InvitationGrant | None:
        query = select(InvitationGrant).where(invitation_grants.c.token_hash == token_hash)
        return (await self._session.scalars(locked(query) if for_update else query)).first()


class SqlAlchemyInviteLinkGrantRepository(
    AddingRepository[InviteLinkGrant], InviteLinkGrantRepository
):
    async def get(self, link_id: uuid.UUID) -> InviteLinkGrant | None:
        query = select(InviteLinkGrant).where(invite_link_grants.c.link_id == link_id)
        return (await self._session.scalars(locked(query))).first()

    async def find_by_token_hash(
        self, token_hash: str, *, for_update: bool = False
    ) -> InviteLinkGrant | None:
        query = select(InviteLinkGrant).where(invite_link_grants.c.token_hash == token_hash)
        # Locked, the uses read are those counted by whoever held the lock before us.
        return (await self._session.scalars(locked(query) if for_update else query)).first()


class SqlAlchemyAuditRepository(AddingRepository[AuditEntry], AuditRepository):
    async def has_entries(self, kind: TargetKind, target_id: uuid.UUID) -> bool:
        entries = audit_entries.c
        query = select(
            exists().where(entries.target_kind == kind.value, entries.target_id == target_id)
        )
        return bool(await self._session.scalar(query))

    async def label_of(self, kind: TargetKind, target_id: uuid.UUID) -> str | None:
        entries = audit_entries.c
        query = (
            select(entries.target_label)
            .where(
                entries.target_kind == kind.value,
                entries.target_id == target_id,
                entries.target_label.is_not(None),
            )
            .order_by(entries.occurred_at.desc())
            .limit(1)
        )
        label: str | None = await self._session.scalar(query)
        return label

    async def page(self, query: AuditQuery) -> AuditPage:
        entries = audit_entries.c
        where: list[ColumnElement[bool]] = []
        if query.action is not None:
            where.append(entries.action == query.action.value)
        if query.actor_id is not None:
            where.append(entries.actor_id == query.actor_id)
        if query.target_id is not None:
            where.append(entries.target_id == query.target_id)
        if query.search:
            pattern = f"%{_escape_like(query.search.lower())}%"
            where.append(func.lower(entries.target_label).like(pattern, escape="\\"))
        if query.since is not None:
            where.append(entries.occurred_at >= query.since)
        if query.until is not None:
            where.append(entries.occurred_at < query.until)
        total = await self._session.scalar(
            select(func.count()).select_from(audit_entries).where(*where)
        )
        items = await self._session.scalars(
            select(AuditEntry)
            .where(*where)
            .order_by(entries.occurred_at.desc(), entries.event_id)
            .limit(query.limit)
            .offset(query.offset)
        )
        return AuditPage(list(items), int(total or 0))
