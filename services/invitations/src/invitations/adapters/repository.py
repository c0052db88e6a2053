from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, select

from invitations.adapters.orm import (
    daily_quotas,
    invitation_import_rows,
    invitation_imports,
    invitations,
    invite_links,
    members,
)
from invitations.domain.imports import ImportedRow, ImportJob, ImportStatus
from invitations.domain.links import InviteLink
from invitations.domain.model import (
    OPEN_STATUSES,
    DailyQuota,
    Invitation,
    InvitationStatus,
    InviterSettings,
    Member,
    email_key,
)
from invitations.service_layer.unit_of_work import (
    ImportRepository,
    InvitationPage,
    InvitationQuery,
    InvitationRepository,
    InviterSettingsRepository,
    LinkRepository,
    MemberRepository,
    QuotaRepository,
)
from onboarding_shared.db import insert_for
from onboarding_shared.orm import AddingRepository, SessionRepository, locked

_OPEN = [status.value for status in OPEN_STATUSES]


def _expired(now: datetime) -> ColumnElement[bool]:
    """Invitation.is_expired_at in SQL (change the two together): an open invitation whose
    expiry has come; accepted and revoked ones stay what they are."""
    return and_(invitations.c.status.in_(_OPEN), _past_expiry(now))


def _past_expiry(now: datetime) -> ColumnElement[bool]:
    """The expiry half of _expired, for queries already kept to open statuses. Its negation
    (~) is ``expires_at > now``, which the status and expiry index serves."""
    return invitations.c.expires_at <= now


def _status_is(status: InvitationStatus, now: datetime) -> ColumnElement[bool]:
    if status is InvitationStatus.EXPIRED:
        return _expired(now)
    stored = invitations.c.status == status.value
    return and_(stored, ~_past_expiry(now)) if status in OPEN_STATUSES else stored


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlAlchemyInvitationRepository(AddingRepository[Invitation], InvitationRepository):
    async def get(self, invitation_id: uuid.UUID, *, for_update: bool = False) -> Invitation | None:
        if not for_update:
            return await self._session.get(Invitation, invitation_id)
        query = select(Invitation).where(invitations.c.id == invitation_id)
        return await self._session.scalar(locked(query))

    async def open_for(
        self, email_keys: Iterable[str], now: datetime, *, for_update: bool = False
    ) -> list[Invitation]:
        keys = list(set(email_keys))
        if not keys:
            return []
        query = (
            select(Invitation)
            .where(
                invitations.c.email_key.in_(keys),
                invitations.c.status.in_(_OPEN),
                ~_past_expiry(now),
            )
            .order_by(invitations.c.id)  # locks taken in one order: no deadlock between takers
        )
        return list(await self._session.scalars(locked(query) if for_update else query))

    async def due_reminders(self, now: datetime, limit: int) -> list[Invitation]:
        query = (
            select(Invitation)
            .where(
                invitations.c.remind_at <= now,
                invitations.c.status == InvitationStatus.SENT.value,
                ~_past_expiry(now),
            )
            .order_by(invitations.c.remind_at)
            .limit(limit)
            # Replicas take different rows; the taker clears remind_at before committing.
            .with_for_update(skip_locked=True)
        )
        return list(await self._session.scalars(query))

    async def list(self, query: InvitationQuery, now: datetime) -> InvitationPage:
        where: list[ColumnElement[bool]] = []
        if query.status is not None:
            where.append(_status_is(query.status, now))
        if query.search:
            pattern = f"%{_escape_like(email_key(query.search))}%"
            where.append(or_(invitations.c.email_key.like(pattern, escape="\\")))
        total = await self._session.scalar(
            select(func.count()).select_from(invitations).where(*where)
        )
        rows = await self._session.scalars(
            select(Invitation)
            .where(*where)
            .order_by(invitations.c.created_at.desc(), invitations.c.id)
            .limit(query.limit)
            .offset(query.offset)
        )
        return InvitationPage(items=rows.all(), total=total or 0)

    async def count_by_status(self, now: datetime) -> dict[InvitationStatus, int]:
        column = invitations.c
        expired = func.sum(case((_expired(now), 1), else_=0))
        rows = await self._session.execute(
            select(column.status, func.count(), expired).group_by(column.status)
        )
        counts = dict.fromkeys(InvitationStatus, 0)
        for stored, total, lapsed in rows:
            past = int(lapsed or 0)
            counts[InvitationStatus(stored)] += total - past
            counts[InvitationStatus.EXPIRED] += past
        return counts


class SqlAlchemyMemberRepository(AddingRepository[Member], MemberRepository):
    async def get(self, user_id: uuid.UUID) -> Member | None:
        return await self._session.get(Member, user_id)

    async def by_email(self, email_keys: Iterable[str]) -> dict[str, Member]:
        keys = list(set(email_keys))
        if not keys:
            return {}
        rows = await self._session.scalars(select(Member).where(members.c.email_key.in_(keys)))
        return {member.email_key: member for member in rows}


class SqlAlchemyInviterSettingsRepository(
    AddingRepository[InviterSettings], InviterSettingsRepository
):
    async def get(self, user_id: uuid.UUID) -> InviterSettings | None:
        return await self._session.get(InviterSettings, user_id)


class SqlAlchemyImportRepository(AddingRepository[ImportJob], ImportRepository):
    def add_rows(self, rows: Sequence[ImportedRow]) -> None:
        self._session.add_all(rows)

    async def get(self, import_id: uuid.UUID) -> ImportJob | None:
        return await self._session.get(ImportJob, import_id)

    async def next_unfinished(self) -> ImportJob | None:
        query = (
            select(ImportJob)
            .where(invitation_imports.c.status != ImportStatus.DONE.value)
            .order_by(invitation_imports.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return (await self._session.scalars(query)).first()

    async def unsettled_rows(self, import_id: uuid.UUID, limit: int) -> list[ImportedRow]:
        rows = invitation_import_rows.c
        query = (
            select(ImportedRow)
            .where(rows.import_id == import_id, rows.outcome.is_(None))
            .order_by(rows.number)
            .limit(limit)
        )
        return list(await self._session.scalars(query))

    async def rows(self, import_id: uuid.UUID) -> list[ImportedRow]:
        rows = invitation_import_rows.c
        query = select(ImportedRow).where(rows.import_id == import_id).order_by(rows.number)
        return list(await self._session.scalars(query))

    async def outcome_counts(self, import_id: uuid.UUID) -> dict[str, int]:
        rows = invitation_import_rows.c
        query = (
            select(rows.outcome, func.count())
            .where(rows.import_id == import_id, rows.outcome.is_not(None))
            .group_by(rows.outcome)
        )
        counts = (await self._session.execute(query)).all()
        return {outcome: count for outcome, count in counts if outcome is not None}


class SqlAlchemyLinkRepository(AddingRepository[InviteLink], LinkRepository):
    async def get(self, link_id: uuid.UUID) -> InviteLink | None:
        return await self._session.get(InviteLink, link_id)

    async def newest_first(self, limit: int) -> list[InviteLink]:
        query = select(InviteLink).order_by(invite_links.c.created_at.desc()).limit(limit)
        return list(await self._session.scalars(query))


class SqlAlchemyQuotaRepository(SessionRepository, QuotaRepository):
    async def lock_day(self, day: str) -> DailyQuota:
        insert = insert_for(self._session)
        # Writing first takes the lock on SQLite too (it has no FOR UPDATE).
        await self._session.execute(
            insert(daily_quotas)
            .values(day=day, used=0)
            .on_conflict_do_nothing(index_elements=["day"])
        )
        quota = await self._session.scalar(
            select(DailyQuota).where(daily_quotas.c.day == day).with_for_update()
        )
        assert quota is not None
        return quota
