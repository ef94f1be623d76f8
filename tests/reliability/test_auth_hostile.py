"""Hostile auth input not covered in tests/integration/test_auth_*.py: CSRF on every POST form
(found by crawling the pages), redirect-URI tricks for a confidential client, revoked tokens
on the Transfer API, and another user's task, bookmark, collection and rules by ID."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import globus_sdk
import httpx
import pytest

from tests.integration.test_web_pages import hidden, log_in
from tests.reliability.conftest import Session, login, make_user
from tests.support.auth_flow import (
    create_confidential_client,
    create_native_client,
    native_auth_client,
    native_tokens,
)

TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
MANAGE_PROJECTS = "urn:globus:auth:scope:auth.globus.org:manage_projects"
CALLBACK = "https://app.example.org/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def post_forms(page: str) -> list[tuple[str, dict[str, str]]]:
    """Every ``<form method="post">`` on a page: its action and default field values."""
    forms = []
    for attrs, body in re.findall(r"<form([^>]*)>(.*?)</form>", page, re.S | re.I):
        if not re.search(r'method="post"', attrs, re.I):
            continue
        action = re.search(r'action="([^"]*)"', attrs)
        fields: dict[str, str] = {}
        for tag in re.findall(r"<input[^>]*>", body, re.I):
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = html.unescape(value.group(1)) if value else "x"
        for name in re.findall(r'<(?:select|textarea)[^>]*name="([^"]+)"', body, re.I):
            fields.setdefault(name, "native" if name == "app_type" else "x")
        forms.append((html.unescape(action.group(1)) if action else "", fields))
    return forms


@pytest.fixture
def browser(shared: Session) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared.server.url, timeout=30) as client:
        log_in(client)
        yield client


def test_every_post_form_refuses_missing_and_forged_csrf_tokens(
    shared: Session, browser: httpx.Client
) -> None:
    me = shared
    # Objects whose pages carry forms: a project with a native and a confidential app, an
    # active task (cancel form), the file manager, and a consent page.
    token = hidden(browser.get("/developers/projects/new").text, "csrf_token")
    created = browser.post(
        "/developers/projects",
        data={"name": "CSRF crawl", "email": "researcher@example.edu", "csrf_token": token},
    )
    project = created.headers["location"]
    for kind in ("native", "confidential"):
        token = hidden(browser.get(f"{project}/apps/new").text, "csrf_token")
        made = browser.post(
            f"{project}/apps",
            data={
                "name": f"{kind} app",
                "app_type": kind,
                "csrf_token": token,
                "redirect_uris": CALLBACK,
            },
        )
        # A confidential app's secret is shown in the answer itself (never via the cookie).
        assert made.status_code == (303 if kind == "native" else 200), made.text[:300]
    apps = sorted(
        set(re.findall(rf'href="({re.escape(project)}/apps/[^"/]+)"', browser.get(project).text))
    )
    apps = [a for a in apps if not a.endswith("/apps/new")]
    assert len(apps) == 2, apps
    big = me.c1_root / f"csrf-{uuid.uuid4().hex[:6]}.bin"
    with big.open("wb") as f:
        f.truncate(4 << 30)
    task_id = me.transfer(
        me.c1, me.c2, [(f"/{big.name}", f"/{big.name}", False)], verify_checksum=True
    )
    client_id = create_native_client(me.server)
    _verifier, challenge = _pkce()
    consent_url = "/auth/v2/oauth2/authorize?" + urlencode(
        {
            "client_id": client_id,
            "redirect_uri": f"{me.server.url}/auth/v2/web/auth-code",
            "scope": TRANSFER_SCOPE,
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "consent",
        }
    )
    try:
        pages = [
            "/developers/projects/new",
            project,
            f"{project}/apps/new",
            *apps,
            "/files",
            f"/activity/{task_id}",
            "/auth/login",
            consent_url,
        ]
        tried: dict[str, int] = {}
        for url in pages:
            response = browser.get(url, follow_redirects=True)
            assert response.status_code == 200, (url, response.status_code)
            for action, fields in post_forms(response.text):
                target = action or url
                assert "csrf_token" in fields, (url, action, "form without a CSRF token")
                for forged in (None, "forged-" + secrets.token_hex(8)):
                    data = {k: v for k, v in fields.items() if k != "csrf_token"}
                    if forged:
                        data["csrf_token"] = forged
                    refused = browser.post(target, data=data)
                    assert refused.status_code in (400, 403), (target, refused.status_code)
                    assert "location" not in refused.headers, (target, refused.headers)
                    tried[target] = tried.get(target, 0) + 1
        # Nothing happened: the project and both apps exist, the task runs, no consent.
        for url in (project, *apps):
            assert browser.get(url).status_code == 200, url
        assert me.tc.get_task(task_id)["status"] == "ACTIVE"
        expected = {
            "delete",
            "secrets",
            "cancel",
            "rerun",
            "mkdir",
            "transfer",
            "login",
            "authorize",
        }
        seen = " ".join(tried)
        assert all(word in seen for word in expected), sorted(tried)
        print(
            f"\nRELIABILITY csrf: {len(tried)} POST forms, {sum(tried.values())} forged "
            f"submissions refused"
        )
    finally:
        me.tc.cancel_task(task_id)
        big.unlink()


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://app.example.org/callback/../evil",
        "https://app.example.org/callbackx",
        "https://app.example.org/callback/extra",
        "https://app.example.org/callback%2f..%2fevil",
        "https://app.example.org.evil.example/callback",
        "https://app.example.org@evil.example/callback",
        "https://evil.example/?u=https://app.example.org/callback",
        "https://evil.example/#https://app.example.org/callback",
        "https://app.example.org/callback#fragment",
        "http://app.example.org/callback",
        "https://app.example.org:8443/callback",
        "//evil.example/callback",
        "javascript:alert(1)",
        "https://app.example.org/call",
        "https://app.example.org/callback\r\nLocation: https://evil.example/",
    ],
)
def test_redirect_uri_tricks_never_redirect(
    shared: Session, redirect_uri: str, confidential: str
) -> None:
    params = {
        "client_id": confidential,
        "redirect_uri": redirect_uri,
        "scope": TRANSFER_SCOPE,
        "response_type": "code",
        "state": "s",
    }
    response = httpx.get(f"{shared.server.url}/auth/v2/oauth2/authorize?{urlencode(params)}")
    assert response.status_code == 400, (response.status_code, response.headers)
    assert "location" not in response.headers


@pytest.fixture(scope="module")
def confidential(shared: Session) -> str:
    client_id, _secret = create_confidential_client(shared.server, redirect_uris=(CALLBACK,))
    return client_id


def test_revoked_tokens_are_refused_by_the_transfer_api(shared: Session) -> None:
    client_id = create_native_client(shared.server)
    tokens = native_tokens(shared.server, client_id=client_id)
    token = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    auth = native_auth_client(shared.server, client_id)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{shared.api}/task_list"
    assert httpx.get(url, headers=headers).status_code == 200
    auth.oauth2_revoke_token(token)
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "ClientError.AuthenticationFailed"
    # A token that differs in one character, and one with the right shape but unknown.
    for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), secrets.token_urlsafe(48)):
        response = httpx.get(url, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401


def test_a_deleted_clients_tokens_are_refused_at_once(shared: Session) -> None:
    """Verified tokens are cached briefly; deleting their client through the API forgets them."""
    developer = native_tokens(shared.server, scopes=["openid", "profile", MANAGE_PROJECTS])
    sub = developer.decode_id_token()["sub"]
    console = globus_sdk.AuthClient(
        base_url=f"{shared.server.url}/auth/",
        authorizer=globus_sdk.AccessTokenAuthorizer(
            developer.by_resource_server["auth.globus.org"]["access_token"]
        ),
    )
    project = console.create_project("Doomed", "dev@example.edu", admin_ids=[sub])["project"]
    app = console.create_client(
        "Doomed app", project["id"], public_client=True, redirect_uris=[CALLBACK]
    )["client"]
    tokens = native_tokens(shared.server, client_id=app["id"])
    token = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{shared.api}/task_list"
    for _ in range(3):  # verified once, then answered from the cache
        assert httpx.get(url, headers=headers).status_code == 200
    console.delete_client(app["id"])
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "ClientError.AuthenticationFailed"
    console.delete_project(project["id"])


def test_another_users_objects_by_id(shared: Session) -> None:
    me = shared
    other = login(me.server, *make_user(me.server, "intruder"))
    copy = f"idor-{uuid.uuid4().hex[:6]}.txt"
    task_id = me.transfer(me.c1, me.c2, [("/hello.txt", f"/{copy}", False)])
    me.wait(task_id)
    (me.c2_root / copy).unlink()  # no residue in the shared demo data
    bookmark = me.tc.create_bookmark({"endpoint_id": me.c2, "path": "/", "name": "mine"})["id"]
    api = me.api
    h = other.headers
    attempts = [
        ("GET", f"{api}/task/{task_id}", None),
        ("PUT", f"{api}/task/{task_id}", {"DATA_TYPE": "task", "label": "pwned"}),
        ("POST", f"{api}/task/{task_id}/cancel", None),
        ("GET", f"{api}/task/{task_id}/event_list", None),
        ("GET", f"{api}/task/{task_id}/successful_transfers", None),
        ("GET", f"{api}/task/{task_id}/skipped_errors", None),
        ("GET", f"{api}/task/{task_id}/pause_info", None),
        ("GET", f"{api}/bookmark/{bookmark}", None),
        ("PUT", f"{api}/bookmark/{bookmark}", {"name": "pwned"}),
        ("DELETE", f"{api}/bookmark/{bookmark}", None),
        ("GET", f"{api}/endpoint/{me.c1}/access_list", None),
        (
            "POST",
            f"{api}/endpoint/{me.c1}/access",
            {
                "DATA_TYPE": "access",
                "principal_type": "identity",
                "principal": other.identity_id,
                "path": "/",
                "permissions": "rw",
            },
        ),
        ("GET", f"{api}/operation/endpoint/{me.c1}/ls", None),
        (
            "POST",
            f"{api}/operation/endpoint/{me.c2}/mkdir",
            {"DATA_TYPE": "mkdir", "path": "/intruder"},
        ),
    ]
    for method, url, body in attempts:
        response = httpx.request(method, url, headers=h, json=body)
        assert response.status_code in (403, 404), (method, url, response.status_code)
        assert response.json()["code"] in (
            "ClientError.NotFound",
            "PermissionDenied",
            "EndpointPermissionDenied",
            "ClientError.Forbidden",
            "EndpointNotFound",
            "TaskNotFound",
            "BookmarkNotFound",
        ) or response.json()["code"].startswith(("ClientError", "PermissionDenied")), response.text
    # Nothing changed, and the task does not show in the intruder's list.
    assert me.tc.get_task(task_id)["label"] != "pwned"
    assert me.tc.get_bookmark(bookmark)["name"] == "mine"
    assert task_id not in {t["task_id"] for t in other.tc.task_list(limit=100)}
    assert not (me.c2_root / "intruder").exists()
    me.tc.delete_bookmark(bookmark)
