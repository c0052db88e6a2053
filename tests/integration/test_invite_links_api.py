"""Reusable invite links through the invitations API, on the real database and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from invitations.bootstrap import MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from tests.support.auth import admin_headers, bearer, mint_token, verifier_settings
from tests.support.broker import EventProbe, Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process

pytestmark = pytest.mark.integration

LINKS = "/api/v1/invitations/links"
ADMIN = admin_headers()


@pytest.fixture
async def api(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> AsyncIterator[httpx.AsyncClient]:
    url = await databases.create_migrated("invitations", MIGRATIONS)
    settings = InvitationsSettings(
        **service_settings(namespace, amqp_url, url),
        **verifier_settings(),
        public_url="https://chat.acme.test",
        invite_links_may_never_expire=False,
    )
    async with in_process(create_invitations, settings) as client:
        yield client


async def test_links_are_created_listed_regenerated_and_revoked(
    api: httpx.AsyncClient, probe: EventProbe
) -> None:
    created = await api.post(
        LINKS,
        json={"max_uses": 10, "allowed_domain": "@Example.com", "roles": ["admin", "user"]},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["url"].startswith("https://chat.acme.test/join/link/")
    assert (link["status"], link["uses"], link["allowed_domain"]) == ("active", 0, "example.com")
    assert [item["url"] for item in (await api.get(LINKS, headers=ADMIN)).json()["items"]] == [
        link["url"]
    ]

    regenerated = (await api.post(f"{LINKS}/{link['id']}/regenerate", headers=ADMIN)).json()
    assert regenerated["url"] != link["url"] and regenerated["regenerated_at"]
    revoked = await api.delete(f"{LINKS}/{link['id']}", headers=ADMIN)
    assert revoked.json()["status"] == "revoked"
    assert (await api.post(f"{LINKS}/{link['id']}/regenerate", headers=ADMIN)).status_code == 409

    issued = await eventually(
        lambda: (
            len(probe.events("invite_link.issued.v1")) == 2
            and probe.events("invite_link.issued.v1")
        )
    )
    await eventually(lambda: probe.events("invite_link.revoked.v1"))
    tokens = [link["url"].rsplit("/", 1)[1], regenerated["url"].rsplit("/", 1)[1]]
    assert len({event["data"]["token_hash"] for event in issued}) == 2
    assert not any(token in str(probe.events()) for token in tokens)  # only hashes travel
    assert issued[0]["data"]["roles"] == ["admin", "user"]


async def test_bad_link_settings_are_refused_and_only_admins_may_manage_links(
    api: httpx.AsyncClient,
) -> None:
    for body, status in (
        ({"max_uses": 5, "never_expires": True}, 422),  # this workspace forbids it
        ({"max_uses": 0}, 422),
        ({"max_uses": 5, "allowed_domain": "not a domain"}, 422),
        ({"max_uses": 5, "expires_in_hours": 100_000}, 422),
        ({"max_uses": 5, "roles": ["owner"]}, 422),
    ):
        answer = await api.post(LINKS, json=body, headers=ADMIN)
        assert answer.status_code == status, (body, answer.text)
    assert (await api.get(LINKS, headers=ADMIN)).json()["items"] == []
    member = bearer(mint_token(roles=("user",)))
    assert (await api.get(LINKS, headers=member)).status_code == 403
    assert (await api.post(LINKS, json={"max_uses": 1})).status_code == 401
