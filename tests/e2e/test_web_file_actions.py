"""File manager actions in Chromium: breadcrumbs, sorting, hidden items, rename, delete, and
the extra transfer settings (skip unreadable files, delete extra files, a deadline)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_web_files import choose, entry, open_folder
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser


def names_in(page: Page, pane: str) -> list[str]:
    rows = page.locator(f"[data-testid=pane-{pane}] [data-testid=entry]")
    return [rows.nth(i).get_attribute("data-name") or "" for i in range(rows.count())]


def make_folder(server: LiveServer) -> tuple[str, Path]:
    name = f"actions-{uuid.uuid4().hex[:6]}"
    root = server.home / "demo" / "collection1" / name
    (root / "sub").mkdir(parents=True)
    (root / "big.bin").write_bytes(b"x" * 5000)
    (root / "small.txt").write_bytes(b"x" * 10)
    (root / "Middle.dat").write_bytes(b"x" * 300)
    (root / ".hidden").write_text("dot file")
    (root / "sub" / "inner.txt").write_text("inner")
    return name, root


def test_breadcrumbs_sorting_and_hidden_items(logged_in: Page, server: LiveServer) -> None:
    page = logged_in
    name, _ = make_folder(server)
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    open_folder(page, "origin", name)
    open_folder(page, "origin", "sub")
    crumbs = page.get_by_test_id("origin-crumbs")
    expect(crumbs).to_contain_text(f"Top / {name} / sub")
    crumbs.get_by_role("link", name=name).click()
    expect(page.get_by_test_id("origin-path")).to_have_value(f"/{name}/")

    # Folders first, then names (case-insensitive); the dot file is hidden until asked for.
    assert names_in(page, "origin") == ["sub", "big.bin", "Middle.dat", "small.txt"]
    page.get_by_test_id("origin-sort-size").click()
    assert names_in(page, "origin") == ["sub", "small.txt", "Middle.dat", "big.bin"]
    page.get_by_test_id("origin-sort-size").click()  # again: descending
    expect(page.locator("[data-testid=pane-origin] th[aria-sort=descending]")).to_have_count(1)
    assert names_in(page, "origin") == ["sub", "big.bin", "Middle.dat", "small.txt"]
    page.get_by_test_id("origin-hidden-toggle").click()
    expect(entry(page, "origin", ".hidden")).to_have_count(1)
    page.get_by_test_id("origin-hidden-toggle").click()
    expect(entry(page, "origin", ".hidden")).to_have_count(0)


def test_rename_and_delete(logged_in: Page, server: LiveServer) -> None:
    page = logged_in
    name, root = make_folder(server)
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    open_folder(page, "origin", name)

    # Rename needs exactly one selected item.
    page.get_by_test_id("origin-rename").click()
    page.get_by_test_id("origin-new-name").fill("renamed.txt")
    page.get_by_test_id("origin-rename-submit").click()
    expect(page.get_by_test_id("error")).to_contain_text("exactly one")
    entry(page, "origin", "small.txt").locator("input[type=checkbox]").check()
    page.get_by_test_id("origin-rename").click()
    page.get_by_test_id("origin-new-name").fill("renamed.txt")
    page.get_by_test_id("origin-rename-submit").click()
    expect(page.get_by_test_id("notice")).to_have_text("Renamed “small.txt” to “renamed.txt”.")
    assert (root / "renamed.txt").read_bytes() == b"x" * 10 and not (root / "small.txt").exists()

    # Delete is a task; once it is done the entries are gone.
    entry(page, "origin", "sub").locator("input[type=checkbox]").check()
    entry(page, "origin", "big.bin").locator("input[type=checkbox]").check()
    page.get_by_test_id("origin-delete").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Deleting sub, big.bin")
    deadline = time.monotonic() + 60
    while (root / "sub").exists() or (root / "big.bin").exists():
        assert time.monotonic() < deadline, "the delete task did not finish"
        time.sleep(0.2)
    page.reload()
    assert names_in(page, "origin") == ["Middle.dat", "renamed.txt"]


def test_transfer_settings_reach_the_task(logged_in: Page, server: LiveServer) -> None:
    page = logged_in
    name, _ = make_folder(server)
    target = f"mirror-{uuid.uuid4().hex[:6]}"
    dest_root = server.home / "demo" / "collection2" / target
    (dest_root / name).mkdir(parents=True)
    (dest_root / name / "stale.txt").write_text("not in the source")
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    choose(page, "destination", "Demo Collection 2")
    open_folder(page, "destination", target)
    entry(page, "origin", name).locator("input[type=checkbox]").check()
    page.get_by_test_id("transfer-label").fill("mirror with settings")
    page.get_by_test_id("sync-level").select_option(index=1)
    page.get_by_test_id("skip-source-errors").check()
    page.get_by_test_id("delete-extra").check()
    # Too far ahead: refused with the limit, nothing submitted; a week ahead is fine.
    page.get_by_test_id("transfer-deadline").fill("2099-01-31")
    page.get_by_test_id("origin-start").click()
    expect(page.get_by_test_id("error")).to_contain_text("deadline is too far in the future")
    # The refused submit keeps the selection.
    expect(entry(page, "origin", name).locator("input[type=checkbox]")).to_be_checked()
    page.get_by_test_id("transfer-label").fill("mirror with settings")
    page.get_by_test_id("sync-level").select_option(index=1)
    page.get_by_test_id("skip-source-errors").check()
    page.get_by_test_id("delete-extra").check()
    week = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    page.get_by_test_id("transfer-deadline").fill(week)
    page.get_by_test_id("origin-start").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Transfer request submitted")
    task_id = re.search(r"Task ID ([0-9a-f-]{36})", page.get_by_test_id("notice").inner_text())
    assert task_id is not None
    deadline = time.monotonic() + 60
    while (dest_root / name / "stale.txt").exists() or not (dest_root / name / "big.bin").exists():
        assert time.monotonic() < deadline, "the mirror did not complete"
        time.sleep(0.2)
    page.goto(f"{server.url}/activity/{task_id.group(1)}")
    expect(page.locator("body")).to_contain_text("mirror with settings")


def test_arrow_keys_in_the_collection_picker_do_not_reload(
    logged_in: Page, server: LiveServer
) -> None:
    page = logged_in
    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    picker = page.get_by_test_id("origin-collection")
    page.evaluate("window.__stillHere = true")
    picker.focus()
    picker.press("ArrowDown")
    page.wait_for_timeout(700)  # a reload would have happened by now
    assert page.evaluate("window.__stillHere === true")
    chosen = page.locator("[data-testid=origin-collection] option:checked").inner_text()
    assert chosen != "Demo Collection 1"
    with page.expect_navigation():
        picker.press("Enter")
    expect(page.locator("[data-testid=origin-collection] option:checked")).to_have_text(chosen)
