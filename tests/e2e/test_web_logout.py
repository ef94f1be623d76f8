"""Logging out in a real browser: a POST form with the CSRF token in the page header
(issue #10 item 6; a GET of /logout no longer logs out)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.support.server import DEMO_USERNAME, LiveServer


def test_log_out_button_ends_the_session(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/developers")
    log_in(page)
    expect(page.get_by_test_id("current-user")).to_have_text(DEMO_USERNAME)
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("notice")).to_have_text("You are logged out.")
    expect(page.get_by_test_id("current-user")).to_have_count(0)
    page.goto(f"{server.url}/developers")
    expect(page).to_have_url(f"{server.url}/auth/login?next=%2Fdevelopers")
