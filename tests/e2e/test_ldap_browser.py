"""The tutorial with a campus directory account (OpenLDAP's slapd on loopback), in Chromium.

The notebook's login link opens Arctern's login page; the researcher chooses "Campus
Directory" and types the directory password (checked by a bind, never stored); the app's
consent and the code; the unmodified globus-sdk exchanges it, and the new identity runs a
transfer in a folder the demo owner shared with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support import slapd
from tests.support.auth_flow import create_native_client, native_auth_client
from tests.support.server import LiveServer, start_server
from tests.support.tutorial import transfer_in_a_shared_folder

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(slapd.available() is not None, reason=str(slapd.available())),
]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = slapd.start_slapd(
        Path(tmp_path_factory.mktemp("slapd")), {"jdoe": ("Jane Doe", PASSWORD)}
    )
    server = start_server(tmp_path_factory.mktemp("ldap-browser"))
    try:
        made = server.admin(
            "idp", "create", "Campus Directory", "--domain", "campus.edu",
            "--ldap", directory.url,
            "--user-dn-template", f"uid={{username}},ou=people,{slapd.SUFFIX}",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        yield server
    finally:
        server.stop()
        directory.stop()


def test_tutorial_with_a_directory_account(page: Page, campus: LiveServer) -> None:
    auth = native_auth_client(campus, create_native_client(campus, name="Campus Tutorial"))
    auth.oauth2_start_flow(
        ["openid", "profile", "email", "urn:globus:auth:scope:transfer.api.globus.org:all"]
    )
    page.goto(auth.oauth2_get_authorize_url())
    page.select_option("select#idp", label="Campus Directory")
    page.fill("#username", "jdoe")
    page.fill("#password", "not the password")
    page.click("button:has-text('Log in')")
    expect(page.get_by_role("alert")).to_contain_text("Incorrect username or password")

    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page.locator("h1")).to_have_text("Allow Campus Tutorial?")
    page.get_by_role("button", name="Allow").click()
    code = page.get_by_test_id("auth-code")
    expect(code).to_be_visible()
    tokens = auth.oauth2_exchange_code_for_tokens(code.inner_text().strip())
    claims = tokens.decode_id_token()
    assert claims["preferred_username"] == "jdoe@campus.edu" and claims["name"] == "Jane Doe"
    transfer_in_a_shared_folder(campus, tokens)
