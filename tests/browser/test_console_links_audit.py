"""Issue 13 in the console: reusable invite links (create, copy, regenerate, revoke; someone joins
through one) and the audit trail (what happened, filtered by action, searched, by day), at
desktop and phone width."""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, Locator, Page, Route, expect

from tests.browser.conftest import PHONE, new_page, screenshot, sign_in
from tests.support.public_system import PublicSystem

pytestmark = pytest.mark.browser

LIVE = 45_000  # ms: the console refreshes every 3 s; links and the trail go through the broker
LINK_URL = re.compile(r"^http://127\.0\.0\.1:\d+/join/link/[A-Za-z0-9_-]+$")


async def open_view(page: Page, name: str, heading: str) -> None:
    await (
        page.get_by_role("navigation", name="Administration")
        .get_by_role("link", name=name, exact=True)
        .click()
    )
    await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


async def open_new_link(page: Page) -> Locator:
    await page.get_by_role("button", name="New link", exact=True).click()
    panel = page.get_by_role("complementary", name="New invite link")
    await expect(panel).to_be_visible()
    return panel


async def create_link(page: Page, panel: Locator) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit the panel's form: what the console sent, and the link the API answered."""
    async with page.expect_response(
        lambda response: (
            response.request.method == "POST" and response.url.endswith("/api/v1/invitations/links")
        )
    ) as answered:
        await panel.get_by_role("button", name="Create link").click()
    response = await answered.value
    assert response.status == 201, await response.text()
    sent, link = response.request.post_data_json, await response.json()
    assert isinstance(sent, dict) and isinstance(link, dict)
    return sent, link


def link_row(page: Page, link_id: str) -> Locator:
    return page.locator(f'#links-table tr[data-link-id="{link_id}"]')


async def open_join_page(page: Page, url: str) -> None:
    """The join page of a link the users service hears of through the broker: ask again until
    it knows it."""
    deadline = time.monotonic() + LIVE / 1000
    while True:
        answer = await page.goto(url)
        assert answer is not None
        if answer.status == 200:
            return
        assert answer.status == 404 and time.monotonic() < deadline, answer.status
        await page.wait_for_timeout(500)


async def refused_page(page: Page, url: str, heading: str) -> None:
    """``url`` ends up refused with ``heading`` (once the users service has heard)."""
    deadline = time.monotonic() + LIVE / 1000
    while True:
        await page.goto(url)
        if await page.get_by_role("heading", name=heading).count():
            return
        assert time.monotonic() < deadline, await page.content()
        await page.wait_for_timeout(500)


async def fits(box: Locator) -> bool:
    """Whether ``box`` shows all it holds, with no scrolling sideways."""
    return bool(await box.evaluate("box => box.scrollWidth <= box.clientWidth"))


def audit_rows(page: Page, what: str) -> Locator:
    """The rows of the trail saying ``what`` (at phone width, who and the details follow it in
    the same cell)."""
    return page.locator("#audit-table tbody tr").filter(
        has=page.locator(".what").get_by_text(what, exact=True)
    )


@pytest.mark.timeout(240)
async def test_a_link_is_created_copied_regenerated_used_and_revoked_and_the_trail_says_so(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await admin.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=system.url)
    await sign_in(admin)
    await open_view(admin, "Links", "Invite links")
    await expect(admin).to_have_url(re.compile("#links$"))
    assert (await admin.title()).startswith("Invite links - ")
    await expect(admin.locator("#links-warning")).to_contain_text("Anyone with a link can join")

    panel = await open_new_link(admin)
    uses = panel.get_by_label("Accounts it may create")
    await expect(uses).to_be_focused()
    await expect(panel.locator("#link-form-warning")).to_contain_text(
        "Anyone with the link can join"
    )
    await uses.fill("5")
    await panel.get_by_label("Expires after", exact=True).select_option(label="30 days")
    await panel.get_by_label("Only addresses at this domain (optional)").fill("Example.org")
    await panel.get_by_role("checkbox", name="admin", exact=True).check()
    sent, link = await create_link(admin, panel)
    assert sent == {
        "max_uses": 5,
        "allowed_domain": "Example.org",
        "roles": ["user", "admin"],
        "expires_in_hours": 720,
    }
    assert link["allowed_domain"] == "example.org" and LINK_URL.match(link["url"])
    confirmation = panel.locator("#link-confirmation")
    await expect(confirmation).to_be_focused()
    await expect(confirmation).to_have_text(
        re.compile(
            r"^Link created\. It makes up to 5 accounts for @example\.org addresses until .+\. "
            r"Whoever joins with it becomes an admin\.$"
        )
    )
    await expect(panel.get_by_label("The link")).to_have_value(link["url"])
    await expect(panel.get_by_label("The link")).to_have_accessible_description(
        re.compile("^Anyone with this link can join")
    )
    await panel.get_by_role("button", name="Copy link").click()
    await expect(admin.locator("#toast")).to_contain_text("Link copied.")
    assert await admin.evaluate("navigator.clipboard.readText()") == link["url"]
    await admin.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(admin.get_by_role("button", name="New link")).to_be_focused()

    # The table: the URL to copy, the status, what it gives and to whom.
    row = link_row(admin, link["id"])
    await expect(row).to_contain_text(link["url"])
    cells = row.get_by_role("cell")
    await expect(cells.nth(1).locator(".badge")).to_have_text("Active")
    await expect(cells.nth(2)).to_have_text("0 of 5")
    await expect(cells.nth(3)).to_have_text(re.compile(r"\d{4}"))
    roles = ", ".join(link["roles"])  # as the API orders them
    assert sorted(link["roles"]) == ["admin", "user"]
    await expect(cells.nth(4)).to_contain_text("Only @example.org addresses")
    await expect(cells.nth(4).locator(".reason")).to_have_text(f"Roles: {roles}")
    await expect(cells.nth(0)).to_contain_text(re.compile(r"Created .+ by Administrator"))
    await expect(cells.nth(0).locator(".badge-role")).to_have_text("Admin")
    name = re.compile(r"link for @example\.org, created ")
    copy = row.get_by_role("button", name=re.compile("^Copy link for @example.org, created "))
    await admin.evaluate("navigator.clipboard.writeText('')")
    await copy.click()
    assert await admin.evaluate("navigator.clipboard.readText()") == link["url"]

    # Regenerate asks first; the URL changes, and the old one stops working.
    regenerate = row.get_by_role("button", name=re.compile("^Regenerate "))
    await expect(regenerate).to_have_accessible_name(name)
    await regenerate.click()
    dialog = admin.get_by_role("dialog", name="Regenerate link?")
    await expect(dialog).to_contain_text("the current one stops working at once")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(row).to_contain_text(link["url"])
    async with admin.expect_response(lambda r: r.url.endswith("/regenerate")) as regenerating:
        await regenerate.click()
        await dialog.get_by_role("button", name="Regenerate").click()
    regenerated = await (await regenerating.value).json()
    new_url = regenerated["url"]
    assert new_url != link["url"] and LINK_URL.match(new_url)
    await expect(admin.locator("#toast")).to_have_text(
        "Link regenerated: the old URL no longer works. Copy the new one to share it."
    )
    await expect(row).to_contain_text(new_url)
    await expect(row).not_to_contain_text(link["url"])
    await expect(row.locator(".reason", has_text="New URL since")).to_be_visible()
    await expect(regenerate).to_be_focused()  # where it was, through the rows' rebuild
    await copy.click()
    assert await admin.evaluate("navigator.clipboard.readText()") == new_url

    # Someone follows the new link, through the same origin, and joins at the domain.
    kim = await new_page(browser, system)
    await refused_page(kim, link["url"], "This invite link is not valid")
    await open_join_page(kim, new_url)
    await expect(kim.get_by_role("heading", name="Join Acme Chat")).to_be_visible()
    await expect(kim.locator("#join-domain")).to_contain_text("@example.org")
    await kim.get_by_label(re.compile("^Email")).fill("kim@example.org")
    await kim.get_by_label("Your name").fill("Kim Lee")
    await kim.get_by_label("Username").fill("kim")
    await kim.get_by_label(re.compile("^Password")).fill("Kim-password-123")
    await kim.get_by_role("button", name="Create my account").click()
    await expect(kim.get_by_role("heading", name="Your account is ready")).to_be_visible()
    # The admin's table counts it without a reload.
    await expect(cells.nth(2)).to_have_text("1 of 5", timeout=LIVE)

    # Revoke asks first; then the row says Revoked, with nothing left to do, and keeps the focus.
    revoke = row.get_by_role("button", name=re.compile("^Revoke link for @example.org"))
    await revoke.click()
    dialog = admin.get_by_role("dialog", name="Revoke link?")
    await dialog.get_by_role("button", name="Revoke").click()
    await expect(admin.locator("#toast")).to_have_text(
        "Link revoked: nobody else can join with it."
    )
    await expect(cells.nth(1).locator(".badge")).to_have_text("Revoked")
    await expect(row.get_by_role("button")).to_have_count(0)
    await expect(row.locator('[data-focus-key^="status-"]')).to_be_focused()
    await expect(row.locator(".link-dead")).to_contain_text(new_url)
    await refused_page(kim, new_url, "This invite link was revoked")

    # Another link, for any address, that never expires: the screenshot shows both.
    panel = await open_new_link(admin)
    await panel.get_by_label("Accounts it may create").fill("25")
    await panel.get_by_label("Expires after", exact=True).select_option(label="Never")
    sent, other = await create_link(admin, panel)
    assert sent == {
        "max_uses": 25,
        "allowed_domain": None,
        "roles": ["user"],
        "never_expires": True,
    }
    assert other["expires_at"] is None
    await expect(panel.locator("#link-confirmation")).to_have_text(
        "Link created. It makes up to 25 accounts and never expires."
    )
    other_row = link_row(admin, other["id"])
    await expect(other_row.get_by_role("cell").nth(3)).to_have_text("Never")
    await expect(other_row.get_by_role("cell").nth(4)).to_contain_text("Any address")
    await expect(other_row.get_by_role("cell").nth(4).locator(".reason")).to_have_text(
        "Roles: user"
    )
    await expect(admin.locator("#links-count")).to_have_text("2 links")
    await admin.locator("#toast").evaluate("toast => (toast.hidden = true)")
    await screenshot(admin, "links")

    # The audit trail: each of these, in words, newest first.
    await admin.keyboard.press("Escape")
    await open_view(admin, "Audit", "Audit trail")
    assert (await admin.title()).startswith("Audit trail - ")
    for what in ("Created link", "Regenerated link", "Revoked link", "Joined through a link"):
        await expect(audit_rows(admin, what).first).to_be_visible(timeout=LIVE)
    created = audit_rows(admin, "Created link").filter(has_text="Link for @example.org")
    await expect(created).to_have_count(1)
    created_cells = created.get_by_role("cell")
    await expect(created_cells.nth(1)).to_have_text("Administrator")
    await expect(created_cells.nth(4)).to_have_text(
        re.compile(rf"^Up to 5 accounts; expires .+; roles: {roles}$")
    )
    joined = audit_rows(admin, "Joined through a link").get_by_role("cell")
    await expect(joined.nth(1)).to_have_text("Kim Lee")
    await expect(joined.nth(3)).to_have_text("kim")
    await expect(joined.nth(4)).to_have_text(f"kim@example.org; roles: {roles}")
    await expect(audit_rows(admin, "Created link").nth(0)).to_contain_text("Link for any address")
    when = created_cells.nth(0).locator("time")
    assert datetime.fromisoformat(str(await when.get_attribute("datetime")))
    await expect(admin.locator("#audit-count")).to_have_text(
        re.compile("^1\N{EN DASH}\\d+ of \\d+ entries$")
    )
    await screenshot(admin, "audit")

    # Filtered by action, in words.
    shown = admin.locator("#audit-table tbody .what")
    everything = [
        "Created link",
        "Revoked link",
        "Joined through a link",
        "Regenerated link",
        "Created link",
        "Signed in for the first time",  # the admin's
        "Created account",  # the admin's, by the system
    ]
    await expect(shown).to_have_text(everything)
    await expect(admin.locator("#audit-table tbody tr").last).to_contain_text("System")
    async with admin.expect_request(lambda r: "action=link.revoked" in r.url) as asking:
        await admin.get_by_label("Action").select_option(label="Revoked link")
    assert parse_qs(urlsplit((await asking.value).url).query)["action"] == ["link.revoked"]
    await expect(shown).to_have_text(["Revoked link"])
    await expect(audit_rows(admin, "Revoked link")).to_contain_text("Link for @example.org")
    await admin.get_by_label("Action").select_option(label="All actions")
    await expect(shown).to_have_text(everything)

    # Searched: the target's address or username (or a link's domain).
    await admin.get_by_label("Search the trail").fill("KIM")
    await expect(shown).to_have_text(["Joined through a link"])
    await admin.get_by_label("Search the trail").fill("example.org")
    await expect(shown).to_have_text(["Revoked link", "Regenerated link", "Created link"])
    await admin.get_by_label("Search the trail").fill("")
    await expect(shown).to_have_text(everything)

    # By day, in the browser's time zone: today has them, tomorrow nothing yet.
    today = date.today()
    await admin.get_by_label("From", exact=True).fill(today.isoformat())
    await admin.get_by_label("To", exact=True).fill(today.isoformat())
    await expect(shown).to_have_text(everything)
    tomorrow = (today + timedelta(days=1)).isoformat()
    async with admin.expect_request(lambda r: "since=" in r.url and "until=" in r.url) as asking:
        await admin.get_by_label("From", exact=True).fill(tomorrow)
    query = parse_qs(urlsplit((await asking.value).url).query)
    since = datetime.fromisoformat(query["since"][0])
    assert since.astimezone().date().isoformat() == tomorrow and since.astimezone().hour == 0
    await expect(admin.locator("#audit-table .empty")).to_have_text("Nothing recorded matches.")
    await expect(admin.locator("#audit-count")).to_have_text("0\N{EN DASH}0 of 0 entries")
    assert not admin.errors and not kim.errors  # type: ignore[attr-defined]


async def test_the_new_link_panel_shows_refusals_beside_their_fields(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await sign_in(admin)
    await admin.goto("/#links")
    await expect(admin.get_by_role("heading", name="Invite links")).to_be_visible()
    panel = await open_new_link(admin)
    uses = panel.get_by_label("Accounts it may create")

    # Checked before asking: uses and roles.
    await uses.fill("0")
    await panel.get_by_role("checkbox", name="user", exact=True).uncheck()
    await panel.get_by_role("button", name="Create link").click()
    await expect(panel.locator("#link-max_uses-error")).to_have_text(
        "Enter a whole number from 1 to 10,000."
    )
    await expect(panel.locator("#link-roles-error")).to_have_text("Choose at least one role.")
    await expect(uses).to_have_attribute("aria-invalid", "true")
    await expect(uses).to_be_focused()

    # The API's words beside the domain.
    await uses.fill("3")
    await panel.get_by_role("checkbox", name="user", exact=True).check()
    domain = panel.get_by_label("Only addresses at this domain (optional)")
    await domain.fill("not a domain")
    await panel.get_by_role("button", name="Create link").click()
    await expect(panel.locator("#link-allowed_domain-error")).to_have_text(
        "'not a domain' is not an email domain like example.com"
    )
    await expect(domain).to_have_attribute("aria-invalid", "true")
    await expect(domain).to_be_focused()
    await expect(uses).not_to_have_attribute("aria-invalid", "true")

    # A workspace that forbids links without expiry: said beside the choice, Never disabled.
    async def forbid(route: Route) -> None:
        if route.request.method != "POST":
            await route.fallback()
            return
        detail = "this workspace does not allow links that never expire"
        await route.fulfill(status=422, json={"detail": detail})

    await admin.route("**/api/v1/invitations/links", forbid)
    await domain.fill("")
    expiry = panel.get_by_label("Expires after", exact=True)
    await expiry.select_option(label="Never")
    await panel.get_by_role("button", name="Create link").click()
    await expect(panel.locator("#link-expires_in_hours-error")).to_have_text(
        "this workspace does not allow links that never expire"
    )
    await expect(expiry).to_be_focused()
    never = expiry.locator("option", has_text="Never")
    await expect(never).to_be_disabled()
    await expect(never).to_have_text("Never (not allowed in this workspace)")

    # Any other refusal in the panel's alert.
    await admin.unroute("**/api/v1/invitations/links", forbid)

    async def refuse(route: Route) -> None:
        await route.fulfill(status=429, json={"detail": "too many links today"})

    await admin.route("**/api/v1/invitations/links", refuse)
    await expiry.select_option(label="7 days")
    await panel.get_by_role("button", name="Create link").click()
    await expect(panel.get_by_role("alert")).to_have_text("too many links today")
    await expect(panel.locator("#link-expires_in_hours-error")).to_be_hidden()
    assert not admin.errors  # type: ignore[attr-defined]


async def test_without_the_clipboard_api_copy_selects_the_link(
    browser: Browser, system: PublicSystem
) -> None:
    admin = await new_page(browser, system)
    await admin.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined })"
    )
    await sign_in(admin)
    await open_view(admin, "Links", "Invite links")
    panel = await open_new_link(admin)
    await panel.get_by_label("Accounts it may create").fill("2")
    await panel.get_by_label("Only addresses at this domain (optional)").fill("copy.test")
    _, link = await create_link(admin, panel)
    await panel.get_by_role("button", name="Copy link").click()
    toast = admin.locator("#toast")
    await expect(toast).to_have_text("The link is selected: press Ctrl+C (⌘C on a Mac) to copy it.")
    url = panel.get_by_label("The link")
    await expect(url).to_be_focused()
    assert (
        await url.evaluate("input => input.value.slice(input.selectionStart, input.selectionEnd)")
        == link["url"]
    )
    # Another one starts from the defaults, and Escape still returns to New link.
    await panel.get_by_role("button", name="Create another link").click()
    uses = panel.get_by_label("Accounts it may create")
    await expect(uses).to_be_focused()
    await expect(uses).to_have_value("10")
    await expect(panel.get_by_label("Only addresses at this domain (optional)")).to_have_value("")
    await admin.keyboard.press("Escape")
    await expect(admin.get_by_role("button", name="New link")).to_be_focused()

    row = link_row(admin, link["id"])
    await row.get_by_role("button", name=re.compile("^Copy link")).click()
    assert await admin.evaluate("getSelection().toString()") == link["url"]
    assert not admin.errors  # type: ignore[attr-defined]


async def test_links_and_the_audit_trail_fit_a_phone(
    browser: Browser, system: PublicSystem
) -> None:
    phone = await new_page(browser, system, PHONE)
    await sign_in(phone)
    navigation = phone.get_by_role("navigation", name="Administration")
    for name in ("Users", "Invitations", "Links", "Audit"):
        tab = navigation.get_by_role("link", name=name, exact=True)
        await expect(tab).to_be_in_viewport(ratio=1)
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # From the keyboard: Tab reaches the Links tab, Enter opens it.
    await navigation.get_by_role("link", name="Invitations", exact=True).focus()
    await phone.keyboard.press("Tab")
    await expect(navigation.get_by_role("link", name="Links", exact=True)).to_be_focused()
    await phone.keyboard.press("Enter")
    await expect(phone.get_by_role("heading", name="Invite links")).to_be_visible()
    await expect(navigation.get_by_role("link", name="Links", exact=True)).to_have_attribute(
        "aria-current", "page"
    )

    panel = await open_new_link(phone)
    await panel.get_by_label("Accounts it may create").fill("3")
    await panel.get_by_label("Only addresses at this domain (optional)").fill("phone.test")
    _, link = await create_link(phone, panel)
    await expect(panel.get_by_role("button", name="Copy link")).to_be_visible()
    await panel.get_by_role("button", name="Close").click()
    row = link_row(phone, link["id"])
    await expect(row).to_contain_text("0 of 3 used")
    await expect(row).to_contain_text("Only @phone.test addresses")
    await expect(row.get_by_role("button", name=re.compile("^Revoke"))).to_be_visible()
    await phone.locator("#toast").evaluate("toast => (toast.hidden = true)")
    await screenshot(phone, "links-phone")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert await fits(phone.locator("#links-view .table-wrap"))

    await navigation.get_by_role("link", name="Audit", exact=True).click()
    await expect(phone.get_by_role("heading", name="Audit trail")).to_be_visible()
    entry = audit_rows(phone, "Created link").filter(has_text="Link for @phone.test")
    await expect(entry).to_be_visible(timeout=LIVE)
    await expect(entry).to_contain_text("By Administrator")
    await screenshot(phone, "audit-phone")
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert await fits(phone.locator("#audit-view .table-wrap"))
    assert not phone.errors  # type: ignore[attr-defined]
