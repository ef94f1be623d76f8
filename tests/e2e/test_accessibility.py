"""Every main page at desktop and phone width: no serious accessibility violations (axe-core),
no sideways scrolling at 360 px, a skip link first in the tab order; screenshots of each
page at both widths go to ``build/screenshots/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import log_in
from tests.integration.test_transfer_api import login
from tests.support.axe_check import serious_violations
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
WIDTHS = {"desktop": (1280, 900), "phone": (360, 740)}


@pytest.fixture(scope="module")
def task_id(server: LiveServer) -> str:
    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    c1, c2 = (d["id"] for d in owner.tc.endpoint_search("Demo Collection", limit=2))
    tdata = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2, label="a11y")
    tdata.add_item("/hello.txt", "/a11y-hello.txt")
    return str(owner.tc.submit_transfer(tdata)["task_id"])


@pytest.fixture(params=list(WIDTHS), scope="module")
def signed_in(
    request: pytest.FixtureRequest, browser: Browser, server: LiveServer
) -> Iterator[tuple[str, Page]]:
    width, height = WIDTHS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{server.url}/auth/login?next=/")
    check(page, request.param, "login")
    log_in(page)
    page.wait_for_selector("[data-testid=current-user]")
    yield request.param, page
    context.close()


def check(page: Page, width: str, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    problems = serious_violations(page)
    assert problems == [], f"{name} at {width}: {problems}"
    if width == "phone":
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at 360 px"


@pytest.mark.parametrize(
    "name,path",
    [
        ("home", "/"),
        ("files", "/files"),
        ("activity", "/activity"),
        ("task", "/activity/{task}"),
        ("developers", "/developers"),
        ("groups", "/my-groups"),
        ("timers", "/my-timers"),
        ("collections", "/collections?tab=all"),
        ("managed", "/activity/managed?status="),
        ("account", "/account"),
    ],
)
def test_pages_are_accessible_at_both_widths(
    signed_in: tuple[str, Page], server: LiveServer, task_id: str, name: str, path: str
) -> None:
    width, page = signed_in
    page.goto(server.url + path.format(task=task_id))
    expect(page.locator("main")).to_be_visible()
    check(page, width, name)
    # Keyboard users can jump past the navigation.
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent.trim()")
    assert focused == "Skip to main content", focused
    if width == "phone":
        # The signed-in user and Log out stay reachable on a phone.
        expect(page.get_by_test_id("logout")).to_be_visible()
