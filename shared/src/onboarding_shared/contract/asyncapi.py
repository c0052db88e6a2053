"""AsyncAPI 3.0 documents of the event contract: what each service publishes and consumes.

Generated from the contract itself (event models, routing keys, envelope JSON Schemas) and
from the events each service's bootstrap declares, not from FastStream's subscribers, which
take raw bytes and so know nothing of the events' shapes.

Each service serves its own document at GET /asyncapi.json; `make docs` writes the combined
one (every service, and the identity providers that may publish UserLoggedIn) to
docs/asyncapi.json. Only the JSON is served: no "try it out" endpoint exists anywhere, since
FastStream's AsyncAPI page (which can publish to the real broker without authentication) is
not served by any service.

    python -m onboarding_shared.contract.asyncapi OUTPUT MODULE...

writes the combined document of the services whose bootstrap MODULEs define ``EVENTS``.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onboarding_shared.contract.envelope import EventData, envelope_schema
from onboarding_shared.contract.events import ALL_EVENTS, UserLoggedIn
from onboarding_shared.messaging.topology import EVENTS_EXCHANGE

ASYNCAPI_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
AMQP_BINDING_VERSION = "0.3.0"
CONTENT_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery mode

_CONTRACT_RULES = (
    "Every event is a JSON envelope published to the durable topic exchange `{exchange}` "
    "with the routing key `<name>.v<major>`, persistent, with the AMQP message_id equal to "
    "the envelope's `event_id` and content type `application/json`. Delivery is at least "
    "once: consumers deduplicate on `event_id` and ignore fields they do not know. Producers "
    "may add optional fields within a major version; anything else is a new major version "
    "with a new routing key."
)


def contract_rules(exchange: str) -> str:
    return _CONTRACT_RULES.format(exchange=exchange)


@dataclass(frozen=True)
class ServiceEvents:
    """The events one service (or outside system) publishes and consumes."""

    service: str
    sends: tuple[type[EventData], ...]
    receives: tuple[type[EventData], ...]
    description: str = ""


# Outside systems the contract invites to publish (docs/integrating.md).
IDENTITY_PROVIDERS = ServiceEvents(
    "identity-provider",
    sends=(UserLoggedIn,),
    receives=(),
    description="Any identity provider may publish UserLoggedIn (see docs/integrating.md).",
)


def service_document(events: ServiceEvents, *, exchange: str = EVENTS_EXCHANGE) -> dict[str, Any]:
    """What ``events.service`` publishes and consumes, as an AsyncAPI 3.0 document."""
    used = _unique((*events.sends, *events.receives))
    return _document(
        title=f"Onboarding events: {events.service}",
        description=f"{events.description}\n\n{contract_rules(exchange)}".strip(),
        models=used,
        parties=[events],
        exchange=exchange,
    )


def combined_document(
    services: Sequence[ServiceEvents], *, exchange: str = EVENTS_EXCHANGE
) -> dict[str, Any]:
    """The whole contract (every event, used or not) with every party's operations."""
    return _document(
        title="Onboarding events",
        description=contract_rules(exchange),
        models=ALL_EVENTS,
        parties=[*services, IDENTITY_PROVIDERS],
        exchange=exchange,
    )


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _document(
    *,
    title: str,
    description: str,
    models: Sequence[type[EventData]],
    parties: Sequence[ServiceEvents],
    exchange: str,
) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages = {model.spec.event_type: _message(model, schemas) for model in models}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": CONTRACT_VERSION,
            "description": description,
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": {model.spec.routing_key: _channel(model, exchange) for model in models},
        "operations": {
            _operation_id(party.service, action, model): _operation(party, action, model)
            for party in parties
            for action, chosen in (("send", party.sends), ("receive", party.receives))
            for model in chosen
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def _channel(model: type[EventData], exchange: str) -> dict[str, Any]:
    spec = model.spec
    return {
        "address": spec.routing_key,
        "title": spec.event_type,
        "description": f"Routing key `{spec.routing_key}` on the topic exchange `{exchange}`.",
        "messages": {spec.event_type: {"$ref": f"#/components/messages/{spec.event_type}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": exchange,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _message(model: type[EventData], schemas: dict[str, Any]) -> dict[str, Any]:
    spec = model.spec
    payload = envelope_schema(model)
    for name, definition in _hoist_definitions(payload).items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas are both named {name}")
    summary = (model.__doc__ or spec.event_type).strip().splitlines()[0]
    return {
        "name": spec.event_type,
        "title": spec.event_type,
        "summary": summary,
        "contentType": CONTENT_TYPE,
        "payload": payload,
        "correlationId": {
            "description": "Carried from the request or event that started the chain.",
            "location": "$message.payload#/correlation_id",
        },
        "bindings": {
            "amqp": {"messageType": spec.event_type, "bindingVersion": AMQP_BINDING_VERSION}
        },
    }


def _hoist_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """Move ``$defs`` out of ``schema`` into the document's components (a payload's local
    references would otherwise point at the document's root)."""
    definitions: dict[str, Any] = schema.pop("$defs", {})
    for node in (schema, *definitions.values()):
        _repoint(node)
    return definitions


def _repoint(node: Any) -> None:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            node["$ref"] = reference.replace("#/$defs/", "#/components/schemas/", 1)
        for value in node.values():
            _repoint(value)
    elif isinstance(node, list):
        for value in node:
            _repoint(value)


def _operation_id(service: str, action: str, model: type[EventData]) -> str:
    return f"{service}.{action}.{model.spec.event_type}"


def _operation(party: ServiceEvents, action: str, model: type[EventData]) -> dict[str, Any]:
    spec = model.spec
    channel = f"#/channels/{spec.routing_key}"
    binding: dict[str, Any] = (
        {"deliveryMode": PERSISTENT, "mandatory": True}
        if action == "send"
        else {"ack": True}  # from its own durable queue, acknowledged once handled
    )
    return {
        "action": action,
        "channel": {"$ref": channel},
        "messages": [{"$ref": f"{channel}/messages/{spec.event_type}"}],
        "summary": f"{party.service} {action}s {spec.event_type}",
        "bindings": {"amqp": {**binding, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _unique(models: Iterable[type[EventData]]) -> list[type[EventData]]:
    return list(dict.fromkeys(models))


def load_service_events(module_names: Iterable[str]) -> list[ServiceEvents]:
    """The ``EVENTS`` each bootstrap module declares (imported by name: the kit imports no
    service)."""
    found = []
    for name in module_names:
        events = getattr(importlib.import_module(name), "EVENTS", None)
        if not isinstance(events, ServiceEvents):
            raise SystemExit(f"{name} defines no EVENTS (a ServiceEvents)")
        found.append(events)
    return found


def main(arguments: Sequence[str]) -> None:
    if len(arguments) < 2:
        raise SystemExit("usage: python -m onboarding_shared.contract.asyncapi OUTPUT MODULE...")
    output, *modules = arguments
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(combined_document(load_service_events(modules))))
    print(path)


if __name__ == "__main__":
    # Through the module's real name: the services' EVENTS are instances of its classes, not
    # of this __main__ copy's.
    importlib.import_module("onboarding_shared.contract.asyncapi").main(sys.argv[1:])
