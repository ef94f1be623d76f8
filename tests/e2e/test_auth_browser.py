"""The SDK's native-app login in a real browser: login page → consent → auth-code page."""

from __future__ import annotations

import globus_sdk
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.support.auth_flow import create_native_client, native_auth_client
from tests.support.server import DEMO_USERNAME, LiveServer

pytestmark = pytest.mark.browser


def test_native_app_login_in_browser(page: Page, server: LiveServer) -> None:
    client_id = create_native_client(server, name="Browser Tutorial App")
    auth = native_auth_client(server, client_id)
    auth.oauth2_start_flow(
        ["openid", "profile", "email", "urn:globus:auth:scope:transfer.api.globus.org:all"]
    )
    page.goto(auth.oauth2_get_authorize_url())

    expect(page.get_by_label("Institution")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    log_in(page)

    expect(page.locator("h1")).to_have_text("Allow Browser Tutorial App?")
    expect(page.get_by_text("Transfer files and manage your collections")).to_be_visible()
    page.get_by_role("button", name="Allow").click()

    code_box = page.get_by_test_id("auth-code")
    expect(code_box).to_be_visible()
    expect(page.get_by_text("valid for 10 minutes")).to_be_visible()
    page.get_by_role("button", name="Copy the authorization code").click()
    expect(page.locator("#copy-code")).to_have_text("Copied")

    tokens = auth.oauth2_exchange_code_for_tokens(code_box.inner_text().strip())
    assert tokens.decode_id_token()["preferred_username"] == DEMO_USERNAME
    assert isinstance(tokens, globus_sdk.OAuthTokenResponse)
