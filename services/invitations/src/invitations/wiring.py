"""What the entry points need from the wiring, as one object (built in bootstrap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from invitations.domain.model import TokenMinter
from invitations.service_layer.services import InvitePolicy
from invitations.service_layer.unit_of_work import InvitationsUnitOfWork
from invitations.settings import InvitationsSettings
from onboarding_shared.messaging.status import MailerStatusWatcher


@dataclass(frozen=True)
class InvitationsContext:
    settings: InvitationsSettings
    uow: Callable[[], InvitationsUnitOfWork]
    invite_policy: InvitePolicy
    minter: TokenMinter
    mailer_status: MailerStatusWatcher
