"""Issue #10 items 2 and 3 against a live server: unbounded bodies and strings on the anonymous
``POST /auth/v2/api/clients`` (globus-cli template), its rate limit, and identity lookups by an
anonymously made client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import httpx
from sqlalchemy import func, select

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.auth import Identity, OAuthClient
from tests.reliability.conftest import Session, database_url
from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_USERNAME, LiveServer

MiB = 1024 * 1024
CLI_TEMPLATE = "95fdeba8-fac2-42bd-a357-e068d82ff78e"
MANAGE_PROJECTS = "urn:globus:auth:scope:auth.globus.org:manage_projects"


async def _count(server: LiveServer, what: str) -> int:
    ctx = AppContext.from_settings(Settings(home=server.home, database_url=database_url(server)))
    try:
        async with ctx.db.session() as session:
            if what == "clients":
                query = select(func.count()).select_from(OAuthClient)
            else:
                query = select(func.count()).select_from(Identity)
            return int(await session.scalar(query) or 0)
    finally:
        await ctx.db.dispose()


def count(server: LiveServer, what: str) -> int:
    return asyncio.run(_count(server, what))


def auth_errors(response: httpx.Response, status: int) -> str:
    """The Auth error document's code, after checking the status and the format."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert "detail" not in body
    return str(body["errors"][0]["code"])


def template_client(server: LiveServer, name: str = "Globus CLI on test") -> tuple[str, str]:
    response = httpx.post(
        f"{server.url}/auth/v2/api/clients",
        json={"client": {"template_id": CLI_TEMPLATE, "name": name}},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["client"]["id"], body["included"]["client_credential"]["secret"]


# ------------------------------------------------------------------ item 2: bodies and strings


def test_oversized_template_client_is_refused_before_it_is_stored(server: LiveServer) -> None:
    url = f"{server.url}/auth/v2/api/clients"
    before = count(server, "clients")
    name = "x" * (3 * MiB)
    body = json.dumps({"client": {"template_id": CLI_TEMPLATE, "name": name}}).encode()
    with httpx.Client(timeout=60) as http:
        started = time.monotonic()
        announced = http.post(url, content=body, headers={"Content-Type": "application/json"})
        announced_seconds = time.monotonic() - started
        assert auth_errors(announced, 413) == "REQUEST_TOO_LARGE"
        assert "1 MiB" in announced.json()["errors"][0]["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
            for start in range(0, len(body), 256 * 1024):
                yield body[start : start + 256 * 1024]

        try:
            streamed = http.post(
                url, content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert auth_errors(streamed, 413) == "REQUEST_TOO_LARGE"
        except httpx.HTTPError:
            pass  # the server may close the connection after answering mid-upload
    assert count(server, "clients") == before
    # Loose bound: only proves the body was not parsed into a 150 MiB row (the old code took
    # tens of seconds); never a timing assertion about a quiet machine.
    assert announced_seconds < 30


def test_every_app_answers_oversized_bodies_in_its_own_format(shared: Session) -> None:
    server = shared.server
    big = b"{" + b" " * (2 * MiB) + b"}"
    transfer = httpx.post(
        f"{shared.api}/bookmark",
        content=big,
        headers={**shared.headers, "Content-Type": "application/json"},
        timeout=60,
    )
    assert transfer.status_code == 413
    assert transfer.json()["code"] == "ClientError.RequestTooLarge"
    assert transfer.json()["resource"] == "/bookmark"
    web = httpx.post(
        f"{server.url}/developers/projects",
        content=b"name=" + b"x" * (2 * MiB),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert web.status_code == 413
    assert web.headers["content-type"].startswith("text/html")
    assert "Request too large" in web.text
    token = httpx.post(
        f"{server.url}/auth/v2/oauth2/token",
        content=b"grant_type=" + b"x" * (2 * MiB),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert auth_errors(token, 413) == "REQUEST_TOO_LARGE"


def test_transfer_submissions_keep_their_larger_limit(shared: Session) -> None:
    # 3 MiB of items: over the 1 MiB default, so a 400 about the document (not a 413) shows
    # the body reached the submission code.
    items = [
        {"DATA_TYPE": "transfer_item", "source_path": f"/f{i:06}", "destination_path": f"/g{i}"}
        for i in range(40_000)
    ]
    body = json.dumps({"DATA_TYPE": "not_a_transfer", "DATA": items}).encode()
    assert len(body) > 3 * MiB
    response = httpx.post(
        f"{shared.api}/transfer",
        content=body,
        headers={**shared.headers, "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 400, response.text[:300]
    assert response.json()["code"] != "ClientError.RequestTooLarge"


def test_stored_strings_are_bounded(server: LiveServer, shared: Session) -> None:
    url = f"{server.url}/auth/v2/api/clients"
    long_name = httpx.post(
        url, json={"client": {"template_id": CLI_TEMPLATE, "name": "n" * 300}}, timeout=30
    )
    assert auth_errors(long_name, 400) == "INVALID_PARAMETERS"
    assert "name must be at most 255 characters" in long_name.json()["errors"][0]["detail"]

    tokens = native_tokens(server, scopes=["openid", MANAGE_PROJECTS])
    headers = {
        "Authorization": f"Bearer {tokens.by_resource_server['auth.globus.org']['access_token']}"
    }
    long_project = httpx.post(
        f"{server.url}/auth/v2/api/projects",
        json={"project": {"display_name": "p" * 256, "contact_email": "a@example.edu"}},
        headers=headers,
        timeout=30,
    )
    assert auth_errors(long_project, 400) == "INVALID_PARAMETERS"
    project = httpx.post(
        f"{server.url}/auth/v2/api/projects",
        json={"project": {"display_name": "Bounds", "contact_email": "a@example.edu"}},
        headers=headers,
        timeout=30,
    ).json()["project"]
    for uris, expected in (
        (["https://app.example.org/" + "a" * 2100], "at most 2048 characters"),
        ([f"https://app.example.org/{i}" for i in range(33)], "at most 32 entries"),
    ):
        response = httpx.post(
            url,
            json={"client": {"name": "App", "project": project["id"], "redirect_uris": uris}},
            headers=headers,
            timeout=30,
        )
        assert auth_errors(response, 400) == "INVALID_PARAMETERS"
        assert expected in response.json()["errors"][0]["detail"]
    links = httpx.post(
        url,
        json={
            "client": {
                "name": "App",
                "project": project["id"],
                "links": {"privacy_policy": "https://p.example/" + "x" * 3000},
            }
        },
        headers=headers,
        timeout=30,
    )
    assert auth_errors(links, 400) == "INVALID_PARAMETERS"


def test_anonymous_template_clients_are_rate_limited_per_address(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(extra_env={"ARCTERN_TEMPLATE_CLIENTS_PER_ADDRESS_PER_HOUR": "20"})
    url = f"{server.url}/auth/v2/api/clients"
    body = {"client": {"template_id": CLI_TEMPLATE, "name": "Globus CLI"}}
    statuses = [httpx.post(url, json=body, timeout=30).status_code for _ in range(20)]
    assert statuses == [201] * 20
    refused = httpx.post(url, json=body, timeout=30)
    assert auth_errors(refused, 429) == "TOO_MANY_REQUESTS"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    # The window is an hour on the server's clock: move it and the address may create again.
    (server.home / "clock-offset").write_text("3601")
    assert httpx.post(url, json=body, timeout=30).status_code == 201


# ------------------------------------------------------------------ item 3: identities


def test_anonymous_template_client_cannot_read_or_provision_identities(
    server: LiveServer,
) -> None:
    client_id, secret = template_client(server)
    url = f"{server.url}/auth/v2/api/identities"
    anonymous = httpx.get(url, params={"usernames": DEMO_USERNAME}, timeout=30)
    assert auth_errors(anonymous, 401) == "UNAUTHORIZED"
    basic = httpx.get(
        url, params={"usernames": DEMO_USERNAME}, auth=(client_id, secret), timeout=30
    )
    assert auth_errors(basic, 403) == "FORBIDDEN"
    assert DEMO_USERNAME not in basic.text
    # Its client-credentials token is no user's token either.
    granted = httpx.post(
        f"{server.url}/auth/v2/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "openid"},
        auth=(client_id, secret),
        timeout=30,
    )
    assert granted.status_code == 200, granted.text
    bearer = httpx.get(
        url,
        params={"usernames": DEMO_USERNAME},
        headers={"Authorization": f"Bearer {granted.json()['access_token']}"},
        timeout=30,
    )
    assert auth_errors(bearer, 403) == "FORBIDDEN"

    before = count(server, "identities")
    invented = ",".join(f"invented-{i}@example.edu" for i in range(50))
    provision = httpx.get(
        url,
        params={"usernames": invented, "provision": "true"},
        auth=(client_id, secret),
        timeout=30,
    )
    assert auth_errors(provision, 403) == "FORBIDDEN"
    assert count(server, "identities") == before


def test_provisioning_is_bounded_per_request_and_per_user(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(extra_env={"ARCTERN_IDENTITY_PROVISIONS_PER_HOUR": "10"})
    tokens = native_tokens(server, scopes=["openid", "profile", "email"])
    headers = {
        "Authorization": f"Bearer {tokens.by_resource_server['auth.globus.org']['access_token']}"
    }
    url = f"{server.url}/auth/v2/api/identities"
    too_many = ",".join(f"n{i}@example.edu" for i in range(101))
    response = httpx.get(url, params={"usernames": too_many}, headers=headers, timeout=30)
    assert auth_errors(response, 400) == "INVALID_PARAMETERS"
    assert "at most 100" in response.json()["errors"][0]["detail"]

    # A user's token may look people up and provision, up to the hourly allowance.
    found = httpx.get(url, params={"usernames": DEMO_USERNAME}, headers=headers, timeout=30)
    assert [i["username"] for i in found.json()["identities"]] == [DEMO_USERNAME]
    before = count(server, "identities")
    first = ",".join(f"p{i}@example.edu" for i in range(8))
    ok = httpx.get(
        url, params={"usernames": first, "provision": "true"}, headers=headers, timeout=30
    )
    assert ok.status_code == 200 and len(ok.json()["identities"]) == 8
    second = ",".join(f"q{i}@example.edu" for i in range(8))
    refused = httpx.get(
        url, params={"usernames": second, "provision": "true"}, headers=headers, timeout=30
    )
    assert auth_errors(refused, 429) == "TOO_MANY_REQUESTS"
    assert int(refused.headers["Retry-After"]) >= 1
    assert count(server, "identities") == before + 8
    # Known names never count against the allowance.
    again = httpx.get(
        url, params={"usernames": first, "provision": "true"}, headers=headers, timeout=30
    )
    assert again.status_code == 200 and len(again.json()["identities"]) == 8
