"""Drive the real login + consent pages over HTTP, so tests get authorization codes and tokens.

Helpers (all talk to a live server; none reaches into the database):

``authorize_over_http(server_url, authorize_url, username, password, idp_name=DEMO_IDP,
decision="allow") -> str``
    Opens ``authorize_url`` with a cookie-keeping httpx client, submits the login form
    (Institution/Username/Password + CSRF token) and the consent form (Allow or Deny), then
    follows to the ``/v2/web/auth-code`` page or stops at the loopback redirect, and returns
    the code. Raises ``AuthFlowError`` (with the page text / OAuth error) when something else
    happens, e.g. a wrong password or an ``error=`` redirect.

``authorize_redirect(...) -> httpx.URL``
    Same flow, but returns the final redirect URL (for tests that expect ``error=...``).

``create_native_client(server, name="Test App", owner=DEMO_USERNAME, redirect_uris=()) -> str``
    Registers a native app with ``arctern client create`` and returns its client id.

``create_confidential_client(server, ...) -> tuple[str, str]``
    Registers a confidential app; returns (client_id, client_secret).

``native_tokens(server, username=DEMO_USERNAME, password=DEMO_PASSWORD, scopes=None,
client_id=None, refresh_tokens=True, idp_name=DEMO_IDP) -> OAuthTokenResponse``
    The whole native-app flow through the unmodified globus-sdk: creates a native client (unless
    ``client_id`` is given), ``NativeAppAuthClient(base_url=<server>/auth/)``,
    ``oauth2_start_flow(scopes, refresh_tokens=...)``, ``authorize_over_http`` on the SDK's
    authorize URL, ``oauth2_exchange_code_for_tokens``. Default scopes: openid profile email
    and ``urn:globus:auth:scope:transfer.api.globus.org:all``. No environment variables are
    needed (the client gets an explicit base_url); the response's ``by_resource_server`` holds
    ``auth.globus.org`` and ``transfer.api.globus.org`` tokens. To refresh, pass your own
    ``client_id`` (from ``create_native_client``) and build a ``RefreshTokenAuthorizer`` with
    ``native_auth_client(server, client_id)``.

``python -m tests.support.auth_flow URL``
    Acts as the web browser (set ``BROWSER``) for ``globus login``'s default local-server flow.

``ensure_user(server, username=DEMO_USERNAME, password=DEMO_PASSWORD, idp_name=DEMO_IDP)``
    Creates the institution and user with admin commands (for ``server_factory(demo=False)``).
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import globus_sdk
import httpx

from tests.support.server import DEMO_IDP, DEMO_PASSWORD, DEMO_USERNAME, LiveServer

DEFAULT_SCOPES = [
    "openid",
    "profile",
    "email",
    "urn:globus:auth:scope:transfer.api.globus.org:all",
]


class AuthFlowError(AssertionError):
    """The browser flow did not end with an authorization code."""


def _hidden(page: str, name: str) -> str | None:
    match = re.search(rf'name="{name}"\s+value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else None


def _form_action(page: str) -> str:
    match = re.search(r'<form method="post" action="([^"]*)"', page)
    if not match:
        raise AuthFlowError(f"no form on page:\n{page[:2000]}")
    return html.unescape(match.group(1))


def idp_value(page: str, idp_name: str) -> str:
    """The login page's Institution option value for ``idp_name``."""
    for value, label in re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', page):
        if html.unescape(label).strip() == idp_name:
            return value
    raise AuthFlowError(f"institution {idp_name!r} not offered on the login page")


def page_alert(page: str) -> str:
    """The text of the page's error alert (or the page's start, when it has none)."""
    match = re.search(r'role="alert"[^>]*>(.*?)</div>', page, re.S)
    return html.unescape(match.group(1)).strip() if match else page[:500]


def page_form(page: str, containing: str = "") -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the first form on the page whose markup holds
    ``containing`` (e.g. ``'action="/account/link"'`` or ``'value="allow"'``)."""
    for match in re.finditer(r'<form[^>]*action="([^"]*)"[^>]*>.*?</form>', page, re.S):
        if containing in match.group(0):
            hidden = re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)"', match.group(0)
            )
            return html.unescape(match.group(1)), {k: html.unescape(v) for k, v in hidden}
    raise AuthFlowError(f"no form with {containing!r}: {page[:2000]}")


def authorize_redirect(
    server_url: str,
    authorize_url: str,
    username: str,
    password: str,
    idp_name: str = DEMO_IDP,
    *,
    decision: str = "allow",
    client: httpx.Client | None = None,
) -> httpx.URL:
    """Run login + consent; return the URL the server finally redirects the browser to."""
    own = client is None
    http = client or httpx.Client(timeout=30)
    try:
        url = httpx.URL(authorize_url)
        response = http.get(url)
        logged_in = False
        consented = False
        for _ in range(10):
            if response.is_redirect:
                target = httpx.URL(urljoin(str(response.url), response.headers["location"]))
                if (
                    not target.path.startswith("/auth/")
                    or target.host != response.url.host
                    or (target.port != response.url.port)
                ):
                    return target  # left the auth service: the client's redirect URI
                if target.path.endswith("/v2/web/auth-code"):
                    return target
                response = http.get(target)
                continue
            page = response.text
            if response.url.path == "/auth/login" and not logged_in:
                form = {
                    "csrf_token": _hidden(page, "csrf_token") or "",
                    "next": _hidden(page, "next") or "/",
                    "idp": idp_value(page, idp_name),
                    "username": username,
                    "password": password,
                }
                response = http.post(urljoin(str(response.url), "/auth/login"), data=form)
                if not response.is_redirect:
                    raise AuthFlowError(
                        f"login failed ({response.status_code}): {page_alert(response.text)}"
                    )
                logged_in = True
                continue
            if 'value="allow"' in page and not consented:
                action = urljoin(str(response.url), _form_action(page))
                form = {"csrf_token": _hidden(page, "csrf_token") or "", "decision": decision}
                response = http.post(action, data=form)
                consented = True
                continue
            raise AuthFlowError(
                f"unexpected page {response.url} ({response.status_code}): {page_alert(page)}"
            )
        raise AuthFlowError("too many steps in the authorize flow")
    finally:
        if own:
            http.close()


def authorize_over_http(
    server_url: str,
    authorize_url: str,
    username: str,
    password: str,
    idp_name: str = DEMO_IDP,
    *,
    client: httpx.Client | None = None,
) -> str:
    """Log in, allow, and return the authorization code (from the auth-code page or redirect)."""
    target = authorize_redirect(
        server_url, authorize_url, username, password, idp_name, client=client
    )
    params = parse_qs(urlsplit(str(target)).query)
    if "error" in params:
        raise AuthFlowError(
            f"authorize failed: {params['error'][0]}: {params.get('error_description', [''])[0]}"
        )
    if target.path.endswith("/v2/web/auth-code"):
        page = httpx.get(target, timeout=30, follow_redirects=True)
        match = re.search(r'data-testid="auth-code">([^<]+)<', page.text)
        if page.status_code != 200 or not match:
            raise AuthFlowError(f"auth-code page without a code: {page.text[:1000]}")
        return html.unescape(match.group(1)).strip()
    if "code" not in params:
        raise AuthFlowError(f"redirect without a code: {target}")
    return params["code"][0]


def create_native_client(
    server: LiveServer,
    name: str = "Test App",
    owner: str = DEMO_USERNAME,
    redirect_uris: tuple[str, ...] = (),
) -> str:
    args = ["client", "create", name, "--native", "--owner", owner]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    result = server.admin(*args)
    assert result.returncode == 0, result.stderr
    return _field(result.stdout, "client_id")


def create_confidential_client(
    server: LiveServer,
    name: str = "Test Service",
    owner: str = DEMO_USERNAME,
    redirect_uris: tuple[str, ...] = (),
) -> tuple[str, str]:
    args = ["client", "create", name, "--confidential", "--owner", owner]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    result = server.admin(*args)
    assert result.returncode == 0, result.stderr
    return _field(result.stdout, "client_id"), _field(result.stdout, "client_secret")


def _field(output: str, name: str) -> str:
    match = re.search(rf"^{name}: (\S+)$", output, re.M)
    assert match, output
    return match.group(1)


def native_tokens(
    server: LiveServer,
    username: str = DEMO_USERNAME,
    password: str = DEMO_PASSWORD,
    scopes: list[str] | None = None,
    *,
    client_id: str | None = None,
    refresh_tokens: bool = True,
    idp_name: str = DEMO_IDP,
) -> globus_sdk.OAuthTokenResponse:
    """Tokens for ``username`` through the real SDK native-app flow (see module docstring)."""
    if client_id is None:
        client_id = create_native_client(server)
    auth = native_auth_client(server, client_id)
    auth.oauth2_start_flow(scopes or DEFAULT_SCOPES, refresh_tokens=refresh_tokens)
    code = authorize_over_http(
        server.url, auth.oauth2_get_authorize_url(), username, password, idp_name
    )
    return auth.oauth2_exchange_code_for_tokens(code)


def native_auth_client(server: LiveServer, client_id: str) -> globus_sdk.NativeAppAuthClient:
    return globus_sdk.NativeAppAuthClient(client_id, base_url=f"{server.url}/auth/")


def ensure_user(
    server: LiveServer,
    username: str = DEMO_USERNAME,
    password: str = DEMO_PASSWORD,
    idp_name: str = DEMO_IDP,
    domain: str = "example.edu",
) -> None:
    """Create the institution and user unless they exist (servers started with demo=False)."""
    server.admin("idp", "create", idp_name, "--domain", domain)
    server.admin(
        "user", "create", username, "--idp", idp_name, "--password-stdin", input=password + "\n"
    )


def token_summary(tokens: globus_sdk.OAuthTokenResponse) -> dict[str, Any]:
    return {rs: data["scope"] for rs, data in tokens.by_resource_server.items()}


def _act_as_browser(argv: list[str]) -> None:
    """``python -m tests.support.auth_flow URL``: a BROWSER for ``globus login``'s local server.

    Logs in as $AUTH_FLOW_USERNAME / $AUTH_FLOW_PASSWORD (default: the demo user), allows, and
    delivers the final redirect (``http://localhost:<port>/?code=...``) to the CLI.
    """
    import os

    username = os.environ.get("AUTH_FLOW_USERNAME", DEMO_USERNAME)
    password = os.environ.get("AUTH_FLOW_PASSWORD", DEMO_PASSWORD)
    target = authorize_redirect("", argv[1], username, password)
    httpx.get(str(target), timeout=30)


if __name__ == "__main__":
    import sys

    _act_as_browser(sys.argv)
