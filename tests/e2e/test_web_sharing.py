"""Sharing in the browser: "Share" under a file manager pane makes a guest collection of the
folder, its page grants a colleague access, the colleague finds it under "Shared with you"
and browses it; the owner, as the collection's administrator, cancels the colleague's task
from "Tasks on your collections".

This server runs no worker (``--no-worker``), so the colleague's transfer stays ACTIVE,
queued, until the test starts one to carry the cancel out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import globus_sdk
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import log_in
from tests.e2e.test_web_files import choose, entry, open_folder
from tests.integration.test_transfer_api import login, make_user
from tests.support.server import LiveServer, start_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stuck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("sharing"),
        extra_args=["--no-worker"],
    )
    try:
        yield server
    finally:
        server.stop()


def test_share_a_folder_and_cancel_a_guests_task(
    page: Page, browser: Browser, stuck: LiveServer
) -> None:
    server = stuck
    folder = f"lab-{uuid.uuid4().hex[:6]}"
    (server.home / "demo" / "collection1" / folder).mkdir()
    (server.home / "demo" / "collection1" / folder / "result.csv").write_text("x\n")
    colleague_name, colleague_password = make_user(server, "colleague")

    page.goto(f"{server.url}/files")
    log_in(page)
    choose(page, "origin", "Demo Collection 1")
    open_folder(page, "origin", folder)
    page.get_by_test_id("origin-share").click()
    expect(page.get_by_test_id("share-path")).to_have_value(f"/{folder}/")
    page.get_by_test_id("share-name").fill(f"Shared {folder}")
    page.get_by_test_id("share-create").click()
    expect(page.get_by_test_id("notice")).to_contain_text(
        f"Guest collection “Shared {folder}” created."
    )
    guest_id = page.get_by_test_id("collection-id").inner_text()
    page.get_by_test_id("perm-who").fill(colleague_name)
    page.get_by_test_id("perm-level").select_option("rw")
    page.get_by_test_id("perm-add").click()
    expect(page.get_by_test_id("permission-row")).to_contain_text(colleague_name)
    expect(page.get_by_test_id("permission-row")).to_contain_text("Read and write")

    # The colleague, in a browser of their own.
    context = browser.new_context()
    theirs = context.new_page()
    try:
        theirs.goto(f"{server.url}/collections?tab=shared")
        log_in(theirs, colleague_name, colleague_password)
        row = theirs.get_by_test_id("collection-row")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(f"Shared {folder}")
        expect(row).to_contain_text("Guest")
        row.get_by_role("link").click()
        theirs.get_by_test_id("open-in-files").click()
        expect(entry(theirs, "origin", "result.csv")).to_have_count(1)
    finally:
        context.close()

    # The colleague's transfer inside the guest collection waits for a worker: ACTIVE.
    colleague = login(server, colleague_name, colleague_password)
    data = globus_sdk.TransferData(source_endpoint=guest_id, destination_endpoint=guest_id)
    data.add_item("/result.csv", "/copy.csv")
    task_id = colleague.tc.submit_transfer(data)["task_id"]

    page.goto(f"{server.url}/activity")
    page.get_by_test_id("managed-link").click()
    task_row = page.get_by_test_id("managed-task").filter(has_text=task_id)
    expect(task_row).to_contain_text(colleague_name)
    task_row.get_by_placeholder("Note to the owner").fill("Disk maintenance")
    task_row.get_by_test_id("admin-cancel").click()
    expect(page.get_by_test_id("notice")).to_contain_text(f"Task {task_id} is being cancelled")
    with server.worker():
        deadline = time.monotonic() + 120
        while colleague.tc.get_task(task_id)["status"] == "ACTIVE":
            assert time.monotonic() < deadline, "the task was not cancelled"
            time.sleep(0.5)
    assert colleague.tc.get_task(task_id)["fatal_error"]["code"] == "CANCELED"
    notes = [e["details"] for e in colleague.tc.task_event_list(task_id)]
    assert "Disk maintenance" in notes

    # Deleting the guest collection takes it away from the colleague.
    page.goto(f"{server.url}/collections/{guest_id}")
    page.get_by_test_id("delete-guest").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Guest collection deleted")
    with pytest.raises(globus_sdk.TransferAPIError):
        colleague.tc.operation_ls(guest_id, path="/")
