"""Every service's consumer queues, in one place: who consumes which event.

Services never import each other, yet a publisher must know who listens to what it sends: an
event published while one of its consumers' queues does not exist yet is lost for that consumer
(publishing is mandatory, but a message routable to *some* queue counts as routed). So the
contract lists each service's queues here; each service declares its own from these definitions
(``consumer_queue``), and the outbox relay holds an event back until every queue listed for it
exists (``ConsumerQueuesGate``), whatever order the processes started in.

Every service also declares the others' queues at start where its broker user may
(``declare_other_consumer_queues``: one user for all, as in `make run` and the tests), so events
need not wait for a service that is not running. That alone would not do: in production each
service's broker user may configure only its own queues (deploy/rabbitmq/definitions.json), and
only the mailer may read (so bind to) the mail exchange. The gate needs no permission: a passive
declare only asks whether a queue exists. Queues declared for another service carry this
service's RETRY_DELAYS_SECONDS and QUEUE_EXPIRES_SECONDS: give every service of one vhost the
same values (compose and the Kubernetes ConfigMap do), or the owner's own declaration is refused.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity

from onboarding_shared.contract import (
    AcceptanceEmailRequested,
    EmailDeferred,
    EmailFailed,
    EmailSent,
    InvitationIssued,
    InvitationRequested,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    UserActivated,
    UserCreated,
    UserLoggedIn,
    UserUpdated,
    WelcomeEmailRequested,
)
from onboarding_shared.contract.envelope import EventData
from onboarding_shared.messaging.outbox import HeldBack
from onboarding_shared.messaging.topology import Binding, ConsumerQueue, declare_consumer_queue

if TYPE_CHECKING:
    from onboarding_shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueDefinition:
    """One consumer queue of one service (its name without QUEUE_PREFIX) and what it reads."""

    service: str
    name: str
    events: tuple[type[EventData], ...]

    @property
    def routing_keys(self) -> tuple[str, ...]:
        return tuple(event.spec.routing_key for event in self.events)


USERS_ACTIVATIONS = QueueDefinition("users", "users.activations", (UserActivated,))
# The invitations whose links the join page accepts.
USERS_INVITATIONS = QueueDefinition(
    "users",
    "users.invitations",
    (InvitationIssued, InvitationRevoked, InviteLinkIssued, InviteLinkRevoked),
)
# The audit trail: every admin-visible change, from whichever service made it.
USERS_AUDIT = QueueDefinition(
    "users",
    "users.audit",
    (
        InvitationIssued,
        InvitationRevoked,
        InviteLinkIssued,
        InviteLinkRevoked,
        UserCreated,
        UserUpdated,
    ),
)
INVITATIONS_EMAIL_OUTCOMES = QueueDefinition(
    "invitations", "invitations.email-outcomes", (EmailSent, EmailDeferred, EmailFailed)
)
INVITATIONS_MEMBERS = QueueDefinition(
    "invitations", "invitations.members", (UserCreated, UserUpdated)
)
# Invitation requests come on the mail exchange, which only the mailer's broker user may read
# (they carry links); acceptance emails, which carry none, on the events exchange.
MAILER_INVITATIONS = QueueDefinition(
    "mailer", "mailer.invitations", (InvitationRequested, AcceptanceEmailRequested)
)
MAILER_WELCOME_EMAILS = QueueDefinition("mailer", "mailer.welcome-emails", (WelcomeEmailRequested,))
AUTH_LISTENER_ACCOUNTS = QueueDefinition(
    "auth-listener", "auth-listener.accounts", (UserCreated, UserUpdated)
)
AUTH_LISTENER_LOGINS = QueueDefinition("auth-listener", "auth-listener.logins", (UserLoggedIn,))

CONSUMER_QUEUES: tuple[QueueDefinition, ...] = (
    USERS_ACTIVATIONS,
    USERS_INVITATIONS,
    USERS_AUDIT,
    INVITATIONS_EMAIL_OUTCOMES,
    INVITATIONS_MEMBERS,
    MAILER_INVITATIONS,
    MAILER_WELCOME_EMAILS,
    AUTH_LISTENER_ACCOUNTS,
    AUTH_LISTENER_LOGINS,
)


def consumer_queue(settings: ServiceSettings, definition: QueueDefinition) -> ConsumerQueue:
    """The queue to declare and consume, in this environment (prefix, exchange, retries)."""
    return settings.consumer_queue(
        definition.name,
        *(
            Binding(event.spec.routing_key, event.spec.exchange(settings.events_exchange))
            if event.spec.mail_only
            else event.spec.routing_key
            for event in definition.events
        ),
    )


def consumers_of(routing_key: str) -> tuple[QueueDefinition, ...]:
    """The queues the contract says read events published with ``routing_key``."""
    return tuple(queue for queue in CONSUMER_QUEUES if routing_key in queue.routing_keys)


class ConsumersNotReady(HeldBack):
    """An event is held back: some queue that consumes it has not been declared yet."""


class ConsumerQueuesGate:
    """Tells whether every consumer queue of an event exists, with all its bindings.

    ``declare_consumer_queue`` declares a queue's parking queue last, so its existence means
    the work queue and its bindings are in place. A passive declare of it needs no permission;
    a missing one closes the channel, so each check has a channel of its own. A queue seen once
    is remembered: queues are not deleted under a running system (only throw-away environments
    let unused queues expire)."""

    def __init__(self, *, queue_prefix: str = "", timeout: float = 5.0) -> None:
        self._prefix = queue_prefix
        self._timeout = timeout
        self._connection: AbstractConnection | None = None
        self._present: set[str] = set()

    def attach(self, connection: AbstractConnection) -> None:
        """Check through ``connection`` (the service's own broker connection)."""
        self._connection = connection

    def detach(self) -> None:
        self._connection = None

    async def missing(self, routing_key: str) -> list[str]:
        """The consumer queues of ``routing_key`` not declared yet (their full names)."""
        missing = []
        for definition in consumers_of(routing_key):
            name = f"{self._prefix}{definition.name}"
            if name not in self._present and not await self._exists(f"{name}.parked"):
                missing.append(name)
            else:
                self._present.add(name)
        return missing

    async def check(self, routing_key: str) -> None:
        """Raise ConsumersNotReady unless every consumer queue of ``routing_key`` exists."""
        missing = await self.missing(routing_key)
        if missing:
            raise ConsumersNotReady(f"waiting for consumer queue(s) {', '.join(missing)}")

    async def _exists(self, queue: str) -> bool:
        # Bounded: while the broker is away a channel never opens.
        async with asyncio.timeout(self._timeout):
            return await self._passively_declared(queue)

    async def _passively_declared(self, queue: str) -> bool:
        if self._connection is None:
            raise ConnectionError("not connected to the broker")
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(queue, passive=True)
        except ChannelNotFoundEntity:
            return False
        finally:
            if not channel.is_closed:
                await channel.close()
        return True


async def declare_other_consumer_queues(
    connection: AbstractConnection, settings: ServiceSettings, *, own: set[str]
) -> list[str]:
    """Declare the other services' queues too, where this broker user may: then no event of
    ours waits for their service to start. Where it may not (each service's user configures
    only its own queues in production), the gate holds the events back instead. Returns the
    queues it could not declare."""
    refused = []
    for definition in CONSUMER_QUEUES:
        queue = consumer_queue(settings, definition)
        if queue.name in own:
            continue
        channel = await connection.channel(publisher_confirms=False)
        try:
            await declare_consumer_queue(channel, queue)
        except AMQPError as error:
            refused.append(queue.name)
            log.info(
                "not declaring another service's queue; its events wait until it does",
                extra={"queue": queue.name, "reason": type(error).__name__},
            )
        finally:
            if not channel.is_closed:
                await channel.close()
    return refused
