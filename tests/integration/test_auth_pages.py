"""Login, consent and auth-code pages over HTTP: forms, CSRF, redirects, throttling, code expiry."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import globus_sdk
import httpx
import pytest

from tests.support.auth_flow import (
    authorize_over_http,
    create_native_client,
    ensure_user,
    native_auth_client,
)
from tests.support.server import DEMO_IDP, DEMO_PASSWORD, DEMO_USERNAME, LiveServer

TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"


def login_form(client: httpx.Client, server: LiveServer, next_url: str = "/") -> dict[str, str]:
    page = client.get(f"{server.url}/auth/login", params={"next": next_url})
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    idp = re.search(rf'<option value="([^"]+)"[^>]*>{DEMO_IDP}</option>', page.text)
    assert csrf and idp
    hidden_next = re.search(r'name="next" value="([^"]*)"', page.text)
    return {
        "csrf_token": csrf.group(1),
        "idp": idp.group(1),
        "next": hidden_next.group(1) if hidden_next else "/",
    }


def post_login(
    client: httpx.Client, server: LiveServer, password: str = DEMO_PASSWORD, **overrides: str
) -> httpx.Response:
    form = login_form(client, server, overrides.pop("next", "/"))
    form.update(username=DEMO_USERNAME, password=password)
    form.update(overrides)
    return client.post(f"{server.url}/auth/login", data=form)


def test_login_page_is_accessible(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/auth/login")
    assert page.status_code == 200
    html = page.text
    for field, label in (
        ("idp", "Institution"),
        ("username", "Username"),
        ("password", "Password"),
    ):
        assert f'<label for="{field}">{label}</label>' in html
        assert f'id="{field}"' in html
    assert re.search(r"<select id=\"idp\"", html)
    assert DEMO_IDP in html
    assert '<button type="submit">Log in</button>' in html


def test_standalone_login_sets_session_and_redirects_to_next(server: LiveServer) -> None:
    with httpx.Client() as client:
        response = post_login(client, server, next="/developers")
        assert response.status_code == 303
        assert response.headers["location"] == "/developers"
        cookie = response.headers["set-cookie"].lower()
        assert "arctern_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


@pytest.mark.parametrize(
    "target",
    ["//evil.example.com/x", "https://evil.example.com/", "javascript:alert(1)", "/\\evil"],
)
def test_login_never_redirects_off_site(server: LiveServer, target: str) -> None:
    with httpx.Client() as client:
        response = post_login(client, server, next=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_wrong_password_and_missing_csrf(server: LiveServer) -> None:
    with httpx.Client() as client:
        wrong = post_login(client, server, password="not the password")
        assert wrong.status_code == 401
        assert "Incorrect username or password." in wrong.text
        assert DEMO_USERNAME in wrong.text  # the form keeps the username
        forged = post_login(client, server, csrf_token="forged")
        assert forged.status_code == 403
        assert "expired" in forged.text


def test_login_attempts_are_throttled(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory(demo=False, extra_env={"ARCTERN_LOGIN_ATTEMPTS_PER_MINUTE": "3"})
    ensure_user(live)
    with httpx.Client() as client:
        for _ in range(3):
            assert post_login(client, live, password="guess").status_code == 401
        blocked = post_login(client, live)  # even the right password waits
        assert blocked.status_code == 429
        assert "Too many failed login attempts" in blocked.text
        live.set_clock_offset(61)
        assert post_login(client, live).status_code == 303


def test_codes_expire_after_ten_minutes(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory(demo=False)
    ensure_user(live)
    client_id = create_native_client(live)
    auth = native_auth_client(live, client_id)
    auth.oauth2_start_flow(["openid", TRANSFER_SCOPE], refresh_tokens=True)
    fresh = authorize_over_http(
        live.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
    )
    tokens = auth.oauth2_exchange_code_for_tokens(fresh).by_resource_server["auth.globus.org"]
    code = authorize_over_http(
        live.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
    )
    live.set_clock_offset(601)
    with pytest.raises(globus_sdk.AuthAPIError) as expired:
        auth.oauth2_exchange_code_for_tokens(code)
    assert expired.value.http_status == 400
    assert expired.value.raw_json["error"] == "invalid_grant"
    said = expired.value.raw_json["error_description"]
    assert re.fullmatch(
        r"This authorization code expired at \d\d:\d\d UTC; codes last 10 minutes\. "
        r"Log in again for a new code\.",
        said,
    ), said

    # Two days later the access token has expired, but its refresh token still works.
    live.set_clock_offset(48 * 3600 + 1)
    userinfo = f"{live.url}/auth/v2/oauth2/userinfo"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(userinfo, headers=bearer).status_code == 401
    renewed = auth.oauth2_refresh_token(tokens["refresh_token"])
    bearer = {"Authorization": f"Bearer {renewed['access_token']}"}
    assert httpx.get(userinfo, headers=bearer).status_code == 200


def test_consent_page_and_prompt_login(server: LiveServer) -> None:
    client_id = create_native_client(server, name="Consent Test App")
    auth = native_auth_client(server, client_id)
    auth.oauth2_start_flow(["openid", "email", TRANSFER_SCOPE])
    url = auth.oauth2_get_authorize_url()
    with httpx.Client() as client:
        first = client.get(url)
        assert first.status_code == 303
        assert first.headers["location"].startswith("/auth/login?next=")
        login = post_login(client, server)
        assert login.status_code == 303
        consent = client.get(url)
        assert consent.status_code == 200
        assert "Allow Consent Test App?" in consent.text
        assert "Transfer files and manage your collections" in consent.text
        assert "View your email address" in consent.text
        assert 'value="allow">Allow</button>' in consent.text
        assert 'value="deny" class="secondary">Deny</button>' in consent.text

        # prompt=login asks for the password again even with a live session.
        forced = client.get(url + "&prompt=login")
        assert forced.status_code == 303
        next_url = parse_qs(urlsplit(forced.headers["location"]).query)["next"][0]
        assert "prompt" not in next_url
        # Consent posts need the session's CSRF token.
        action = re.search(r'<form method="post" action="([^"]+)"', consent.text)
        assert action
        forged = client.post(
            f"{server.url}{action.group(1).replace('&amp;', '&')}", data={"decision": "allow"}
        )
        assert forged.status_code == 403


def test_consent_marks_services_this_server_does_not_run(server: LiveServer) -> None:
    """globus-cli's login asks for Search and Flows too: granted (so the CLI keeps working)
    but marked on the consent page, while Transfer, Groups and Timers are not marked."""
    client_id = create_native_client(server, name="Many Services App")
    auth = native_auth_client(server, client_id)
    search = "urn:globus:auth:scope:search.api.globus.org:all"
    timer = "https://auth.globus.org/scopes/524230d7-ea86-4a52-8312-86065a9e0417/timer"
    flows = "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/manage_flows"
    groups = "urn:globus:auth:scope:groups.api.globus.org:all"
    auth.oauth2_start_flow(["openid", TRANSFER_SCOPE, groups, search, timer, flows])
    url = auth.oauth2_get_authorize_url()
    with httpx.Client() as client:
        client.get(url)
        assert post_login(client, server).status_code == 303
        consent = client.get(url)
    assert consent.status_code == 200, consent.text
    items = re.findall(r"<li( class=\"unavailable\")?>(.*?)</li>", consent.text, re.S)
    marked = {scope for scope in (search, timer, flows, groups, TRANSFER_SCOPE, "openid")
              for cls, body in items if cls and f"<code>{scope}</code>" in body}  # fmt: skip
    assert marked == {search, flows}, items
    assert consent.text.count("not available on this server</span>") == 2
    assert "not run by this deployment" in consent.text


def test_auth_code_page(server: LiveServer) -> None:
    auth = native_auth_client(server, create_native_client(server, name="Code Page App"))
    auth.oauth2_start_flow([TRANSFER_SCOPE])
    code = authorize_over_http(
        server.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
    )
    page = httpx.get(f"{server.url}/auth/v2/web/auth-code", params={"code": code, "state": "s"})
    assert page.status_code == 200
    assert f'data-testid="auth-code">{code}<' in page.text
    assert "10 minutes" in page.text
    assert "Copy" in page.text
    failed = httpx.get(
        f"{server.url}/auth/v2/web/auth-code",
        params={"error": "access_denied", "error_description": "The user denied access"},
    )
    assert failed.status_code == 400
    # A fixed text for the error code: the description comes from the URL, i.e. anyone.
    assert "You did not allow the application access." in failed.text
    assert "The user denied access" not in failed.text


def test_unknown_client_gets_an_error_page(server: LiveServer) -> None:
    page = httpx.get(
        f"{server.url}/auth/v2/oauth2/authorize",
        params={"client_id": "not-a-client", "response_type": "code", "scope": TRANSFER_SCOPE},
    )
    assert page.status_code == 400
    assert "text/html" in page.headers["content-type"]
    assert "does not exist" in page.text
