"""The developer console in a real browser: register apps, then use them with globus-sdk."""

from __future__ import annotations

import os
import re
from pathlib import Path

import globus_sdk
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import log_in
from tests.support.server import LiveServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
# Every run writes build/; the committed image in docs/ (used by the tutorial notebook) is only
# refreshed on request, so a test run never leaves the work tree modified.
SCREENSHOT = ROOT / "build" / "screenshots" / "developers-app.png"
DOCS_SCREENSHOT = ROOT / "docs" / "images" / "developers-app.png"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SCOPES = "openid profile email urn:globus:auth:scope:transfer.api.globus.org:all"


def create_project(page: Page, name: str) -> None:
    page.click("a:has-text('Create a project')")
    page.fill("#name", name)
    page.fill("#email", "researcher@example.edu")
    page.click("button:has-text('Create project')")
    expect(page.locator("h1")).to_have_text(name)


def add_app(page: Page, name: str, *, native: bool, redirect: str | None = None) -> str:
    page.click("a.button:has-text('Add app')")
    page.check(f"[data-testid=type-{'native' if native else 'confidential'}] input")
    page.fill("#name", name)
    if redirect is not None:
        page.fill("#redirect_uris", redirect)
    page.click("button:has-text('Create app')")
    client_id = page.inner_text("[data-testid=client-id]").strip()
    assert UUID.match(client_id), client_id
    return client_id


def sdk_environment(monkeypatch: pytest.MonkeyPatch, server: LiveServer) -> None:
    """Point the unmodified SDK at the server, only through its environment variables."""
    monkeypatch.setenv("GLOBUS_SDK_ENVIRONMENT", "arctern")
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", f"{server.url}/auth/")
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", f"{server.url}/transfer/")


def test_native_app_registered_in_browser_works_with_globus_sdk(
    page: Page, browser: Browser, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The console needs a login and comes back to itself afterwards.
    page.goto(f"{server.url}/developers")
    assert "/auth/login" in page.url and "next=%2Fdevelopers" in page.url
    log_in(page)
    expect(page.locator("h1")).to_have_text("Developers")

    create_project(page, "Tutorial project")
    page.click("a.button:has-text('Add app')")
    # Native app is the default, with the auth-code page as redirect URI.
    expect(page.locator("[data-testid=type-native] input")).to_be_checked()
    expect(page.locator("#redirect_uris")).to_have_value(f"{server.url}/auth/v2/web/auth-code")
    page.fill("#name", "Tutorial notebook")
    page.click("button:has-text('Create app')")

    client_id = page.inner_text("[data-testid=client-id]").strip()
    assert UUID.match(client_id)
    expect(page.locator("[data-testid=app-type]")).to_have_text("Native app")
    expect(page.locator("[data-testid=redirect-uris]")).to_contain_text("/auth/v2/web/auth-code")
    expect(page.locator("[data-testid=sdk-snippet]")).to_contain_text(client_id)
    expect(page.locator("#export-lines")).to_contain_text(
        f"GLOBUS_SDK_SERVICE_URL_AUTH={server.url}/auth/"
    )
    expect(page.locator("[data-testid=client-secret]")).to_have_count(0)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    if os.environ.get("ARCTERN_UPDATE_DOCS_IMAGES") == "1":
        DOCS_SCREENSHOT.write_bytes(SCREENSHOT.read_bytes())

    # The app is listed on the console's front page.
    page.click(".breadcrumb a:has-text('Developers')")
    project = page.locator("[data-testid=project]", has_text="Tutorial project")
    expect(project).to_contain_text("Tutorial notebook")
    expect(project).to_contain_text(client_id)

    sdk_environment(monkeypatch, server)
    client = globus_sdk.NativeAppAuthClient(client_id)
    client.oauth2_start_flow(requested_scopes=SCOPES, refresh_tokens=True)
    authorize_url = client.oauth2_get_authorize_url()

    # A fresh browser (as on the user's laptop) opens the link, logs in and allows.
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(authorize_url)
        log_in(tab)
        tab.click("button:has-text('Allow')")
        code = tab.inner_text("[data-testid=auth-code]").strip()
    finally:
        context.close()

    tokens = client.oauth2_exchange_code_for_tokens(code)
    by_rs = tokens.by_resource_server
    assert by_rs["auth.globus.org"]["access_token"]
    assert by_rs["transfer.api.globus.org"]["access_token"]
    assert by_rs["transfer.api.globus.org"]["refresh_token"]

    transfer = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            by_rs["transfer.api.globus.org"]["access_token"]
        )
    )
    names = {ep["display_name"] for ep in transfer.endpoint_search(filter_scope="all")}
    assert "Demo Collection 1" in names


def test_confidential_app_secret_shown_once(
    page: Page, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    page.goto(f"{server.url}/developers")
    log_in(page)
    create_project(page, "Portal project")
    client_id = add_app(
        page, "Lab portal", native=False, redirect="https://portal.example.edu/callback"
    )
    expect(page.locator("[data-testid=app-type]")).to_have_text("Portal / server app")
    secret = page.inner_text("[data-testid=client-secret]").strip()
    assert len(secret) >= 32

    # The secret works with the SDK's confidential client (client credentials grant).
    sdk_environment(monkeypatch, server)
    auth = globus_sdk.ConfidentialAppAuthClient(client_id, secret)
    response = auth.oauth2_client_credentials_tokens(
        requested_scopes="urn:globus:auth:scope:transfer.api.globus.org:all"
    )
    assert response.by_resource_server["transfer.api.globus.org"]["access_token"]

    # Reloading the page (or coming back later) never shows it again.
    page.reload()
    expect(page.locator("[data-testid=client-id]")).to_have_text(client_id)
    expect(page.locator("[data-testid=client-secret]")).to_have_count(0)
    assert secret not in page.content()

    # A new secret is shown once too, and differs from the first.
    page.click("button:has-text('Generate new client secret')")
    second = page.inner_text("[data-testid=client-secret]").strip()
    assert second and second != secret
    # The answer to the POST renames its history entry to the app's plain address (a script,
    # run once the page has loaded): coming back there shows no secret.
    page.wait_for_url(re.compile(rf"/apps/{client_id}$"))
    page.goto(page.url)
    expect(page.locator("[data-testid=client-secret]")).to_have_count(0)
    expect(page.locator("text=2 active")).to_be_visible()

    # Deleting the app removes it from the project.
    page.click("button:has-text('Delete app')")
    expect(page.locator("[data-testid=notice]")).to_contain_text("deleted")
    expect(page.locator("[data-testid=app-row]")).to_have_count(0)


def test_project_form_shows_errors_next_to_fields(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/developers/projects/new")
    log_in(page)
    page.fill("#name", "")
    page.fill("#email", "not-an-email")
    page.click("button:has-text('Create project')")
    expect(page.locator("[data-testid=error-name]")).to_contain_text("Enter a project name")
    expect(page.locator("[data-testid=error-email]")).to_contain_text("valid email")
    expect(page.locator("#email")).to_have_value("not-an-email")
