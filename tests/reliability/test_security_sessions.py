"""Browser sessions end for real (issue #10, item 6): a copied session cookie replayed after
logout, after a password change or after the account was disabled gets nothing, a GET of
/logout does not log out, and sessions end after an idle timeout and an absolute lifetime
(moved through the server's test clock). Disabling also revokes the user's tokens."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.integration.test_web_pages import hidden, log_in
from tests.reliability.conftest import login, make_user
from tests.support.server import LiveServer

COOKIE = "arctern_session"


@contextmanager
def logged_in_browser(server: LiveServer, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        log_in(browser, username, password)
        assert browser.get("/developers").status_code == 200
        yield browser


def replay(server: LiveServer, cookie: str) -> int:
    """Status of /developers for a fresh client presenting only ``cookie`` (200 = logged in,
    303 = sent to the login page)."""
    with httpx.Client(base_url=server.url, timeout=30, cookies={COOKIE: cookie}) as attacker:
        return attacker.get("/developers").status_code


def test_cookie_replayed_after_logout_is_not_logged_in(server: LiveServer) -> None:
    username, password = make_user(server, "logout")
    with logged_in_browser(server, username, password) as browser:
        stolen = browser.cookies[COOKIE]
        assert replay(server, stolen) == 200
        token = hidden(browser.get("/developers").text, "csrf_token")
        logout = browser.post("/logout", data={"csrf_token": token})
        assert logout.status_code == 303
        assert browser.get("/developers").status_code == 303
    assert replay(server, stolen) == 303
    print("\nRELIABILITY sessions: cookie replayed after logout -> 303 to the login page")


def test_get_logout_and_forged_logout_do_not_log_out(server: LiveServer) -> None:
    username, password = make_user(server, "getlogout")
    with logged_in_browser(server, username, password) as browser:
        # A link or <img src="/logout"> on another site must not end the session.
        page = browser.get("/logout")
        assert page.status_code == 200
        assert 'action="/logout" method="post"' in page.text
        assert browser.get("/developers").status_code == 200
        forged = browser.post("/logout", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        assert browser.get("/developers").status_code == 200


def test_password_change_ends_the_users_sessions(server: LiveServer) -> None:
    username, password = make_user(server, "pwchange")
    with logged_in_browser(server, username, password) as browser:
        stolen = browser.cookies[COOKIE]
        changed = server.admin(
            "user", "set-password", username, "--password-stdin", input="new-password-1\n"
        )
        assert changed.returncode == 0, changed.stderr
        assert browser.get("/developers").status_code == 303
    assert replay(server, stolen) == 303
    with logged_in_browser(server, username, "new-password-1"):
        pass


def test_disabling_a_user_ends_sessions_and_revokes_tokens(server: LiveServer) -> None:
    username, password = make_user(server, "disable")
    session = login(server, username, password)
    assert session.tc.task_list().http_status == 200
    with logged_in_browser(server, username, password) as browser:
        stolen = browser.cookies[COOKIE]
        disabled = server.admin("user", "disable", username)
        assert disabled.returncode == 0, disabled.stderr
        assert browser.get("/developers").status_code == 303
    assert replay(server, stolen) == 303
    # The server may trust a verified token for token_cache_seconds (5 s) after another
    # process (here the admin CLI) revoked it.
    bearer = {"Authorization": f"Bearer {session.token}"}
    deadline = time.monotonic() + 60
    status = 200
    while time.monotonic() < deadline:
        status = httpx.get(f"{session.api}/task_list", headers=bearer, timeout=30).status_code
        if status == 401:
            break
        time.sleep(0.5)
    assert status == 401
    with httpx.Client(base_url=server.url, timeout=30) as again, pytest.raises(AssertionError):
        log_in(again, username, password)  # a disabled account cannot log in
    enabled = server.admin("user", "enable", username)
    assert enabled.returncode == 0, enabled.stderr
    with logged_in_browser(server, username, password):
        pass
    print("\nRELIABILITY sessions: disabled user -> browser 303, access token 401, login 401")


def test_sessions_end_after_idle_timeout_and_absolute_lifetime(
    server_factory: Callable[..., LiveServer],
) -> None:
    live = server_factory(
        extra_env={
            "ARCTERN_WEB_SESSION_IDLE_SECONDS": "600",
            "ARCTERN_WEB_SESSION_LIFETIME_SECONDS": "1800",
        }
    )
    username, password = make_user(live, "idle")
    with logged_in_browser(live, username, password) as browser:
        live.set_clock_offset(599)
        assert browser.get("/developers").status_code == 200
        live.set_clock_offset(599 + 601)  # idle for longer than 600 s
        assert browser.get("/developers").status_code == 303

    # Active all the time (a request every 300 s), yet out after 1800 s.
    start = 599 + 601
    with logged_in_browser(live, username, password) as browser:
        statuses = []
        for step in range(1, 8):
            live.set_clock_offset(start + step * 300)
            statuses.append(browser.get("/developers").status_code)
    assert statuses[:5] == [200] * 5, statuses  # up to 1500 s
    assert statuses[6] == 303, statuses  # 2100 s after the login
    print(f"\nRELIABILITY sessions: idle 600 s and lifetime 1800 s enforced: {statuses}")
