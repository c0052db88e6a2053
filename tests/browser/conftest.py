"""Browser tests: Debian's Chromium, driven by Playwright, against the system as `make run`
starts it (services as processes behind the development gateway, the mail catcher). Chromium
is required: without it these tests fail, they never skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.public_system import ADMIN, PublicSystem, start_public_system

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"
DESKTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def chromium() -> str:
    found = shutil.which(CHROMIUM)
    if found is None:
        pytest.fail(f"Chromium is needed at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)")
    return found


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        yield launched
        await launched.close()


async def _system(
    amqp_url: str, databases: DatabaseFactory, folder: Path, *, smtp: bool
) -> AsyncIterator[PublicSystem]:
    namespace = Namespace.fresh()
    system = await start_public_system(amqp_url, databases, namespace, folder, smtp=smtp)
    try:
        yield system
    finally:
        system.stop()
        await namespace.delete(amqp_url)


@pytest.fixture(scope="module")
async def system(
    amqp_url: str, databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PublicSystem]:
    async for running in _system(amqp_url, databases, tmp_path_factory.mktemp("system"), smtp=True):
        yield running


@pytest.fixture(scope="module")
async def system_without_smtp(
    amqp_url: str, databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PublicSystem]:
    folder = tmp_path_factory.mktemp("no-smtp")
    async for running in _system(amqp_url, databases, folder, smtp=False):
        yield running


async def new_page(
    browser: Browser, system: PublicSystem, viewport: dict[str, int] = DESKTOP
) -> Page:
    """A page in a browser context of its own: its own cookies, like another person."""
    context: BrowserContext = await browser.new_context(viewport=viewport, base_url=system.url)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def sign_in(page: Page, login: str = ADMIN[0], password: str = ADMIN[2]) -> None:
    await page.goto("/")
    await page.get_by_label("Username or email").fill(login)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state("load")


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """docs/images/<name>.png, shown in the README: written by every run, so it stays current."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(
        path=SCREENSHOTS / f"{name}.png", full_page=full_page, animations="disabled", caret="hide"
    )


async def page_in(
    browser: Browser, system: PublicSystem, zone: str, viewport: dict[str, int] = DESKTOP
) -> Page:
    """Like new_page, in a given time zone and a 24-hour locale, to check what is shown as
    local time."""
    context = await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        base_url=system.url,
        timezone_id=zone,
        locale="en-GB",
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return page
