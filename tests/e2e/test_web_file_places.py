"""Finding collections and places in the file manager (Chromium): a collection search with
owners and descriptions, bookmarks made and opened from a pane, and the last collections and
folders remembered for the next visit."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_web_files import choose, open_folder
from tests.support.server import DEMO_USERNAME, LiveServer

pytestmark = pytest.mark.browser


def test_search_bookmarks_and_remembered_places(logged_in: Page, server: LiveServer) -> None:
    page = logged_in
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")

    # Search instead of scrolling a list of everything.
    page.get_by_test_id("origin-search").fill("collection 2")
    page.get_by_test_id("origin-search").press("Enter")
    results = page.get_by_test_id("origin-results")
    expect(results.get_by_test_id("found").filter(has_text="Demo Collection 2")).to_have_count(1)
    expect(results).to_contain_text(f"Owner {DEMO_USERNAME}")
    expect(results).to_contain_text("Central storage")
    results.get_by_role("link", name="Open Demo Collection 2 in the origin pane").click()
    expect(page.locator("[data-testid=origin-collection] option:checked")).to_have_text(
        "Demo Collection 2"
    )
    expect(page.get_by_test_id("origin-results")).to_have_count(0)
    page.get_by_test_id("origin-search").fill("no-such-collection-anywhere")
    page.get_by_test_id("origin-search").press("Enter")
    expect(page.get_by_test_id("origin-results")).to_contain_text("No collection you can see")

    # Bookmark a folder, then open it from the other pane.
    choose(page, "origin", "Demo Collection 1")
    open_folder(page, "origin", "nested")
    name = f"Nested data {uuid.uuid4().hex[:4]}"
    page.get_by_test_id("origin-bookmarks").click()
    page.get_by_test_id("origin-bookmark-name").fill(name)
    page.get_by_test_id("origin-bookmark-add").click()
    expect(page.get_by_test_id("notice")).to_have_text(f"Bookmarked /nested/ as “{name}”.")
    page.get_by_test_id("destination-bookmarks").click()
    page.locator("[data-testid=pane-destination] [data-testid=bookmark]", has_text=name).click()
    expect(page.get_by_test_id("destination-path")).to_have_value("/nested/")
    expect(page.locator("[data-testid=destination-collection] option:checked")).to_have_text(
        "Demo Collection 1"
    )

    # The next visit opens where this one left off.
    open_folder(page, "destination", "dir")
    page.goto(f"{server.url}/activity")
    page.goto(f"{server.url}/files")
    expect(page.get_by_test_id("destination-path")).to_have_value("/nested/dir/")
    expect(page.get_by_test_id("origin-path")).to_have_value("/nested/")
