"""Live task progress in a real browser: values update in place, focus stays, keyboard cancel."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_web_files import choose, start_transfer
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def test_keyboard_user_cancels_a_running_task_while_progress_updates_in_place(
    logged_in: Page, server: LiveServer
) -> None:
    page = logged_in
    # A large sparse file with verify on: reading and checksumming it keeps the task ACTIVE
    # (with moving bytes) for long enough, without using the disk space it claims.
    big = server.home / "demo" / "collection1" / f"sparse-{uuid.uuid4().hex[:6]}.bin"
    with big.open("wb") as f:
        f.truncate(4 << 30)
    try:
        page.goto(f"{server.url}/files")
        choose(page, "origin", "Demo Collection 1")
        choose(page, "destination", "Demo Collection 2")
        task_id = start_transfer(page, "origin", [big.name], "Keyboard cancel")
        expect(page.locator("[data-testid=task-status]")).to_have_text("ACTIVE")

        # Tab (not click) to Cancel task, as a keyboard user would.
        cancel = page.locator("[data-testid=cancel-task]")
        for _ in range(60):
            page.keyboard.press("Tab")
            if cancel.evaluate("el => el === document.activeElement"):
                break
        else:
            pytest.fail("Tab never reached the Cancel task button")
        # Mark the node: a re-render would replace it (and lose focus); in-place updates do not.
        cancel.evaluate("el => { el.dataset.original = 'yes'; }")
        bytes_counter = page.locator("[data-testid=progress-bytes]")
        seen = [bytes_counter.inner_text().strip()]
        for _ in range(2):  # two updates of the byte counter while the task runs
            page.wait_for_function(
                "t => document.querySelector('[data-testid=progress-bytes]')"
                ".textContent.trim() !== t",
                arg=seen[-1],
                timeout=60_000,
            )
            seen.append(bytes_counter.inner_text().strip())
        assert cancel.evaluate("el => el === document.activeElement"), page.evaluate(
            "document.activeElement.tagName"
        )
        # Focus never moved, and the values were written in place (the page's own counter).
        assert page.evaluate("document.activeElement.dataset.original") == "yes"
        updates = page.locator(f"[data-task-id='{task_id}']").get_attribute("data-updates")
        assert int(updates or 0) >= 2, seen
        expect(page.locator("[data-testid=total-size]")).to_have_text("4.3 GB")
        expect(bytes_counter).to_contain_text(" of 4.3 GB")
        expect(page.locator("[data-testid=progress-rate]")).to_contain_text("/s")
        expect(page.locator("[data-testid=progress-eta]")).to_contain_text("left")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "task-running-1280.png"), full_page=True)

        page.keyboard.press("Enter")
        expect(page.locator("[data-testid=task-status]")).to_have_text("Cancelled", timeout=30_000)
        expect(page.locator("[data-testid=cancel-task]")).to_have_count(0)
        expect(page.locator("[data-testid=rerun-task]")).to_be_visible()
        expect(page.locator("time[data-local-time] + .local-time").first).to_contain_text("local")
        page.screenshot(path=str(SCREENSHOTS / "task-cancelled-1280.png"), full_page=True)

        page.goto(f"{server.url}/activity")
        activity_row = page.locator(f"[data-testid=task-row][data-task-id='{task_id}']")
        expect(activity_row.locator("[data-testid=task-status]")).to_have_text("Cancelled")
        page.screenshot(path=str(SCREENSHOTS / "activity-1280.png"), full_page=True)
    finally:
        big.unlink()
