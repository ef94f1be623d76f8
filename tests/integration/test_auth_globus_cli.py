"""The unmodified globus-cli logs in, inspects its session and logs out against a live server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.auth_flow import authorize_over_http
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

GLOBUS = str(Path(sys.executable).with_name("globus"))
REPO = Path(__file__).resolve().parents[2]


def globus(server: LiveServer, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GLOBUS, *args],
        env=server.client_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def globus_login(server: LiveServer, home: Path) -> subprocess.CompletedProcess[str]:
    """``globus login --no-local-server``: read the URL, log in over HTTP, paste the code."""
    process = subprocess.Popen(
        [GLOBUS, "login", "--no-local-server"],
        env=server.client_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    url = None
    seen = []
    while url is None:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.strip().startswith("http"):
            url = line.strip()
    if url is None:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"globus login printed no URL:\n{''.join(seen)}\n{err}")
    assert "prompt=login" in url
    code = authorize_over_http(server.url, url, DEMO_USERNAME, DEMO_PASSWORD)
    out, err = process.communicate(code + "\n", timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(seen) + out, err)


def stored_cli_tokens(home: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The token rows and templated client credentials the CLI keeps in its SQLite store."""
    with sqlite3.connect(home / ".globus" / "cli" / "storage.db") as db:
        rows = [json.loads(r[0]) for r in db.execute("SELECT token_data_json FROM token_storage")]
        (config,) = db.execute(
            "SELECT config_data_json FROM config_storage WHERE config_name='auth_client_data'"
        ).fetchone()
    return rows, json.loads(config)


def validate(server: LiveServer, client: dict[str, str], token: str) -> bool:
    response = httpx.post(
        f"{server.url}/auth/v2/oauth2/token/validate",
        data={"token": token},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def test_globus_cli_login_whoami_session_logout(server: LiveServer, tmp_path: Path) -> None:
    login = globus_login(server, tmp_path)
    assert login.returncode == 0, login.stdout + login.stderr
    assert "You have successfully logged in" in login.stdout

    whoami = globus(server, tmp_path, "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.strip() == DEMO_USERNAME

    whoami_json = globus(server, tmp_path, "whoami", "--format", "json")
    assert whoami_json.returncode == 0, whoami_json.stderr
    assert json.loads(whoami_json.stdout)["preferred_username"] == DEMO_USERNAME

    session = globus(server, tmp_path, "session", "show")
    assert session.returncode == 0, session.stderr
    assert DEMO_USERNAME in session.stdout

    # Logging in again is a no-op (the CLI validates every stored refresh token).
    again = globus(server, tmp_path, "login")
    assert again.returncode == 0, again.stderr
    assert "already logged in" in again.stdout.lower()

    stored, client = stored_cli_tokens(tmp_path)
    assert {row["resource_server"] for row in stored} >= {
        "auth.globus.org",
        "transfer.api.globus.org",
    }
    refresh = [row["refresh_token"] for row in stored]
    assert all(validate(server, client, token) for token in refresh)

    logout = globus(server, tmp_path, "logout", "--yes")
    assert logout.returncode == 0, logout.stderr
    assert "logged out" in logout.stdout.lower()
    # The CLI revoked every token using the template's client id, and the server obeyed.
    assert not any(validate(server, client, token) for token in refresh)

    after = globus(server, tmp_path, "whoami")
    assert after.returncode != 0
    assert "login" in (after.stdout + after.stderr).lower()


def test_globus_cli_default_login_uses_a_loopback_redirect(
    server: LiveServer, tmp_path: Path
) -> None:
    """Plain ``globus login``: the CLI opens BROWSER and waits on http://localhost:<port>."""
    env = server.client_env(tmp_path)
    env["BROWSER"] = f"{sys.executable} -m tests.support.auth_flow %s"
    env["PYTHONPATH"] = str(REPO)
    for variable in ("SSH_TTY", "SSH_CONNECTION"):
        env.pop(variable, None)
    login = subprocess.run(
        [GLOBUS, "login"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert login.returncode == 0, login.stdout + login.stderr
    assert "You have successfully logged in" in login.stdout
    whoami = globus(server, tmp_path, "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.strip() == DEMO_USERNAME
