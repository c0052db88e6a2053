"""The first flow through the running processes: an invitation becomes an email in a real
mailbox, and the invitation is marked sent."""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx
import pytest

from tests.e2e.conftest import RunningSystem
from tests.support.auth import admin_headers
from tests.support.broker import eventually

pytestmark = pytest.mark.e2e

JOIN_LINK = re.compile(r'href="(http://chat\.acme\.test/join/([A-Za-z0-9_-]{43,}))"')


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


async def test_three_invitations_become_three_well_formed_emails(system: RunningSystem) -> None:
    async with httpx.AsyncClient(
        base_url=system.url("invitations"), timeout=10, headers=admin_headers()
    ) as client:
        response = await client.post(
            "/api/v1/invitations",
            json={"emails": "ada@example.com, grace@example.com\nlinus@example.com"},
        )
        assert response.status_code == 202, response.text
        assert [r["outcome"] for r in response.json()["results"]] == ["queued"] * 3

        await eventually(lambda: len(system.smtp.messages) == 3, timeout=60)

        async def all_sent() -> list[str] | None:
            items = (await client.get("/api/v1/invitations")).json()["items"]
            statuses = [item["status"] for item in items]
            return statuses if statuses == ["sent"] * 3 else None

        assert await eventually(all_sent, timeout=30)

    messages = sorted(system.smtp.messages, key=lambda m: str(m["To"]))
    assert [str(m["To"]) for m in messages] == [
        "ada@example.com",
        "grace@example.com",
        "linus@example.com",
    ]
    tokens = set()
    for message in messages:
        assert message["Subject"] == "Welcome to Acme Chat"
        assert message["From"] == "Acme Chat <no-reply@acme.test>"
        assert message.get_content_type() == "multipart/alternative"
        html, text = body(message, "html"), body(message, "plain")
        link = JOIN_LINK.search(html)
        assert link, html
        assert ">Join Chat</a>" in html
        assert "Acme Chat" in html and "Acme Chat" in text
        assert f"Join Chat: {link.group(1)}" in text
        tokens.add(link.group(2))
    assert len(tokens) == 3
