"""The file manager and Activity pages in a real browser, against the demo collections."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import log_in
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


def start_transfer(page: Page, pane: str, names: list[str], label: str) -> str:
    """Tick ``names`` in ``pane``, start the transfer, follow the notice to the task page."""
    for name in names:
        entry(page, pane, name).locator("input[type=checkbox]").check()
    page.fill("[data-testid=transfer-label]", label)
    page.click(f"[data-testid={pane}-start]")
    expect(page.locator("[data-testid=notice]")).to_contain_text("Transfer request submitted")
    page.click("[data-testid=notice-link]")
    return page.inner_text("[data-testid=task-id]").strip()


def test_directory_transfer_reaches_succeeded_in_activity(
    logged_in: Page, server: LiveServer
) -> None:
    page = logged_in
    folder = f"from-web-{uuid.uuid4().hex[:6]}"
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    choose(page, "destination", "Demo Collection 2")
    page.click("[data-testid=destination-new-folder]")
    page.fill("[data-testid=destination-folder-name]", folder)
    page.click("[data-testid=pane-destination] button:has-text('Create')")
    open_folder(page, "destination", folder)

    task_id = start_transfer(page, "origin", ["nested"], "Web copy of nested")
    # The task page refreshes itself until the worker is done.
    expect(page.locator("[data-testid=task-status]")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(page.locator("[data-testid=task-progress]")).to_contain_text("3 of 3 files")
    expect(page.locator("[data-testid=cancel-task]")).to_have_count(0)
    expect(page.locator("[data-testid=events]")).to_be_visible()

    copied = server.home / "demo" / "collection2" / folder / "nested"
    assert (copied / "dir" / "file.txt").read_text() == "A file three levels down.\n"
    assert (copied / "top.txt").is_file()

    page.click("nav a:has-text('Activity')")
    row = page.locator(f"[data-testid=task-row][data-task-id='{task_id}']")
    expect(row).to_contain_text("Web copy of nested")
    expect(row.locator("[data-testid=task-status]")).to_have_text("SUCCEEDED")
    page.click("[data-testid=tab-succeeded]")
    expect(page.locator(f"[data-testid=task-row][data-task-id='{task_id}']")).to_have_count(1)
    page.click("[data-testid=tab-failed]")
    expect(page.locator(f"[data-testid=task-row][data-task-id='{task_id}']")).to_have_count(0)


def test_cancel_active_transfer_of_the_large_file(
    page: Page, server_factory: Callable[..., LiveServer]
) -> None:
    # Reads of this server's storage fail most of the time, so the copy of large.bin sits in
    # retry back-off (still ACTIVE) long enough to be canceled from the browser.
    slow = server_factory(extra_env={"ARCTERN_FAULT_INJECTION": "read_error=0.9,seed=7"})
    page.goto(f"{slow.url}/files")
    log_in(page)
    choose(page, "origin", "Demo Collection 1")
    choose(page, "destination", "Demo Collection 2")
    start_transfer(page, "origin", ["large.bin"], "Large file to cancel")
    expect(page.locator("[data-testid=task-status]")).to_have_text("ACTIVE")

    page.click("[data-testid=cancel-task]")
    # Globus's FAILED/CANCELED (kept by the API) reads as what the user did.
    expect(page.locator("[data-testid=task-status]")).to_have_text("Cancelled", timeout=30_000)
    expect(page.locator("[data-testid=task-nice-status]")).to_be_hidden()
    expect(page.locator("[data-testid=fatal-error]")).to_contain_text("Cancelled")
    expect(page.locator("[data-testid=cancel-task]")).to_have_count(0)
    assert not (slow.home / "demo" / "collection2" / "large.bin").exists()

    page.click("nav a:has-text('Activity')")
    page.click("[data-testid=tab-failed]")
    expect(page.locator("[data-testid=task-row]")).to_contain_text("Large file to cancel")
