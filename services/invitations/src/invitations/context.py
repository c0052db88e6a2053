"""What the entry points are given: the settings and the ports they call, as one object that
bootstrap.py builds (routes read it from the app, subscribers and jobs are built with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from invitations.domain.model import TokenMinter
from invitations.service_layer.ports import MailerStatusSource
from invitations.service_layer.services import InvitePolicy
from invitations.service_layer.unit_of_work import InvitationsUnitOfWork
from invitations.settings import InvitationsSettings
from onboarding_shared.contract import MailerStatus
from onboarding_shared.messaging.broadcast import LatestBroadcast


@dataclass(frozen=True)
class InvitationsContext:
    settings: InvitationsSettings
    uow: Callable[[], InvitationsUnitOfWork]
    invite_policy: InvitePolicy
    minter: TokenMinter
    mailer_heartbeats: LatestBroadcast[MailerStatus]
    mailer_status: MailerStatusSource  # what the heartbeats say, for the SMTP warning
