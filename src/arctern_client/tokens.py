"""Where logins are kept between kernel restarts: a globus-sdk JSON token file per user."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import globus_sdk
from globus_sdk.token_storage import JSONTokenStorage, TokenStorage, TokenStorageData

TRANSFER_RESOURCE_SERVER = "transfer.api.globus.org"
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
AUTH_RESOURCE_SERVER = "auth.globus.org"
# Seconds of validity an access token must have left to be used without a refresh token.
_MIN_REMAINING = 60


class _SavedTokenData(TokenStorageData):
    """Token data whose extra fields (the username a later session greets the user by) are
    written too: globus-sdk's storages save ``to_dict()``, which leaves extras out unless
    asked; reading puts unknown fields back into ``extra``."""

    def to_dict(self, include_extra: bool = True) -> dict[str, Any]:
        return super().to_dict(include_extra=True)


def default_token_file() -> Path:
    return Path.home() / ".arctern-client" / "tokens.json"


def open_storage(
    client_id: str, deployment_key: str, token_file: Path | str | None = None
) -> JSONTokenStorage:
    """One namespace per (app, deployment): two servers or two apps never share tokens."""
    path = Path(token_file) if token_file is not None else default_token_file()
    return JSONTokenStorage(path, namespace=f"{client_id}@{deployment_key}")


def usable_transfer_tokens(storage: TokenStorage) -> TokenStorageData | None:
    """Stored Transfer tokens that can still produce a valid access token, if any."""
    data = storage.get_token_data(TRANSFER_RESOURCE_SERVER)
    if data is None or TRANSFER_SCOPE not in data.scope.split():
        return None
    if data.refresh_token or data.expires_at_seconds > time.time() + _MIN_REMAINING:
        return data
    return None


def store_tokens(
    storage: TokenStorage,
    by_resource_server: dict[str, Any],
    identity_id: str | None,
    username: str | None = None,
) -> None:
    """Save a code-exchange or refresh response, keeping what a refresh does not resend (the
    refresh token, the identity and its username, which a later session greets by)."""
    previous = storage.get_token_data_by_resource_server()
    records: dict[str, TokenStorageData] = {}
    for resource_server, token in by_resource_server.items():
        old = previous.get(resource_server)
        records[resource_server] = _SavedTokenData(
            resource_server=resource_server,
            identity_id=identity_id or (old.identity_id if old else None),
            scope=token["scope"],
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token") or (old.refresh_token if old else None),
            expires_at_seconds=int(token["expires_at_seconds"]),
            token_type=token.get("token_type"),
            extra={"username": username or (stored_username(old) if old else None)},
        )
    storage.store_token_data_by_resource_server(records)


def authorizer_for(
    data: TokenStorageData,
    auth_client: globus_sdk.NativeAppAuthClient,
    storage: TokenStorage,
) -> globus_sdk.authorizers.GlobusAuthorizer:
    """A refreshing authorizer when a refresh token exists, else the bare access token."""
    if not data.refresh_token:
        return globus_sdk.AccessTokenAuthorizer(data.access_token)

    def on_refresh(response: globus_sdk.OAuthRefreshTokenResponse) -> None:
        store_tokens(storage, dict(response.by_resource_server), None)

    return globus_sdk.RefreshTokenAuthorizer(
        data.refresh_token,
        auth_client,
        access_token=data.access_token,
        expires_at=data.expires_at_seconds,
        on_refresh=on_refresh,
    )


def stored_username(data: TokenStorageData) -> str | None:
    value = (data.extra or {}).get("username")
    return value if isinstance(value, str) and value else None
