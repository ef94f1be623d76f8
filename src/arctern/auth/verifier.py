"""Bearer-token verification: the only auth module other packages import."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, bindparam, select

from arctern.auth.hashing import digest
from arctern.context import AppContext
from arctern.db.models.auth import Identity, OAuthToken

# The ``Database`` topic a transaction marks (``mark_changed``) when it revokes or deletes
# access tokens; verifiers of this process then forget every cached grant.
TOKENS_REVOKED = "oauth_token.revoked"

_GRANT = (
    select(
        OAuthToken.identity_id,
        OAuthToken.client_id,
        OAuthToken.scope,
        OAuthToken.resource_server,
        OAuthToken.expires_at,
        OAuthToken.access_revoked,
        Identity.username,
    )
    .outerjoin(Identity, Identity.id == OAuthToken.identity_id)
    .where(OAuthToken.access_token_hash == bindparam("digest"))
)


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """Who an access token speaks for, and what it may do."""

    identity_id: uuid.UUID | None  # None for client_credentials tokens without a user
    username: str | None
    client_id: uuid.UUID
    scopes: frozenset[str]
    resource_server: str


class GrantCache:
    """Grants of recently verified access tokens, by token digest, for ``ttl`` seconds.

    Only valid tokens are kept (an unknown token costs a query every time, and cannot fill
    the cache). The token's own expiry is still checked on every hit. ``clear`` runs after
    this process commits a revocation; a grant read concurrently with that revocation is
    not stored (the generation changed). Revocations committed by another process (another
    API host, ``arctern client delete``) are seen at the latest ``ttl`` seconds later.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[str, tuple[AccessGrant, datetime, float]] = {}

    def get(self, key: str) -> tuple[AccessGrant, datetime] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        grant, expires_at, stored = entry
        if time.monotonic() - stored >= self.ttl:
            self._entries.pop(key, None)
            return None
        return grant, expires_at

    def put(self, key: str, grant: AccessGrant, expires_at: datetime, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            # Oldest first (dicts keep insertion order); stale ones would expire anyway.
            for old in list(self._entries)[: self.max_entries // 10 or 1]:
                del self._entries[old]
        self._entries[key] = (grant, expires_at, time.monotonic())

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


class TokenVerifier:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._cache = GrantCache(ctx.settings.token_cache_seconds)
        ctx.db.subscribe(TOKENS_REVOKED, self._cache.clear)

    @property
    def ctx(self) -> AppContext:
        return self._ctx

    async def verify(self, access_token: str) -> AccessGrant | None:
        """The grant behind an active, unexpired, unrevoked access token; else None."""
        if not access_token or len(access_token) > 512:
            return None
        key = digest(access_token)
        cached = self._cache.get(key)
        if cached is not None:
            grant, valid_until = cached
            return grant if valid_until > self._ctx.clock.now() else None
        generation = self._cache.generation

        def load(connection: Connection) -> RowMapping | None:
            return connection.execute(_GRANT, {"digest": key}).mappings().first()

        row = await self._ctx.db.lookup(load)
        if row is None or row["access_revoked"]:
            return None
        grant = AccessGrant(
            identity_id=row["identity_id"],
            username=row["username"],
            client_id=row["client_id"],
            scopes=frozenset(row["scope"].split()),
            resource_server=row["resource_server"],
        )
        expires_at: datetime = row["expires_at"]
        if expires_at <= self._ctx.clock.now():
            return None
        self._cache.put(key, grant, expires_at, generation)
        return grant
