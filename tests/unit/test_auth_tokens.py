"""The Globus-shaped token generator and the CLI template bootstrap, on an in-memory database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from authlib.oauth2.rfc6749 import InvalidScopeError
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import arctern.db.models  # noqa: F401  (registers every table)
from arctern.auth.keys import load_or_create_signing_key
from arctern.auth.oauth import ArcternAuthorizationServer, ClientView, ensure_builtin_client
from arctern.auth.registry import CLI_TEMPLATE_ID, CONFIDENTIAL, CONNECT_CLIENT_ID
from arctern.config import Settings
from arctern.db.base import Base
from arctern.db.models.auth import OAuthClient

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TRANSFER = "urn:globus:auth:scope:transfer.api.globus.org:all"


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        yield db
    engine.dispose()


@pytest.fixture
def server(session: Session, tmp_path: Path) -> ArcternAuthorizationServer:
    settings = Settings(home=tmp_path, access_token_lifetime=3600)
    return ArcternAuthorizationServer(
        session,
        settings,
        load_or_create_signing_key(tmp_path),
        NOW,
        issuer="http://h/auth",
        auth_code_pages=frozenset(),
    )


def client_view() -> ClientView:
    row = OAuthClient(id=uuid.uuid4(), name="c", client_type=CONFIDENTIAL, created_at=NOW)
    return ClientView(row, [], frozenset())


def test_one_token_per_resource_server_auth_on_top(server: ArcternAuthorizationServer) -> None:
    token = server.generate_globus_token(
        "authorization_code", client_view(), scope=f"{TRANSFER} openid email"
    )
    assert token["resource_server"] == "auth.globus.org"
    assert token["scope"] == "openid email"
    assert token["expires_in"] == 3600 and token["token_type"] == "Bearer"
    (other,) = token["other_tokens"]
    assert other["resource_server"] == "transfer.api.globus.org"
    assert other["scope"] == TRANSFER
    assert token["refresh_token"] != other["refresh_token"]
    assert token["access_token"] != other["access_token"]


def test_single_resource_server_and_no_refresh(server: ArcternAuthorizationServer) -> None:
    token = server.generate_globus_token(
        "client_credentials", client_view(), scope=TRANSFER, include_refresh_token=False
    )
    assert token["other_tokens"] == [] and "refresh_token" not in token


@pytest.mark.parametrize("scope", [None, "", "nonsense", f"{TRANSFER}["])
def test_bad_scopes_are_invalid_scope(
    server: ArcternAuthorizationServer, scope: str | None
) -> None:
    with pytest.raises(InvalidScopeError):
        server.generate_globus_token("client_credentials", client_view(), scope=scope)


def test_builtin_native_clients_are_created_once(session: Session) -> None:
    first = ensure_builtin_client(session, NOW, CLI_TEMPLATE_ID)
    second = ensure_builtin_client(session, NOW, CLI_TEMPLATE_ID)
    assert first is second and first.id == CLI_TEMPLATE_ID and first.is_public
    connect = ensure_builtin_client(session, NOW, CONNECT_CLIENT_ID)
    assert connect.name == "Arctern Connect" and connect.is_public
    assert len(list(session.scalars(select(OAuthClient)))) == 2


def test_signing_key_is_persisted(tmp_path: Path) -> None:
    first = load_or_create_signing_key(tmp_path)
    second = load_or_create_signing_key(tmp_path)
    assert first.kid == second.kid
    jwks = first.jwks()
    assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]
