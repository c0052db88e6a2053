"""The AsyncAPI documents: generated from the contract and the services' declarations, kept
in docs/, consistent with what the services really consume, and served by each service."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from auth_listener import bootstrap as auth_listener
from auth_listener.settings import AuthListenerSettings
from invitations import bootstrap as invitations
from invitations.settings import InvitationsSettings
from mailer import bootstrap as mailer
from mailer.settings import MailerSettings
from onboarding_shared.contract import ALL_EVENTS, MailerStatus, mail_exchange_for
from onboarding_shared.contract.asyncapi import (
    ServiceEvents,
    combined_document,
    render,
    service_document,
)
from tests.support.auth import issuer_settings, verifier_settings
from tests.support.broker import Namespace
from tests.support.factories import service_settings
from users import bootstrap as users
from users.settings import UsersSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"
BOOTSTRAPS = (users, invitations, mailer, auth_listener)
NAMESPACE = Namespace(exchange="docs.events", queue_prefix="docs.")


def everything() -> dict[str, Any]:
    return combined_document([module.EVENTS for module in BOOTSTRAPS])


def test_the_checked_in_asyncapi_document_matches_the_contract() -> None:
    checked_in = (DOCS / "asyncapi.json").read_text()
    assert checked_in == render(everything()), "docs/asyncapi.json is out of date: `make docs`"


def resolve(document: dict[str, Any], reference: str) -> Any:
    assert reference.startswith("#/"), reference
    node: Any = document
    for part in reference[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


@pytest.mark.parametrize(
    "document",
    [everything(), *(service_document(module.EVENTS) for module in BOOTSTRAPS)],
    ids=["combined", *(module.SERVICE for module in BOOTSTRAPS)],
)
def test_every_reference_resolves_inside_the_document(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    found = references(document)
    assert found
    for reference in found:
        resolve(document, reference)


def test_every_event_has_a_publisher_and_every_channel_is_an_amqp_routing_key() -> None:
    document = everything()
    sent = {
        op["channel"]["$ref"] for op in document["operations"].values() if op["action"] == "send"
    }
    assert sent == {f"#/channels/{model.spec.routing_key}" for model in ALL_EVENTS}
    for key, channel in document["channels"].items():
        assert channel["address"] == key
        amqp = channel["bindings"]["amqp"]
        assert amqp["is"] == "routingKey"
        model = next(m for m in ALL_EVENTS if m.spec.routing_key == key)
        # No vhost pinned: it is the servers' {vhost} variable.
        assert amqp["exchange"] == {
            "name": model.spec.exchange("onboarding.events"),
            "type": "topic",
            "durable": True,
            "autoDelete": False,
        }
    assert document["servers"]["rabbitmq"]["pathname"] == "/{vhost}"


def test_a_service_document_holds_only_its_own_events() -> None:
    document = service_document(mailer.EVENTS, exchange="acme.events")
    assert set(document["channels"]) == {
        "invitation.requested.v2",
        "invitation.acceptance_email_requested.v1",
        "user.welcome_email_requested.v2",
        "email.sent.v1",
        "email.deferred.v1",
        "email.failed.v1",
        "mailer.status.v1",
        "event.rejected.v1",
    }
    assert {op["action"] for op in document["operations"].values()} == {"send", "receive"}
    exchanges = {c["bindings"]["amqp"]["exchange"]["name"] for c in document["channels"].values()}
    assert exchanges == {"acme.events", "acme.events.mail"}


def settings_of(service: str) -> Any:
    common = service_settings(
        NAMESPACE, "amqp://guest:guest@localhost:5672/", "sqlite+aiosqlite://"
    )
    if service == "users":
        return UsersSettings(**common, **issuer_settings())
    if service == "invitations":
        return InvitationsSettings(**common, **verifier_settings())
    if service == "mailer":
        return MailerSettings(**common, **verifier_settings(), smtp_host="127.0.0.1")
    return AuthListenerSettings(**common)


def app_of(module: Any) -> FastAPI:
    create: Callable[[Any], FastAPI] = module.create_app
    return create(settings_of(module.SERVICE))


@pytest.mark.parametrize("module", BOOTSTRAPS, ids=[m.SERVICE for m in BOOTSTRAPS])
def test_declared_receives_are_what_the_consumers_are_bound_to(module: Any) -> None:
    app = app_of(module)
    events: ServiceEvents = module.EVENTS
    ours = {None, mail_exchange_for(NAMESPACE.exchange)}
    bound = {
        binding.routing_key
        for consumer in app.state.runtime.consumers
        for binding in consumer.queue.bindings
        if binding.exchange in ours
    }
    declared = {model.spec.routing_key for model in events.receives}
    # MailerStatus arrives through the heartbeat watcher's own queue, not a ReliableConsumer.
    assert declared - bound <= {MailerStatus.spec.routing_key}
    assert bound <= declared


@pytest.mark.parametrize("module", BOOTSTRAPS, ids=[m.SERVICE for m in BOOTSTRAPS])
async def test_each_service_serves_its_document_and_nothing_that_publishes(module: Any) -> None:
    app = app_of(module)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.get("/asyncapi.json")
        assert response.status_code == 200
        assert response.json() == json.loads(
            json.dumps(service_document(module.EVENTS, exchange=NAMESPACE.exchange))
        )
        paths = set(app.openapi()["paths"])
        assert not [path for path in paths if "asyncapi" in path and path != "/asyncapi.json"]
        assert (await client.post("/asyncapi.json")).status_code == 405
