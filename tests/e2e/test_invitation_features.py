"""Issue 13's features, each as one journey through the running processes: the inviter told of
an acceptance, a reminder, a CSV file of invitations, and the audit trail of it all."""

from __future__ import annotations

import csv
import io
import re
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningSystem
from tests.support import auth
from tests.support.broker import eventually

pytestmark = pytest.mark.e2e

JOIN_LINK = re.compile(r'href="http://chat\.acme\.test/join/([A-Za-z0-9_-]{43,})"')
PASSWORD = "Analytical-engine-1"


def token_in(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    link = JOIN_LINK.search(str(part.get_content()))
    assert link, "no Join Chat link"
    return link.group(1)


def mails_to(system: RunningSystem, address: str) -> list[EmailMessage]:
    return [m for m in system.smtp.messages if str(m["To"]).lower() == address.lower()]


async def signed_in_admin(users: httpx.AsyncClient) -> dict[str, str]:
    """The seeded admin, a real account: the invitations service knows them as a member."""
    login = await users.post(
        "/api/v1/auth/login",
        json={"login": auth.ADMIN["username"], "password": auth.ADMIN["password"]},
    )
    assert login.status_code == 200, login.text
    return auth.bearer(login.json()["access_token"])


async def test_the_inviter_is_emailed_when_someone_accepts_and_it_is_in_the_audit_trail(
    system: RunningSystem,
) -> None:
    async with (
        httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users,
        httpx.AsyncClient(base_url=system.url("invitations"), timeout=10) as invitations,
    ):
        admin = await signed_in_admin(users)
        invited = await invitations.post(
            "/api/v1/invitations", json={"emails": "grace@example.com"}, headers=admin
        )
        assert invited.status_code == 202, invited.text
        [invitation] = await eventually(lambda: mails_to(system, "grace@example.com"), timeout=60)
        await eventually(lambda: _page_ready(users, token_in(invitation)), interval=0.5)
        joined = await users.post(
            f"/join/{token_in(invitation)}",
            data={"name": "Grace Hopper", "username": "grace", "password": PASSWORD},
        )
        assert joined.status_code == 201, joined.text

        [notice] = await eventually(lambda: mails_to(system, auth.ADMIN["email"]), timeout=60)
        assert notice["Subject"] == "Grace Hopper accepted your invitation to Acme Chat"

        async def recorded() -> list[str] | None:
            answer = await users.get("/api/v1/audit", params={"search": "grace"}, headers=admin)
            actions = sorted(item["action"] for item in answer.json()["items"])
            return actions if len(actions) == 2 else None

        assert await eventually(recorded, timeout=30) == ["invitation.sent", "user.joined"]


@pytest.mark.system_environment(
    INVITATION_REMINDER_HOURS_BEFORE_EXPIRY="1",
    INVITATION_REMINDER_MIN_VALIDITY_HOURS="1",
    REMINDER_CHECK_SECONDS="0.5",
)
async def test_an_unaccepted_invitation_gets_one_reminder_with_the_same_link(
    system: RunningSystem,
) -> None:
    """Valid one hour and reminded one hour before it expires: due as soon as it is sent."""
    async with httpx.AsyncClient(
        base_url=system.url("invitations"), timeout=10, headers=auth.admin_headers()
    ) as invitations:
        invited = await invitations.post(
            "/api/v1/invitations", json={"emails": "ada@example.com", "expires_in_hours": 1}
        )
        assert invited.status_code == 202, invited.text
        first, reminder = await eventually(
            lambda: (
                len(mails_to(system, "ada@example.com")) == 2
                and mails_to(system, "ada@example.com")
            ),
            timeout=60,
        )
        [item] = (await invitations.get("/api/v1/invitations")).json()["items"]

    assert (first["Subject"], reminder["Subject"]) == (
        "Welcome to Acme Chat",
        "Reminder: Welcome to Acme Chat",
    )
    assert token_in(first) == token_in(reminder)
    assert item["reminded_at"] and item["remind_at"] is None


async def test_a_csv_file_of_people_becomes_their_invitations_and_a_results_file(
    system: RunningSystem,
) -> None:
    data = (
        b"email,name,roles\n"
        b"ada@example.com,Ada Lovelace,\n"
        b"linus@example.com,Linus,admin\n"
        b"not-an-address,Nobody,\n"
        b"ADA@example.com,Ada again,\n"
    )
    async with httpx.AsyncClient(
        base_url=system.url("invitations"), timeout=10, headers=auth.admin_headers()
    ) as invitations:
        started = await invitations.post(
            "/api/v1/invitations/imports",
            content=data,
            headers={"content-type": "text/csv"},
            params={"filename": "people.csv"},
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]

        async def done() -> dict[str, Any] | None:
            job: dict[str, Any] = (
                await invitations.get(f"/api/v1/invitations/imports/{job_id}")
            ).json()
            return job if job["status"] == "done" else None

        job = await eventually(done, timeout=30)
        results = await invitations.get(f"/api/v1/invitations/imports/{job_id}/results.csv")
        await eventually(lambda: len(system.smtp.messages) == 2, timeout=60)

    assert job["outcomes"] == {"queued": 2, "invalid": 1, "duplicate_in_request": 1}
    rows = list(csv.DictReader(io.StringIO(results.text)))
    assert [(row["row"], row["outcome"]) for row in rows] == [
        ("2", "queued"),
        ("3", "queued"),
        ("4", "invalid"),
        ("5", "duplicate_in_request"),
    ]
    assert sorted(str(m["To"]) for m in system.smtp.messages) == [
        "ada@example.com",
        "linus@example.com",
    ]


async def _page_ready(users: httpx.AsyncClient, token: str) -> httpx.Response | None:
    response = await users.get(f"/join/{token}")
    return response if response.status_code == 200 else None
