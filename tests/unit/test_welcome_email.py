"""The welcome email: subject, login link, and a set-password link instead of a password."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from mailer.domain.rendering import WelcomeEmail, render_welcome
from mailer.service_layer.services import WELCOME_KIND, welcome_email
from onboarding_shared.contract import WelcomeEmailRequested, new_event

LINK = "https://chat.acme.test/set-password#token=abc_DEF-123"


def email(**overrides: object) -> WelcomeEmail:
    values = {
        "name": "Ada <b>Lovelace</b>",
        "username": "ada",
        "workspace_name": "Acme\nChat",
        "login_url": "https://chat.acme.test/",
        "set_password_url": LINK,
        "set_password_expires_at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        **overrides,
    }
    return WelcomeEmail(**values)  # type: ignore[arg-type]


def test_the_welcome_email_carries_the_set_password_link() -> None:
    rendered = render_welcome(email())
    assert rendered.subject == "Welcome to Acme Chat"
    assert f'href="{LINK}"' in rendered.html
    assert ">Set your password</a>" in rendered.html
    assert LINK in rendered.text and "December 01, 2026 at 09:30 UTC" in rendered.text
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in rendered.html  # escaped


def test_without_a_link_it_only_invites_to_log_in() -> None:
    rendered = render_welcome(email(set_password_url=None, set_password_expires_at=None))
    assert "set-password" not in rendered.html + rendered.text
    assert "Log in: https://chat.acme.test/" in rendered.text


def test_a_link_that_is_not_a_web_link_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        render_welcome(email(set_password_url="javascript:alert(1)"))


def test_the_email_is_about_the_user() -> None:
    user_id = uuid.uuid4()
    event = new_event(
        WelcomeEmailRequested(
            user_id=user_id,
            email="ada@example.com",
            name="Ada",
            username="ada",
            workspace_name="Acme Chat",
            login_url="https://chat.acme.test/",
        ),
        producer="users",
    )
    outgoing = welcome_email(event, sender="Acme <team@acme.test>")
    assert (outgoing.kind, outgoing.reference_id, outgoing.recipient) == (
        WELCOME_KIND,
        user_id,
        "ada@example.com",
    )
