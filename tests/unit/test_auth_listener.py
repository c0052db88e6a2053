"""The auth-listener's rules against in-memory fakes: first logins activate, the others cost no
write, logins that arrive before their account are kept, Keycloak events are understood."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

import pytest

from auth_listener.domain.keycloak import MalformedEvent, login_from_keycloak, routing_key
from auth_listener.domain.model import Login
from auth_listener.service_layer import services
from auth_listener.service_layer.services import LoginOutcome
from onboarding_shared.contract import Envelope, UserCreated, UserUpdated, new_event
from tests.support.fake_auth_listener import FakeAuthListenerUnitOfWork

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ADA_ID = uuid.uuid4()

# As the keycloak-to-rabbitmq listener publishes it (routing key
# KK.EVENT.CLIENT.acme.SUCCESS.chat.LOGIN on amq.topic).
KEYCLOAK_LOGIN = {
    "@class": "com.github.aznamier.keycloak.event.provider.EventClientNotificationMqMsg",
    "time": 1796040000000,
    "type": "LOGIN",
    "realmId": "acme",
    "clientId": "chat",
    "userId": "0b1e7f8a-6d1c-4c57-8a8e-3f1d2c9b7a10",
    "ipAddress": "10.0.0.7",
    "sessionId": "5c0a5b3e-1f77-4d38-bb7c-1b0b4d0e8f21",
    "details": {
        "auth_method": "openid-connect",
        "username": "ada",
        "email": "Ada@Example.com",
        "redirect_uri": "https://chat.acme.test/",
    },
}


def created(status: str = "pending", **overrides: object) -> Envelope[UserCreated]:
    data = {
        "user_id": ADA_ID,
        "email": "ada@example.com",
        "username": "Ada",
        "name": "Ada",
        "roles": ["user"],
        "status": status,
        "created_at": NOW,
        **overrides,
    }
    return new_event(UserCreated(**data), producer="users")


def updated(status: str, at: datetime, **overrides: object) -> Envelope[UserUpdated]:
    data = {**created(status).data.model_dump(), "updated_at": at, **overrides}
    return new_event(UserUpdated(**data), producer="users")


class Identity(TypedDict, total=False):
    """How a login names its account: any of the three."""

    user_id: uuid.UUID
    email: str
    username: str


async def login(
    uow: FakeAuthListenerUnitOfWork, at: datetime = NOW, **identity: Unpack[Identity]
) -> LoginOutcome:
    return await services.record_login(
        uow, Login(logged_in_at=at, **identity), event_id=uuid.uuid4(), now=NOW
    )


def activations(uow: FakeAuthListenerUnitOfWork) -> list[datetime]:
    return [event.data.activated_at for event in uow.events("UserActivated")]


@pytest.mark.parametrize(
    "identity",
    [{"user_id": ADA_ID}, {"email": "ADA@example.com"}, {"username": "ada"}],
    ids=["user_id", "email", "username"],
)
async def test_the_first_login_of_a_pending_account_activates_it(
    identity: Identity,
) -> None:
    uow = FakeAuthListenerUnitOfWork()
    await services.apply_account(uow, created())
    assert await login(uow, NOW + timedelta(minutes=1), **identity) is LoginOutcome.ACTIVATED
    assert activations(uow) == [NOW + timedelta(minutes=1)]
    assert uow.events("UserActivated")[0].data.user_id == ADA_ID


async def test_later_logins_cost_no_write() -> None:
    uow = FakeAuthListenerUnitOfWork()
    await services.apply_account(uow, created())
    await login(uow, user_id=ADA_ID)
    commits, locks = uow.commits, uow.accounts.locks_taken
    for _ in range(100):
        assert await login(uow, user_id=ADA_ID) is LoginOutcome.ALREADY_ACTIVE
    assert (uow.commits, uow.accounts.locks_taken) == (commits, locks)
    assert len(activations(uow)) == 1


async def test_a_deactivated_account_stays_deactivated() -> None:
    uow = FakeAuthListenerUnitOfWork()
    await services.apply_account(uow, created("deactivated"))
    assert await login(uow, email="ada@example.com") is LoginOutcome.DEACTIVATED
    assert activations(uow) == []


async def test_a_login_before_the_account_activates_it_when_it_arrives() -> None:
    uow = FakeAuthListenerUnitOfWork()
    assert (
        await login(uow, NOW - timedelta(seconds=5), username="ADA") is LoginOutcome.UNKNOWN_ACCOUNT
    )
    assert activations(uow) == []
    await services.apply_account(uow, created())
    assert activations(uow) == [NOW - timedelta(seconds=5)]
    assert uow.pending_logins.rows == {}


async def test_the_earliest_of_several_early_logins_is_the_first_login() -> None:
    uow = FakeAuthListenerUnitOfWork()
    await login(uow, NOW + timedelta(minutes=2), email="ada@example.com")
    await login(uow, NOW + timedelta(minutes=1), user_id=ADA_ID)
    await services.apply_account(uow, created())
    assert activations(uow) == [NOW + timedelta(minutes=1)]


async def test_an_older_snapshot_never_overwrites_a_newer_one() -> None:
    uow = FakeAuthListenerUnitOfWork()
    await services.apply_account(uow, updated("deactivated", NOW + timedelta(minutes=5)))
    await services.apply_account(uow, created())  # older: ignored
    assert await login(uow, user_id=ADA_ID) is LoginOutcome.DEACTIVATED


async def test_a_duplicate_account_event_is_applied_once() -> None:
    uow = FakeAuthListenerUnitOfWork()
    await login(uow, user_id=ADA_ID)
    event = created()
    await services.apply_account(uow, event)
    await services.apply_account(uow, event)
    assert len(activations(uow)) == 1


async def test_stale_logins_of_accounts_that_never_arrived_are_forgotten() -> None:
    uow = FakeAuthListenerUnitOfWork()
    await login(uow, email="stranger@example.com")
    assert await services.forget_stale_logins(uow, received_before=NOW + timedelta(days=8)) == 1


def test_a_keycloak_login_names_the_account_by_email_and_username() -> None:
    found = login_from_keycloak(json.dumps(KEYCLOAK_LOGIN).encode())
    assert found is not None
    assert (found.email, found.username, found.user_id) == ("Ada@Example.com", "ada", None)
    assert found.logged_in_at == datetime.fromtimestamp(1796040000, tz=UTC)
    assert found.source == "keycloak:acme"


@pytest.mark.parametrize(
    "change", [{"type": "LOGOUT"}, {"type": "LOGIN", "error": "invalid_user_credentials"}]
)
def test_other_keycloak_events_are_ignored(change: dict[str, object]) -> None:
    assert login_from_keycloak(json.dumps({**KEYCLOAK_LOGIN, **change}).encode()) is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({**KEYCLOAK_LOGIN, "details": {}}).encode(),
        json.dumps({**KEYCLOAK_LOGIN, "details": "ada"}).encode(),
        json.dumps({**KEYCLOAK_LOGIN, "time": "yesterday"}).encode(),
        json.dumps({**KEYCLOAK_LOGIN, "details": {"username": ["ada"]}}).encode(),
    ],
)
def test_malformed_keycloak_events_are_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(MalformedEvent):
        login_from_keycloak(body)


def test_the_binding_follows_the_listener_naming() -> None:
    assert routing_key("*", "*") == "KK.EVENT.CLIENT.*.SUCCESS.*.LOGIN"
    assert routing_key("my.realm", "web app") == "KK.EVENT.CLIENT.myrealm.SUCCESS.web_app.LOGIN"
