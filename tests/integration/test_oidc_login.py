"""Logging in through an institution's own OpenID provider (node-oidc-provider on loopback).

"Example Institute" (example-institute.edu) is an OpenID Connect provider registered with
``arctern idp create --oidc-issuer``. The flow is driven over HTTP with one cookie jar, as a
browser would: the tutorial's native-app authorize URL → Arctern's login page → the
provider's own login and consent forms → back to Arctern (code + PKCE exchanged, id_token
validated) → Arctern's consent → the code exchanged by the unmodified globus-sdk. Covered:
the identity ``<username>@<domain>`` provisioned on first login and found again; its tokens
on the Transfer API; a username claim of another domain refused; a callback with a forged
``state`` or none refused; the user cancelling at the provider; an unreachable provider; a
provider whose discovery document names another issuer; disabling the provider ends the
sessions and tokens of its users (``arctern idp disable``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_connect import wait_for
from tests.support import oidc_provider
from tests.support.auth_flow import (
    create_native_client,
    idp_value,
    native_auth_client,
    page_alert,
    page_form,
)
from tests.support.oidc_provider import OidcProvider
from tests.support.server import LiveServer, start_server

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        oidc_provider.available() is not None, reason=str(oidc_provider.available())
    ),
]

INSTITUTION = "Example Institute"
DOMAIN = "example-institute.edu"
SCOPES = ["openid", "profile", "email", "urn:globus:auth:scope:transfer.api.globus.org:all"]


@dataclass
class Site:
    server: LiveServer
    provider: OidcProvider
    client_id: str


def register(
    server: LiveServer, name: str, domain: str, issuer: str, secret: str, cid: str
) -> None:
    made = server.admin(
        "idp", "create", name, "--domain", domain, "--oidc-issuer", issuer,
        "--client-id", cid, "--client-secret-stdin",
        input=secret + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(
        tmp_path_factory.mktemp("oidc"),
        extra_args=_database_args(request),
        # The test provider speaks http on loopback; Authlib insists on https otherwise.
        extra_env={"AUTHLIB_INSECURE_TRANSPORT": "1"},
    )
    provider: OidcProvider | None = None
    try:
        provider = oidc_provider.start_provider(f"{server.url}/auth/login/oidc/callback")
        register(
            server, INSTITUTION, DOMAIN, provider.issuer, provider.client_secret, provider.client_id
        )
        yield Site(server, provider, create_native_client(server, name="OIDC Tutorial App"))
    finally:
        if provider is not None:
            provider.stop()
        server.stop()


class Browser:
    """One cookie jar across Arctern and the provider, following redirects by hand."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.http = httpx.Client(timeout=30)

    def close(self) -> None:
        self.http.close()

    def follow(self, response: httpx.Response) -> httpx.Response:
        while response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if urlsplit(target).path.endswith("/v2/web/auth-code"):
                return response
            response = self.http.get(target)
        return response

    def choose_institution(
        self, authorize_url: str, institution: str = INSTITUTION
    ) -> httpx.Response:
        """Open the authorize URL and pick the institution; the response that follows."""
        page = self.follow(self.http.get(authorize_url))
        assert page.url.path == "/auth/login", page.url
        _, hidden = page_form(page.text, 'name="idp"')
        form = {**hidden, "idp": idp_value(page.text, institution)}
        return self.http.post(urljoin(str(page.url), "/auth/login"), data=form)

    def at_provider(self, response: httpx.Response, login: str) -> httpx.Response:
        """Log in and consent on the provider's own pages; the response back at Arctern."""
        response = self.follow(response)
        for _ in range(4):
            if not response.url.host or str(response.url).startswith(self.site.server.url):
                return response
            action, hidden = page_form(response.text)
            form = dict(hidden)
            if hidden.get("prompt") == "login":
                form.update(login=login, password="anything")
            response = self.follow(self.http.post(urljoin(str(response.url), action), data=form))
        return response

    def consent(self, response: httpx.Response) -> str:
        """Allow on Arctern's consent page (unless consent was given before); the
        authorization code."""
        if not response.is_redirect:
            assert 'value="allow"' in response.text, page_alert(response.text)
            action, hidden = page_form(response.text, 'value="allow"')
            response = self.http.post(
                urljoin(str(response.url), action), data={**hidden, "decision": "allow"}
            )
        assert response.is_redirect, response.text[:500]
        code_page = self.http.get(urljoin(str(response.url), response.headers["location"]))
        match = re.search(r'data-testid="auth-code">([^<]+)<', code_page.text)
        assert match, code_page.text[:1000]
        return html.unescape(match.group(1)).strip()


def tutorial_login(site: Site, login: str) -> globus_sdk.OAuthTokenResponse:
    auth = native_auth_client(site.server, site.client_id)
    auth.oauth2_start_flow(SCOPES, refresh_tokens=True)
    browser = Browser(site)
    try:
        back = browser.at_provider(
            browser.choose_institution(auth.oauth2_get_authorize_url()), login
        )
        return auth.oauth2_exchange_code_for_tokens(browser.consent(back))
    finally:
        browser.close()


def test_a_user_logs_in_at_their_institution_and_uses_the_tokens(site: Site) -> None:
    tokens = tutorial_login(site, "alice")
    claims = tokens.decode_id_token()
    assert claims["preferred_username"] == f"alice@{DOMAIN}"
    assert claims["name"] == "Alice Tester" and claims["email"] == "alice@mail.example.edu"
    transfer = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(transfer),
        base_url=f"{site.server.url}/transfer/",
    )
    assert tc.task_list()["DATA"] == []  # a working token of a new, empty account
    auth = globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens.by_resource_server["auth.globus.org"]["access_token"]
        ),
        base_url=f"{site.server.url}/auth/",
    )
    assert auth.userinfo()["preferred_username"] == f"alice@{DOMAIN}"
    # The same person again: the same identity.
    assert tutorial_login(site, "alice").decode_id_token()["sub"] == claims["sub"]
    assert f"alice@{DOMAIN}" in site.server.admin("user", "list").stdout


def test_a_username_of_another_domain_is_refused(site: Site) -> None:
    auth = native_auth_client(site.server, site.client_id)
    auth.oauth2_start_flow(SCOPES)
    browser = Browser(site)
    try:
        back = browser.at_provider(
            browser.choose_institution(auth.oauth2_get_authorize_url()), "mallory@evil.example"
        )
    finally:
        browser.close()
    assert back.status_code == 400
    assert "not an account of example-institute.edu" in page_alert(back.text)
    assert "mallory" not in site.server.admin("user", "list").stdout


def test_forged_or_missing_state_is_refused(site: Site) -> None:
    auth = native_auth_client(site.server, site.client_id)
    auth.oauth2_start_flow(SCOPES)
    browser = Browser(site)
    try:
        to_provider = browser.choose_institution(auth.oauth2_get_authorize_url())
        assert to_provider.is_redirect
        sent = parse_qs(urlsplit(to_provider.headers["location"]).query)
        # PKCE, state and nonce are all asked of the provider.
        assert sent["code_challenge_method"] == ["S256"] and sent["state"] and sent["nonce"]
        callback = f"{site.server.url}/auth/login/oidc/callback"
        forged = browser.http.get(callback, params={"code": "stolen", "state": "forged"})
        assert forged.status_code == 400
        assert "not accepted" in page_alert(forged.text) or "did not start" in page_alert(
            forged.text
        )
        # The pending login is used up: the genuine answer cannot be replayed either.
        again = browser.http.get(callback, params={"code": "x", "state": sent["state"][0]})
        assert again.status_code == 400 and "did not start here" in page_alert(again.text)
    finally:
        browser.close()


def test_cancelling_at_the_provider_says_so(site: Site) -> None:
    auth = native_auth_client(site.server, site.client_id)
    auth.oauth2_start_flow(SCOPES)
    browser = Browser(site)
    try:
        login_page = browser.follow(browser.choose_institution(auth.oauth2_get_authorize_url()))
        abort = re.search(r'href="([^"]*/abort)"', login_page.text)
        assert abort, login_page.text[:1000]
        back = browser.follow(
            browser.http.get(urljoin(str(login_page.url), html.unescape(abort.group(1))))
        )
    finally:
        browser.close()
    assert back.status_code == 400 and back.url.path == "/auth/login/oidc/callback"
    assert f"{INSTITUTION} did not log you in" in page_alert(back.text)


def test_an_unreachable_or_misconfigured_provider_is_reported(site: Site) -> None:
    from tests.support.server import free_port

    register(
        site.server, "Offline University", "offline.edu", f"http://127.0.0.1:{free_port()}",
        "secret", "client",
    )  # fmt: skip
    # The same provider registered under another name for it: its discovery document names
    # its real issuer, so tokens it signs would not be this one's.
    register(
        site.server, "Impostor College", "impostor.edu",
        site.provider.issuer.replace("127.0.0.1", "localhost"),
        site.provider.client_secret, site.provider.client_id,
    )  # fmt: skip
    for institution, expected in (
        ("Offline University", "cannot be reached"),
        ("Impostor College", "names issuer"),
    ):
        auth = native_auth_client(site.server, site.client_id)
        auth.oauth2_start_flow(SCOPES)
        browser = Browser(site)
        try:
            page = browser.choose_institution(auth.oauth2_get_authorize_url(), institution)
        finally:
            browser.close()
        assert page.status_code == 503 and expected in page_alert(page.text), page_alert(page.text)


def test_disabling_the_provider_ends_its_users_tokens(site: Site) -> None:
    tokens = tutorial_login(site, "bob")
    transfer = tokens.by_resource_server["transfer.api.globus.org"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(transfer["access_token"]),
        base_url=f"{site.server.url}/transfer/",
    )
    tc.task_list()
    disabled = site.server.admin("idp", "disable", INSTITUTION)
    assert disabled.returncode == 0, disabled.stderr
    try:
        assert "(disabled)" in site.server.admin("idp", "list").stdout

        def refused() -> bool:
            # An admin command in another process: API processes on SQLite drop cached
            # tokens within token_cache_seconds (PostgreSQL announces it at once).
            try:
                tc.task_list()
            except globus_sdk.TransferAPIError as exc:
                assert exc.http_status == 401, exc
                return True
            return False

        wait_for(refused, "the disabled provider's token to be refused", timeout=60)
        refresh = native_auth_client(site.server, site.client_id)
        with pytest.raises(globus_sdk.AuthAPIError):
            refresh.oauth2_refresh_token(transfer["refresh_token"])
        page = httpx.get(f"{site.server.url}/auth/login")
        assert INSTITUTION not in page.text
    finally:
        assert site.server.admin("idp", "enable", INSTITUTION).returncode == 0
    assert tutorial_login(site, "bob").decode_id_token()["preferred_username"] == f"bob@{DOMAIN}"
