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

from onboarding_shared.contract.envelope import EventData, envelope_schema, mail_exchange_for
from onboarding_shared.contract.events import ALL_EVENTS, EventRejected, UserLoggedIn
from onboarding_shared.messaging.topology import EVENTS_EXCHANGE

ASYNCAPI_VERSION = "3.0.0"
# The version of the whole contract (`info.version`), as docs/contract.md defines it: major when
# a routing key is retired, minor when an event, a routing key or an optional field is added,
# patch when only descriptions change. 2.0.0 retired invitation.requested.v1 and
# user.welcome_email_requested.v1.
CONTRACT_VERSION = "2.2.0"
AMQP_BINDING_VERSION = "0.3.0"
CONTENT_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery mode

_CONTRACT_RULES = (
    "Every event is a JSON envelope published to the durable topic exchange `{exchange}` "
    "(mailer-only requests, which carry links, to `{mail_exchange}`, which only the mailer "
    "may read) with the routing key `<name>.v<major>`, persistent, with the AMQP message_id "
    "equal to the envelope's `event_id`, content type `application/json` and user_id the "
    "publisher's broker user. An event that one service alone produces is acted on only when "
    "the broker vouches (user_id) that this service's broker user sent it; only "
    "`user.logged_in.v1` is open to outside publishers. A consumer that cannot act on a "
    "message parks it with a reason and announces it as `event.rejected.v1`. Delivery is at "
    "least once and in no guaranteed order: consumers deduplicate on `event_id` and ignore "
    "fields they do not know. Producers may add optional fields within a major version; "
    "anything else is a new major version with a new routing key, published beside the old "
    "one until the old one is retired. `info.version` is the version of this whole contract: "
    "major when a routing key is retired, minor when something is added. Servers: the "
    "exchanges live in the virtual host the operators give you (`{{vhost}}`). The policy in "
    "full: docs/contract.md."
)


def contract_rules(exchange: str) -> str:
    return _CONTRACT_RULES.format(exchange=exchange, mail_exchange=mail_exchange_for(exchange))


# Where the exchanges are: the broker's address and virtual host are the deployment's, so both
# are variables (AsyncAPI server variables), never a fixed host or vhost `/`.
_VHOST = {
    "default": "%2F",
    "description": "The virtual host, URL-encoded as in an AMQP URL's path: `%2F` is the "
    "default vhost `/`. Ask the broker's operators which one the onboarding exchanges are in.",
    "examples": ["%2F", "onboarding"],
}


def _server(protocol: str, port: int, description: str) -> dict[str, Any]:
    return {
        "host": "{host}",
        "protocol": protocol,
        "pathname": "/{vhost}",
        "description": description,
        "variables": {
            "host": {
                "default": f"localhost:{port}",
                "description": "The broker's host and port.",
                "examples": [f"localhost:{port}", f"rabbitmq.example.net:{port}"],
            },
            "vhost": _VHOST,
        },
    }


SERVERS: dict[str, Any] = {
    "rabbitmq": _server("amqp", 5672, "RabbitMQ without TLS (development)."),
    "rabbitmq-tls": _server("amqps", 5671, "RabbitMQ over TLS (production)."),
}


@dataclass(frozen=True)
class ServiceEvents:
    """The events one service (or outside system) publishes and consumes."""

    service: str
    sends: tuple[type[EventData], ...]
    receives: tuple[type[EventData], ...]
    description: str = ""


# Outside systems the contract invites to publish (docs/integrating.md), and the feedback they
# may bind to: the rejections of what they published.
IDENTITY_PROVIDERS = ServiceEvents(
    "identity-provider",
    sends=(UserLoggedIn,),
    receives=(EventRejected,),
    description="Any identity provider may publish UserLoggedIn (see docs/integrating.md), and "
    "bind to event.rejected.v1 to learn which of its messages were refused.",
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
        "servers": SERVERS,
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
    where = spec.exchange(exchange)
    if spec.producer:
        publisher = f"Published only by the {spec.producer} service's broker user (AMQP user_id)."
    elif model in IDENTITY_PROVIDERS.sends:
        publisher = "Open: identity providers may publish it too."
    else:  # e.g. event.rejected.v1, which every service publishes
        publisher = "Published by the onboarding services' broker users (AMQP user_id) only."
    readers = " Only the mailer may read this exchange." if spec.mail_only else ""
    return {
        "address": spec.routing_key,
        "title": spec.event_type,
        "description": f"Routing key `{spec.routing_key}` on the topic exchange `{where}`. "
        f"{publisher}{readers}",
        "messages": {spec.event_type: {"$ref": f"#/components/messages/{spec.event_type}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                # No vhost: it is the server's ({vhost}), the deployment's choice.
                "exchange": {
                    "name": where,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
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
        {"deliveryMode": PERSISTENT, "mandatory": spec.mandatory}
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
