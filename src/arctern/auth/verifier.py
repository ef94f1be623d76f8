"""Bearer-token verification: the only auth module other packages import."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from arctern.auth.hashing import digest
from arctern.context import AppContext
from arctern.db.models.auth import Identity, OAuthToken


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
        if not access_token or len(access_token) > 512:
            return None
        async with self._ctx.db.session() as session:
            row = (
                await session.execute(
                    select(OAuthToken, Identity.username)
                    .outerjoin(Identity, Identity.id == OAuthToken.identity_id)
                    .where(OAuthToken.access_token_hash == digest(access_token))
                )
            ).first()
        if row is None:
            return None
        token, username = row
        if token.access_revoked or token.expires_at <= self._ctx.clock.now():
            return None
        return AccessGrant(
            identity_id=token.identity_id,
            username=username,
            client_id=token.client_id,
            scopes=frozenset(token.scope.split()),
            resource_server=token.resource_server,
        )
