"""Activation: the auth-listener's word that a pending account has logged in for the first
time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from onboarding_shared.contract import Envelope, UserActivated
from onboarding_shared.messaging.queues import USERS_ACTIVATIONS
from onboarding_shared.unit_of_work import once_per_event
from users.domain.model import UserStatus
from users.service_layer.accounts import user_updated
from users.service_layer.unit_of_work import UsersUnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Activation:
    """A pending account that became active, once committed."""

    created_at: datetime
    activated_at: datetime

    @property
    def seconds_to_activate(self) -> float:
        return max(0.0, (self.activated_at - self.created_at).total_seconds())


@once_per_event(USERS_ACTIVATIONS)
async def apply_activation(
    uow: UsersUnitOfWork, event: Envelope[UserActivated], *, now: datetime
) -> Activation | None:
    """Record the first login; an Activation when this made a pending account active."""
    user = await uow.users.get(event.data.user_id, for_update=True)
    if user is None:
        log.warning("activation of an unknown account", extra={"user_id": str(event.data.user_id)})
        return None
    was_pending = user.status is UserStatus.PENDING
    if user.record_first_login(event.data.activated_at):
        user.updated_at = now
        uow.emit(user_updated(user, now, ["status"]))
    if was_pending and user.status is UserStatus.ACTIVE:
        return Activation(user.created_at, event.data.activated_at)
    return None
