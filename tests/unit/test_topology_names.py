"""The list of queue names that operators' tools and the tests rely on matches what the
services actually declare."""

from __future__ import annotations

from typing import Any

import auth_listener.bootstrap
import invitations.bootstrap
import mailer.bootstrap
import users.bootstrap
from auth_listener.settings import AuthListenerSettings
from invitations.settings import InvitationsSettings
from mailer.settings import MailerSettings
from onboarding_shared.tools.parked import KNOWN_QUEUES
from tests.support.auth import issuer_settings, verifier_settings
from tests.support.factories import INVITATION_TOKEN_SECRET
from users.settings import UsersSettings

PREFIX = "p."


def common() -> dict[str, Any]:
    return {
        "database_url": "sqlite+aiosqlite:///never-opened.db",
        "http_port": 1,
        "queue_prefix": PREFIX,
        "invitation_token_secret": INVITATION_TOKEN_SECRET,
    }


def declared_queues() -> set[str]:
    apps = [
        users.bootstrap.create_app(UsersSettings(**common(), **issuer_settings())),
        invitations.bootstrap.create_app(InvitationsSettings(**common(), **verifier_settings())),
        mailer.bootstrap.create_app(MailerSettings(**common(), **verifier_settings())),
        mailer.bootstrap.create_app(
            MailerSettings(**common(), **verifier_settings(), smtp_host="localhost")
        ),
        auth_listener.bootstrap.create_app(
            AuthListenerSettings(**common(), keycloak_events_enabled=True)
        ),
    ]
    names = set()
    for app in apps:
        runtime = app.state.runtime
        queues = [consumer.queue for consumer in runtime.consumers] + runtime.dormant_queues
        names |= {queue.name.removeprefix(PREFIX) for queue in queues}
    return names


def test_every_declared_queue_is_known_and_every_known_queue_is_declared() -> None:
    assert declared_queues() == set(KNOWN_QUEUES)
