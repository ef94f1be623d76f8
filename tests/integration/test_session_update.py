"""Session requirements: ``globus session update``, required single domains, client scopes'
``required_domains``.

The researcher links bob@second.edu (logging in with it from /account, as a browser would).
Then the unmodified globus-cli logs in as the researcher and runs ``globus session update
bob@second.edu``: the login page asks for bob as well, the session keeps the researcher and
lists both authentications in ``globus session show``. A portal scope that requires the
second.edu domain sends the user back to log in with such an account; an identity outside
the user's set is refused, by the CLI and by the server.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_auth_globus_cli import GLOBUS, globus, globus_login
from tests.support.auth_flow import (
    create_confidential_client,
    create_native_client,
    idp_value,
    native_auth_client,
    native_tokens,
    page_alert,
    page_form,
)
from tests.support.server import DEMO_IDP, DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)
SECOND = "Second Institute"
BOB, BOB_PASSWORD = "bob@second.edu", "bob-password-123"
CAROL, CAROL_PASSWORD = "carol@example.edu", "carol-password-123"
Login = tuple[str, str, str]
RESEARCHER: Login = (DEMO_USERNAME, DEMO_PASSWORD, DEMO_IDP)
AS_BOB: Login = (BOB, BOB_PASSWORD, SECOND)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("sessions"), extra_args=_database_args(request))
    try:
        assert live.admin("idp", "create", SECOND, "--domain", "second.edu").returncode == 0
        for user, password, idp in ((BOB, BOB_PASSWORD, SECOND), (CAROL, CAROL_PASSWORD, DEMO_IDP)):
            made = live.admin(
                "user", "create", user, "--idp", idp, "--password-stdin", input=password + "\n"
            )
            assert made.returncode == 0, made.stderr
        _link_bob(live)
        yield live
    finally:
        live.stop()


def _log_in(http: httpx.Client, page: httpx.Response, who: Login) -> httpx.Response:
    user, password, idp = who
    form = {
        **page_form(page.text, 'action="/auth/login"')[1],
        "idp": idp_value(page.text, idp),
        "username": user,
        "password": password,
    }
    return http.post(urljoin(str(page.url), "/auth/login"), data=form, follow_redirects=True)


def _link_bob(server: LiveServer) -> None:
    with httpx.Client(timeout=30, follow_redirects=True) as http:
        account = _log_in(http, http.get(f"{server.url}/auth/login?next=/account"), RESEARCHER)
        started = http.post(
            f"{server.url}/account/link", data=page_form(account.text, "/account/link")[1]
        )
        linked = _log_in(http, started, AS_BOB)
        assert f"Linked {BOB} to {DEMO_USERNAME}." in linked.text, page_alert(linked.text)


def _notice(page: str) -> str | None:
    match = re.search(r'data-testid="login-notice">([^<]*)<', page)
    return html.unescape(match.group(1)).strip() if match else None


def _authorize(url: str, logins: list[Login]) -> tuple[httpx.URL, list[str | None]]:
    """A browser through the authorize flow: each login page gets the next of ``logins``;
    consent is allowed. Returns the final URL (auth-code page or redirect) and the notice
    each login page showed."""
    notices: list[str | None] = []
    with httpx.Client(timeout=30) as http:
        response = http.get(url)
        for _ in range(20):
            if response.is_redirect:
                target = httpx.URL(urljoin(str(response.url), response.headers["location"]))
                if not target.path.startswith("/auth/") or target.path.endswith("/auth-code"):
                    return target, notices
                response = http.get(target)
            elif response.url.path == "/auth/login":
                notices.append(_notice(response.text))
                if not logins:
                    raise AssertionError(f"a login page too many: {notices}")
                user, password, idp = logins.pop(0)
                form = {
                    **page_form(response.text, 'action="/auth/login"')[1],
                    "idp": idp_value(response.text, idp),
                    "username": user,
                    "password": password,
                }
                response = http.post(urljoin(str(response.url), "/auth/login"), data=form)
                assert response.is_redirect, page_alert(response.text)
            elif 'value="allow"' in response.text:
                action, hidden = page_form(response.text, 'value="allow"')
                response = http.post(
                    urljoin(str(response.url), action), data={**hidden, "decision": "allow"}
                )
            else:
                raise AssertionError(f"{response.status_code}: {page_alert(response.text)}")
    raise AssertionError("the flow did not end")


def _code(final: httpx.URL) -> str:
    if final.path.endswith("/auth-code"):
        page = httpx.get(final, timeout=30)
        match = re.search(r'data-testid="auth-code">([^<]+)<', page.text)
        assert match, page.text[:500]
        return html.unescape(match.group(1)).strip()
    return parse_qs(urlsplit(str(final)).query)["code"][0]


def _identity_id(server: LiveServer, username: str) -> str:
    auth = globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            native_tokens(server).by_resource_server["auth.globus.org"]["access_token"]
        ),
        base_url=f"{server.url}/auth/",
    )
    return str(auth.get_identities(usernames=[username])["identities"][0]["id"])


def test_globus_session_update_adds_a_linked_identity(server: LiveServer, tmp_path: Path) -> None:
    assert globus_login(server, tmp_path).returncode == 0
    before = json.loads(globus(server, tmp_path, "session", "show", "-F", "json").stdout)
    researcher_id = _identity_id(server, DEMO_USERNAME)
    bob_id = _identity_id(server, BOB)
    assert set(before["authentications"]) == {researcher_id}

    update = subprocess.Popen(
        [GLOBUS, "session", "update", BOB, "--no-local-server"],
        env=server.client_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert update.stdout is not None
    url = ""
    while not url.startswith("http"):
        line = update.stdout.readline()
        assert line, update.communicate()[1]
        url = line.strip()
    assert parse_qs(urlsplit(url).query)["session_required_identities"] == [bob_id]
    # A fresh browser: the researcher logs in, then is asked for bob as well.
    final, notices = _authorize(url, [RESEARCHER, AS_BOB])
    assert notices == [None, f"The application needs you to log in as {BOB} as well."]
    out, err = update.communicate(_code(final) + "\n", timeout=120)
    assert update.returncode == 0, out + err
    assert "successfully updated" in out

    after = json.loads(globus(server, tmp_path, "session", "show", "-F", "json").stdout)
    assert set(after["authentications"]) == {researcher_id, bob_id}
    table = globus(server, tmp_path, "session", "show").stdout
    assert DEMO_USERNAME in table and BOB in table
    # Still the researcher's session and tokens, with bob in the set.
    assert globus(server, tmp_path, "whoami").stdout.strip() == DEMO_USERNAME
    linked = globus(server, tmp_path, "whoami", "--linked-identities").stdout
    assert DEMO_USERNAME in linked and BOB in linked

    # Disabling bob ends what his login is part of: the researcher's CLI tokens from that
    # session stop working (other sessions of the researcher are not his).
    others = native_tokens(server).by_resource_server["auth.globus.org"]["access_token"]
    try:
        assert server.admin("user", "disable", BOB).returncode == 0
        # The server may trust a token it checked a moment ago for token_cache_seconds after
        # a change made by another process (the admin command): wait for the refusal.
        deadline = time.monotonic() + 60
        while (whoami := globus(server, tmp_path, "whoami")).returncode == 0:
            assert time.monotonic() < deadline, "the tokens of bob's session still work"
            time.sleep(0.5)
        assert "login" in (whoami.stdout + whoami.stderr).lower()
        still = globus_sdk.AuthClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(others), base_url=f"{server.url}/auth/"
        )
        assert still.userinfo()["preferred_username"] == DEMO_USERNAME
    finally:
        assert server.admin("user", "enable", BOB).returncode == 0


def test_an_identity_outside_the_set_is_refused(server: LiveServer, tmp_path: Path) -> None:
    assert globus_login(server, tmp_path).returncode == 0
    refused = globus(server, tmp_path, "session", "update", CAROL, "--no-local-server")
    assert refused.returncode == 1
    assert f"'{CAROL}' is not in your identity set" in refused.stderr
    # The server refuses it too, for a client that does not check first.
    app = create_native_client(server, name="Asks for carol")
    auth = native_auth_client(server, app)
    auth.oauth2_start_flow(["openid"])
    url = auth.oauth2_get_authorize_url(
        query_params={"session_required_identities": _identity_id(server, CAROL)}
    )
    with pytest.raises(AssertionError, match=r"403: .*not linked to yours"):
        _authorize(url, [RESEARCHER])
    bad = auth.oauth2_get_authorize_url(query_params={"session_required_identities": "carol"})
    with pytest.raises(AssertionError, match="must list identity ids"):
        _authorize(bad, [RESEARCHER])


def test_required_domains_send_the_user_to_such_an_account(server: LiveServer) -> None:
    # A portal whose scope needs a second.edu identity in the session.
    portal_id, secret = create_confidential_client(server, name="Second portal")
    portal = globus_sdk.AuthClient(
        authorizer=globus_sdk.BasicAuthorizer(portal_id, secret), base_url=f"{server.url}/auth/"
    )
    scope = portal.create_scope(
        portal_id,
        "Second portal",
        "Needs a second.edu account",
        "second",
        required_domains=["second.edu"],
    )["scope"]["scope_string"]
    app = create_native_client(server, name="Front end")
    auth = native_auth_client(server, app)
    auth.oauth2_start_flow(["openid", scope])
    final, notices = _authorize(auth.oauth2_get_authorize_url(), [RESEARCHER, AS_BOB])
    assert notices == [None, "The application needs you to log in with an account of second.edu."]
    tokens = auth.oauth2_exchange_code_for_tokens(_code(final))
    assert tokens.by_resource_server[portal_id]["scope"] == scope
    info = globus_sdk.ConfidentialAppAuthClient(
        portal_id, secret, base_url=f"{server.url}/auth/"
    ).oauth2_token_introspect(
        tokens.by_resource_server[portal_id]["access_token"], include="session_info"
    )
    assert info["username"] == DEMO_USERNAME
    assert {uuid.UUID(k) for k in info["session_info"]["authentications"]} == {
        uuid.UUID(_identity_id(server, DEMO_USERNAME)),
        uuid.UUID(_identity_id(server, BOB)),
    }

    # session_required_single_domain on a plain request: the same, and logging in with bob
    # first is enough (bob's login is the researcher's account, as with Globus).
    auth.oauth2_start_flow(["openid"])
    url = auth.oauth2_get_authorize_url(
        query_params={"session_required_single_domain": "second.edu"}
    )
    final, notices = _authorize(url, [AS_BOB])
    claims = auth.oauth2_exchange_code_for_tokens(_code(final)).decode_id_token()
    assert notices == [None] and claims["preferred_username"] == DEMO_USERNAME


def test_get_identities_without_arguments_is_the_callers_set(server: LiveServer) -> None:
    auth = globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            native_tokens(server).by_resource_server["auth.globus.org"]["access_token"]
        ),
        base_url=f"{server.url}/auth/",
    )
    assert {i["username"] for i in auth.get_identities()["identities"]} == {DEMO_USERNAME, BOB}
    carol = globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            native_tokens(server, CAROL, CAROL_PASSWORD).by_resource_server["auth.globus.org"][
                "access_token"
            ]
        ),
        base_url=f"{server.url}/auth/",
    )
    assert [i["username"] for i in carol.get_identities()["identities"]] == [CAROL]
