"""A new client secret never travels in the session cookie (issue #10).

The developer console shows a confidential app's client secret once. The session cookie is
signed, not secret: the browser keeps it in its cookie store and proxies log it, and whoever
holds a copy can present it again. So no Set-Cookie answered during the secret's creation
may carry the secret in any form: not the plaintext (the cookie payload is readable
base64 JSON), and not an encrypted copy that the server would decrypt and show again to
anyone replaying that cookie.
"""

from __future__ import annotations

import base64
import json
import re
from http.cookies import SimpleCookie
from typing import Any

import httpx

from tests.integration.test_web_pages import hidden, log_in
from tests.support.server import LiveServer

COOKIE = "arctern_session"
CALLBACK = "https://portal.example.org/callback"


def session_cookies(response: httpx.Response) -> list[str]:
    """Every value this response sets for the session cookie."""
    values = []
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if COOKIE in jar:
            values.append(jar[COOKIE].value)
    return values


def decode_session(value: str) -> dict[str, Any]:
    """Starlette's SessionMiddleware cookie: base64(JSON) "." timestamp "." signature
    (itsdangerous); the payload is readable by anyone who holds the cookie."""
    payload = value.split(".", 1)[0]
    decoded: dict[str, Any] = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def shown_secret(page: str) -> str | None:
    match = re.search(r'data-testid="client-secret">([^<]+)<', page)
    return match.group(1).strip() if match else None


def test_new_client_secrets_never_travel_in_the_session_cookie(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        log_in(browser)
        token = hidden(browser.get("/developers/projects/new").text, "csrf_token")
        project = browser.post(
            "/developers/projects",
            data={"name": "Cookie audit", "email": "researcher@example.edu", "csrf_token": token},
        ).headers["location"]

        # Every response of the two ways a secret is made, and of the page views after them.
        responses: list[httpx.Response] = []
        created = browser.post(
            f"{project}/apps",
            data={
                "name": "Cookie audit portal",
                "app_type": "confidential",
                "redirect_uris": CALLBACK,
                "csrf_token": token,
            },
            follow_redirects=True,
        )
        responses += [*created.history, created]
        first = shown_secret(created.text)
        assert first and len(first) >= 32, created.text[:300]
        app = re.search(rf"{re.escape(project)}/apps/[0-9a-f-]{{36}}", created.text)
        assert app, created.text[:300]
        app_url = app.group(0)
        again = browser.get(app_url)
        responses.append(again)
        assert again.status_code == 200 and shown_secret(again.text) is None

        renewed = browser.post(
            f"{app_url}/secrets",
            data={"csrf_token": token, "label": "second"},
            follow_redirects=True,
        )
        responses += [*renewed.history, renewed]
        second = shown_secret(renewed.text)
        assert second and second != first, renewed.text[:300]
        responses.append(browser.get(app_url))

        # The page that shows a secret is not cached by the browser or a proxy.
        shown = [r for r in (created, renewed) if shown_secret(r.text)]
        assert all(r.headers.get("cache-control") == "no-store" for r in shown)

        cookies = [value for response in responses for value in session_cookies(response)]
        assert cookies, "the flow set no session cookie at all: nothing was checked"
        for value in cookies:
            payload = decode_session(value)
            text = json.dumps(payload)
            for secret in (first, second):
                assert secret not in value and secret not in text, payload

    # Replaying each cookie (as anyone who copied it from a proxy log would) on the app page
    # must never bring a secret back, encrypted in the cookie or not.
    replayed = 0
    for value in cookies:
        with httpx.Client(base_url=server.url, timeout=30, cookies={COOKIE: value}) as thief:
            page = thief.get(app_url)
            assert page.status_code == 200, page.status_code  # the login itself is still valid
            assert shown_secret(page.text) is None, "a replayed session cookie showed a secret"
            assert first not in page.text and second not in page.text
            replayed += 1
    print(
        f"\nSECURITY console secret: {len(cookies)} session cookies from the secret flow "
        f"decoded and replayed ({replayed}), none carried a secret"
    )
