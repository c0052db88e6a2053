"""Use cases of CSV bulk invitations: accept a file whole or refuse it whole, then work through
it a chunk per transaction, each row getting the outcome the text area would give it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from invitations.domain.addresses import parse_address, parse_addresses
from invitations.domain.imports import (
    BadImportFile,
    ImportedRow,
    ImportJob,
    ImportRow,
    ImportStatus,
    read_import,
)
from invitations.domain.model import DEFAULT_ROLES, InvalidRoles, TokenMinter, invitation_roles
from invitations.service_layer.services import (
    InviteOutcome,
    InvitePolicy,
    InviteResult,
    IssueTerms,
    NotFound,
    TooManyAddresses,
    inviter_of,
    issue_invitation,
    queued_count,
    triage,
    triage_within_quota,
    ttl_hours_for,
    utc_day,
)
from invitations.service_layer.unit_of_work import InvitationsUnitOfWork
from onboarding_shared.correlation import acting_as

CHUNK_ROWS = 200


@dataclass(frozen=True)
class ImportCommand:
    data: bytes
    inviter_id: uuid.UUID | None = None
    inviter_is_admin: bool = False
    filename: str | None = None
    message: str | None = None
    expires_in_hours: int | None = None
    notify_inviter: bool = True


async def start_import(
    uow: InvitationsUnitOfWork,
    command: ImportCommand,
    *,
    policy: InvitePolicy,
    now: datetime,
) -> ImportProgress:
    """Accept the file, or refuse it whole with nothing created (BadImportFile, RoleNotAllowed,
    TooManyAddresses, InvalidExpiry, DailyLimitReached). The day's quota is taken for every
    row that would be invited now, so the limit holds for the whole file."""
    ttl_hours = ttl_hours_for(command.expires_in_hours, policy)
    if len(rows := read_import(command.data)) > policy.max_addresses_per_import:
        raise TooManyAddresses(
            f"{len(rows)} rows in the file; the limit is {policy.max_addresses_per_import}"
        )
    roles = [_roles_of(row, inviter_is_admin=command.inviter_is_admin) for row in rows]
    addresses = parse_addresses([row.email for row in rows])
    async with uow:
        triaged = await triage_within_quota(uow, addresses, policy, now)
        job = _new_job(command, len(rows), ttl_hours, reserved=queued_count(triaged), now=now)
        imported = [
            _row_of(job.id, row, row_roles, result)
            for row, row_roles, result in zip(rows, roles, triaged, strict=True)
        ]
        job.record_chunk([row for row in imported if row.outcome is not None], 0, now=now)
        uow.imports.add(job)
        uow.imports.add_rows(imported)
        await uow.commit()
    return ImportProgress(job, dict(Counter(row.outcome for row in imported if row.outcome)))


def _new_job(
    command: ImportCommand, total_rows: int, ttl_hours: int, *, reserved: int, now: datetime
) -> ImportJob:
    """``reserved``: what was taken from today's quota, given back as far as unused."""
    return ImportJob(
        id=uuid.uuid4(),
        inviter_id=command.inviter_id,
        status=ImportStatus.QUEUED,
        total_rows=total_rows,
        created_at=now,
        ttl_hours=ttl_hours,
        quota_day=utc_day(now),
        reserved=reserved,
        message=command.message,
        notify_inviter=command.notify_inviter,
        filename=command.filename,
    )


def _roles_of(row: ImportRow, *, inviter_is_admin: bool) -> list[str]:
    try:
        return list(invitation_roles(row.roles or DEFAULT_ROLES, inviter_is_admin=inviter_is_admin))
    except InvalidRoles as error:
        raise BadImportFile(f"row {row.number}, column `roles`: {error}") from None


def _row_of(
    import_id: uuid.UUID, row: ImportRow, roles: list[str], triaged: InviteResult
) -> ImportedRow:
    """A row whose address is invalid or repeated is settled now: that is the file's doing and
    will not change. The others are worked through by the job, against the state by then."""
    imported = ImportedRow(import_id, row.number, row.email, row.name, roles)
    if triaged.outcome in (InviteOutcome.INVALID, InviteOutcome.DUPLICATE_IN_REQUEST):
        imported.settle(triaged.outcome.value, email=triaged.email, reason=triaged.reason)
    return imported


async def work_on_imports(
    uow: InvitationsUnitOfWork, *, policy: InvitePolicy, minter: TokenMinter, now: datetime
) -> int:
    """Work through one chunk of the oldest unfinished import; return how many rows."""
    async with uow:
        job = await uow.imports.next_unfinished()
        if job is None:
            return 0
        rows = await uow.imports.unsettled_rows(job.id, limit=CHUNK_ROWS)
        with acting_as(job.inviter_id):  # the admin who uploaded the file invites its rows
            queued = await _invite_rows(uow, job, rows, policy=policy, minter=minter, now=now)
        if rows:
            job.record_chunk(rows, queued, now=now)
        else:
            job.finish(now)  # every row was settled already: nothing can be left to do
        if job.unused_quota:
            quota = await uow.quotas.lock_day(job.quota_day)
            quota.used = max(quota.used - job.unused_quota, 0)
        await uow.commit()
    return len(rows)


async def _invite_rows(
    uow: InvitationsUnitOfWork,
    job: ImportJob,
    rows: Sequence[ImportedRow],
    *,
    policy: InvitePolicy,
    minter: TokenMinter,
    now: datetime,
) -> int:
    # Against the state by now: who has joined, or was invited, since the file came in.
    triaged = await triage(uow, [parse_address(row.given) for row in rows], now)
    inviter = await inviter_of(uow, job.inviter_id)
    terms = IssueTerms(job.ttl_hours, inviter, job.message, job.notify_inviter)
    queued = 0
    for row, result in zip(rows, triaged, strict=True):
        if result.outcome is InviteOutcome.QUEUED:
            result = issue_invitation(
                uow,
                result,
                terms,
                roles=row.roles,  # type: ignore[arg-type]  # checked when the file came in
                policy=policy,
                minter=minter,
                now=now,
            )
            queued += 1
        row.settle(
            result.outcome.value,
            email=result.email,
            invitation_id=result.invitation_id,
            reason=result.reason,
        )
    return queued


@dataclass(frozen=True)
class ImportProgress:
    job: ImportJob
    outcomes: dict[str, int]  # settled rows by outcome


async def import_progress(uow: InvitationsUnitOfWork, import_id: uuid.UUID) -> ImportProgress:
    async with uow:
        job = await uow.imports.get(import_id)
        if job is None:
            raise NotFound(f"no import {import_id}")
        return ImportProgress(job, await uow.imports.outcome_counts(import_id))


async def import_rows(uow: InvitationsUnitOfWork, import_id: uuid.UUID) -> list[ImportedRow]:
    """Every row in file order, settled or not yet."""
    async with uow:
        if await uow.imports.get(import_id) is None:
            raise NotFound(f"no import {import_id}")
        return await uow.imports.rows(import_id)
