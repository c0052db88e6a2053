"""Who sent a message, as the broker vouches, and whether we believe it.

RabbitMQ refuses a published ``user_id`` property that differs from the connection's user, so
``user_id`` names the broker user that published a message, and nobody can borrow another's.
Every service publishes with it; a consumer acts on an event that one service alone produces
(the contract's ``EventSpec.producer``) only when that service's broker user sent it.

A message a consumer forwards (to a retry queue, to its parking queue, or replayed from there)
is published again under the consumer's own user. It then carries the original sender in
``x-verified-sender``, which is believed only on a message the consumer's own user published:
nobody else can make the broker vouch for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from onboarding_shared.contract.envelope import ANY_SERVICE, OPEN, EventSpec

VERIFIED_SENDER_HEADER = "x-verified-sender"
UNTRUSTED_PRODUCER = "untrusted producer"


@dataclass(frozen=True)
class BusIdentity:
    """This process on the bus: its service, its broker user, and the broker user of every
    service it listens to (each defaults to its own: in `make run` all connect as one user)."""

    service: str
    broker_user: str
    producer_users: Mapping[str, str] = field(default_factory=dict)

    def user_of(self, service: str) -> str:
        return self.producer_users.get(service, self.broker_user)

    def forwarded_by_us(self, user_id: str | None, headers: Mapping[str, Any]) -> bool:
        return user_id == self.broker_user and isinstance(headers.get(VERIFIED_SENDER_HEADER), str)

    def sender(self, user_id: str | None, headers: Mapping[str, Any]) -> str | None:
        """The broker user that first published the message, or None when it gave none."""
        if self.forwarded_by_us(user_id, headers):
            original = str(headers[VERIFIED_SENDER_HEADER])
            return original or None
        return user_id

    def trusts(self, spec: EventSpec | None, sender: str | None) -> bool:
        """Whether an event of ``spec`` from ``sender`` may be acted on. Events the contract
        does not define, and open ones (identity providers' logins), are judged elsewhere."""
        if spec is None or spec.producer is OPEN:
            return True
        if spec.producer == ANY_SERVICE:
            return sender in {self.broker_user, *self.producer_users.values()}
        return sender is not None and sender == self.user_of(spec.producer)
