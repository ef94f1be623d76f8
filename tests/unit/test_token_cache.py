"""Verified-token cache and the inline SQLite look-ups, on a real SQLite file.

Revocations committed by this process apply at once; those committed elsewhere (another API
host, the admin CLI: here a second ``Database`` on the same file) within the cache's TTL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import arctern.auth.verifier as verifier_module
import arctern.db.models  # noqa: F401  (registers every table)
from arctern.auth.hashing import digest
from arctern.auth.verifier import TOKENS_REVOKED, TokenVerifier
from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.base import Base
from arctern.db.engine import Database, mark_changed
from arctern.db.models.auth import Identity, IdentityProvider, OAuthClient, OAuthToken

TRANSFER = "urn:globus:auth:scope:transfer.api.globus.org:all"
TOKEN = "a-transfer-access-token"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> FakeMonotonic:
    fake = FakeMonotonic()
    monkeypatch.setattr(verifier_module.time, "monotonic", fake)
    return fake


def seed(path: Path, *, expires_in: timedelta = timedelta(hours=1)) -> uuid.UUID:
    """Schema, one user, one client and one transfer access token (``TOKEN``)."""
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    now = datetime.now(UTC)
    provider = IdentityProvider(name="Example", domain="example.edu", created_at=now)
    identity = Identity(provider=provider, username="alice@example.edu", created_at=now)
    client = OAuthClient(name="app", client_type="public_installed_client", created_at=now)
    with Session(engine) as session, session.begin():
        session.add_all([provider, identity, client])
        session.flush()
        session.add(
            OAuthToken(
                access_token_hash=digest(TOKEN),
                client_id=client.id,
                identity_id=identity.id,
                resource_server="transfer.api.globus.org",
                scope=TRANSFER,
                issued_at=now,
                expires_at=now + expires_in,
            )
        )
        identity_id = identity.id
    engine.dispose()
    return identity_id


def context(path: Path, **settings: object) -> AppContext:
    return AppContext.from_settings(
        Settings(home=path.parent, database_url=f"sqlite+aiosqlite:///{path}", **settings)
    )


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[AppContext]:
    seed(tmp_path / "a.db")
    context_ = context(tmp_path / "a.db")
    yield context_
    await context_.db.dispose()


async def revoke_elsewhere(path: Path) -> None:
    """Revoke ``TOKEN`` through another Database on the same file: another process."""
    other = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with other.session() as session:
            await session.execute(update(OAuthToken).values(access_revoked=True))
    finally:
        await other.dispose()


async def test_grant_is_cached_until_the_ttl_for_other_processes_revocations(
    ctx: AppContext, tmp_path: Path, monotonic: FakeMonotonic
) -> None:
    verifier = TokenVerifier(ctx)
    grant = await verifier.verify(TOKEN)
    assert grant is not None and grant.username == "alice@example.edu"
    assert TRANSFER in grant.scopes and grant.resource_server == "transfer.api.globus.org"
    await revoke_elsewhere(tmp_path / "a.db")
    monotonic.now += ctx.settings.token_cache_seconds - 0.1
    assert await verifier.verify(TOKEN) == grant  # the documented bound
    monotonic.now += 0.2
    assert await verifier.verify(TOKEN) is None


async def test_revocation_committed_in_this_process_applies_at_once(
    ctx: AppContext, monotonic: FakeMonotonic
) -> None:
    api, auth = TokenVerifier(ctx), TokenVerifier(ctx)  # as the app has: one per sub-app
    assert await api.verify(TOKEN) is not None
    assert await auth.verify(TOKEN) is not None
    async with ctx.db.session() as session:
        await session.execute(update(OAuthToken).values(access_revoked=True))
        mark_changed(session, TOKENS_REVOKED)
        # Not yet committed: a concurrent verification still sees the token as valid.
        assert await api.verify(TOKEN) is not None
    assert await api.verify(TOKEN) is None
    assert await auth.verify(TOKEN) is None


async def test_a_rolled_back_revocation_keeps_the_cache(
    ctx: AppContext, tmp_path: Path, monotonic: FakeMonotonic
) -> None:
    verifier = TokenVerifier(ctx)
    assert await verifier.verify(TOKEN) is not None
    await revoke_elsewhere(tmp_path / "a.db")
    with pytest.raises(RuntimeError):
        async with ctx.db.session() as session:
            mark_changed(session, TOKENS_REVOKED)
            raise RuntimeError("rolled back")
    assert await verifier.verify(TOKEN) is not None  # nothing committed, nothing announced


async def test_a_grant_read_during_a_revocation_is_not_stored(
    ctx: AppContext, tmp_path: Path, monotonic: FakeMonotonic
) -> None:
    verifier = TokenVerifier(ctx)
    real_lookup = ctx.db.lookup

    async def lookup_then_revoke(fn: Callable[[Connection], Any]) -> Any:
        row = await real_lookup(fn)  # read before the revocation commits...
        async with ctx.db.session() as session:
            await session.execute(update(OAuthToken).values(access_revoked=True))
            mark_changed(session, TOKENS_REVOKED)
        return row

    object.__setattr__(ctx.db, "lookup", lookup_then_revoke)
    assert await verifier.verify(TOKEN) is not None  # ...answers from what it read,
    object.__setattr__(ctx.db, "lookup", real_lookup)
    assert await verifier.verify(TOKEN) is None  # but did not cache it


async def test_expiry_is_checked_on_every_hit(tmp_path: Path, monotonic: FakeMonotonic) -> None:
    seed(tmp_path / "a.db", expires_in=timedelta(seconds=30))
    (tmp_path / "offset").write_text("0")
    ctx = context(tmp_path / "a.db", clock_offset_file=tmp_path / "offset")
    try:
        verifier = TokenVerifier(ctx)
        assert await verifier.verify(TOKEN) is not None
        (tmp_path / "offset").write_text("31")
        assert await verifier.verify(TOKEN) is None
    finally:
        await ctx.db.dispose()


async def test_ttl_zero_always_asks_the_database(tmp_path: Path, monotonic: FakeMonotonic) -> None:
    seed(tmp_path / "a.db")
    ctx = context(tmp_path / "a.db", token_cache_seconds=0)
    try:
        verifier = TokenVerifier(ctx)
        assert await verifier.verify(TOKEN) is not None
        await revoke_elsewhere(tmp_path / "a.db")
        assert await verifier.verify(TOKEN) is None
    finally:
        await ctx.db.dispose()


async def test_unknown_tokens_are_not_cached(ctx: AppContext, monotonic: FakeMonotonic) -> None:
    verifier = TokenVerifier(ctx)
    for i in range(50):
        assert await verifier.verify(f"forged-{i}") is None
    assert await verifier.verify("x" * 513) is None
    assert len(verifier._cache._entries) == 0


def test_cache_size_is_bounded() -> None:
    cache = verifier_module.GrantCache(ttl=60, max_entries=100)
    grant = verifier_module.AccessGrant(None, None, uuid.uuid4(), frozenset(), "rs")
    until = datetime.now(UTC) + timedelta(hours=1)
    for i in range(1000):
        cache.put(str(i), grant, until, cache.generation)
    assert len(cache._entries) <= 100
    assert cache.get("999") is not None and cache.get("0") is None


async def test_lookup_waits_for_a_locked_database_off_the_event_loop(tmp_path: Path) -> None:
    """A look-up that finds SQLite locked takes the async path rather than failing."""
    path = tmp_path / "a.db"
    seed(path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # An exclusive-mode writer locks readers out even in WAL mode.
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE identities SET name = 'Alice'")

        def names(connection: Connection) -> list[str]:
            return list(connection.execute(text("SELECT name FROM identities")).scalars())

        def release() -> None:
            time.sleep(0.3)
            holder.execute("COMMIT")
            holder.execute("PRAGMA locking_mode=NORMAL")
            holder.execute("SELECT 1 FROM identities")  # drops the exclusive lock

        started = time.monotonic()
        releaser = threading.Thread(target=release)
        releaser.start()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        try:
            assert await db.lookup(names) == ["Alice"]
        finally:
            beat.cancel()
        releaser.join()
        assert time.monotonic() - started >= 0.25
        assert ticks >= 5  # the event loop kept running while the look-up waited
    finally:
        holder.close()
        await db.dispose()


async def test_lookup_reads_what_sessions_committed(ctx: AppContext) -> None:
    def usernames(connection: Connection) -> list[str]:
        return list(connection.execute(select(Identity.username)).scalars())

    assert await ctx.db.lookup(usernames) == ["alice@example.edu"]
    async with ctx.db.session() as session:
        await session.execute(update(Identity).values(username="bob@example.edu"))
    assert await ctx.db.lookup(usernames) == ["bob@example.edu"]

    def write(connection: Connection) -> None:
        connection.execute(update(Identity).values(username="mallory"))

    with pytest.raises(OperationalError, match="readonly database"):
        await ctx.db.lookup(write)
