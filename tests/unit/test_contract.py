"""The event contract: envelope shape, forward compatibility, routing keys, published schemas."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from onboarding_shared.contract import (
    ALL_EVENTS,
    Envelope,
    InvitationRequested,
    UserActivated,
    UserLoggedIn,
    new_event,
    spec_for_type,
)
from onboarding_shared.contract.schemas import render_schemas
from onboarding_shared.correlation import use_correlation_id
from tests.support.factories import invitation_requested

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_every_routing_key_is_name_dot_major_version() -> None:
    keys = {model.spec.routing_key for model in ALL_EVENTS}
    assert {
        "invitation.issued.v1",
        "invitation.requested.v2",
        "invitation.revoked.v1",
        "user.welcome_email_requested.v2",
        "event.rejected.v1",
        "email.sent.v1",
        "email.failed.v1",
        "user.created.v1",
        "user.updated.v1",
        "user.logged_in.v1",
        "user.activated.v1",
    } <= keys
    assert all(
        key.rsplit(".", 1)[1] == f"v{model.spec.version}"
        for key, model in ((m.spec.routing_key, m) for m in ALL_EVENTS)
    )


def test_the_envelope_carries_every_required_field() -> None:
    event = invitation_requested()
    wire = json.loads(event.to_json())
    assert set(wire) == {
        "event_id",
        "event_type",
        "event_version",
        "occurred_at",
        "producer",
        "correlation_id",
        "actor_id",  # null: nobody's request caused it
        "data",
    }
    assert wire["event_type"] == "InvitationRequested"
    assert wire["event_version"] == 2
    assert wire["occurred_at"].endswith("Z")
    assert uuid.UUID(wire["event_id"])


def test_consumers_ignore_fields_they_do_not_know() -> None:
    wire = json.loads(invitation_requested().to_json())
    wire["added_later"] = 1
    wire["data"]["also_added_later"] = {"nested": True}
    parsed = Envelope[InvitationRequested].model_validate(wire)
    assert parsed.data.email == "someone@example.com"


def test_a_new_event_continues_the_current_correlation() -> None:
    use_correlation_id("request-42")
    try:
        event = new_event(
            UserActivated(user_id=uuid.uuid4(), activated_at=datetime.now(UTC)), producer="x"
        )
    finally:
        use_correlation_id(None)
    assert event.correlation_id == "request-42"


def test_an_event_without_a_correlation_starts_one() -> None:
    event = new_event(
        UserActivated(user_id=uuid.uuid4(), activated_at=datetime.now(UTC)), producer="x"
    )
    assert uuid.UUID(event.correlation_id)


def test_a_login_needs_at_least_one_identifier() -> None:
    with pytest.raises(ValidationError, match="one of user_id, email or username"):
        UserLoggedIn(logged_in_at=datetime.now(UTC))
    assert UserLoggedIn(username="ada", logged_in_at=datetime.now(UTC)).username == "ada"


def test_wire_names_resolve_to_models_and_unknown_ones_do_not() -> None:
    assert spec_for_type("UserActivated", 1) is UserActivated
    assert spec_for_type("UserActivated", 2) is None
    assert spec_for_type("Something", 1) is None


def test_the_checked_in_schemas_match_the_models() -> None:
    expected = render_schemas()
    checked_in = {path.name: path.read_text() for path in SCHEMAS.glob("*.json")}
    assert checked_in == expected, "docs/schemas is out of date: run `make schemas`"


def test_a_schema_pins_the_event_type_and_version() -> None:
    schema = json.loads(render_schemas()["user.activated.v1.json"])
    assert schema["title"] == "UserActivated"
    assert schema["properties"]["event_type"]["const"] == "UserActivated"
    assert schema["properties"]["event_version"]["const"] == 1
    assert "user.activated.v1" in schema["description"]


def test_links_travel_only_on_the_mail_exchange_and_every_key_names_its_producer() -> None:
    for model in ALL_EVENTS:
        fields = set(model.model_fields)
        carries_a_link = bool(fields & {"join_url", "set_password_url"})
        assert model.spec.mail_only == carries_a_link, model.spec.routing_key
        assert model.spec.exchange("onboarding.events") == (
            "onboarding.events.mail" if carries_a_link else "onboarding.events"
        )
    open_keys = {m.spec.routing_key for m in ALL_EVENTS if m.spec.producer is None}
    assert open_keys == {"user.logged_in.v1"}


def test_a_login_schema_requires_an_identifier_as_the_service_does() -> None:
    schema = json.loads((SCHEMAS / "user.logged_in.v1.json").read_text())
    data = schema["$defs"]["UserLoggedIn"]
    assert [branch["required"] for branch in data["anyOf"]] == [
        ["user_id"],
        ["email"],
        ["username"],
    ]
