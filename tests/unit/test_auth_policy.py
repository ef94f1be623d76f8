"""Redirect-URI policy, safe ``next`` targets and the OAuth error document shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from arctern.auth.oauth import ClientView, oauth_error_body
from arctern.auth.pages import safe_next
from arctern.auth.registry import CLI_TEMPLATE_ID, CONFIDENTIAL, PUBLIC
from arctern.db.models.auth import OAuthClient

AUTH_CODE_PAGE = "http://127.0.0.1:8765/auth/v2/web/auth-code"


def view(client_type: str, uris: list[str], parent: uuid.UUID | None = None) -> ClientView:
    row = OAuthClient(
        id=uuid.uuid4(),
        name="x",
        client_type=client_type,
        redirect_uris=uris,
        parent_client=parent,
        created_at=datetime.now(UTC),
    )
    return ClientView(row, [], frozenset({AUTH_CODE_PAGE}))


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("https://app.example.org/cb", True),
        ("https://app.example.org/cb/", False),
        ("https://app.example.org/cb?x=1", False),
        (AUTH_CODE_PAGE, True),
        ("http://localhost:50123", True),
        ("http://127.0.0.1:50123/", True),
        ("http://[::1]:4000", True),
        ("http://localhost:9999/callback", True),  # registered loopback path, any port
        ("http://localhost:9999/other", False),
        ("https://localhost:50123", False),
        ("http://localhost.evil.com:50123", False),
        ("http://127.0.0.1:50123#frag", False),
    ],
)
def test_native_redirects(uri: str, allowed: bool) -> None:
    client = view(PUBLIC, ["https://app.example.org/cb", "http://localhost:3000/callback"])
    assert client.check_redirect_uri(uri) is allowed


def test_confidential_clients_match_exactly_unless_cli_templated() -> None:
    plain = view(CONFIDENTIAL, ["https://svc.example.org/cb"])
    assert plain.check_redirect_uri("https://svc.example.org/cb")
    assert not plain.check_redirect_uri("http://localhost:5000")
    assert not plain.check_redirect_uri(AUTH_CODE_PAGE)
    cli = view(CONFIDENTIAL, [], parent=CLI_TEMPLATE_ID)
    assert cli.check_redirect_uri("http://localhost:5000")
    assert cli.check_redirect_uri(AUTH_CODE_PAGE)


def test_auth_methods_and_grants_follow_client_type() -> None:
    public, confidential = view(PUBLIC, []), view(CONFIDENTIAL, [])
    assert public.check_endpoint_auth_method("none", "token")
    assert not public.check_endpoint_auth_method("client_secret_basic", "token")
    assert not confidential.check_endpoint_auth_method("none", "token")
    assert not public.check_grant_type("client_credentials")
    assert confidential.check_grant_type("client_credentials")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/developers", "/developers"),
        ("/auth/v2/oauth2/authorize?a=1&b=2", "/auth/v2/oauth2/authorize?a=1&b=2"),
        (None, "/"),
        ("", "/"),
        ("developers", "/"),
        ("//evil.example.com", "/"),
        ("/\\evil.example.com", "/"),
        ("https://evil.example.com/", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
    ],
)
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_oauth_error_body_has_globus_errors_list() -> None:
    body = oauth_error_body({"error": "invalid_grant"}, 400)
    assert body["error"] == "invalid_grant"
    assert body["error_description"]
    (error,) = body["errors"]
    assert error["code"] == "INVALID_GRANT" and error["status"] == "400"
    assert error["detail"] == "invalid_grant"  # the CLI matches this exact message
    assert oauth_error_body({"active": False}, 200) == {"active": False}


def test_registered_redirect_uris_are_validated() -> None:
    from arctern.auth.registry import validate_redirect_uris
    from arctern.errors import InvalidRequest

    assert validate_redirect_uris([" https://a.example/cb ", "https://a.example/cb", ""]) == [
        "https://a.example/cb"
    ]
    for bad in ("not a url", "ftp://a.example/x", "https://a.example/cb#frag", "/relative"):
        with pytest.raises(InvalidRequest):
            validate_redirect_uris([bad])
