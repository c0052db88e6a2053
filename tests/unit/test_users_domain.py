"""The users service's rules: fields of the New User form, passwords, status, throttling."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from users.domain.avatars import initials, initials_svg, sniff_format
from users.domain.model import NewUser, User, UserStatus, checked_changes
from users.domain.passwords import PasswordPolicy, hash_link_token
from users.domain.rules import InvalidFields
from users.domain.throttling import LoginThrottle, ThrottlePolicy

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = PasswordPolicy(min_length=10)
VALID = NewUser(
    email="Ada@Example.COM", name="  Ada   Lovelace ", username="ada.l", password="Analytical-1"
)


def problems(new: NewUser) -> dict[str, str]:
    with pytest.raises(InvalidFields) as raised:
        new.checked(POLICY)
    return raised.value.problems


def user(**overrides: object) -> User:
    created = User.register(VALID.checked(POLICY), password_hash="h", now=NOW)
    for name, value in overrides.items():
        setattr(created, name, value)
    return created


def test_a_valid_form_is_normalised() -> None:
    checked = VALID.checked(POLICY)
    assert checked.email == "Ada@example.com"  # the domain is lower-cased, the local part kept
    assert checked.name == "Ada Lovelace"
    assert checked.roles == ("user",)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "ada@example.com\nBcc: eve@example.com"}, "email"),
        ({"email": "x" * 320 + "@example.com"}, "email"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"username": "ada lovelace"}, "username"),
        ({"username": "ada@home"}, "username"),
        ({"username": ""}, "username"),
        ({"username": "u" * 65}, "username"),
        ({"bio": "b" * 261}, "bio"),
        ({"status_text": "s" * 121}, "status_text"),
        ({"nickname": "n" * 121}, "nickname"),
        ({"roles": ("user", "superuser")}, "roles"),
        ({"roles": ()}, "roles"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "aaaaaaaaaaaa"}, "password"),
        ({"password": "ada.l", "username": "ada.l"}, "password"),
        ({"password": None}, "password"),
        ({"set_random_password": True}, "password"),
        ({"password": None, "set_random_password": True}, "send_welcome_email"),
    ],
)
def test_each_field_rule_names_its_field(changes: dict[str, object], field: str) -> None:
    assert field in problems(replace(VALID, **changes))  # type: ignore[arg-type]


def test_every_broken_field_is_reported_at_once() -> None:
    broken = replace(VALID, email="nope", username="no spaces", name="", bio="b" * 300)
    assert set(problems(broken)) == {"email", "username", "name", "bio"}


def test_limits_are_inclusive() -> None:
    checked = replace(VALID, bio="b" * 260, status_text="s" * 120).checked(POLICY)
    assert len(checked.bio or "") == 260


def test_a_random_password_forces_a_change_at_first_use() -> None:
    new = replace(VALID, password=None, set_random_password=True, send_welcome_email=True)
    assert new.checked(POLICY).require_password_change is True


def test_the_minimum_password_length_is_configurable() -> None:
    new = replace(VALID, password="Twelve-chars")
    new.checked(PasswordPolicy(min_length=12))
    with pytest.raises(InvalidFields):
        new.checked(PasswordPolicy(min_length=13))


def test_a_new_account_is_pending_and_unique_keys_ignore_case() -> None:
    created = user()
    assert created.status is UserStatus.PENDING
    assert (created.email_key, created.username_key) == ("ada@example.com", "ada.l")
    assert created.is_admin is False


def test_the_first_login_activates_a_pending_account_once() -> None:
    account = user()
    assert account.record_first_login(NOW) is True
    assert (account.status, account.first_login_at) == (UserStatus.ACTIVE, NOW)
    assert account.record_first_login(NOW + timedelta(hours=1)) is False
    assert account.first_login_at == NOW


def test_a_deactivated_account_stays_deactivated_but_the_login_is_remembered() -> None:
    account = user()
    account.apply({"deactivated": True}, now=NOW)
    account.record_first_login(NOW)
    assert (account.status, account.first_login_at) == (UserStatus.DEACTIVATED, NOW)
    account.apply({"deactivated": False}, now=NOW)
    assert account.status is UserStatus.ACTIVE  # it did log in once


def test_reactivating_an_account_that_never_logged_in_makes_it_pending_again() -> None:
    account = user()
    account.apply({"deactivated": True}, now=NOW)
    assert account.can_log_in is False
    account.apply({"deactivated": False}, now=NOW)
    assert account.status is UserStatus.PENDING


def test_changes_are_checked_and_only_real_changes_reported() -> None:
    account = user()
    changes = checked_changes({"name": "Ada  King", "roles": ["admin", "user"], "bio": None})
    assert account.apply(changes, now=NOW + timedelta(seconds=1)) == {"name", "roles"}
    assert account.is_admin is True
    assert account.updated_at == NOW + timedelta(seconds=1)


@pytest.mark.parametrize(
    "changes",
    [{"email": None}, {"verified": "yes"}, {"password_hash": "x"}, {"username": "has space"}],
)
def test_bad_changes_name_their_field(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidFields) as raised:
        checked_changes(changes)
    assert set(raised.value.problems) == set(changes)


def test_a_password_link_works_until_it_expires_or_is_used() -> None:
    account = user()
    token = account.issue_password_link(now=NOW, ttl=timedelta(hours=1))
    assert account.password_link_hash == hash_link_token(token)
    assert token not in (account.password_link_hash or "")
    assert account.password_link_usable(NOW + timedelta(minutes=59))
    assert not account.password_link_usable(NOW + timedelta(hours=1))
    account.set_password("new-hash", now=NOW)
    assert not account.password_link_usable(NOW)


def test_a_new_link_replaces_the_old_one() -> None:
    account = user()
    first = account.issue_password_link(now=NOW, ttl=timedelta(hours=1))
    account.issue_password_link(now=NOW, ttl=timedelta(hours=1))
    assert account.password_link_hash != hash_link_token(first)


def test_failures_block_after_the_limit_until_the_lockout_ends() -> None:
    policy = ThrottlePolicy(max_failures_per_account=3, lockout=timedelta(minutes=5))
    throttle = LoginThrottle.fresh("account:x", NOW)
    for _ in range(2):
        throttle.record_failure(NOW, limit=3, policy=policy)
    assert throttle.retry_after(NOW) is None
    throttle.record_failure(NOW, limit=3, policy=policy)
    assert throttle.retry_after(NOW) == 300
    assert throttle.retry_after(NOW + timedelta(minutes=5)) is None
    # One more failure after the lockout blocks again straight away.
    throttle.record_failure(NOW + timedelta(minutes=6), limit=3, policy=policy)
    assert throttle.retry_after(NOW + timedelta(minutes=6)) == 300


def test_failures_outside_the_window_are_forgotten() -> None:
    policy = ThrottlePolicy(window=timedelta(minutes=15))
    throttle = LoginThrottle.fresh("account:x", NOW)
    for minute in (0, 20, 40):
        throttle.record_failure(NOW + timedelta(minutes=minute), limit=2, policy=policy)
    assert throttle.retry_after(NOW + timedelta(minutes=40)) is None


def test_initials_and_the_default_picture_escape_the_name() -> None:
    assert initials("Ada Lovelace") == "AL"
    assert initials("  grace  ") == "G"
    assert initials("<script>") == "S"
    assert initials("!!!") == "?"
    svg = initials_svg('<b>"x"</b> & y', uuid.uuid4())
    assert "<b>" not in svg and svg.startswith("<svg")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "PNG"),
        (b"\xff\xd8\xff\xe0....", "JPEG"),
        (b"GIF89a....", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"<svg xmlns=", None),
        (b"<!DOCTYPE html>", None),
        (b"", None),
    ],
)
def test_formats_are_recognised_by_their_first_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected
