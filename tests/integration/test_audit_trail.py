"""The audit trail through the real services: admins act in the users and invitations APIs,
the events cross the broker, and the users service's trail answers who did what to whom."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from tests.support import auth, images
from tests.support.broker import Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.users_service import admin_token, new_user, users_settings
from users.bootstrap import create_app as create_users

pytestmark = pytest.mark.integration

AUDIT = "/api/v1/audit"


@dataclass
class Services:
    users: httpx.AsyncClient
    invitations: httpx.AsyncClient
    admin: dict[str, str]


@pytest.fixture
async def services(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> AsyncIterator[Services]:
    invitations_url = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
    invitations = InvitationsSettings(
        **service_settings(namespace, amqp_url, invitations_url), **auth.verifier_settings()
    )
    users = await users_settings(databases, amqp_url, namespace, avatar_size=64)
    async with (
        in_process(create_users, users) as users_api,
        in_process(create_invitations, invitations) as invitations_api,
    ):
        yield Services(users_api, invitations_api, auth.bearer(await admin_token(users_api)))


async def trail(services: Services, **filters: str) -> list[dict[str, object]]:
    answer = await services.users.get(AUDIT, params=filters, headers=services.admin)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["items"]
    return items


async def test_who_did_what_to_whom_across_services_with_no_secret_kept(services: Services) -> None:
    admin, users, invitations = services.admin, services.users, services.invitations
    ada = (await users.post("/api/v1/users", json=new_user(), headers=admin)).json()
    await users.patch(f"/api/v1/users/{ada['id']}", json={"name": "Ada L."}, headers=admin)
    await users.patch(f"/api/v1/users/{ada['id']}", json={"deactivated": True}, headers=admin)
    avatar = images.real_image("PNG")
    await users.put(
        f"/api/v1/users/{ada['id']}/avatar",
        files={"image": ("me.png", avatar, "image/png")},
        headers=admin,
    )
    invited = await invitations.post(
        "/api/v1/invitations", json={"emails": "grace@example.com"}, headers=admin
    )
    invitation_id = invited.json()["results"][0]["invitation_id"]
    await invitations.post(f"/api/v1/invitations/{invitation_id}/resend", headers=admin)
    await invitations.delete(f"/api/v1/invitations/{invitation_id}", headers=admin)
    link = (
        await invitations.post("/api/v1/invitations/links", json={"max_uses": 3}, headers=admin)
    ).json()
    await invitations.post(f"/api/v1/invitations/links/{link['id']}/regenerate", headers=admin)
    await invitations.delete(f"/api/v1/invitations/links/{link['id']}", headers=admin)

    expected = [
        "user.created",  # the seeded admin, then ada
        "user.created",
        "user.updated",
        "user.deactivated",
        "user.avatar_changed",
        "invitation.sent",
        "invitation.resent",
        "invitation.revoked",
        "link.created",
        "link.regenerated",
        "link.revoked",
    ]

    async def all_recorded() -> list[dict[str, object]] | None:
        items = await trail(services, limit="100")
        return items if len(items) >= len(expected) else None

    items = await eventually(all_recorded, timeout=30)
    assert sorted(str(item["action"]) for item in items) == sorted(expected)
    by_action = {str(item["action"]): item for item in items}
    assert by_action["invitation.revoked"]["target_label"] == "grace@example.com"
    assert by_action["user.deactivated"]["target_label"] == "ada"
    assert by_action["user.updated"]["details"] == {
        "changes": ["name"],
        "roles": ["user"],
        "status": "pending",
    }
    acted_by_the_admin = {item["actor_name"] for item in items if item["action"] != "user.created"}
    assert len(acted_by_the_admin) == 1 and None not in acted_by_the_admin

    [revocation] = await trail(services, action="invitation.revoked")
    assert revocation["target_id"] == invitation_id
    assert {str(i["action"]) for i in await trail(services, search="GRACE")} == {
        "invitation.sent",
        "invitation.resent",
        "invitation.revoked",
    }
    everything = (await users.get(AUDIT, params={"limit": 100}, headers=admin)).text
    token = link["url"].rsplit("/", 1)[1]
    assert token not in everything and "token" not in everything and "Analytical" not in everything


async def test_only_admins_read_the_trail(services: Services) -> None:
    member = auth.bearer(auth.mint_token(roles=("user",), user_id=uuid.uuid4()))
    assert (await services.users.get(AUDIT, headers=member)).status_code == 403
    assert (await services.users.get(AUDIT)).status_code == 401
