"""The envelope every event travels in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from onboarding_shared.correlation import current_actor, current_correlation_id


class EventData(BaseModel):
    """Base of every event's ``data``: unknown fields are ignored, values are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    spec: ClassVar[EventSpec]


DataT = TypeVar("DataT", bound=EventData)


# Where the producer of an event that anyone may publish would be named.
OPEN = None
# Any of this system's services (e.g. the rejection notices every consumer sends).
ANY_SERVICE = "*"


@dataclass(frozen=True)
class EventSpec:
    """How one event type appears on the wire, who may publish it, and who may read it."""

    event_type: str  # e.g. "InvitationRequested"; never derived from a Python class name
    name: str  # e.g. "invitation.requested"
    version: int
    # The one service that publishes it; consumers act on it only when the broker vouches (the
    # AMQP user_id) that this service's broker user sent it. OPEN: identity providers too.
    producer: str | None = OPEN
    # Mailer-only requests carry secrets (links): they go to the mail exchange, which only the
    # mailer's broker user may read, never to the events exchange every consumer can bind to.
    mail_only: bool = False
    # Published mandatory (refused unless a queue takes it) when a service of ours consumes it;
    # False for an event only outside systems may read: nobody listening is normal then.
    mandatory: bool = True

    @property
    def routing_key(self) -> str:
        return f"{self.name}.v{self.version}"

    def exchange(self, events_exchange: str) -> str:
        return mail_exchange_for(events_exchange) if self.mail_only else events_exchange


def mail_exchange_for(events_exchange: str) -> str:
    return f"{events_exchange}.mail"


class Envelope(BaseModel, Generic[DataT]):
    """One event on the wire. ``event_id`` is also the AMQP message_id."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: uuid.UUID = Field(
        description="Unique id; also the AMQP message_id. Deduplicate on it."
    )
    event_type: str = Field(description='The event\'s name, e.g. "InvitationRequested".')
    event_version: int = Field(ge=1, description="Major version; also the routing key's suffix.")
    occurred_at: AwareDatetime = Field(
        description="When it happened: ISO 8601 (RFC 3339) with a time zone offset, UTC "
        "preferred (the services write UTC)."
    )
    producer: str = Field(description='The service or system that emitted it, e.g. "invitations".')
    correlation_id: str = Field(
        description="Id of the request or event that started the chain; carried along it.",
        max_length=200,
    )
    actor_id: uuid.UUID | None = Field(
        default=None,
        description="The account whose request caused it (an admin's action, say); absent when "
        "the system did it, or a person with no account yet (joining).",
    )
    data: DataT

    @property
    def routing_key(self) -> str:
        return self.data.spec.routing_key

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def new_event(data: DataT, *, producer: str, correlation_id: str | None = None) -> Envelope[DataT]:
    """Wrap ``data`` in a fresh envelope, continuing the current correlation chain."""
    spec = data.spec
    # Parameterised by the concrete type, so the data serialises with all of its fields.
    envelope_type: Any = Envelope[type(data)]  # type: ignore[misc]
    created: Envelope[DataT] = envelope_type(
        event_id=uuid.uuid4(),
        event_type=spec.event_type,
        event_version=spec.version,
        occurred_at=datetime.now(UTC),
        producer=producer,
        correlation_id=correlation_id or current_correlation_id() or str(uuid.uuid4()),
        actor_id=current_actor(),
        data=data,
    )
    return created


def envelope_schema(data_model: type[EventData]) -> dict[str, Any]:
    """JSON Schema of the envelope carrying ``data_model``, titled by the event type."""
    spec = data_model.spec
    schema = Envelope[data_model].model_json_schema()  # type: ignore[valid-type]
    schema["title"] = spec.event_type
    exchange = spec.exchange("onboarding.events")
    publisher = {
        OPEN: "Open: identity providers may publish it too",
        ANY_SERVICE: "Published by any of the onboarding services",
    }.get(spec.producer, f"Published only by the {spec.producer} service")
    schema["description"] = (
        f"{data_model.__doc__ or ''}\n\nRouting key: `{spec.routing_key}` on exchange "
        f"`{exchange}`. {publisher}."
    ).strip()
    properties = schema["properties"]
    properties["event_type"]["const"] = spec.event_type
    properties["event_version"]["const"] = spec.version
    return schema
