"""The tutorial with an account from the institution's own OpenID provider, in Chromium.

The notebook's native-app login link opens Arctern's login page; choosing "Example
Institute" (an OpenID Connect provider: node-oidc-provider on loopback) hides the password
fields and sends the browser to the institution's own sign-in and consent pages; back at
Arctern, the app's consent and the 10-minute code; the unmodified globus-sdk exchanges it
and the new identity runs a transfer in a folder the demo owner shared with it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.integration.test_oidc_login import DOMAIN, INSTITUTION, SCOPES, register
from tests.support import oidc_provider
from tests.support.auth_flow import create_native_client, native_auth_client
from tests.support.server import DEMO_IDP, DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server
from tests.support.tutorial import transfer_in_a_shared_folder

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        oidc_provider.available() is not None, reason=str(oidc_provider.available())
    ),
]


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("oidc-browser"), extra_env={"AUTHLIB_INSECURE_TRANSPORT": "1"}
    )
    provider = None
    try:
        provider = oidc_provider.start_provider(f"{server.url}/auth/login/oidc/callback")
        register(
            server, INSTITUTION, DOMAIN, provider.issuer, provider.client_secret, provider.client_id
        )
        yield server
    finally:
        if provider is not None:
            provider.stop()
        server.stop()


def test_tutorial_with_an_institution_account(page: Page, federated: LiveServer) -> None:
    server = federated
    auth = native_auth_client(server, create_native_client(server, name="Federated Tutorial"))
    auth.oauth2_start_flow(SCOPES)
    page.goto(auth.oauth2_get_authorize_url())

    page.select_option("select#idp", label=INSTITUTION)
    expect(page.get_by_label("Password")).to_be_hidden()
    expect(page.get_by_text("You will log in on your institution's own page")).to_be_visible()
    page.click("button:has-text('Log in')")

    # The institution's own pages (node-oidc-provider's sign-in and consent forms).
    page.wait_for_url(lambda url: not url.startswith(server.url))
    page.fill("input[name=login]", "carol")
    page.fill("input[name=password]", "her institution password")
    page.click("button:has-text('Sign-in')")
    page.click("button:has-text('Continue')")

    # Back at Arctern: the app's consent, then the code.
    expect(page.locator("h1")).to_have_text("Allow Federated Tutorial?")
    page.get_by_role("button", name="Allow").click()
    code = page.get_by_test_id("auth-code")
    expect(code).to_be_visible()
    tokens = auth.oauth2_exchange_code_for_tokens(code.inner_text().strip())
    claims = tokens.decode_id_token()
    assert claims["preferred_username"] == f"carol@{DOMAIN}"

    # The demo owner shares a folder with the new identity; it copies a file there.
    transfer_in_a_shared_folder(server, tokens)


def _institution_login(page: Page, name: str) -> None:
    """Through the institution's own pages (its session may skip the sign-in form) back to
    an Arctern page with someone logged in."""
    sign_in = page.locator("input[name=login]")
    consent = page.locator("button:has-text('Continue')")
    back = page.get_by_test_id("current-user")
    expect(sign_in.or_(consent).or_(back)).to_be_visible()
    if sign_in.is_visible():
        sign_in.fill(name)
        page.fill("input[name=password]", "her institution password")
        page.click("button:has-text('Sign-in')")
        expect(consent.or_(back)).to_be_visible()
    if consent.is_visible():
        consent.click()
    expect(back).to_be_visible()


def test_linking_an_institution_account_and_a_session_update(
    page: Page, federated: LiveServer
) -> None:
    server = federated
    dave = f"dave@{DOMAIN}"
    page.goto(f"{server.url}/auth/login?next=/account")
    page.select_option("select#idp", label=DEMO_IDP)
    page.fill("#username", DEMO_USERNAME)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.get_by_test_id("link-identity").click()
    page.select_option("select#idp", label=INSTITUTION)
    page.click("button:has-text('Log in')")
    _institution_login(page, "dave")

    expect(page.get_by_role("status").or_(page.locator(".alert"))).to_contain_text(
        f"Linked {dave} to {DEMO_USERNAME}."
    )
    rows = page.get_by_test_id("identity-row")
    expect(rows).to_have_count(2)
    # Both logged in during this session; the researcher stays the primary identity.
    expect(page.get_by_test_id("session-auth").filter(has_text="logged in")).to_have_count(2)
    expect(rows.filter(has_text=DEMO_USERNAME)).to_contain_text("primary")

    # Logging in with the institution account alone is logging in to the researcher's
    # account, with only dave in the session.
    page.get_by_test_id("logout").click()
    page.goto(f"{server.url}/auth/login?next=/account")
    page.select_option("select#idp", label=INSTITUTION)
    page.click("button:has-text('Log in')")
    _institution_login(page, "dave")
    expect(page.get_by_test_id("current-user")).to_have_text(DEMO_USERNAME)
    expect(page.get_by_test_id("session-auth").filter(has_text="logged in")).to_have_count(1)

    # An app that needs an example.edu identity in the session: the login page says so and
    # has the researcher's institution chosen; after the password, the code.
    auth = native_auth_client(server, create_native_client(server, name="Needs example.edu"))
    auth.oauth2_start_flow(["openid", "profile"])
    page.goto(
        auth.oauth2_get_authorize_url(
            query_params={"session_required_single_domain": "example.edu"}
        )
    )
    expect(page.get_by_test_id("login-notice")).to_have_text(
        "The application needs you to log in with an account of example.edu."
    )
    expect(page.locator("select#idp option:checked")).to_have_text(DEMO_IDP)
    page.fill("#username", DEMO_USERNAME)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button:has-text('Log in')")
    page.get_by_role("button", name="Allow").click()
    code = page.get_by_test_id("auth-code")
    expect(code).to_be_visible()
    claims = auth.oauth2_exchange_code_for_tokens(code.inner_text().strip()).decode_id_token()
    assert claims["preferred_username"] == DEMO_USERNAME
    assert {m["username"] for m in claims["identity_set"]} == {DEMO_USERNAME, dave}
    page.goto(f"{server.url}/account")
    expect(page.get_by_test_id("session-auth").filter(has_text="logged in")).to_have_count(2)
