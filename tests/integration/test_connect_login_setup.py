"""``arctern connect setup`` through a login link, as a user registers their own host.

The real CLI prints a link (OAuth2 authorization code with PKCE, the agent's built-in native
client); the test logs in over HTTP as a browser would and pastes the code back on the CLI's
standard input. Covered: the endpoint is registered for that user with a 0600 credential and
serves a collection; a mistyped code and a name already taken fail with a clear message and
store nothing; a deployment that disables self-service refuses with a pointer to setup keys.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _database_args
from tests.integration.test_connect import Agent, agent_env, serves, wait_for
from tests.integration.test_transfer_api import login
from tests.support.auth_flow import authorize_over_http
from tests.support.server import (
    ARCTERN,
    DEMO_IDP,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    LiveServer,
    start_server,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("login-setup"), extra_args=_database_args(request))
    try:
        yield live
    finally:
        live.stop()


def setup_with_login(
    server: LiveServer, home: Path, name: str, code_for: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the interactive setup; answer with a real code (or ``code_for`` typed instead)."""
    process = subprocess.Popen(
        [ARCTERN, "connect", "setup", server.url, "--name", name, "--home", str(home)],
        env={**agent_env(), "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    link = ""
    while "/auth/v2/oauth2/authorize?" not in link:
        line = process.stdout.readline()
        assert line, "the CLI printed no login link"
        link = line.strip()
    code = code_for or authorize_over_http(server.url, link, DEMO_USERNAME, DEMO_PASSWORD, DEMO_IDP)
    out, err = process.communicate(code + "\n", timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_user_registers_their_host_with_a_login_link(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "connect-home"
    name = f"Instrument PC {uuid.uuid4().hex[:4]}"
    done = setup_with_login(server, home, name)
    assert done.returncode == 0, done.stderr
    assert f"Endpoint '{name}'" in done.stdout and DEMO_USERNAME in done.stdout
    assert (home / "credential.json").stat().st_mode & 0o777 == 0o600
    shown = server.admin("endpoint", "show", name)
    assert shown.returncode == 0 and DEMO_USERNAME in shown.stdout

    # The registered endpoint works like one made by an administrator.
    root = tmp_path / "data"
    root.mkdir()
    (root / "hello.txt").write_text("hello")
    agent = Agent(server, home)
    made = agent.connect("collection", "create", "--name", f"{name} data", "--posix", str(root))
    assert made.returncode == 0, made.stderr
    agent.start()
    try:
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        wait_for(lambda: serves(owner.tc, made.stdout.split()[0]), "the agent to serve")
    finally:
        agent.stop()

    # The same name again: refused, and the existing home is left alone.
    again = setup_with_login(server, tmp_path / "second-home", name)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert not (tmp_path / "second-home" / "credential.json").exists()


def test_a_mistyped_code_is_refused_and_stores_nothing(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "connect-home"
    done = setup_with_login(server, home, "Never Registered", code_for="not-a-real-code")
    assert done.returncode == 1
    assert "authorization code was refused" in done.stderr
    assert not (home / "credential.json").exists()
    listed = server.admin("endpoint", "list")
    assert "Never Registered" not in listed.stdout


def test_self_service_can_be_turned_off(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", extra_env={"ARCTERN_CONNECT_SELF_SERVICE": "false"})
    try:
        done = setup_with_login(server, tmp_path / "home", "Not Allowed")
        assert done.returncode == 1 and "arctern endpoint create" in done.stderr
        assert not (tmp_path / "home" / "credential.json").exists()
        assert "Not Allowed" not in server.admin("endpoint", "list").stdout
    finally:
        server.stop()
