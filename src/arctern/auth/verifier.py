"""Bearer-token verification: the only auth module other packages import."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from arctern.context import AppContext


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """Who an access token speaks for, and what it may do."""

    identity_id: uuid.UUID | None  # None for client_credentials tokens without a user
    username: str | None
    client_id: uuid.UUID
    scopes: frozenset[str]
    resource_server: str


class TokenVerifier:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    async def verify(self, access_token: str) -> AccessGrant | None:
        """The grant behind an active, unexpired, unrevoked access token; else None."""
        return None
