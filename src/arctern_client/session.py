"""A logged-in user of one deployment, with the notebook operations bound to their client."""

from __future__ import annotations

import contextlib
import html
import uuid
from collections.abc import Iterable
from typing import Any

import globus_sdk
from globus_sdk.token_storage import TokenStorage

from arctern_client import operations
from arctern_client.deployment import Deployment
from arctern_client.display import FileListing, TaskTable, TaskView
from arctern_client.errors import LoginError
from arctern_client.locations import Collection, CollectionResolver
from arctern_client.tokens import (
    AUTH_RESOURCE_SERVER,
    TRANSFER_RESOURCE_SERVER,
    authorizer_for,
    store_tokens,
    stored_username,
    usable_transfer_tokens,
)


class Session:
    """What :func:`arctern_client.login` returns.

    Until the authorization code has been entered (in the notebook's text box) the session is
    *pending*: every operation raises :class:`LoginError` saying so.
    """

    def __init__(self, deployment: Deployment, client_id: str, storage: TokenStorage) -> None:
        self.deployment = deployment
        self.client_id = client_id
        self.storage = storage
        self.auth_client = deployment.native_auth_client(client_id)
        self.identity_id: str | None = None
        self.username: str | None = None
        self._transfer: globus_sdk.TransferClient | None = None
        self._resolver: CollectionResolver | None = None
        #: The code box of a pending notebook login (``login(prompt="widget")``), if any.
        self.login_widget: Any = None

    # -- login state -----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._transfer is not None

    def _activate(self) -> None:
        data = usable_transfer_tokens(self.storage)
        if data is None:
            raise LoginError("No usable Transfer tokens are stored; log in again.")
        self.identity_id = self.identity_id or data.identity_id
        self.username = self.username or stored_username(data)
        authorizer = authorizer_for(data, self.auth_client, self.storage)
        self._transfer = self.deployment.transfer_client(authorizer)
        self._resolver = CollectionResolver(self._transfer)

    def _complete(self, response: globus_sdk.OAuthTokenResponse) -> None:
        """Store the tokens of a successful code exchange and start using them."""
        by_resource_server = dict(response.by_resource_server)
        if TRANSFER_RESOURCE_SERVER not in by_resource_server:
            raise LoginError(
                "The login succeeded but Transfer access was not granted "
                f"(got tokens for: {', '.join(by_resource_server) or 'nothing'})."
            )
        self.identity_id, self.username = _identity(response)
        store_tokens(self.storage, by_resource_server, self.identity_id, self.username)
        self._activate()

    @property
    def transfer_client(self) -> globus_sdk.TransferClient:
        """The authenticated :class:`globus_sdk.TransferClient` (refreshes its own token)."""
        if self._transfer is None:
            raise LoginError(
                "Not logged in yet: open the link shown by login() and enter the code it gives."
            )
        return self._transfer

    @property
    def resolver(self) -> CollectionResolver:
        self.transfer_client  # noqa: B018 - raises the "not logged in" error
        assert self._resolver is not None
        return self._resolver

    def whoami(self) -> dict[str, Any]:
        """The user's OpenID Connect userinfo (username, name, email)."""
        data = self.storage.get_token_data(AUTH_RESOURCE_SERVER)
        if data is None:
            raise LoginError("No Auth token is stored; log in again to see who you are.")
        auth = globus_sdk.AuthClient(
            authorizer=authorizer_for(data, self.auth_client, self.storage),
            environment=self.deployment.environment,
            base_url=self.deployment.auth_url,
        )
        info = dict(auth.userinfo().data)
        self.username = info.get("preferred_username") or self.username
        return info

    def logout(self) -> None:
        """Revoke the stored tokens (best effort) and forget them."""
        for resource_server, data in self.storage.get_token_data_by_resource_server().items():
            for token in (data.refresh_token, data.access_token):
                if token:
                    # An already invalid token only needs forgetting, done below.
                    with contextlib.suppress(globus_sdk.GlobusAPIError):
                        self.auth_client.oauth2_revoke_token(token)
            self.storage.remove_token_data(resource_server)
        self._transfer = None
        self._resolver = None

    # -- Transfer operations -----------------------------------------------------------------

    def collection(self, name_or_id: str) -> Collection:
        """Look a collection up by display name (exact, case-insensitive) or ID."""
        return self.resolver.resolve(name_or_id)

    def ls(
        self, location: str, path: str | None = None, *, show_hidden: bool = False
    ) -> FileListing:
        """``ls("Demo Collection 1:/nested/")`` or ``ls("Demo Collection 1", "/nested/")``."""
        return operations.ls(
            self.transfer_client, location, path, show_hidden=show_hidden, resolver=self.resolver
        )

    def transfer(self, source: str, destination: str, **kwargs: Any) -> operations.SubmittedTask:
        """Submit ``collection:path`` → ``collection:path``; see :func:`operations.transfer`."""
        kwargs.setdefault("resolver", self.resolver)
        return operations.transfer(self.transfer_client, source, destination, **kwargs)

    def task(self, task_id: str | uuid.UUID) -> TaskView:
        return operations.get_task(self.transfer_client, task_id)

    def tasks(
        self,
        status: str | Iterable[str] | None = None,
        *,
        limit: int = 20,
        dataframe: bool | None = None,
    ) -> Any:
        """Recent tasks (a DataFrame with pandas installed, else a :class:`TaskTable`)."""
        return operations.tasks(self.transfer_client, status, limit=limit, dataframe=dataframe)

    def task_table(
        self, status: str | Iterable[str] | None = None, *, limit: int = 20
    ) -> TaskTable:
        return operations.task_table(self.transfer_client, status, limit=limit)

    def cancel(self, task_id: str | uuid.UUID) -> dict[str, Any]:
        return operations.cancel(self.transfer_client, task_id)

    def watch(self, task_id: str | uuid.UUID, **kwargs: Any) -> TaskView:
        """A live progress bar until the task ends; see :func:`operations.watch`."""
        return operations.watch(self.transfer_client, task_id, **kwargs)

    # -- display -----------------------------------------------------------------------------

    def _state(self) -> str:
        where = self.deployment.base_url or self.deployment.environment
        if not self.ready:
            return f"Waiting for the authorization code to log in to {where}"
        who = self.username or self.identity_id or "unknown user"
        return f"Logged in to {where} as {who}"

    def __repr__(self) -> str:
        return f"<arctern_client.Session: {self._state()}>"

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self._state())}</p>"


def _identity(response: globus_sdk.OAuthTokenResponse) -> tuple[str | None, str | None]:
    """(identity ID, username) from the id_token, when one came back and can be verified."""
    if not response.get("id_token"):
        return None, None
    try:
        claims = response.decode_id_token()
    except Exception:  # the login itself succeeded; the name is only cosmetic
        return None, None
    return claims.get("sub"), claims.get("preferred_username")
