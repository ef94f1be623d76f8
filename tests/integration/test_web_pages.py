"""The browser UI over plain HTTP: login redirects, CSRF protection, logout, access control."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import DEMO_IDP, DEMO_PASSWORD, DEMO_USERNAME, LiveServer


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


def log_in(
    http: httpx.Client, username: str = DEMO_USERNAME, password: str = DEMO_PASSWORD
) -> None:
    page = http.get("/auth/login", params={"next": "/developers"}).text
    idp = next(
        value
        for value, label in re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', page)
        if label.strip() == DEMO_IDP
    )
    response = http.post(
        "/auth/login",
        data={
            "csrf_token": hidden(page, "csrf_token"),
            "next": "/developers",
            "idp": idp,
            "username": username,
            "password": password,
        },
    )
    assert response.status_code in (302, 303), response.text[:500]


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def user(http: httpx.Client) -> httpx.Client:
    log_in(http)
    return http


def project_names(http: httpx.Client) -> list[str]:
    page = http.get("/developers").text
    return [
        html.unescape(n) for n in re.findall(r'/developers/projects/[0-9a-f-]+">([^<]+)</a>', page)
    ]


@pytest.mark.parametrize("path", ["/developers", "/developers/projects/new", "/files", "/activity"])
def test_pages_need_login(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/auth/login?next=")
    assert httpx.URL(location).params["next"] == path


def test_landing_page_shows_connection_lines(http: httpx.Client, server: LiveServer) -> None:
    page = http.get("/").text
    assert "export GLOBUS_SDK_ENVIRONMENT=arctern" in page
    assert f"export GLOBUS_SDK_SERVICE_URL_AUTH={server.url}/auth/" in page
    assert f"export GLOBUS_SDK_SERVICE_URL_TRANSFER={server.url}/transfer/" in page
    for link in ('href="/developers"', 'href="/files"', 'href="/activity"'):
        assert link in page


def test_console_post_without_csrf_token_is_rejected(user: httpx.Client) -> None:
    name = f"Forged {uuid.uuid4().hex[:8]}"
    missing = user.post(
        "/developers/projects", data={"name": name, "email": "researcher@example.edu"}
    )
    assert missing.status_code == 403
    assert "security token" in missing.text
    wrong = user.post(
        "/developers/projects",
        data={"name": name, "email": "researcher@example.edu", "csrf_token": "forged"},
    )
    assert wrong.status_code == 403
    assert name not in project_names(user)

    # The same form with the session's token works.
    token = hidden(user.get("/developers/projects/new").text, "csrf_token")
    ok = user.post(
        "/developers/projects",
        data={"name": name, "email": "researcher@example.edu", "csrf_token": token},
    )
    assert ok.status_code == 303
    assert name in project_names(user)


def test_app_and_file_forms_without_token_change_nothing(
    user: httpx.Client, server: LiveServer
) -> None:
    token = hidden(user.get("/developers/projects/new").text, "csrf_token")
    created = user.post(
        "/developers/projects",
        data={"name": "CSRF apps", "email": "researcher@example.edu", "csrf_token": token},
    )
    project_url = created.headers["location"]
    forged = user.post(
        f"{project_url}/apps",
        data={"name": "Forged app", "app_type": "native", "redirect_uris": "http://x.example/"},
    )
    assert forged.status_code == 403
    assert "Forged app" not in user.get(project_url).text

    folder = f"forged-{uuid.uuid4().hex[:8]}"
    listing = user.get("/files").text
    origin = hidden(listing, "origin_id")
    response = user.post(
        "/files/mkdir",
        data={"pane": "origin", "origin_id": origin, "origin_path": "/", "name": folder},
    )
    assert response.status_code == 403
    assert not (server.home / "demo" / "collection1" / folder).exists()


def test_invalid_redirect_uri_is_explained_next_to_the_field(user: httpx.Client) -> None:
    token = hidden(user.get("/developers/projects/new").text, "csrf_token")
    project_url = user.post(
        "/developers/projects",
        data={"name": "Validation", "email": "researcher@example.edu", "csrf_token": token},
    ).headers["location"]
    response = user.post(
        f"{project_url}/apps",
        data={
            "csrf_token": token,
            "name": "Bad redirect",
            "app_type": "native",
            "redirect_uris": "not a url",
        },
    )
    assert response.status_code == 400
    assert 'data-testid="error-redirect_uris"' in response.text
    assert "Not a valid redirect URI: not a url" in response.text


def test_logout_clears_the_session(user: httpx.Client) -> None:
    page = user.get("/developers")
    assert page.status_code == 200
    response = user.post("/logout", data={"csrf_token": hidden(page.text, "csrf_token")})
    assert response.status_code == 303
    assert user.get("/developers").status_code == 303


def test_other_users_cannot_open_my_project(user: httpx.Client, server: LiveServer) -> None:
    token = hidden(user.get("/developers/projects/new").text, "csrf_token")
    project_url = user.post(
        "/developers/projects",
        data={"name": "Private", "email": "researcher@example.edu", "csrf_token": token},
    ).headers["location"]

    other = f"other-{uuid.uuid4().hex[:8]}@example.edu"
    created = server.admin("user", "create", other, "--password-stdin", input="other-password\n")
    assert created.returncode == 0, created.stderr
    with httpx.Client(base_url=server.url, timeout=30) as stranger:
        log_in(stranger, other, "other-password")
        assert stranger.get(project_url).status_code == 404
        assert stranger.get(f"{project_url}/apps/new").status_code == 404
        assert stranger.get("/activity/" + str(uuid.uuid4())).status_code == 404


def test_delete_project_removes_it_and_its_apps(user: httpx.Client) -> None:
    token = hidden(user.get("/developers/projects/new").text, "csrf_token")
    project_url = user.post(
        "/developers/projects",
        data={"name": "Short-lived", "email": "researcher@example.edu", "csrf_token": token},
    ).headers["location"]
    app_url = user.post(
        f"{project_url}/apps",
        data={
            "csrf_token": token,
            "name": "Doomed app",
            "app_type": "native",
            "redirect_uris": "http://localhost:8000/callback",
        },
    ).headers["location"]
    assert user.get(app_url).status_code == 200

    assert user.post(f"{project_url}/delete", data={}).status_code == 403
    assert user.get(project_url).status_code == 200
    response = user.post(f"{project_url}/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert user.get(project_url).status_code == 404
    assert user.get(app_url).status_code == 404
    assert "Short-lived" not in project_names(user)
