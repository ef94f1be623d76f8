"""Issue #10 items 9, 10 and 12 against a live server: OAuth parameters Authlib could not
describe (500 and a dropped connection), client input that raised OverflowError, RecursionError
or UnicodeEncodeError, and a Host header that steered codes and the issuer."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest

from tests.reliability.conftest import Session
from tests.support.auth_flow import AuthFlowError, authorize_redirect, create_native_client
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

CLI_TEMPLATE = "95fdeba8-fac2-42bd-a357-e068d82ff78e"
FAR_FUTURE = "9999-12-31T23:59:59-14:00"  # after datetime.max once converted to UTC
FAR_PAST = "0001-01-01T00:00:00+14:00"  # before datetime.min in UTC


def _challenge() -> str:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _exchange(
    server: LiveServer, method: str, path: str, body: str | None = None
) -> tuple[int, bytes, int]:
    """Send a request, then GET /health on the same connection: (status, body, health)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        status, payload = response.status, response.read()
        # A 500 from Starlette's error middleware re-raises, and uvicorn drops the connection.
        connection.request("GET", "/health")
        health = connection.getresponse()
        health.read()
        return status, payload, health.status
    finally:
        connection.close()


HOSTILE = ["\\", '"', "é", "\u2603"]


@pytest.mark.parametrize("char", HOSTILE, ids=["backslash", "quote", "latin1", "snowman"])
def test_authorize_and_token_refuse_unquotable_parameters(server: LiveServer, char: str) -> None:
    authorize = {
        "client_id": CLI_TEMPLATE,
        "response_type": "code",
        "code_challenge": _challenge(),
        "code_challenge_method": "S256",
        "redirect_uri": "http://localhost:50000/",
        "scope": "openid",
    }
    for key, value in (
        ("redirect_uri", f"http://localhost:50000/{char}"),
        ("scope", f"openid{char}"),
    ):
        query = urlencode({**authorize, key: value})
        status, body, health = _exchange(server, "GET", f"/auth/v2/oauth2/authorize?{query}")
        assert (status, health) == (400, 200), (key, status, body[:300])
        assert b"cannot be completed" in body

    token_requests = [
        {
            "client_id": CLI_TEMPLATE,
            "grant_type": "authorization_code",
            "code": "not-a-code",
            "code_verifier": "v" * 43,
            "redirect_uri": f"http://localhost:50000/{char}",
        },
        {"client_id": CLI_TEMPLATE, "grant_type": "client_credentials", "scope": f"openid{char}"},
        {
            "client_id": CLI_TEMPLATE,
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "scope": f"openid{char}",
        },
    ]
    for form in token_requests:
        status, body, health = _exchange(server, "POST", "/auth/v2/oauth2/token", urlencode(form))
        assert (status, health) == (400, 200), (form, status, body[:300])
        document = json.loads(body)
        assert document["error"] == "invalid_request"
        assert document["errors"][0]["code"] == "INVALID_REQUEST"


def test_dates_beyond_the_calendar_are_clean_400s(shared: Session) -> None:
    for value in (FAR_FUTURE, FAR_PAST):
        listed = httpx.get(
            f"{shared.api}/task_list",
            params={"filter": f"request_time:{value},"},
            headers=shared.headers,
            timeout=30,
        )
        assert listed.status_code == 400, listed.text
        assert listed.json()["code"] == "ClientError.BadRequest"

        rule = httpx.post(
            f"{shared.api}/endpoint/{shared.c1}/access",
            json={
                "DATA_TYPE": "access",
                "principal_type": "identity",
                "principal": shared.identity_id,
                "path": "/",
                "permissions": "r",
                "expiration_date": value,
            },
            headers=shared.headers,
            timeout=30,
        )
        assert rule.status_code == 400, rule.text

        submission_id = httpx.get(
            f"{shared.api}/submission_id", headers=shared.headers, timeout=30
        ).json()["value"]
        submitted = httpx.post(
            f"{shared.api}/transfer",
            json={
                "DATA_TYPE": "transfer",
                "submission_id": submission_id,
                "source_endpoint": shared.c1,
                "destination_endpoint": shared.c2,
                "deadline": value,
                "DATA": [
                    {
                        "DATA_TYPE": "transfer_item",
                        "source_path": "/a",
                        "destination_path": "/b",
                    }
                ],
            },
            headers=shared.headers,
            timeout=30,
        )
        assert submitted.status_code == 400, submitted.text


def test_lone_surrogates_and_deep_json_are_clean_400s(shared: Session) -> None:
    server = shared.server
    # json.dumps escapes the surrogate as \ud800, which is how it reaches a JSON parser.
    for path in ("/\ud800", "/ok/\udfff-name"):
        body = json.dumps({"DATA_TYPE": "mkdir", "path": path})
        made = httpx.post(
            f"{shared.api}/operation/endpoint/{shared.c2}/mkdir",
            content=body,
            headers={**shared.headers, "Content-Type": "application/json"},
            timeout=30,
        )
        assert made.status_code == 400, made.text
        assert made.json()["code"] == "ClientError.BadRequest"
    named = httpx.post(
        f"{server.url}/auth/v2/api/clients",
        content=json.dumps({"client": {"template_id": CLI_TEMPLATE, "name": "cli \ud800"}}),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert named.status_code == 400, named.text
    assert named.json()["errors"][0]["code"] == "INVALID_JSON"

    deep = '{"client": ' + "[" * 100_000 + "]" * 100_000 + "}"
    anonymous = httpx.post(
        f"{server.url}/auth/v2/api/clients",
        content=deep,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert anonymous.status_code == 400, anonymous.text[:300]
    assert anonymous.json()["errors"][0]["code"] == "INVALID_JSON"
    created = httpx.post(
        f"{server.url}/auth/v2/api/clients",
        json={"client": {"template_id": CLI_TEMPLATE, "name": "deep json"}},
        timeout=30,
    ).json()
    client_id = created["client"]["id"]
    secret = created["included"]["client_credential"]["secret"]
    updated = httpx.put(
        f"{server.url}/auth/v2/api/clients/{client_id}",
        content=deep,
        headers={"Content-Type": "application/json"},
        auth=(client_id, secret),
        timeout=30,
    )
    assert updated.status_code == 400, updated.text[:300]
    assert updated.json()["errors"][0]["code"] == "INVALID_JSON"


# ------------------------------------------------------------------ item 12: Host header

PUBLIC_URL = "http://transfer.example.edu"
EVIL = "evil.example"


def _authorize_url(server: LiveServer, client_id: str, redirect_uri: str) -> str:
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": "openid profile",
            "code_challenge": _challenge(),
            "code_challenge_method": "S256",
            "state": "s",
        }
    )
    return f"{server.url}/auth/v2/oauth2/authorize?{query}"


def _run_flow_with_host(server: LiveServer, host: str, redirect_uri: str) -> list[str]:
    """Log in and consent with every request carrying ``Host: host``; the Location headers."""
    client_id = create_native_client(server, name="Host test")
    locations: list[str] = []

    def record(response: httpx.Response) -> None:
        if "location" in response.headers:
            locations.append(response.headers["location"])

    with httpx.Client(
        timeout=30, headers={"Host": host}, event_hooks={"response": [record]}
    ) as http:
        try:
            target = authorize_redirect(
                server.url,
                _authorize_url(server, client_id, redirect_uri),
                DEMO_USERNAME,
                DEMO_PASSWORD,
                client=http,
            )
            locations.append(str(target))
        except AuthFlowError as refused:
            locations.append(f"refused: {refused}")
    return locations


def test_host_header_cannot_steer_codes_or_issuer_with_public_url(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(extra_env={"ARCTERN_PUBLIC_URL": PUBLIC_URL})
    discovery = httpx.get(
        f"{server.url}/auth/.well-known/openid-configuration",
        headers={"Host": EVIL},
        timeout=30,
    ).json()
    assert discovery["issuer"] == f"{PUBLIC_URL}/auth"
    assert discovery["token_endpoint"].startswith(PUBLIC_URL)

    locations = _run_flow_with_host(server, EVIL, f"http://{EVIL}/auth/v2/web/auth-code")
    assert not any(EVIL in loc and "code=" in loc for loc in locations), locations
    assert locations[-1].startswith("refused:"), locations


def test_untrusted_host_without_public_url_falls_back_to_the_bind_address(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory()
    issuer = httpx.get(
        f"{server.url}/auth/.well-known/openid-configuration",
        headers={"Host": f"{EVIL}:{server.port}"},
        timeout=30,
    ).json()["issuer"]
    assert issuer == f"{server.url}/auth"
    locations = _run_flow_with_host(
        server, f"{EVIL}:{server.port}", f"http://{EVIL}:{server.port}/auth/v2/web/auth-code"
    )
    assert not any(EVIL in loc and "code=" in loc for loc in locations), locations
    # A loopback name is trusted by default: the auth-code page as the client addressed it.
    trusted = httpx.get(
        f"http://localhost:{server.port}/auth/.well-known/openid-configuration", timeout=30
    ).json()["issuer"]
    assert trusted == f"http://localhost:{server.port}/auth"
