"""login(): native-app flow, saved tokens reused and refreshed, clear errors, widget and input."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import responses

from arctern_client import LoginError, login
from arctern_client.deployment import Deployment
from arctern_client.login import LoginFlow, WidgetLogin
from arctern_client.session import Session
from arctern_client.tokens import open_storage
from tests.client.conftest import AUTH, TRANSFER_API, task_doc, token_response

CLIENT_ID = "6b2f1f6e-5e8c-4f3e-9a57-3d0b1f2c4a10"
TOKEN_URL = f"{AUTH}v2/oauth2/token"
INVALID_GRANT = {"error": "invalid_grant", "error_description": "Invalid authorization code"}


def _form(call: Any) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(call.request.body))


def test_login_with_a_code_provider_then_reuse(
    http: responses.RequestsMock, deployment: Deployment, tmp_path: Path
) -> None:
    token = http.post(TOKEN_URL, json=token_response())
    links: list[str] = []

    def provider(url: str) -> str:
        links.append(url)
        return " the-code \n"

    token_file = tmp_path / "tokens.json"
    session = login(CLIENT_ID, deployment=deployment, token_file=token_file, code_provider=provider)
    assert session.ready
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(links[0]).query))
    assert links[0].startswith(f"{AUTH}v2/oauth2/authorize?")
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{AUTH}v2/web/auth-code"
    assert query["access_type"] == "offline"
    assert "urn:globus:auth:scope:transfer.api.globus.org:all" in query["scope"]
    assert query["code_challenge_method"] == "S256"
    form = _form(token.calls[0])
    assert form["code"] == "the-code" and form["grant_type"] == "authorization_code"
    assert form["code_verifier"]

    stored = json.loads(token_file.read_text())["data"][f"{CLIENT_ID}@{AUTH}"]
    assert stored["transfer.api.globus.org"]["refresh_token"] == "refresh-1"
    assert oct(token_file.stat().st_mode)[-3:] == "600"

    # A restarted kernel: no link, no code, no request.
    again = login(CLIENT_ID, deployment=deployment, token_file=token_file, prompt="input")
    assert again.ready and token.call_count == 1
    http.get(f"{TRANSFER_API}/task/x", json=task_doc())
    assert again.task("x").status == "ACTIVE"
    assert http.calls[-1].request.headers["Authorization"] == "Bearer access-1"


def test_tokens_are_per_deployment(
    http: responses.RequestsMock, deployment: Deployment, tmp_path: Path
) -> None:
    http.post(TOKEN_URL, json=token_response())
    token_file = tmp_path / "tokens.json"
    login(CLIENT_ID, deployment=deployment, token_file=token_file, code_provider=lambda _: "c")
    other = Deployment(auth_url="https://other.test/auth/", transfer_url="https://other.test/t/")
    assert open_storage(CLIENT_ID, other.key, token_file).get_token_data_by_resource_server() == {}


def test_expired_or_reused_code_is_explained(
    http: responses.RequestsMock, deployment: Deployment, tmp_path: Path
) -> None:
    http.post(TOKEN_URL, status=400, json=INVALID_GRANT)
    with pytest.raises(LoginError, match=r"expired, was already used.*10 minutes"):
        login(
            CLIENT_ID,
            deployment=deployment,
            token_file=tmp_path / "t.json",
            code_provider=lambda _: "old",
        )
    assert not (tmp_path / "t.json").exists() or "transfer" not in (tmp_path / "t.json").read_text()


def test_the_servers_own_sentence_is_passed_on(
    http: responses.RequestsMock, deployment: Deployment, tmp_path: Path
) -> None:
    said = (
        "This authorization code expired at 17:25 UTC; codes last 10 minutes. "
        "Log in again for a new code."
    )
    http.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": said})
    with pytest.raises(LoginError) as refused:
        login(
            CLIENT_ID,
            deployment=deployment,
            token_file=tmp_path / "t.json",
            code_provider=lambda _: "old",
        )
    assert str(refused.value) == said


def test_other_token_errors_are_reported(
    http: responses.RequestsMock, deployment: Deployment, tmp_path: Path
) -> None:
    http.post(TOKEN_URL, status=401, json={"error": "invalid_client", "error_description": "nope"})
    with pytest.raises(LoginError, match=r"Logging in failed \(401 invalid_client\): nope"):
        login(
            CLIENT_ID,
            deployment=deployment,
            token_file=tmp_path / "t.json",
            code_provider=lambda _: "c",
        )


def test_input_prompt_offers_a_new_link_after_a_rejected_code(
    http: responses.RequestsMock,
    deployment: Deployment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    http.post(TOKEN_URL, status=400, json=INVALID_GRANT)
    http.post(TOKEN_URL, json=token_response())
    answers = iter(["typo", "good"])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(answers))
    session = login(CLIENT_ID, deployment=deployment, token_file=tmp_path / "t.json")
    assert session.ready
    out = capsys.readouterr().out
    links = [line for line in out.splitlines() if line.startswith(AUTH)]
    assert len(links) == 2 and links[0] != links[1]  # a fresh PKCE challenge
    assert "was not accepted" in out and "Logged in." in out


def test_input_prompt_without_a_code(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("builtins.input", lambda _prompt="": "  ")
    with pytest.raises(LoginError, match="No authorization code was entered"):
        login(CLIENT_ID, deployment=deployment, token_file=tmp_path / "t.json", prompt="input")


def test_refresh_is_saved_for_the_next_kernel(
    http: responses.RequestsMock, deployment: Deployment, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens.json"
    expired = token_response()
    expired["other_tokens"][0]["expires_in"] = -100
    http.post(TOKEN_URL, json=expired)
    login(CLIENT_ID, deployment=deployment, token_file=token_file, code_provider=lambda _: "c")

    refreshed = {
        "access_token": "access-2",
        "scope": "urn:globus:auth:scope:transfer.api.globus.org:all",
        "resource_server": "transfer.api.globus.org",
        "expires_in": 3600,
        "token_type": "Bearer",
        "other_tokens": [],
    }
    refresh = http.post(TOKEN_URL, json=refreshed)
    http.get(f"{TRANSFER_API}/task/x", json=task_doc())
    session = login(CLIENT_ID, deployment=deployment, token_file=token_file)
    session.task("x")
    assert _form(refresh.calls[-1]) == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
        "client_id": CLIENT_ID,
    }
    assert http.calls[-1].request.headers["Authorization"] == "Bearer access-2"
    data = open_storage(CLIENT_ID, deployment.key, token_file).get_token_data(
        "transfer.api.globus.org"
    )
    assert data is not None
    # The refresh response had no refresh_token: the old one is kept.
    assert (data.access_token, data.refresh_token) == ("access-2", "refresh-1")
    assert data.expires_at_seconds > time.time()


def test_grant_without_transfer_access(
    http: responses.RequestsMock, deployment: Deployment, tmp_path: Path
) -> None:
    only_auth = token_response()
    only_auth["other_tokens"] = []
    http.post(TOKEN_URL, json=only_auth)
    with pytest.raises(LoginError, match="Transfer access was not granted"):
        login(
            CLIENT_ID,
            deployment=deployment,
            token_file=tmp_path / "t.json",
            code_provider=lambda _: "c",
        )


def test_widget_login(http: responses.RequestsMock, deployment: Deployment, tmp_path: Path) -> None:
    session = Session(
        deployment, CLIENT_ID, open_storage(CLIENT_ID, deployment.key, tmp_path / "t")
    )
    widget = WidgetLogin(LoginFlow(deployment, CLIENT_ID), session)
    assert "Waiting for the authorization code" in repr(session)
    with pytest.raises(LoginError, match="Not logged in yet"):
        session.tasks()
    first_link = widget.link.value
    assert 'target="_blank"' in first_link and "10 minutes" in first_link

    http.post(TOKEN_URL, status=400, json=INVALID_GRANT)
    widget.code.value = "stale"
    widget.submit()
    assert "was not accepted" in widget.status.value
    assert widget.link.value != first_link and widget.code.value == ""
    assert not session.ready

    http.post(TOKEN_URL, json=token_response())
    widget.code.value = "fresh"
    widget.submit()
    assert session.ready and widget.button.disabled
    assert "Logged in" in widget.status.value


def test_client_id_is_required(deployment: Deployment) -> None:
    with pytest.raises(LoginError, match="client ID is required"):
        login("  ", deployment=deployment)
