"""The welcome email end to end in one process pair (users and mailer) with a real SMTP server:
a set-password link that works once, and the answer when SMTP is not configured."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import TypedDict, Unpack

import aio_pika
import pytest

from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.entrypoints.subscribers import WELCOME_EMAILS_QUEUE
from mailer.settings import MailerSettings, SmtpSecurity
from tests.support import auth
from tests.support.broker import Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.smtp import SmtpServer
from tests.support.users_service import admin_token, new_user, users_settings
from users.bootstrap import create_app as create_users

pytestmark = pytest.mark.integration

LINK = re.compile(r"(http://chat\.acme\.example/set-password#token=([A-Za-z0-9_-]{43}))")
RANDOM_PASSWORD_USER = new_user(password=None, set_random_password=True, send_welcome_email=True)


class Smtp(TypedDict, total=False):
    smtp_host: str
    smtp_port: int
    smtp_tls: SmtpSecurity


async def mailer_settings(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, **smtp: Unpack[Smtp]
) -> MailerSettings:
    database_url = await databases.create_migrated("mailer", MAILER_MIGRATIONS)
    return MailerSettings(
        **service_settings(namespace, amqp_url, database_url, http_port=8997),
        **auth.verifier_settings(),
        status_interval_seconds=0.3,
        smtp_from="Acme Chat <team@acme.example>",
        **smtp,
    )


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


@pytest.fixture
async def smtp_settings(smtp_server: SmtpServer) -> Smtp:
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "smtp_tls": SmtpSecurity.NONE}


async def test_the_welcome_email_carries_a_set_password_link_that_works_once(
    databases: DatabaseFactory,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    smtp_settings: Smtp,
) -> None:
    mailer = await mailer_settings(databases, amqp_url, namespace, **smtp_settings)
    users = await users_settings(databases, amqp_url, namespace)
    async with in_process(create_mailer, mailer), in_process(create_users, users) as client:
        headers = auth.bearer(await admin_token(client))
        created = await client.post("/api/v1/users", json=RANDOM_PASSWORD_USER, headers=headers)
        assert created.status_code == 201, created.text
        await eventually(lambda: smtp_server.messages, timeout=30)

        message = smtp_server.messages[0]
        assert message["Subject"] == "Welcome to Acme Chat"
        assert message["To"] == "ada@example.com"
        html, text = text_of(message, "html"), text_of(message, "plain")
        link = LINK.search(html)
        assert link is not None, html
        assert link.group(1) in text and "Your username is ada" in text
        token = link.group(2)

        page = await client.get("/set-password")
        policy = page.headers["content-security-policy"]
        assert page.status_code == 200 and "/static/set-password.js" in page.text
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["referrer-policy"] == "no-referrer"  # the token is in the address
        answer = await client.post(
            "/api/v1/auth/set-password", json={"token": token, "password": "Chosen-password-7"}
        )
        assert answer.status_code == 204, answer.text
        again = await client.post(
            "/api/v1/auth/set-password", json={"token": token, "password": "Another-password-8"}
        )
        assert again.status_code == 400
        login = await client.post(
            "/api/v1/auth/login", json={"login": "ada", "password": "Chosen-password-7"}
        )
        assert login.status_code == 200
        user = login.json()["user"]
        assert (user["verified"], user["require_password_change"]) == (True, False)
        refused = await client.post(
            "/api/v1/auth/login", json={"login": "ada", "password": "Another-password-8"}
        )
        assert refused.status_code == 401


async def test_a_weak_password_or_a_forged_link_is_refused(
    databases: DatabaseFactory,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    smtp_settings: Smtp,
) -> None:
    mailer = await mailer_settings(databases, amqp_url, namespace, **smtp_settings)
    users = await users_settings(databases, amqp_url, namespace)
    async with in_process(create_mailer, mailer), in_process(create_users, users) as client:
        headers = auth.bearer(await admin_token(client))
        await client.post("/api/v1/users", json=RANDOM_PASSWORD_USER, headers=headers)
        await eventually(lambda: smtp_server.messages, timeout=30)
        link = LINK.search(text_of(smtp_server.messages[0], "html"))
        assert link is not None
        weak = await client.post(
            "/api/v1/auth/set-password", json={"token": link.group(2), "password": "short"}
        )
        assert weak.status_code == 422
        assert weak.json()["detail"][0]["loc"] == ["body", "password"]
        forged = await client.post(
            "/api/v1/auth/set-password", json={"token": "x" * 43, "password": "Chosen-password-7"}
        )
        assert forged.status_code == 400
        still = await client.post(
            "/api/v1/auth/set-password",
            json={"token": link.group(2), "password": "Chosen-password-7"},
        )
        assert still.status_code == 204  # a refused attempt does not spend the link


async def test_without_smtp_the_answer_says_the_email_waits_and_it_does(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> None:
    mailer = await mailer_settings(databases, amqp_url, namespace)  # no SMTP_HOST
    users = await users_settings(databases, amqp_url, namespace)
    async with in_process(create_mailer, mailer), in_process(create_users, users) as client:
        headers = auth.bearer(await admin_token(client))

        async def created_answer() -> dict[str, object] | None:
            response = await client.post(
                "/api/v1/users",
                json=new_user(
                    email=f"u{len(answers)}@example.com",
                    username=f"u{len(answers)}",
                    send_welcome_email=True,
                ),
                headers=headers,
            )
            answers.append(response.json())
            status = response.json()["welcome_email"]["status"]
            return response.json() if status == "waiting_for_smtp" else None

        answers: list[dict[str, object]] = []
        answer = await eventually(created_answer, timeout=15, interval=0.3)  # heartbeat heard
        assert "SMTP is not configured" in str(answer["welcome_email"])
        waiting = await eventually(
            lambda: _messages_in(amqp_url, namespace.queue(WELCOME_EMAILS_QUEUE)), timeout=20
        )
        assert waiting == len(answers)  # nothing lost: every welcome email waits in the queue


async def _messages_in(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
