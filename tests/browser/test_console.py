"""The seed's journeys in a real browser: an admin invites and creates people, edits them in User
Info; invited people join by email and sign in; members get no console."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Locator, Page, Route, expect

from onboarding_shared.contract import EmailDeferred, EmailKind, new_event
from tests.browser.conftest import PHONE, new_page, page_in, screenshot, sign_in
from tests.support.broker import Namespace, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.images import real_image
from tests.support.public_system import ADMIN, PublicSystem, start_public_system

pytestmark = pytest.mark.browser

LIVE = 45_000  # ms: the console refreshes every 3 s; activation goes through the broker


def user_row(page: Page, username: str) -> Locator:
    return page.locator("#users-table tbody tr").filter(
        has=page.get_by_role("cell", name=username, exact=True)
    )


async def add_user(
    admin: Page, name: str, username: str, email: str, password: str = "Member-password-1"
) -> None:
    await admin.get_by_role("button", name="New user").click()
    form = admin.locator("#new-user-form")
    await form.get_by_label("Name", exact=True).fill(name)
    await form.get_by_label("Username", exact=True).fill(username)
    await form.get_by_label("Email", exact=True).fill(email)
    await form.get_by_label("Password", exact=True).fill(password)
    await form.get_by_role("button", name="Add user").click()
    await expect(user_row(admin, username)).to_contain_text("Pending")


async def test_an_admin_invites_and_the_invited_person_joins_and_signs_in(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await sign_in(admin)
    await expect(admin.get_by_role("heading", name="Users")).to_be_visible()
    await screenshot(admin, "users")

    await admin.get_by_role("button", name="Invite").click()
    panel = admin.get_by_role("complementary", name="Invite Members")
    await expect(panel).to_be_visible()
    await panel.get_by_label("Send invitation email").fill(
        "Grace Hopper <grace@example.com>\nlinus@example.com\nnot-an-address"
    )
    await panel.get_by_label("Message (optional)").fill("Welcome aboard!")
    await screenshot(admin, "invite")
    await panel.get_by_role("button", name="Send").click()

    await expect(panel.get_by_role("status")).to_contain_text("2 invitations are being sent")
    outcomes = panel.get_by_role("list", name="Outcome per address").get_by_role("listitem")
    await expect(outcomes).to_have_count(3)
    await expect(outcomes.nth(0)).to_contain_text("Invitation queued")
    await expect(outcomes.nth(1)).to_contain_text("linus@example.com")
    await expect(outcomes.nth(2)).to_contain_text(re.compile(r"Invalid: .+"))
    await screenshot(admin, "invite-results")

    join_url = await system.join_link_for("grace@example.com")
    grace = await new_page(browser, system)
    await grace.goto(join_url)
    await expect(grace.get_by_role("heading", name="Join Acme Chat")).to_be_visible()
    await grace.get_by_label("Your name").fill("Grace Hopper")
    await grace.get_by_label("Username").fill("grace")
    await grace.get_by_label(re.compile("^Password")).fill("Grace-password-1")
    await screenshot(grace, "join")
    await grace.get_by_role("button", name="Create my account").click()
    await expect(grace.get_by_role("heading", name="Your account is ready")).to_be_visible()

    await grace.get_by_role("link", name="Sign in").click()
    await sign_in(grace, "grace", "Grace-password-1")
    await expect(grace.get_by_role("heading", name="You are in, Grace Hopper")).to_be_visible()
    chat = grace.get_by_role("link", name="Open Acme Chat")
    await expect(chat).to_have_attribute("href", "https://chat.acme.test/home")
    await screenshot(grace, "member")

    # The admin's page was never reloaded: the list keeps itself current.
    await expect(user_row(admin, "grace")).to_contain_text("Active", timeout=LIVE)

    await admin.get_by_role("link", name="Invitations").click()
    table = admin.locator("#invitations-table")
    await expect(table.locator("tr", has_text="grace@example.com")).to_contain_text("Accepted")
    await expect(table.locator("tr", has_text="linus@example.com")).to_contain_text(
        "Sent", timeout=LIVE
    )
    await screenshot(admin, "invitations")
    assert not admin.errors and not grace.errors  # type: ignore[attr-defined]


async def test_an_admin_invites_an_admin_who_joins_and_gets_the_console(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await sign_in(admin)
    await admin.get_by_role("button", name="Invite").click()
    panel = admin.get_by_role("complementary", name="Invite Members")
    roles = panel.get_by_role("group", name="Roles")
    as_user = roles.get_by_role("checkbox", name="user", exact=True)
    as_admin = roles.get_by_role("checkbox", name="admin", exact=True)
    await expect(as_user).to_be_checked()
    await expect(as_admin).not_to_be_checked()
    await panel.get_by_label("Send invitation email").fill("Barbara Liskov <barbara@example.com>")

    # No role at all is refused beside the roles, before anything is sent.
    await as_user.uncheck()
    await panel.get_by_role("button", name="Send").click()
    await expect(admin.locator("#invite-roles-error")).to_have_text("Choose at least one role.")
    await expect(as_user).to_have_attribute("aria-invalid", "true")
    await expect(as_user).to_be_focused()
    await admin.keyboard.press("Space")  # the keyboard is enough
    await as_admin.focus()
    await admin.keyboard.press("Space")
    await expect(as_admin).to_be_checked()

    async with admin.expect_request(
        lambda request: request.method == "POST" and request.url.endswith("/api/v1/invitations")
    ) as sending:
        await panel.get_by_role("button", name="Send").click()
    sent = (await sending.value).post_data_json
    assert sent is not None and sorted(sent["roles"]) == ["admin", "user"]
    await expect(panel.get_by_role("status")).to_contain_text(
        "1 invitation is being sent. Whoever joins with it becomes an admin."
    )
    # The next invitation starts from the defaults: admin is never carried over unseen.
    await panel.get_by_role("button", name="Invite more people").click()
    await expect(as_admin).not_to_be_checked()
    await expect(as_user).to_be_checked()
    await admin.keyboard.press("Escape")

    await admin.get_by_role("link", name="Invitations").click()
    row = admin.locator("#invitations-table tr", has_text="barbara@example.com")
    await expect(row.get_by_role("cell").first).to_have_text("barbara@example.com, joins as Admin")
    await expect(row.locator(".badge")).to_have_text(["Admin", re.compile("Pending|Sent")])

    join_url = await system.join_link_for("barbara@example.com")
    barbara = await new_page(browser, system)
    await barbara.goto(join_url)
    await expect(barbara.get_by_text("Your account will be an admin of Acme Chat")).to_be_visible()
    await barbara.get_by_label("Your name").fill("Barbara Liskov")
    await barbara.get_by_label("Username").fill("barbara")
    await barbara.get_by_label(re.compile("^Password")).fill("Barbara-password-1")
    await barbara.get_by_role("button", name="Create my account").click()
    await expect(barbara.get_by_role("heading", name="Your account is ready")).to_be_visible()
    await sign_in(barbara, "barbara", "Barbara-password-1")
    # An admin: the console, where the new account is listed with both roles.
    await expect(barbara.get_by_role("heading", name="Users")).to_be_visible()
    await expect(user_row(barbara, "barbara")).to_contain_text("admin, user")
    assert not admin.errors and not barbara.errors  # type: ignore[attr-defined]

    # One admin again: the journeys after this one, on the same system, count on it.
    barbara_id = await user_row(barbara, "barbara").get_attribute("data-user-id")
    csrf = await admin.locator('meta[name="csrf-token"]').get_attribute("content")
    assert barbara_id and csrf
    demoted = await admin.request.patch(
        f"/api/v1/users/{barbara_id}", headers={"X-CSRF-Token": csrf}, data={"roles": ["user"]}
    )
    assert demoted.status == 200, await demoted.text()


async def test_the_invite_panel_shows_the_apis_refusals_of_roles(
    browser: Browser, system: PublicSystem
) -> None:
    """What the invitations API answers about roles, each where the form shows such things: an
    unknown role beside the roles (pydantic names the list's item), a role the inviter may not
    hand out above Send. The browser answers in the API's place: the console's checkboxes send
    only known roles, and its admin may hand out admin."""
    admin = await new_page(browser, system)
    await sign_in(admin)
    unknown_role = "Input should be 'admin' or 'user'"
    not_allowed = "only an admin may invite an admin"
    answers = iter(
        [
            (422, {"detail": [{"loc": ["body", "roles", 1], "msg": unknown_role}]}),
            (403, {"detail": not_allowed}),
        ]
    )

    async def refuse(route: Route) -> None:
        if route.request.method != "POST":
            await route.fallback()
            return
        status, body = next(answers)
        await route.fulfill(status=status, json=body)

    await admin.route("**/api/v1/invitations", refuse)
    await admin.get_by_role("button", name="Invite").click()
    panel = admin.get_by_role("complementary", name="Invite Members")
    await panel.get_by_label("Send invitation email").fill("barbara@example.com")
    await panel.get_by_role("checkbox", name="admin", exact=True).check()
    await panel.get_by_role("button", name="Send").click()
    await expect(admin.locator("#invite-roles-error")).to_have_text(unknown_role)
    for box in await panel.get_by_role("group", name="Roles").get_by_role("checkbox").all():
        await expect(box).to_have_attribute("aria-invalid", "true")
    await panel.get_by_role("button", name="Send").click()
    await expect(admin.locator("#invite-error")).to_have_text(not_allowed)
    await expect(admin.locator("#invite-roles-error")).to_be_hidden()
    await expect(panel.get_by_role("checkbox", name="admin", exact=True)).to_be_checked()
    assert not admin.errors  # type: ignore[attr-defined]


async def test_resend_and_revoke_ask_first_and_a_revoked_link_dies(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await sign_in(admin)
    await admin.get_by_role("button", name="Invite").click()
    await admin.get_by_label("Send invitation email").fill("margaret@example.com")
    await admin.get_by_role("button", name="Send").click()
    await expect(admin.locator("#invite-confirmation")).to_contain_text(
        "1 invitation is being sent"
    )
    join_url = await system.join_link_for("margaret@example.com")

    await admin.get_by_role("link", name="Invitations").click()
    row = admin.locator("#invitations-table tr", has_text="margaret@example.com")
    await expect(row).to_contain_text("Sent", timeout=LIVE)

    await row.get_by_role("button", name="Resend invitation to margaret@example.com").click()
    dialog = admin.get_by_role("dialog", name="Resend invitation?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await row.get_by_role("button", name="Resend invitation to margaret@example.com").click()
    await dialog.get_by_role("button", name="Resend").click()
    await expect(row.locator("td").nth(3)).to_have_text("2", timeout=LIVE)  # sends

    await row.get_by_role("button", name="Revoke invitation to margaret@example.com").click()
    await (
        admin.get_by_role("dialog", name="Revoke invitation?")
        .get_by_role("button", name="Revoke")
        .click()
    )
    await expect(row).to_contain_text("Revoked")
    await expect(row.get_by_role("button")).to_have_count(0)

    visitor = await new_page(browser, system)
    answer = await visitor.goto(join_url)
    assert answer is not None and answer.status == 410
    await expect(visitor.get_by_role("heading", name="This invitation was revoked")).to_be_visible()


async def test_a_new_user_is_pending_until_their_first_sign_in(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await sign_in(admin)
    await admin.get_by_role("button", name="New user").click()
    form = admin.locator("#new-user-form")
    await form.get_by_label("Name", exact=True).fill("Ada Lovelace")
    await form.get_by_label("Username", exact=True).fill(ADMIN[0])
    await form.get_by_label("Email", exact=True).fill("ada@example.com")
    await form.get_by_label("Password", exact=True).fill("short")
    await form.get_by_role("button", name="Add user").click()
    # The API's errors, each beside its field.
    await expect(admin.locator("#new-password-error")).to_contain_text("at least")
    await expect(form.get_by_label("Password", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    await form.get_by_label("Password", exact=True).fill("Ada-password-1")
    await form.get_by_role("button", name="Add user").click()
    await expect(admin.locator("#new-username-error")).to_contain_text("already in use")
    await screenshot(admin, "new-user")
    await form.get_by_label("Username", exact=True).fill("ada")
    await form.get_by_role("button", name="Add user").click()
    await expect(admin.get_by_role("complementary", name="New user")).to_be_hidden()
    await expect(user_row(admin, "ada")).to_contain_text("Pending")

    ada = await new_page(browser, system)
    await sign_in(ada, "ada@example.com", "Ada-password-1")
    await expect(ada.get_by_role("heading", name="You are in, Ada Lovelace")).to_be_visible()
    await expect(user_row(admin, "ada")).to_contain_text("Active", timeout=LIVE)

    await admin.get_by_role("radio", name="Pending").check()
    await expect(user_row(admin, "ada")).to_have_count(0)
    await admin.get_by_role("radio", name="Active").check()
    await expect(user_row(admin, "ada")).to_have_count(1)
    await admin.get_by_label("Search users").fill("lovelace")
    await expect(admin.locator("#users-count")).to_have_text("1\N{EN DASH}1 of 1 users")


async def test_user_info_edits_the_name_and_picture_and_deactivates(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await sign_in(admin)
    await add_user(admin, "Linus T", "linus", "linus.t@example.com")

    await user_row(admin, "linus").get_by_role("button", name="Linus T").click()
    await expect(admin.get_by_role("complementary", name="User Info")).to_be_visible()
    info = admin.locator('[data-panel="user-info"]')
    await expect(info.locator("#info-status")).to_have_text("Pending")

    await info.get_by_label("Name", exact=True).fill("Linus Torvalds")
    await info.get_by_role("button", name="Save changes").click()
    await expect(info.locator("#info-name")).to_have_text("Linus Torvalds")
    await expect(user_row(admin, "linus")).to_contain_text("Linus Torvalds")

    picture = info.get_by_label(re.compile("^Choose a picture"))
    await picture.set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}
    )
    await expect(info.locator("#avatar-error")).to_have_text(
        "Choose a PNG, JPEG, GIF or WebP image."
    )
    await picture.set_input_files(
        {"name": "fake.png", "mimeType": "image/png", "buffer": b"\x89PNG not really"}
    )
    await info.get_by_role("button", name="Upload picture").click()
    await expect(info.locator("#avatar-error")).to_contain_text("image refused")

    await picture.set_input_files(
        {"name": "me.png", "mimeType": "image/png", "buffer": real_image("PNG", (320, 240))}
    )
    await expect(info.get_by_role("img", name="Preview of the new picture")).to_be_visible()
    await screenshot(admin, "user-info")
    await info.get_by_role("button", name="Upload picture").click()
    avatar = info.get_by_role("img", name="Profile picture of Linus Torvalds")
    await expect(avatar).to_have_attribute("src", re.compile(r"/avatar\?v=\w+"))
    # The picture as the service keeps it: the upload cropped to a square, no larger than sent.
    # decode() waits for the download, so a slow fetch is not mistaken for a broken picture.
    size = await avatar.evaluate(
        "image => image.decode().then(() => [image.naturalWidth, image.naturalHeight])"
    )
    assert size == [240, 240]

    await info.get_by_role("button", name="Deactivate").click()
    await (
        admin.get_by_role("dialog", name="Deactivate Linus Torvalds?")
        .get_by_role("button", name="Deactivate")
        .click()
    )
    await expect(info.locator("#info-status")).to_have_text("Deactivated")
    await expect(user_row(admin, "linus")).to_contain_text("Deactivated")

    linus = await new_page(browser, system)
    await sign_in(linus, "linus", "Member-password-1")
    await expect(linus.get_by_role("alert")).to_have_text(
        "This account is deactivated. Ask an admin if you need it again."
    )

    # The last admin cannot be deactivated; the console says why.
    await admin.get_by_label("Search users").fill(ADMIN[1])
    await user_row(admin, ADMIN[0]).get_by_role("button").click()
    await info.get_by_role("button", name="Deactivate").click()
    await admin.get_by_role("dialog").get_by_role("button", name="Deactivate").click()
    await expect(info.locator("#edit-user-error")).to_have_text(
        "the workspace needs at least one admin who can log in"
    )


async def test_members_get_no_console_and_the_console_api_refuses_them(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await sign_in(admin)
    csrf = await admin.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    created = await admin.request.post(
        "/api/v1/users",
        headers={"X-CSRF-Token": csrf},
        data={
            "name": "Mary Member",
            "username": "mary",
            "email": "mary@example.com",
            "password": "Mary-password-1",
        },
    )
    assert created.status == 201, await created.text()
    forged = await admin.request.post(
        "/api/v1/invitations", data={"emails": "x@example.com"}
    )  # the admin's own cookie, but no CSRF token: what another site could make a browser send
    assert forged.status == 403

    mary = await new_page(browser, system)
    await sign_in(mary, "mary", "Mary-password-1")
    await expect(mary.get_by_role("heading", name="You are in, Mary Member")).to_be_visible()
    await expect(mary.get_by_role("button", name="Invite")).to_have_count(0)
    token = await mary.locator('input[name="csrf_token"]').get_attribute("value")
    assert token
    for method, path in (
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/invitations"),
        ("POST", "/api/v1/invitations"),
    ):
        answer = await mary.request.fetch(
            path, method=method, headers={"X-CSRF-Token": token}, data={"emails": "x@example.com"}
        )
        assert answer.status == 403, (method, path, await answer.text())

    await mary.get_by_role("button", name="Sign out").click()
    await expect(mary.get_by_role("status")).to_have_text("You have signed out.")
    assert (await mary.request.get("/api/v1/users")).status == 401
    assert not await mary.context.cookies()


async def test_the_invite_panel_warns_before_sending_when_smtp_is_not_set_up(
    browser: Browser, system_without_smtp: PublicSystem
) -> None:
    admin = await new_page(browser, system_without_smtp)
    await sign_in(admin)
    await admin.get_by_role("button", name="Invite").click()
    warning = admin.get_by_role("complementary", name="Invite Members").get_by_role("alert")
    # Until the mailer's first heartbeat the warning says it cannot be reached; then why.
    await expect(warning).to_contain_text("SMTP is not configured", timeout=LIVE)
    await expect(warning).to_contain_text("invitations are kept and will be emailed")
    await screenshot(admin, "invite-smtp-warning")
    await admin.get_by_label("Send invitation email").fill("wait@example.com")
    await admin.get_by_role("button", name="Send").click()
    await expect(admin.locator("#invite-confirmation")).to_contain_text(
        "1 invitation is being sent"
    )
    await expect(warning).to_contain_text("SMTP is not configured")


async def test_the_main_screens_fit_a_phone(browser: Browser, system: PublicSystem) -> None:
    page = await new_page(browser, system, PHONE)
    await page.goto("/")
    await screenshot(page, "sign-in-phone")
    await sign_in(page)
    await expect(page.get_by_role("heading", name="Users")).to_be_visible()
    await screenshot(page, "users-phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.get_by_role("button", name="Invite").click()
    await expect(page.get_by_role("complementary", name="Invite Members")).to_be_visible()
    await screenshot(page, "invite-phone")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("complementary", name="Invite Members")).to_be_hidden()
    await expect(page.get_by_role("button", name="Invite")).to_be_focused()

    # The whole console works from the keyboard: Tab to a row's name, Enter opens User Info.
    await page.get_by_role("button", name="Administrator").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("complementary", name="User Info")).to_be_visible()
    await screenshot(page, "user-info-phone")


async def test_the_sign_in_page_says_what_went_wrong(
    browser: Browser, system: PublicSystem
) -> None:
    page = await new_page(browser, system)
    await page.goto("/")
    await screenshot(page, "sign-in")
    await sign_in(page, ADMIN[0], "wrong-password")
    await expect(page.get_by_role("alert")).to_have_text("Wrong username, email or password.")
    await expect(page.get_by_label("Username or email")).to_have_value(ADMIN[0])
    await expect(page.get_by_label("Password")).to_have_value("")


@pytest.fixture(scope="module")
async def system_without_mailer(
    amqp_url: str, databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[PublicSystem, Namespace]]:
    """No mailer, so no invitation is sent behind the test's back: the test publishes the
    mailer's events itself, on the namespace it is given."""
    namespace = Namespace.fresh()
    folder = tmp_path_factory.mktemp("no-mailer")
    system = await start_public_system(
        amqp_url, databases, namespace, folder, services=("users", "invitations")
    )
    try:
        yield system, namespace
    finally:
        system.stop()
        await namespace.delete(amqp_url)


async def test_an_invitation_whose_email_is_deferred_shows_retrying_with_the_reason(
    browser: Browser, system_without_mailer: tuple[PublicSystem, Namespace], amqp_url: str
) -> None:
    system, namespace = system_without_mailer
    zone = "Asia/Kolkata"  # UTC+05:30 all year: local time is visibly not UTC
    admin = await page_in(browser, system, zone)
    await sign_in(admin)
    await admin.get_by_role("button", name="Invite").click()
    await admin.get_by_label("Send invitation email").fill("hedy@example.com, ida@example.com")
    await admin.get_by_role("button", name="Send").click()
    await expect(admin.locator("#invite-confirmation")).to_contain_text(
        "2 invitations are being sent"
    )
    await admin.keyboard.press("Escape")
    await admin.get_by_role("link", name="Invitations").click()
    table = admin.locator("#invitations-table")
    hedy = table.locator("tr", has_text="hedy@example.com")
    await expect(hedy).to_contain_text("Pending")
    invitation_id = await hedy.get_attribute("data-invitation-id")
    assert invitation_id

    reason = "421 4.7.0 mx.example.com is busy, try again later"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    next_attempt = now + timedelta(minutes=20)
    deferred = new_event(
        EmailDeferred(
            email_id=uuid.uuid4(),
            kind=EmailKind.INVITATION,
            reference_id=uuid.UUID(invitation_id),
            recipient="hedy@example.com",
            attempts=2,
            reason=reason,
            next_attempt_at=next_attempt,
            deliver_by=now + timedelta(days=7),
            deferred_at=now,
        ),
        producer="mailer",
    )
    await publish_raw(amqp_url, namespace.exchange, "email.deferred.v1", deferred.to_json())

    # The list refreshes itself: the word, the server's answer and the next attempt, local time.
    status = hedy.locator("td").nth(1)
    await expect(status.locator(".badge")).to_have_text("Retrying", timeout=LIVE)
    await expect(status).to_contain_text(reason)
    local = next_attempt.astimezone(ZoneInfo(zone))
    attempt = status.locator(".reason", has_text="Next attempt by")
    await expect(attempt).to_have_text(re.compile(rf"^Next attempt by .*\b{local:%H:%M}$"))
    when = attempt.locator("time")
    assert datetime.fromisoformat(await when.get_attribute("datetime") or "") == next_attempt
    # Still open: it can be resent or revoked.
    await expect(
        hedy.get_by_role("button", name="Resend invitation to hedy@example.com")
    ).to_be_visible()

    await admin.get_by_label("Status", exact=True).select_option(label="Retrying")
    await expect(table.locator("tbody tr")).to_have_count(1)
    await expect(table.locator("tbody tr")).to_contain_text("hedy@example.com")
    await admin.get_by_label("Status", exact=True).select_option(label="All")
    await expect(table.locator("tr", has_text="ida@example.com")).to_contain_text("Pending")

    phone = await page_in(browser, system, zone, PHONE)
    await sign_in(phone)
    await phone.get_by_role("link", name="Invitations").click()
    phone_row = phone.locator("#invitations-table tr", has_text="hedy@example.com")
    await expect(phone_row).to_contain_text(reason)
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not admin.errors and not phone.errors  # type: ignore[attr-defined]
