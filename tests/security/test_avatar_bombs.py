"""Hostile avatars through the users service's HTTP API (in process, real broker and database):
a few KB of PNG that claims 25 megapixels is refused from its header, never decoded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import ImageFile

from tests.support import auth, images
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.services import in_process
from tests.support.users_service import admin_token, new_user, token_for, users_settings
from users.bootstrap import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> AsyncIterator[httpx.AsyncClient]:
    settings = await users_settings(databases, amqp_url, namespace)  # the avatar defaults
    async with in_process(create_app, settings) as client:
        yield client


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every image Pillow decodes in this process."""
    sizes: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def load(image: ImageFile.ImageFile) -> Any:
        sizes.append(image.size)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


async def signed_in_user(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """An ordinary member, signed in: anyone may upload their own picture."""
    fields = new_user()
    admin = auth.bearer(await admin_token(client))
    created = await client.post("/api/v1/users", json=fields, headers=admin)
    assert created.status_code == 201, created.text
    token = await token_for(client, fields["username"], fields["password"])
    return created.json()["id"], auth.bearer(token)


async def test_a_25_megapixel_png_of_3_kb_is_refused_without_decoding(
    client: httpx.AsyncClient, decodes: list[tuple[int, int]]
) -> None:
    user_id, headers = await signed_in_user(client)
    bomb = images.one_bit_png(5000, 5000)
    assert len(bomb) < 10_000
    path = f"/api/v1/users/{user_id}/avatar"
    response = await client.put(
        path, files={"image": ("me.png", bomb, "image/png")}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("image refused: 5000x5000 pixels is more than")
    assert decodes == []
    served = await client.get(path)
    assert served.headers["content-type"].startswith("image/svg+xml")  # still the default


async def test_six_at_once_are_all_refused_without_decoding(
    client: httpx.AsyncClient, decodes: list[tuple[int, int]]
) -> None:
    user_id, headers = await signed_in_user(client)
    bomb = images.one_bit_png(5000, 5000)
    responses = await asyncio.gather(
        *(
            client.put(
                f"/api/v1/users/{user_id}/avatar",
                files={"image": ("me.png", bomb, "image/png")},
                headers=headers,
            )
            for _ in range(6)
        )
    )
    assert [r.status_code for r in responses] == [422] * 6
    assert decodes == []
