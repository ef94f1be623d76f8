"""The Groups pages in Chromium: create a group, add, promote and remove a member, and what a
member sees; the same memberships through the Groups API (globus-sdk's GroupsClient)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import log_in
from tests.integration.test_groups import groups_client
from tests.integration.test_transfer_api import make_user
from tests.support.server import DEMO_IDP, DEMO_PASSWORD, DEMO_USERNAME, LiveServer

pytestmark = pytest.mark.browser


def open_logged_in(browser: Browser, server: LiveServer, username: str, password: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{server.url}/my-groups")
    log_in(page, username, password, DEMO_IDP)
    page.wait_for_selector("h1:has-text('Groups')")
    return page


def test_a_group_is_made_and_managed_on_its_page(
    logged_in: Page, browser: Browser, server: LiveServer
) -> None:
    page = logged_in
    colleague, password = make_user(server, "colleague")
    name = f"Lab members {uuid.uuid4().hex[:4]}"

    page.get_by_role("link", name="Groups").click()
    expect(page.locator("h1")).to_have_text("Groups")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Description").fill("Everyone in the lab")
    page.get_by_role("button", name="Create group").click()
    expect(page.locator("h1")).to_have_text(name)
    expect(page.get_by_test_id("notice")).to_contain_text("created")
    group_id = page.url.rsplit("/", 1)[1]

    # Someone who has no account: a clear refusal, nothing added.
    page.get_by_label("Username").fill("nobody@example.edu")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_test_id("error")).to_contain_text("has an account here")

    page.get_by_label("Username").fill(colleague)
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_test_id("notice")).to_have_text(f"{colleague} added as Member.")
    rows = page.get_by_test_id("member-row")
    expect(rows).to_have_count(2)

    # The API sees the same membership.
    api = groups_client(server, DEMO_USERNAME, DEMO_PASSWORD)
    shown = api.get_group(group_id, include="memberships")
    assert {m["username"]: m["role"] for m in shown["memberships"]} == {
        DEMO_USERNAME: "admin",
        colleague: "member",
    }

    # The colleague sees the group, as a member, without the managers' forms.
    theirs = open_logged_in(browser, server, colleague, password)
    expect(theirs.get_by_test_id("group-row")).to_contain_text(name)
    theirs.get_by_role("link", name=name).click()
    expect(theirs.get_by_role("button", name="Add member")).to_have_count(0)
    expect(theirs.get_by_role("button", name="Remove")).to_have_count(0)

    # Promoted to manager by the admin; then removed.
    row = rows.filter(has_text=colleague)
    row.get_by_label(f"Role of {colleague}").select_option("manager")
    row.get_by_role("button", name="Change").click()
    expect(page.get_by_test_id("notice")).to_have_text(f"{colleague} is now Manager.")
    theirs.reload()
    expect(theirs.get_by_role("button", name="Add member")).to_have_count(1)

    page.get_by_test_id("member-row").filter(has_text=colleague).get_by_role(
        "button", name="Remove"
    ).click()
    expect(page.get_by_test_id("notice")).to_have_text(f"{colleague} removed.")
    expect(page.get_by_test_id("member-row")).to_have_count(1)
    theirs.goto(f"{server.url}/my-groups")
    expect(theirs.get_by_test_id("group-row")).to_have_count(0)
    # The removed colleague posting the add form anyway (with a valid CSRF token) is refused.
    theirs.goto(f"{server.url}/my-groups/{group_id}")
    expect(theirs.get_by_role("button", name="Add member")).to_have_count(0)
    token = theirs.locator("input[name=csrf_token]").first.get_attribute("value")
    theirs.request.post(
        f"{server.url}/my-groups/{group_id}/members",
        form={"csrf_token": token or "", "username": colleague, "role": "admin"},
    )
    shown = api.get_group(group_id, include="memberships")
    assert {m["username"]: m["status"] for m in shown["memberships"]}[colleague] == "removed"
    theirs.context.close()

    page.get_by_role("button", name="Delete group").click()
    expect(page.get_by_test_id("notice")).to_contain_text("deleted")
    assert all(g["id"] != group_id for g in api.get_my_groups())
