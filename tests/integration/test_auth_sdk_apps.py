"""globus-sdk GlobusApp (UserApp with the command-line login flow, ClientApp) on a live server."""

from __future__ import annotations

import re
from pathlib import Path

import globus_sdk
import pytest

from tests.support.auth_flow import (
    authorize_over_http,
    create_confidential_client,
    create_native_client,
)
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer


@pytest.fixture
def sdk_env(server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point globus-sdk at the server and give it a private HOME for its token files."""
    for key, value in server.client_env(tmp_path).items():
        if key == "HOME" or key.startswith("GLOBUS_SDK_"):
            monkeypatch.setenv(key, value)
    return tmp_path


def feed_code_to_input(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """Replace ``input()`` with a 'user' who opens the printed URL and types the code back."""
    urls: list[str] = []

    def fake_input(prompt: str = "") -> str:
        printed = capsys.readouterr().out
        url = next(line.strip() for line in printed.splitlines() if line.strip().startswith("http"))
        urls.append(url)
        return authorize_over_http(server.url, url, DEMO_USERNAME, DEMO_PASSWORD)

    monkeypatch.setattr("builtins.input", fake_input)
    return urls


def test_user_app_command_line_login(
    server: LiveServer,
    sdk_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client_id = create_native_client(server, name="Tutorial App")
    urls = feed_code_to_input(server, monkeypatch, capsys)
    app = globus_sdk.UserApp("tutorial", client_id=client_id)
    globus_sdk.TransferClient(app=app)  # registers the transfer scope requirement
    auth = globus_sdk.AuthClient(app=app)

    app.login()
    assert len(urls) == 1
    assert "/auth/v2/oauth2/authorize?" in urls[0]
    assert "redirect_uri=" + "http%3A%2F%2F127.0.0.1" in urls[0]

    assert auth.userinfo()["preferred_username"] == DEMO_USERNAME
    header = app.get_authorizer("transfer.api.globus.org").get_authorization_header()
    assert header is not None and header.startswith("Bearer ")
    token_file = sdk_env / ".globus" / "app" / client_id / "tutorial" / "arctern-tokens.json"
    assert token_file.exists()

    # A second app instance reuses the stored tokens without prompting.
    again = globus_sdk.UserApp("tutorial", client_id=client_id)
    globus_sdk.TransferClient(app=again)
    assert again.login_required() is False
    assert len(urls) == 1


def test_user_app_dependent_scope_is_checked_through_consents(
    server: LiveServer,
    sdk_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client_id = create_native_client(server, name="Data Access App")
    urls = feed_code_to_input(server, monkeypatch, capsys)
    app = globus_sdk.UserApp("data-access", client_id=client_id)
    transfer = globus_sdk.TransferClient(app=app)
    # A collection that exists: data_access scopes of unknown collections are invalid_scope.
    listed = server.admin("collection", "list").stdout
    collection = re.findall(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", listed
    )[0]
    transfer.add_app_data_access_scope(collection)

    app.login()
    assert len(urls) == 1
    assert "data_access" in urls[0]
    # The consent tree (transfer:all -> data_access) now satisfies the requirement.
    assert app.login_required() is False


def test_client_app_uses_client_credentials(server: LiveServer, sdk_env: Path) -> None:
    client_id, secret = create_confidential_client(server, name="Automation")
    app = globus_sdk.ClientApp(
        "automation",
        client_id=client_id,
        client_secret=secret,
        config=globus_sdk.GlobusAppConfig(token_storage="memory"),
    )
    globus_sdk.TransferClient(app=app)
    header = app.get_authorizer("transfer.api.globus.org").get_authorization_header()
    assert header is not None and header.startswith("Bearer ")
