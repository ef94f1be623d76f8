"""The file manager and Activity pages in a real browser, against the demo collections."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


def choose(page: Page, pane: str, collection: str) -> None:
    page.select_option(f"[data-testid={pane}-collection]", label=collection)
    expect(page.locator(f"[data-testid={pane}-collection] option:checked")).to_have_text(collection)


def open_folder(page: Page, pane: str, name: str) -> None:
    page.click(f"[data-testid=pane-{pane}] [data-testid=entry][data-name='{name}'] a")
    expect(page.locator(f"[data-testid={pane}-path]")).to_have_value(re.compile(f"/{name}/$"))


def entry(page: Page, pane: str, name: str) -> Locator:
    return page.locator(f"[data-testid=pane-{pane}] [data-testid=entry][data-name='{name}']")


def test_browse_create_folder_and_navigate(logged_in: Page, server: LiveServer) -> None:
    page = logged_in
    page.click("nav a:has-text('File Manager')")
    choose(page, "origin", "Demo Collection 1")
    choose(page, "destination", "Demo Collection 2")
    for name in ("README.txt", "hello.txt", "large.bin", "nested", "data"):
        expect(entry(page, "origin", name)).to_have_count(1)
    expect(entry(page, "origin", "large.bin")).to_contain_text("21.0 MB")

    open_folder(page, "origin", "nested")
    open_folder(page, "origin", "dir")
    expect(entry(page, "origin", "file.txt")).to_have_count(1)
    page.click("[data-testid=origin-up]")
    expect(page.locator("[data-testid=origin-path]")).to_have_value("/nested/")
    # The other pane keeps its place while this one moves.
    expect(page.locator("[data-testid=destination-collection] option:checked")).to_have_text(
        "Demo Collection 2"
    )

    folder = f"made-in-browser-{uuid.uuid4().hex[:6]}"
    page.click("[data-testid=destination-new-folder]")
    page.fill("[data-testid=destination-folder-name]", folder)
    page.click("[data-testid=pane-destination] button:has-text('Create')")
    expect(page.locator("[data-testid=notice]")).to_contain_text(f"Folder “{folder}” created")
    expect(entry(page, "destination", folder)).to_have_count(1)
    assert (server.home / "demo" / "collection2" / folder).is_dir()

    # Typing a path works too, and a missing one is reported inside the pane.
    page.fill("[data-testid=origin-path]", "/no/such/place/")
    page.press("[data-testid=origin-path]", "Enter")
    expect(page.locator("[data-testid=origin-error]")).to_be_visible()


def test_transfer_without_selection_is_explained(logged_in: Page, server: LiveServer) -> None:
    page = logged_in
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    choose(page, "destination", "Demo Collection 2")
    page.click("[data-testid=origin-start]")
    expect(page.locator("[data-testid=error]")).to_contain_text("Select files or folders")
