from __future__ import annotations

import abc
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from invitations.domain.imports import ImportedRow, ImportJob
from invitations.domain.links import InviteLink
from invitations.domain.model import (
    DailyQuota,
    Invitation,
    InvitationStatus,
    InviterSettings,
    Member,
)
from onboarding_shared.unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class InvitationPage:
    items: Sequence[Invitation]
    total: int


@dataclass(frozen=True)
class InvitationQuery:
    status: InvitationStatus | None = None
    search: str | None = None  # part of the address
    limit: int = 50
    offset: int = 0


class InvitationRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, invitation: Invitation) -> None: ...

    @abc.abstractmethod
    async def get(self, invitation_id: uuid.UUID, *, for_update: bool = False) -> Invitation | None:
        """``for_update``: locked until the unit of work ends, and read as the last holder of the
        lock left it. Every use case that changes an invitation takes it so: the mailer's
        outcomes, a revocation and an acceptance may arrive at once, and the second must see
        what the first did (a revocation overwritten by a late "sent" was sent out twice)."""

    @abc.abstractmethod
    async def open_for(
        self, email_keys: Iterable[str], now: datetime, *, for_update: bool = False
    ) -> list[Invitation]:
        """Unexpired open invitations (pending, retrying, sent or failed) to these lower-cased
        addresses; ``for_update`` as for get."""

    @abc.abstractmethod
    async def due_reminders(self, now: datetime, limit: int) -> list[Invitation]:
        """Invitations whose reminder is due (Invitation.reminder_due), oldest due first,
        locked until the unit of work ends; rows another replica holds are skipped."""

    @abc.abstractmethod
    async def list(self, query: InvitationQuery, now: datetime) -> InvitationPage: ...

    async def count_by_status(self, now: datetime) -> dict[InvitationStatus, int]:
        """How many invitations are in each status at ``now`` (expired derived from
        expires_at), every status present. Adapters answer it with one grouped query."""
        return {
            status: (await self.list(InvitationQuery(status=status, limit=1), now)).total
            for status in InvitationStatus
        }


class MemberRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, member: Member) -> None: ...

    @abc.abstractmethod
    async def get(self, user_id: uuid.UUID) -> Member | None: ...

    @abc.abstractmethod
    async def by_email(self, email_keys: Iterable[str]) -> dict[str, Member]: ...


class InviterSettingsRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, settings: InviterSettings) -> None: ...

    @abc.abstractmethod
    async def get(self, user_id: uuid.UUID) -> InviterSettings | None:
        """None for an inviter who never changed their settings (the defaults apply)."""


class ImportRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, job: ImportJob) -> None: ...

    @abc.abstractmethod
    def add_rows(self, rows: Sequence[ImportedRow]) -> None: ...

    @abc.abstractmethod
    async def get(self, import_id: uuid.UUID) -> ImportJob | None: ...

    @abc.abstractmethod
    async def next_unfinished(self) -> ImportJob | None:
        """The oldest import not done, locked until the unit of work ends; one another
        replica holds is skipped."""

    @abc.abstractmethod
    async def unsettled_rows(self, import_id: uuid.UUID, limit: int) -> list[ImportedRow]:
        """Rows not worked through yet, in file order."""

    @abc.abstractmethod
    async def rows(self, import_id: uuid.UUID) -> list[ImportedRow]: ...

    @abc.abstractmethod
    async def outcome_counts(self, import_id: uuid.UUID) -> dict[str, int]: ...


class LinkRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, link: InviteLink) -> None: ...

    @abc.abstractmethod
    async def get(self, link_id: uuid.UUID) -> InviteLink | None: ...

    @abc.abstractmethod
    async def newest_first(self, limit: int) -> list[InviteLink]: ...


class QuotaRepository(abc.ABC):
    @abc.abstractmethod
    async def lock_day(self, day: str) -> DailyQuota:
        """Today's counter, locked until the unit of work ends: concurrent invitations
        (from any replica) wait here, so limits and duplicate checks hold."""


class InvitationsUnitOfWork(AbstractUnitOfWork):
    invitations: InvitationRepository
    members: MemberRepository
    quotas: QuotaRepository
    inviter_settings: InviterSettingsRepository
    imports: ImportRepository
    links: LinkRepository
