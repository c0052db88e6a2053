"""State that one service broadcasts and others keep in memory (the mailer's heartbeat, say).

Not history, unlike the events of consumer.py: only the newest message matters, and one missed
or dropped is replaced by the next. So there is no inbox, no retry and no parking here: each
replica listens on a private, self-deleting queue, hears every message, and keeps the newest.
What the state means (when it is stale, what to tell a user) is the listening service's rule.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from prometheus_client import Counter
from pydantic import ValidationError

from onboarding_shared.contract.envelope import Envelope, EventData
from onboarding_shared.messaging.consumer import raw_body_decoder
from onboarding_shared.messaging.trust import BusIdentity

log = logging.getLogger(__name__)

BROADCASTS_DROPPED = Counter(
    "onboarding_broadcasts_dropped_total",
    "Broadcast state messages dropped, by event type and reason (invalid, untrusted "
    "producer); the next one replaces them.",
    ["event_type", "reason"],
)

StateT = TypeVar("StateT", bound=EventData)


class LatestBroadcast(Generic[StateT]):
    """The newest ``model`` broadcast on the events exchange, by ``order``."""

    def __init__(
        self,
        model: type[StateT],
        events_exchange: str,
        *,
        service: str,
        order: Callable[[StateT], Any],
    ) -> None:
        self._model = model
        self._order = order
        self._exchange = RabbitExchange(events_exchange, type=ExchangeType.TOPIC, durable=True)
        spec = model.spec
        self._queue = RabbitQueue(
            f"{service}.{spec.routing_key}.{uuid.uuid4().hex[:12]}",
            exclusive=True,
            auto_delete=True,
            durable=False,
            routing_key=spec.routing_key,
        )
        self._latest: StateT | None = None

    @property
    def latest(self) -> StateT | None:
        return self._latest

    def remember(self, state: StateT) -> None:
        if self._latest is None or self._order(state) >= self._order(self._latest):
            self._latest = state

    def subscribe(self, broker: RabbitBroker, identity: BusIdentity) -> None:
        spec = self._model.spec

        async def remember(message: RabbitMessage) -> None:
            sender = identity.sender(message.raw_message.user_id, dict(message.headers or {}))
            if not identity.trusts(spec, sender):
                self._dropped("untrusted producer")
                return
            try:
                state = Envelope[self._model].model_validate_json(message.body).data  # type: ignore[name-defined]
            except (ValidationError, ValueError, RecursionError):
                self._dropped("invalid")
                return
            self.remember(state)

        broker.subscriber(
            self._queue,
            self._exchange,
            ack_policy=AckPolicy.ACK_FIRST,
            no_reply=True,
            decoder=raw_body_decoder,
            title=f"{spec.routing_key} (private per replica)",
        )(remember)

    def _dropped(self, reason: str) -> None:
        event_type = self._model.spec.event_type
        BROADCASTS_DROPPED.labels(event_type=event_type, reason=reason).inc()
        log.warning("broadcast dropped", extra={"event_type": event_type, "reason": reason})
