"""Timers in the browser: "Repeat" in the file manager makes a timer whose first run starts
at once; the Timers pages show it and its runs, pause, resume and delete it; the account
page turns task mail off (a real SMTP server on loopback receives the mail)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.e2e.test_web_files import choose, entry
from tests.support.server import DEMO_USERNAME, LiveServer, free_port, start_server
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def mailing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, SmtpServer]]:
    smtp = SmtpServer(free_port()).start()
    server = start_server(
        tmp_path_factory.mktemp("web-timers"),
        extra_env={**smtp.env(), "ARCTERN_SCHEDULER_INTERVAL": "0.3"},
    )
    try:
        yield server, smtp
    finally:
        server.stop()
        smtp.stop()


def test_repeat_makes_a_timer_managed_from_its_page(
    page: Page, mailing: tuple[LiveServer, SmtpServer]
) -> None:
    server, smtp = mailing
    name = f"daily-{uuid.uuid4().hex[:6]}.txt"
    (server.home / "demo" / "collection1" / name).write_text("every day\n")
    page.goto(f"{server.url}/my-timers")
    log_in(page)
    expect(page.get_by_test_id("timer-row")).to_have_count(0)

    page.goto(f"{server.url}/files")
    choose(page, "origin", "Demo Collection 1")
    choose(page, "destination", "Demo Collection 2")
    entry(page, "origin", name).locator("input[type=checkbox]").check()
    page.get_by_test_id("transfer-repeat").select_option(label="Every day")
    page.get_by_test_id("transfer-repeat-runs").fill("5")
    page.get_by_test_id("origin-start").click()
    expect(page.get_by_test_id("notice")).to_contain_text(
        f"Timer “Copy {name}” created: every 1 day, 5 runs, the first run starts now."
    )
    page.get_by_test_id("notice-link").click()

    # The first run is a task; its row links to it once it succeeded.
    run = page.get_by_test_id("timer-run")
    deadline = time.monotonic() + 120  # a busy machine may take a while; no fixed count
    while "Succeeded" not in (run.first.inner_text() if run.count() else ""):
        assert time.monotonic() < deadline, "the timer's first run did not succeed"
        page.wait_for_timeout(500)
        page.reload()
    expect(run).to_have_count(1)
    expect(run.first).to_contain_text("Succeeded")
    expect(page.get_by_test_id("timer-status")).to_have_text("Scheduled")
    assert (server.home / "demo" / "collection2" / name).read_text() == "every day\n"
    mail = smtp.mailbox.wait_for(lambda box: any(name in m.get_content() for m in box))
    assert any(DEMO_USERNAME in str(m["To"]) for m in mail)

    page.get_by_test_id("pause-timer").click()
    expect(page.get_by_test_id("timer-status")).to_have_text("Paused")
    expect(page.get_by_test_id("timer-next-run")).to_have_text("—")
    page.get_by_test_id("resume-timer").click()
    expect(page.get_by_test_id("timer-status")).to_have_text("Scheduled")
    next_run = page.get_by_test_id("timer-next-run").inner_text()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", next_run), next_run

    page.goto(f"{server.url}/my-timers")
    expect(page.get_by_test_id("timer-row")).to_contain_text("Every 1 day, 5 runs")
    page.get_by_role("link", name=f"Copy {name}").click()
    page.get_by_test_id("delete-timer").click()
    expect(page.get_by_test_id("notice")).to_contain_text(f"Timer “Copy {name}” deleted.")
    expect(page.get_by_test_id("timer-row")).to_have_count(0)


def test_task_mail_can_be_turned_off(page: Page, mailing: tuple[LiveServer, SmtpServer]) -> None:
    server, _ = mailing
    page.goto(f"{server.url}/account")
    log_in(page)
    box = page.get_by_test_id("task-mail")
    expect(box).to_be_checked()
    box.uncheck()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "You will no longer get mail about your tasks."
    )
    expect(page.get_by_test_id("task-mail")).not_to_be_checked()
    page.get_by_test_id("task-mail").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_test_id("task-mail")).to_be_checked()
