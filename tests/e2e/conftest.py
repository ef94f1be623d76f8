"""Browser fixtures: Debian's Chromium driven by Playwright, plus a login helper."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.server import DEMO_IDP, DEMO_PASSWORD, DEMO_USERNAME, LiveServer

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an event loop marked as running
    # while it is open, which breaks asyncio.run() in later tests of the same process.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (own cookies) per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    # Destructive buttons ask for confirmation; the tests always confirm.
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()


def log_in(
    page: Page,
    username: str = DEMO_USERNAME,
    password: str = DEMO_PASSWORD,
    institution: str = DEMO_IDP,
) -> None:
    """Fill the login page the browser is on (Institution dropdown, username, password)."""
    page.wait_for_selector("select#idp")
    page.select_option("select#idp", label=institution)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button:has-text('Log in')")


@pytest.fixture
def logged_in(page: Page, server: LiveServer) -> Page:
    """A page whose browser is logged in as the demo user, showing the landing page."""
    page.goto(f"{server.url}/")
    page.click("a:has-text('Log in')")
    log_in(page)
    page.wait_for_selector("[data-testid=current-user]")
    return page
