"""The users service's use cases against in-memory fakes: what is stored, what is emitted."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from onboarding_shared.contract import UserActivated, new_event
from tests.support.fake_users import (
    ADA,
    ADMIN,
    MEMBER,
    POLICY,
    THROTTLING,
    FakeHasher,
    FakeImages,
    FakeTokens,
    FakeUsersUnitOfWork,
    FixedSmtpStatus,
)
from users.domain.model import LastAdmin, NewUser, NotAllowed, User, UserStatus
from users.domain.rules import InvalidFields
from users.service_layer import accounts, activations, avatars, login
from users.service_layer.accounts import AdminSeed, WelcomeEmailStatus
from users.service_layer.errors import (
    AccountDeactivated,
    InvalidLink,
    LoginRefused,
    LoginThrottled,
    NoAdminConfigured,
)
from users.service_layer.login import LoginAttempt
from users.service_layer.unit_of_work import DuplicateField

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CLIENT = "203.0.113.9"


async def create(
    uow: FakeUsersUnitOfWork, new: NewUser = ADA, smtp: bool | None = True
) -> accounts.CreatedUser:
    return await accounts.create_user(
        uow,
        new,
        actor=ADMIN,
        policy=POLICY,
        hasher=FakeHasher(),
        smtp_status=FixedSmtpStatus(smtp),
        now=NOW,
    )


async def log_in(
    uow: FakeUsersUnitOfWork, identifier: str, password: str, address: str = "10.0.0.1"
) -> login.LoggedIn:
    return await login.log_in(
        uow,
        LoginAttempt(identifier, password, address),
        hasher=FakeHasher(),
        tokens=FakeTokens(),
        throttling=THROTTLING,
        now=NOW,
    )


def wire(uow: FakeUsersUnitOfWork) -> str:
    return " ".join(event.to_json().decode() for event in uow.published)


async def test_creating_a_user_stores_it_pending_and_emits_user_created() -> None:
    uow = FakeUsersUnitOfWork()
    created = await create(uow)
    assert created.user.status is UserStatus.PENDING
    assert [e.event_type for e in uow.published] == ["UserCreated"]
    data = uow.published[0].data
    assert (data.user_id, data.status, data.roles) == (created.user.id, "pending", ["user"])
    assert created.welcome_email.status is WelcomeEmailStatus.NOT_REQUESTED
    assert "Analytical-1" not in wire(uow) and "hashed:" not in wire(uow)


async def test_duplicates_are_refused_case_insensitively_naming_each_field() -> None:
    uow = FakeUsersUnitOfWork()
    await create(uow)
    with pytest.raises(DuplicateField) as raised:
        await create(uow, replace(ADA, email="ADA@example.com", username="ADA"))
    assert raised.value.fields == ("email", "username")
    with pytest.raises(DuplicateField) as raised:
        await create(uow, replace(ADA, email="other@example.com"))
    assert raised.value.fields == ("username",)
    assert len(uow.fake_users.rows) == 1


async def test_only_an_admin_may_grant_admin() -> None:
    with pytest.raises(NotAllowed):
        await accounts.create_user(
            FakeUsersUnitOfWork(),
            replace(ADA, roles=("admin",)),
            actor=MEMBER,
            policy=POLICY,
            hasher=FakeHasher(),
            smtp_status=FixedSmtpStatus(True),
            now=NOW,
        )


async def test_a_random_password_is_never_mailed_a_single_use_link_is() -> None:
    uow = FakeUsersUnitOfWork()
    new = replace(ADA, password=None, set_random_password=True, send_welcome_email=True)
    created = await create(uow, new)
    assert [e.event_type for e in uow.published] == ["UserCreated", "WelcomeEmailRequested"]
    welcome = uow.published[1].data
    assert welcome.workspace_name == "Acme Chat"
    assert welcome.login_url == "https://chat.acme.test/"
    assert welcome.set_password_url.startswith("https://chat.acme.test/set-password#token=")
    assert welcome.set_password_expires_at == NOW + timedelta(hours=72)
    stored = uow.fake_users.rows[created.user.id]
    assert stored.password_link_hash is not None
    assert stored.password_link_hash not in wire(uow)  # only the token travels, never its hash
    assert stored.password_hash.removeprefix("hashed:") not in wire(uow)
    assert created.welcome_email.status is WelcomeEmailStatus.QUEUED


async def test_a_chosen_password_gets_a_welcome_email_without_a_link() -> None:
    uow = FakeUsersUnitOfWork()
    await create(uow, replace(ADA, send_welcome_email=True))
    assert uow.published[1].data.set_password_url is None


@pytest.mark.parametrize(
    ("smtp", "status"),
    [(False, WelcomeEmailStatus.WAITING_FOR_SMTP), (None, WelcomeEmailStatus.QUEUED)],
)
async def test_the_answer_says_when_the_welcome_email_will_wait(
    smtp: bool | None, status: WelcomeEmailStatus
) -> None:
    uow = FakeUsersUnitOfWork()
    created = await create(uow, replace(ADA, send_welcome_email=True), smtp=smtp)
    assert created.welcome_email.status is status
    assert created.welcome_email.note
    assert "WelcomeEmailRequested" in [e.event_type for e in uow.published]  # nothing lost


async def test_logging_in_gives_a_token_and_emits_user_logged_in() -> None:
    uow = FakeUsersUnitOfWork()
    created = await create(uow)
    for identifier in ("ada", "ADA@example.com"):
        logged_in = await log_in(uow, identifier, "Analytical-1")
        assert logged_in.token.access_token == f"token-for-{created.user.id}"
    logins = uow.events("UserLoggedIn")
    assert [e.data.user_id for e in logins] == [created.user.id] * 2
    assert "Analytical-1" not in wire(uow)


async def test_a_wrong_password_and_an_unknown_account_are_refused_the_same_way() -> None:
    uow = FakeUsersUnitOfWork()
    await create(uow)
    with pytest.raises(LoginRefused) as wrong:
        await log_in(uow, "ada", "not-the-password")
    with pytest.raises(LoginRefused) as unknown:
        await log_in(uow, "nobody", "not-the-password")
    assert str(wrong.value) == str(unknown.value)
    assert uow.events("UserLoggedIn") == []


async def test_repeated_failures_for_an_account_are_refused_with_a_delay() -> None:
    uow = FakeUsersUnitOfWork()
    await create(uow)
    for _ in range(THROTTLING.max_failures_per_account):
        with pytest.raises(LoginRefused):
            await log_in(uow, "ada", "wrong-password")
    with pytest.raises(LoginThrottled) as throttled:
        await log_in(uow, "ada", "Analytical-1")  # even the right password waits
    assert throttled.value.retry_after == 300


async def test_repeated_failures_from_one_address_are_refused_across_accounts() -> None:
    uow = FakeUsersUnitOfWork()
    for number in range(THROTTLING.max_failures_per_address):
        with pytest.raises(LoginRefused):
            await log_in(uow, f"guess{number}", "wrong-password", address="10.9.9.9")
    with pytest.raises(LoginThrottled):
        await log_in(uow, "someone-else", "wrong-password", address="10.9.9.9")
    with pytest.raises(LoginRefused):
        await log_in(uow, "someone-else", "wrong-password", address="10.0.0.2")


async def test_a_deactivated_account_cannot_log_in() -> None:
    uow = FakeUsersUnitOfWork()
    await create(uow, replace(ADA, roles=("admin", "user")))
    other = await create(
        uow, NewUser(email="b@example.com", name="B", username="b", password="B-password-1")
    )
    await accounts.update_user(uow, other.user.id, {"deactivated": True}, actor=ADMIN, now=NOW)
    with pytest.raises(AccountDeactivated):
        await log_in(uow, "b", "B-password-1")


async def test_the_last_admin_cannot_be_demoted_or_deactivated() -> None:
    uow = FakeUsersUnitOfWork()
    admin = (await create(uow, replace(ADA, roles=("admin",)))).user
    for change in ({"roles": ["user"]}, {"deactivated": True}):
        with pytest.raises(LastAdmin):
            await accounts.update_user(uow, admin.id, change, actor=ADMIN, now=NOW)
    assert uow.fake_users.rows[admin.id].is_admin
    second = NewUser(email="g@example.com", name="G", username="g", password="G-password-1")
    await create(uow, replace(second, roles=("admin",)))
    demoted = await accounts.update_user(uow, admin.id, {"roles": ["user"]}, actor=ADMIN, now=NOW)
    assert demoted.is_admin is False


async def test_an_edit_emits_user_updated_with_the_whole_new_state() -> None:
    uow = FakeUsersUnitOfWork()
    created = await create(uow)
    await accounts.update_user(
        uow, created.user.id, {"email": "ada@lovelace.org", "bio": "Poet"}, actor=ADMIN, now=NOW
    )
    updated = uow.events("UserUpdated")[-1].data
    assert (updated.email, updated.status, updated.username) == (
        "ada@lovelace.org",
        "pending",
        "ada",
    )


async def test_an_edit_cannot_take_another_accounts_email() -> None:
    uow = FakeUsersUnitOfWork()
    await create(uow)
    other = await create(
        uow, NewUser(email="b@example.com", name="B", username="b", password="B-password-1")
    )
    with pytest.raises(DuplicateField):
        await accounts.update_user(
            uow, other.user.id, {"email": "Ada@Example.com"}, actor=ADMIN, now=NOW
        )


async def test_a_set_password_link_works_once() -> None:
    uow = FakeUsersUnitOfWork()
    new = replace(ADA, password=None, set_random_password=True, send_welcome_email=True)
    await create(uow, new)
    token = uow.published[1].data.set_password_url.split("#token=")[1]

    async def use(password: str) -> User:
        return await login.set_password_with_link(
            uow,
            token,
            password,
            policy=POLICY,
            hasher=FakeHasher(),
            address=CLIENT,
            throttling=THROTTLING,
            now=NOW,
        )

    with pytest.raises(InvalidFields):
        await use("short")
    account = await use("Chosen-password-7")
    assert (account.require_password_change, account.verified) == (False, True)
    assert (await log_in(uow, "ada", "Chosen-password-7")).user.id == account.id
    with pytest.raises(InvalidLink):
        await use("Another-password-8")


async def test_an_expired_link_is_refused() -> None:
    uow = FakeUsersUnitOfWork()
    await create(
        uow, replace(ADA, password=None, set_random_password=True, send_welcome_email=True)
    )
    token = uow.published[1].data.set_password_url.split("#token=")[1]
    with pytest.raises(InvalidLink):
        await login.set_password_with_link(
            uow,
            token,
            "Chosen-password-7",
            policy=POLICY,
            hasher=FakeHasher(),
            address=CLIENT,
            throttling=THROTTLING,
            now=NOW + timedelta(hours=73),
        )


async def test_guessing_set_password_links_is_throttled_per_client_address() -> None:
    uow = FakeUsersUnitOfWork()

    async def guess(address: str) -> None:
        await login.set_password_with_link(
            uow,
            "a-guessed-token-" + "x" * 30,
            "Chosen-password-7",
            policy=POLICY,
            hasher=FakeHasher(),
            address=address,
            throttling=THROTTLING,
            now=NOW,
        )

    for _ in range(THROTTLING.max_join_failures_per_address):
        with pytest.raises(InvalidLink):
            await guess(CLIENT)
    with pytest.raises(LoginThrottled):
        await guess(CLIENT)
    with pytest.raises(InvalidLink):  # another client is not held up
        await guess("198.51.100.7")


async def test_activation_is_applied_once_and_announced() -> None:
    uow = FakeUsersUnitOfWork()
    created = await create(uow)
    event = new_event(
        UserActivated(user_id=created.user.id, activated_at=NOW + timedelta(minutes=1)),
        producer="auth-listener",
    )
    for _ in range(2):
        await activations.apply_activation(uow, event, now=NOW)
    account = uow.fake_users.rows[created.user.id]
    assert (account.status, account.first_login_at) == (
        UserStatus.ACTIVE,
        NOW + timedelta(minutes=1),
    )
    assert [e.data.status for e in uow.events("UserUpdated")] == ["active"]


async def test_the_first_admin_is_seeded_once() -> None:
    uow = FakeUsersUnitOfWork()
    seed = AdminSeed("root", "root@example.com", "Root-password-42")
    first = await accounts.seed_first_admin(uow, seed, policy=POLICY, hasher=FakeHasher(), now=NOW)
    again = await accounts.seed_first_admin(uow, seed, policy=POLICY, hasher=FakeHasher(), now=NOW)
    assert first is not None and first.roles == ["admin"] and again is None
    assert len(uow.events("UserCreated")) == 1
    assert "Root-password-42" not in json.dumps([e.model_dump(mode="json") for e in uow.published])


async def test_without_an_admin_and_without_settings_the_service_refuses_to_start() -> None:
    with pytest.raises(NoAdminConfigured, match="ADMIN_USERNAME"):
        await accounts.seed_first_admin(
            FakeUsersUnitOfWork(), None, policy=POLICY, hasher=FakeHasher(), now=NOW
        )
    weak = AdminSeed("root", "root@example.com", "changeme")
    with pytest.raises(NoAdminConfigured, match="ADMIN_PASSWORD"):
        await accounts.seed_first_admin(
            FakeUsersUnitOfWork(), weak, policy=POLICY, hasher=FakeHasher(), now=NOW
        )


async def test_only_admins_and_the_owner_may_change_a_picture() -> None:
    uow = FakeUsersUnitOfWork()
    created = await create(uow)
    images = FakeImages()
    with pytest.raises(NotAllowed):
        await avatars.set_avatar(
            uow, created.user.id, b"img", actor=MEMBER, processor=images, now=NOW
        )
    owner = replace(MEMBER, user_id=created.user.id)
    avatar = await avatars.set_avatar(
        uow, created.user.id, b"img", actor=owner, processor=images, now=NOW
    )
    assert uow.fake_users.rows[created.user.id].avatar_etag == avatar.etag
    await avatars.reset_avatar(uow, created.user.id, actor=ADMIN, now=NOW)
    assert await uow.avatars.get(created.user.id) is None
