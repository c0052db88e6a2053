"""Issue 13 in the console: the inviter's email on acceptance (the Invite form's choice, their own
setting, each of their invitations'), the automatic reminder in the Invitations table, and
inviting the people of a CSV file."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import Browser, FilePayload, Locator, Page, Route, expect
from sqlalchemy.engine import make_url

from tests.browser.conftest import PHONE, new_page, page_in, screenshot, sign_in
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.public_system import ADMIN, PublicSystem, start_public_system

pytestmark = pytest.mark.browser

LIVE = 45_000  # ms: the console refreshes every 3 s; emails go through the broker
NOTIFY = "Email me when someone joins through this invitation"
SETTING = "Email me when my invitations are accepted"


class RememberedDatabases(DatabaseFactory):
    """The session's database factory, remembering each database it creates for one system
    (the test changes what a test cannot wait for, as the integration tests do)."""

    def __init__(self, shared: DatabaseFactory) -> None:
        self._shared = shared
        self.urls: dict[str, str] = {}

    async def create(self, label: str) -> str:
        url = await self._shared.create(label)
        self.urls[label] = url
        return url


@dataclass(frozen=True)
class Running:
    system: PublicSystem
    invitations_database: str


@pytest.fixture(scope="module")
async def running(
    amqp_url: str, databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    remembered = RememberedDatabases(databases)
    namespace = Namespace.fresh()
    folder = tmp_path_factory.mktemp("issue-13")
    with pytest.MonkeyPatch.context() as patch:
        # Due reminders looked for twice a second instead of every minute.
        patch.setenv("REMINDER_CHECK_SECONDS", "0.5")
        system = await start_public_system(amqp_url, remembered, namespace, folder)
    try:
        yield Running(system, remembered.urls["invitations"])
    finally:
        system.stop()
        await namespace.delete(amqp_url)


async def open_invite(page: Page) -> Locator:
    await page.get_by_role("button", name="Invite", exact=True).click()
    panel = page.get_by_role("complementary", name="Invite Members")
    await expect(panel).to_be_visible()
    return panel


async def send(page: Page, panel: Locator) -> dict[str, Any]:
    """Send the typed addresses (one); what the console sent."""
    async with page.expect_request(
        lambda request: request.method == "POST" and request.url.endswith("/api/v1/invitations")
    ) as sending:
        await panel.get_by_role("button", name="Send").click()
    await expect(panel.locator("#invite-confirmation")).to_contain_text(
        "1 invitation is being sent"
    )
    sent = (await sending.value).post_data_json
    assert isinstance(sent, dict)
    return sent


async def invitation(page: Page, address: str) -> dict[str, Any]:
    """The invitation to ``address`` as the API shows it (the page's own session)."""
    answer = await page.request.get(f"/api/v1/invitations?search={address}")
    assert answer.ok, await answer.text()
    [item] = [item for item in (await answer.json())["items"] if item["email"] == address]
    assert isinstance(item, dict)
    return item


def local_day(value: str, zone: str) -> re.Pattern[str]:
    """The day the console shows for ``value`` in the en-GB locale (3 Dec 2025), which is not
    the day in UTC."""
    moment = datetime.fromisoformat(value)
    local = moment.astimezone(ZoneInfo(zone))
    assert local.date() != moment.astimezone(UTC).date()
    return re.compile(rf" {local.day} \w+ {local.year}$")


def far_from_utc() -> str:
    """A time zone whose day, for the next hour and at that time on any day, is not UTC's:
    UTC+14 from 10:00 UTC on, UTC-12 before 12:00 UTC."""
    return "Pacific/Kiritimati" if datetime.now(UTC).hour >= 11 else "Etc/GMT+12"


def csv_file(name: str, text: str) -> FilePayload:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


async def choose_file_upload(panel: Locator) -> Locator:
    await panel.get_by_role("radio", name="Upload a CSV file").check()
    file_input = panel.get_by_label("Choose a CSV file")
    await expect(file_input).to_be_visible()
    return file_input


async def test_the_acceptance_email_follows_the_admins_setting_and_their_choices(
    browser: Browser, running: Running
) -> None:
    admin = await new_page(browser, running.system)
    await sign_in(admin)
    panel = await open_invite(admin)
    notify = panel.get_by_role("checkbox", name=NOTIFY)
    await expect(notify).to_be_checked()
    await expect(panel.locator("#invite-notify-help")).to_be_hidden()
    await panel.get_by_label("Send invitation email").fill("ruth@example.com")
    await notify.uncheck()
    assert (await send(admin, panel))["notify_inviter"] is False
    # The next invitation starts from the setting again.
    await panel.get_by_role("button", name="Invite more people").click()
    await expect(notify).to_be_checked()
    await panel.get_by_label("Send invitation email").fill("mae@example.com")
    assert (await send(admin, panel))["notify_inviter"] is True
    assert (await invitation(admin, "ruth@example.com"))["notify_inviter"] is False
    assert (await invitation(admin, "mae@example.com"))["notify_inviter"] is True
    await admin.keyboard.press("Escape")

    await admin.get_by_role("link", name="Invitations").click()
    setting = admin.get_by_role("checkbox", name=SETTING)
    await expect(setting).to_be_checked()
    table = admin.locator("#invitations-table")
    ruth = table.get_by_role(
        "checkbox", name="Email me when accepted (invitation to ruth@example.com)"
    )
    mae = table.get_by_role(
        "checkbox", name="Email me when accepted (invitation to mae@example.com)"
    )
    await expect(ruth).not_to_be_checked()
    await expect(mae).to_be_checked()

    # The setting, from the keyboard: saved at once, confirmed politely, kept.
    saved = admin.locator("#notify-setting-status")
    await expect(saved).to_have_attribute("role", "status")
    async with admin.expect_request(
        lambda request: request.method == "PUT" and request.url.endswith("/settings/me")
    ) as saving:
        await setting.focus()
        await admin.keyboard.press("Space")
    assert (await saving.value).post_data_json == {"notify_on_acceptance": False}
    await expect(saved).to_have_text(
        "Saved: you will get no email when your invitations are accepted."
    )
    await expect(setting).to_be_focused()
    # While it is off no acceptance email goes at all: the rows offer no choice of their own.
    await expect(table.get_by_role("checkbox")).to_have_count(0)
    await admin.reload()
    await expect(setting).not_to_be_checked()
    await expect(setting).to_be_enabled()

    # The Invite form's choice starts from the setting, and says why it is unchecked.
    panel = await open_invite(admin)
    await expect(notify).not_to_be_checked()
    await expect(notify).to_have_accessible_description(re.compile("your own setting is off"))
    await panel.get_by_label("Send invitation email").fill("katherine@example.com")
    assert (await send(admin, panel))["notify_inviter"] is False
    await admin.keyboard.press("Escape")

    await setting.check()
    await expect(saved).to_have_text(
        "Saved: you will get an email when someone joins through one of your invitations."
    )
    await expect(ruth).to_be_visible()  # the rows' own choices are back
    await screenshot(admin, "invitations-setting")
    answer = await admin.request.get("/api/v1/invitations/settings/me")
    assert await answer.json() == {"notify_on_acceptance": True}
    await admin.reload()
    await expect(setting).to_be_checked()

    # One invitation's choice, from the keyboard; the focus stays on it as the rows refresh.
    async with admin.expect_request(lambda request: request.method == "PATCH") as patching:
        await ruth.focus()
        await admin.keyboard.press("Space")
    assert (await patching.value).post_data_json == {"notify_inviter": True}
    await expect(admin.locator("#toast")).to_have_text(
        "You will get an email when ruth@example.com joins."
    )
    await expect(ruth).to_be_checked()
    await expect(ruth).to_be_focused()
    assert (await invitation(admin, "ruth@example.com"))["notify_inviter"] is True
    await admin.reload()
    await expect(ruth).to_be_checked()

    # Refused (only its inviter may change it): the console says so and the box goes back.
    async def refuse(route: Route) -> None:
        if route.request.method != "PATCH":
            await route.fallback()
            return
        await route.fulfill(status=403, json={"detail": "only its inviter may change that"})

    await admin.route("**/api/v1/invitations/*", refuse)
    await mae.click()
    await expect(admin.locator("#toast")).to_have_text("only its inviter may change that")
    await expect(mae).to_be_checked()
    assert (await invitation(admin, "mae@example.com"))["notify_inviter"] is True
    assert not admin.errors  # type: ignore[attr-defined]


async def test_the_invitations_table_says_when_the_reminder_goes_and_when_it_went(
    browser: Browser, running: Running
) -> None:
    zone = far_from_utc()
    admin = await page_in(browser, running.system, zone)
    await sign_in(admin)
    panel = await open_invite(admin)
    await panel.get_by_label("Send invitation email").fill("rosalind@example.com")
    await send(admin, panel)  # valid 7 days: reminded 2 days before it expires
    await admin.keyboard.press("Escape")
    await admin.get_by_role("link", name="Invitations").click()
    row = admin.locator("#invitations-table tr", has_text="rosalind@example.com")
    status = row.locator("td").nth(1)
    await expect(status.locator(".badge")).to_have_text("Sent", timeout=LIVE)

    item = await invitation(admin, "rosalind@example.com")
    assert item["remind_at"] and not item["reminded_at"]
    upcoming = status.locator(".reason", has_text="Reminder on")
    await expect(upcoming).to_have_text(local_day(item["remind_at"], zone))
    await expect(upcoming).to_have_text(re.compile("^Reminder on "))
    assert await upcoming.locator("time").get_attribute("datetime") == item["remind_at"]

    # Five days later, as far as the service can tell: the reminder goes out.
    dsn = make_url(running.invitations_database).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(
            "UPDATE invitations SET remind_at = now() - interval '1 minute' WHERE id = $1",
            uuid.UUID(item["id"]),
        )
    finally:
        await connection.close()
    went = status.locator(".reason", has_text="Reminded")
    await expect(went).to_be_visible(timeout=LIVE)
    await expect(upcoming).to_have_count(0)
    item = await invitation(admin, "rosalind@example.com")
    assert item["reminded_at"] and not item["remind_at"]
    await expect(went).to_have_text(re.compile(r"^Reminded "))
    await expect(went).to_have_text(local_day(item["reminded_at"], zone))
    deadline = time.monotonic() + LIVE / 1000
    while len(mails := running.system.mails_to("rosalind@example.com")) < 2:
        assert time.monotonic() < deadline, "no reminder email"
        await asyncio.sleep(0.3)
    # The catcher's files are named to the second: the two may come in either order.
    assert sorted(str(mail["Subject"]) for mail in mails) == [
        "Reminder: Welcome to Acme Chat",
        "Welcome to Acme Chat",
    ]

    # At phone width: the setting above the table and the reminder under the status.
    phone = await page_in(browser, running.system, zone, PHONE)
    await sign_in(phone)
    await phone.get_by_role("link", name="Invitations").click()
    await expect(phone.get_by_role("checkbox", name=SETTING)).to_be_enabled()
    phone_row = phone.locator("#invitations-table tr", has_text="rosalind@example.com")
    await expect(phone_row).to_contain_text("Reminded")
    await screenshot(phone, "invitations-phone")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not admin.errors and not phone.errors  # type: ignore[attr-defined]


PEOPLE = (
    "email,name,roles\r\n"
    "ada.file@example.com,Ada Lovelace,\r\n"
    "not-an-address,Nobody,\r\n"
    "Ada.File@example.com,Ada again,\r\n"
    f"{ADMIN[1]},Root,\r\n"
    "hedy.file@example.com,Hedy Lamarr,user\r\n"
    "barbara.file@example.com,Barbara Liskov,admin\r\n"
)


async def test_a_csv_file_is_invited_with_progress_counts_and_results_to_download(
    browser: Browser, running: Running
) -> None:
    admin = await new_page(browser, running.system)
    await sign_in(admin)
    panel = await open_invite(admin)
    await panel.get_by_label("Send invitation email").fill("hedy.file@example.com")
    await send(admin, panel)
    await panel.get_by_role("button", name="Invite more people").click()

    file_input = await choose_file_upload(panel)
    await expect(panel.get_by_label("Send invitation email")).to_be_hidden()
    await expect(panel.get_by_role("group", name="Roles")).to_be_hidden()  # from the file
    await expect(file_input).to_have_accessible_description(
        re.compile(
            "A header row with an email column; optional name and roles columns; up to 5,000 rows"
        )
    )
    upload = panel.get_by_role("button", name="Upload and send")
    await upload.click()
    await expect(panel.locator("#invite-file-error")).to_have_text("Choose a CSV file.")
    await expect(file_input).to_have_attribute("aria-invalid", "true")
    await expect(file_input).to_be_focused()

    await file_input.set_input_files(csv_file("people.csv", PEOPLE))
    await panel.get_by_label("Message (optional)").fill("Welcome to the team!")
    await panel.get_by_label("Link expires after").select_option(label="3 days")
    await panel.get_by_role("checkbox", name=NOTIFY).uncheck()
    async with admin.expect_response(
        lambda response: response.request.method == "POST" and "/imports?" in response.url
    ) as answered:
        await upload.click()
    response = await answered.value
    assert response.status == 202, await response.text()
    # The progress, until the job is done (the console asks every half second).
    progress = panel.get_by_role("progressbar", name=re.compile(r"^Inviting… \d of 6 rows$"))
    await expect(progress).to_be_visible()
    request = response.request
    assert request.headers["content-type"] == "text/csv"
    assert parse_qs(urlsplit(request.url).query) == {
        "filename": ["people.csv"],
        "expires_in_hours": ["72"],
        "notify_inviter": ["false"],
        "message": ["Welcome to the team!"],
    }

    counts = panel.get_by_role("list", name="Rows by outcome").get_by_role("listitem")
    await expect(counts).to_have_text(
        [
            "Invitation queued: 2",
            "Invalid: 1",
            "Already a member: 1",
            "Already invited: 1",
            "Duplicate in this file: 1",
        ],
        timeout=LIVE,
    )
    await expect(progress).to_be_hidden()
    await expect(panel.locator("#invite-confirmation")).to_have_text(
        "people.csv: 2 invitations are being sent. 4 rows were not invited."
    )
    await screenshot(admin, "invite-csv")

    async with admin.expect_download() as downloading:
        await panel.get_by_role("link", name="Download the results (CSV)").click()
    download = await downloading.value
    assert download.suggested_filename.endswith(".csv")
    text = await asyncio.to_thread(Path(await download.path()).read_text, "utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["row"], row["outcome"]) for row in rows] == [
        ("2", "queued"),
        ("3", "invalid"),
        ("4", "duplicate_in_request"),
        ("5", "already_member"),
        ("6", "already_invited"),
        ("7", "queued"),
    ]
    assert rows[5]["email"] == "barbara.file@example.com" and "admin" in rows[5]["roles"]

    # The file's own choices: the roles of its row, the panel's expiry and email choice.
    await admin.keyboard.press("Escape")
    await admin.get_by_role("link", name="Invitations").click()
    barbara = admin.locator("#invitations-table tr", has_text="barbara.file@example.com")
    await expect(barbara.locator(".badge-role")).to_have_text("Admin")
    item = await invitation(admin, "barbara.file@example.com")
    assert item["notify_inviter"] is False and item["message"] == "Welcome to the team!"
    assert item["remind_at"] is None  # valid 3 days: too short for a reminder
    created, expires = (datetime.fromisoformat(item[key]) for key in ("created_at", "expires_at"))
    assert (expires - created).total_seconds() == 72 * 3600

    phone = await new_page(browser, running.system, PHONE)
    await sign_in(phone)
    phone_panel = await open_invite(phone)
    phone_file = await choose_file_upload(phone_panel)
    await phone_file.set_input_files(
        csv_file("more.csv", "email;name\nlise.file@example.com;Lise Meitner\nnope;\n")
    )
    await phone_panel.get_by_role("button", name="Upload and send").click()
    await expect(
        phone_panel.get_by_role("list", name="Rows by outcome").get_by_role("listitem")
    ).to_have_text(["Invitation queued: 1", "Invalid: 1"], timeout=LIVE)
    await expect(phone_panel.get_by_role("link", name="Download the results (CSV)")).to_be_visible()
    await screenshot(phone, "invite-csv-phone")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not admin.errors and not phone.errors  # type: ignore[attr-defined]


async def test_a_refused_csv_file_shows_why_and_invites_nobody(
    browser: Browser, running: Running
) -> None:
    admin = await new_page(browser, running.system)
    await sign_in(admin)
    panel = await open_invite(admin)
    # The keyboard is enough: the arrow keys choose the file, Tab reaches its field.
    await panel.get_by_role("radio", name="Type addresses").focus()
    await admin.keyboard.press("ArrowRight")
    await expect(panel.get_by_role("radio", name="Upload a CSV file")).to_be_checked()
    await admin.keyboard.press("Tab")
    file_input = panel.get_by_label("Choose a CSV file")
    await expect(file_input).to_be_focused()

    formula = "email,name\r\neve.formula@example.com,=cmd|' /C calc'!A0\r\n"
    await file_input.set_input_files(csv_file("formula.csv", formula))
    await panel.get_by_role("button", name="Upload and send").click()
    general = panel.locator("#invite-error")
    await expect(general).to_have_attribute("role", "alert")
    await expect(general).to_contain_text(
        "row 2, column `name` starts with '=', which a spreadsheet would run as a formula"
    )
    await expect(panel.locator("#invite-form")).to_be_visible()  # still there, to try again
    answer = await admin.request.get("/api/v1/invitations?search=eve.formula")
    assert (await answer.json())["total"] == 0

    # The other refusals of a whole file, each with the service's words, in the same place.
    answers = iter(
        [
            (413, "file refused: larger than 2097152 bytes"),
            (429, "the daily limit of 5000 invitations would be passed"),
            (403, "only an admin may invite an admin"),
        ]
    )

    async def refuse(route: Route) -> None:
        status, detail = next(answers)
        await route.fulfill(status=status, json={"detail": detail})

    await admin.route("**/api/v1/invitations/imports?*", refuse)
    for detail in (
        "file refused: larger than 2097152 bytes",
        "the daily limit of 5000 invitations would be passed",
        "only an admin may invite an admin",
    ):
        await panel.get_by_role("button", name="Upload and send").click()
        await expect(general).to_have_text(detail)
    assert not admin.errors  # type: ignore[attr-defined]
