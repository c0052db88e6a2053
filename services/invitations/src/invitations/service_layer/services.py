"""Use cases of the invitations service. Each runs in one unit of work: state and events
commit together or not at all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from invitations.domain.addresses import parse_addresses
from invitations.domain.model import Invitation, InvitationStatus
from invitations.service_layer.unit_of_work import InvitationPage, InvitationsUnitOfWork
from onboarding_shared.contract import EmailFailed, EmailSent, Envelope, InvitationRequested

EMAIL_OUTCOMES_CONSUMER = "invitations.email-outcomes"


@dataclass(frozen=True)
class InvitePolicy:
    workspace_name: str
    public_url: str
    ttl: timedelta


class InviteOutcome(StrEnum):
    QUEUED = "queued"
    INVALID = "invalid"
    DUPLICATE_IN_REQUEST = "duplicate_in_request"


@dataclass(frozen=True)
class InviteResult:
    input: str
    outcome: InviteOutcome
    email: str | None = None
    invitation_id: uuid.UUID | None = None
    reason: str | None = None


async def invite(
    uow: InvitationsUnitOfWork, raw_emails: str | list[str], *, policy: InvitePolicy, now: datetime
) -> list[InviteResult]:
    """Create and queue one invitation per valid, distinct address; report every address."""
    results: list[InviteResult] = []
    async with uow:
        for address in parse_addresses(raw_emails):
            if address.problem is not None or address.email is None:
                outcome = InviteOutcome(address.problem or "invalid")
                results.append(
                    InviteResult(address.given, outcome, address.email, reason=address.reason)
                )
                continue
            invitation, token = Invitation.issue(address.email, now=now, ttl=policy.ttl)
            uow.invitations.add(invitation)
            uow.emit(_requested(invitation, token, policy))
            results.append(
                InviteResult(address.given, InviteOutcome.QUEUED, address.email, invitation.id)
            )
        await uow.commit()
    return results


def _requested(invitation: Invitation, token: str, policy: InvitePolicy) -> InvitationRequested:
    return InvitationRequested(
        invitation_id=invitation.id,
        email=invitation.email,
        workspace_name=policy.workspace_name,
        join_url=f"{policy.public_url}/join/{token}",
        expires_at=invitation.expires_at,
        token_hash=invitation.token_hash,
    )


async def list_invitations(
    uow: InvitationsUnitOfWork, *, status: InvitationStatus | None, limit: int, offset: int
) -> InvitationPage:
    async with uow:
        return await uow.invitations.list(status=status, limit=limit, offset=offset)


async def record_email_sent(uow: InvitationsUnitOfWork, event: Envelope[EmailSent]) -> None:
    if event.data.kind != "invitation":
        return
    async with uow:
        if not await uow.claim(EMAIL_OUTCOMES_CONSUMER, event.event_id):
            return
        invitation = await uow.invitations.get(event.data.reference_id)
        if invitation is not None:
            invitation.record_sent(at=event.data.sent_at, attempts=event.data.attempts)
        await uow.commit()


async def record_email_failed(uow: InvitationsUnitOfWork, event: Envelope[EmailFailed]) -> None:
    if event.data.kind != "invitation":
        return
    async with uow:
        if not await uow.claim(EMAIL_OUTCOMES_CONSUMER, event.event_id):
            return
        invitation = await uow.invitations.get(event.data.reference_id)
        if invitation is not None:
            invitation.record_failed(reason=event.data.reason, attempts=event.data.attempts)
        await uow.commit()
