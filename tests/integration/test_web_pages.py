"""The browser UI over plain HTTP: login redirects, CSRF protection, logout, access control."""

from __future__ import annotations

import html
import re
import time
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


# -- Activity and task pages -----------------------------------------------------------------


def collection_ids(http: httpx.Client) -> dict[str, str]:
    page = http.get("/files").text
    return {
        html.unescape(name): cid
        for cid, name in re.findall(r'<option value="([0-9a-f-]{36})"[^>]*>([^<]+)</option>', page)
    }


def web_transfer(http: httpx.Client, items: list[str], label: str, *, verify: bool = False) -> str:
    """Start a transfer from Demo Collection 1's top to Demo Collection 2's top with the
    File Manager's form; ``items`` are ``d:name`` / ``f:name``. Returns the new task id."""
    ids = collection_ids(http)
    token = hidden(http.get("/files").text, "csrf_token")
    data: dict[str, object] = {
        "csrf_token": token,
        "source": "origin",
        "origin_id": ids["Demo Collection 1"],
        "origin_path": "/",
        "destination_id": ids["Demo Collection 2"],
        "destination_path": "/",
        "origin_item": items,
        "label": label,
    }
    if verify:
        data["verify_checksum"] = "on"
    response = http.post("/files/transfer", data=data)
    assert response.status_code == 303, response.text[:300]
    notice = http.get(response.headers["location"]).text
    match = re.search(r"Task ID ([0-9a-f-]{36})", notice)
    assert match, notice[:2000]
    return match.group(1)


def wait_done(http: httpx.Client, task_id: str, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = http.get("/activity/live.json", params={"id": task_id}).json()["tasks"]
        if not values[task_id]["active"]:
            return http.get(f"/activity/{task_id}").text
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} still running after {timeout} s")


def texts(page: str, testid: str) -> list[str]:
    found = re.findall(rf'data-testid="{testid}"[^>]*>([^<]*)<', page)
    return [html.unescape(t).strip() for t in found]


@pytest.fixture
def failed_task(user: httpx.Client, server: LiveServer) -> tuple[str, str, str]:
    """A finished task over 25 small files in a new folder plus one missing file:
    (task id, folder name, label)."""
    folder = f"many-{uuid.uuid4().hex[:6]}"
    source = server.home / "demo" / "collection1" / folder
    source.mkdir()
    for n in range(25):
        (source / f"f{n:02d}.dat").write_bytes(b"x" * 1000)
    label = f"Web pages check {folder}"
    task_id = web_transfer(user, [f"d:{folder}", "f:no-such-file.txt"], label)
    wait_done(user, task_id)
    return task_id, folder, label


def test_task_page_shows_bytes_items_files_and_each_event_once(
    user: httpx.Client, failed_task: tuple[str, str, str]
) -> None:
    task_id, folder, _label = failed_task
    page = user.get(f"/activity/{task_id}").text
    # Bytes first (the bar), then files; the total the planned files add up to.
    assert texts(page, "progress-bytes") == ["25.0 KB of 25.0 KB"]
    assert texts(page, "progress-files")[0].startswith("25 of ")
    assert texts(page, "total-size") == ["25.0 KB"]
    assert 'role="progressbar"' in page and 'aria-valuenow="100"' in page
    # The submitted items with both paths.
    items = re.findall(
        r'data-testid="item">\s*<td class="mono path">([^<]+)</td>\s*'
        r'<td class="mono path">([^<]+)</td>',
        page,
    )
    assert items == [(f"/{folder}", f"/{folder}"), ("/no-such-file.txt", "/no-such-file.txt")]
    # Per-file records, errors first, 20 a page.
    assert len(re.findall(r'data-testid="file-row"', page)) == 20
    assert texts(page, "file-error") == ["FILE_NOT_FOUND"]
    assert "Page 1 of 2" in page
    second = user.get(f"/activity/{task_id}", params={"files": "2"}).text
    records = int(re.search(r"(\d+) records, errors first", page).group(1))
    assert records >= 26  # 25 files and the missing one (directories may add records)
    assert len(re.findall(r'data-testid="file-row"', second)) == records - 20
    assert texts(second, "file-error") == []
    # One failure, one event: the task's final event does not repeat the file's.
    codes = texts(page, "event-code")
    assert codes.count("FILE_NOT_FOUND") == 1, codes
    # UTC times carry their ISO form, from which the page adds local time.
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+Z" data-local-time>', page)
    # The File Manager opens on the first item's folders.
    link = html.unescape(re.search(r'href="([^"]+)" data-testid="open-in-files"', page).group(1))
    assert link.startswith("/files?") and f"origin_path=%2F{folder}%2F" in link
    assert user.get(link).status_code == 200


def test_activity_label_search_and_live_values(
    user: httpx.Client, failed_task: tuple[str, str, str]
) -> None:
    task_id, folder, label = failed_task
    other = web_transfer(user, ["f:hello.txt"], f"Unrelated {uuid.uuid4().hex[:6]}")
    wait_done(user, other)
    found = user.get("/activity", params={"q": folder.upper()}).text  # case-insensitive
    assert re.findall(r'data-task-id="([0-9a-f-]{36})"', found) == [task_id]
    assert 'value="' + folder.upper() + '"' in found
    failed_tab = user.get("/activity", params={"q": folder, "status": "succeeded"}).text
    assert 'data-testid="task-row"' not in failed_tab
    assert f"?status=failed&amp;q={folder}" in failed_tab  # the tabs keep the search
    listing = user.get("/activity").text
    assert label in listing and 'data-field="total">25.0 KB</span> in total' in listing
    values = user.get("/activity/live.json", params=[("id", task_id), ("id", "not-a-uuid")]).json()[
        "tasks"
    ]
    assert set(values) == {task_id}
    assert values[task_id]["bytes"] == "25.0 KB of 25.0 KB"
    assert values[task_id]["total"] == "25.0 KB" and values[task_id]["active"] is False
    assert values[task_id]["status_label"] == "FAILED" and values[task_id]["completed"]
    # Another user's task is not in their live values, and the route needs a login.
    with httpx.Client(base_url=str(user.base_url), timeout=30) as anonymous:
        assert anonymous.get("/activity/live.json", params={"id": task_id}).status_code == 401


def test_rerun_submits_the_same_items_as_a_new_task_and_needs_the_token(
    user: httpx.Client, failed_task: tuple[str, str, str]
) -> None:
    task_id, _folder, label = failed_task
    page = user.get(f"/activity/{task_id}").text
    before = user.get("/activity").text.count('data-testid="task-row"')
    forged = user.post(f"/activity/{task_id}/rerun", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    missing = user.post(f"/activity/{task_id}/rerun", data={})
    assert missing.status_code == 403
    assert user.get("/activity").text.count('data-testid="task-row"') == before

    response = user.post(
        f"/activity/{task_id}/rerun", data={"csrf_token": hidden(page, "csrf_token")}
    )
    assert response.status_code == 303
    new_id = response.headers["location"].rsplit("/", 1)[-1]
    assert new_id != task_id and uuid.UUID(new_id)
    rerun_page = wait_done(user, new_id)
    assert label in rerun_page
    pattern = (
        r'data-testid="item">\s*<td class="mono path">([^<]+)</td>\s*'
        r'<td class="mono path">([^<]+)</td>'
    )
    assert re.findall(pattern, rerun_page) == re.findall(pattern, page)
    assert user.get("/activity").text.count('data-testid="task-row"') == before + 1
