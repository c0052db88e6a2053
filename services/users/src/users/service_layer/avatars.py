"""Profile pictures: set by an admin or the account's owner, reset to the initials, read by
anyone. Decoding an upload (slow, and in a thread pool) runs outside transactions."""

from __future__ import annotations

import uuid
from datetime import datetime

from onboarding_shared.auth import Principal
from users.domain.avatars import Avatar
from users.domain.model import NotAllowed, User
from users.service_layer.accounts import existing_user, get_user, user_updated
from users.service_layer.ports import AvatarProcessor
from users.service_layer.unit_of_work import UsersUnitOfWork


async def set_avatar(
    uow: UsersUnitOfWork,
    user_id: uuid.UUID,
    data: bytes,
    *,
    actor: Principal,
    processor: AvatarProcessor,
    now: datetime,
) -> Avatar:
    _may_change_avatar(actor, user_id)
    await get_user(uow, user_id)  # before spending time on decoding
    image = await processor.normalise(data)
    async with uow:
        user = await existing_user(uow, user_id, for_update=True)
        avatar = Avatar.of(user_id, image.content, image.media_type, now)
        await uow.avatars.put(avatar)
        user.avatar_etag = avatar.etag
        uow.emit(user_updated(user, now, ["avatar"]))  # the snapshot is the same: for the audit
        await uow.commit()
    return avatar


async def reset_avatar(
    uow: UsersUnitOfWork, user_id: uuid.UUID, *, actor: Principal, now: datetime
) -> None:
    _may_change_avatar(actor, user_id)
    async with uow:
        user = await existing_user(uow, user_id, for_update=True)
        had_one = user.avatar_etag is not None
        await uow.avatars.delete(user_id)
        user.avatar_etag = None
        if had_one:
            uow.emit(user_updated(user, now, ["avatar"]))
        await uow.commit()


async def avatar_of(uow: UsersUnitOfWork, user_id: uuid.UUID) -> tuple[User, Avatar | None]:
    async with uow:
        user = await existing_user(uow, user_id)
        return user, await uow.avatars.get(user_id)


def _may_change_avatar(actor: Principal, user_id: uuid.UUID) -> None:
    if not (actor.is_admin or actor.user_id == user_id):
        raise NotAllowed("only an admin or the account's owner may change its picture")
