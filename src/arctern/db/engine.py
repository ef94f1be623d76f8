"""The async engine and session factory for one database, SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from arctern.db import sqlite_driver

T = TypeVar("T")

log = logging.getLogger(__name__)

# The PostgreSQL channel on which committed topics are announced to the other processes.
CHANNEL = "arctern_changes"
# How long a SQLite writer waits for another's transaction before "database is locked".
SQLITE_BUSY_SECONDS = 30.0
# How long to wait before listening again after the listening connection was lost.
RELISTEN_SECONDS = 5.0


class Database:
    """Owns the engine; hands out sessions. One per process, passed to whoever needs it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS}
            if make_url(url).get_driver_name() == "aiosqlite":
                kwargs["module"] = sqlite_driver.dbapi(SQLITE_BUSY_SECONDS)
                # The adapter reads the transaction flag from the event loop's thread.
                kwargs["connect_args"]["check_same_thread"] = False
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._listening: asyncio.Task[None] | None = None
        self._reader: Engine | None = None
        database = make_url(url).database if self.is_sqlite else None
        if database and database != ":memory:" and not database.startswith("file:"):
            # A plain (synchronous) read-only connection for ``lookup``. Not aiosqlite: it
            # hands every statement to its thread in several steps (cursor, execute, fetch,
            # close, commit, reset), each costing a GIL hand-off; that was most of the time
            # of a get_task request. busy_timeout 0: a lookup that would wait for a lock
            # takes the async path instead of blocking the event loop.
            self._reader = create_engine(
                make_url(url).set(drivername="sqlite"),
                connect_args={"check_same_thread": False, "timeout": 0},
                pool_size=1,
                max_overflow=4,
            )
            event.listen(self._reader, "connect", _sqlite_reader_pragmas)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        Topics marked with ``mark_changed`` are announced to ``subscribe``-rs of this
        process once the transaction has committed (never when it rolled back), and on
        PostgreSQL to those of every process that ``listen``-s (a NOTIFY is delivered at
        commit, and only then).
        """
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
                if not self.is_sqlite:
                    for topic in sorted(session.info.get(_CHANGED, ())):
                        await session.execute(
                            text("SELECT pg_notify(:channel, :topic)"),
                            {"channel": CHANNEL, "topic": topic},
                        )
            for topic in session.info.pop(_CHANGED, ()):
                self._announce(topic)

    def subscribe(self, topic: str, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every commit that marked ``topic``: in this process, and
        in any process on the same PostgreSQL database once ``listen`` runs here."""
        self._listeners.setdefault(topic, []).append(listener)

    def unsubscribe(self, topic: str, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.get(topic, []).remove(listener)

    def _announce(self, topic: str) -> None:
        for listener in list(self._listeners.get(topic, ())):
            listener()

    async def listen(self) -> None:
        """Hear the topics other processes commit (PostgreSQL; SQLite is one machine's
        file, whose other processes are found by polling). Idempotent; ``dispose`` stops."""
        if self.is_sqlite or self._listening is not None:
            return
        self._listening = asyncio.create_task(self._listen_forever(), name="db-listen")

    async def _listen_forever(self) -> None:
        import asyncpg  # the PostgreSQL driver; only imported where PostgreSQL is used

        # The same connection arguments as the engine's own connections, minus the options
        # SQLAlchemy's adapter consumes itself.
        _args, params = self.engine.dialect.create_connect_args(self.engine.url)
        for adapter_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            params.pop(adapter_only, None)
        while True:
            try:
                connection = await asyncpg.connect(**params)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot listen for changes (retrying): %s", exc)
                await asyncio.sleep(RELISTEN_SECONDS)
                continue
            lost = asyncio.Event()
            try:
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._on_notification)
                # Whatever changed while nobody listened is announced once, as a change.
                for topic in list(self._listeners):
                    self._announce(topic)
                await lost.wait()
                log.warning("lost the connection listening for changes; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
            await asyncio.sleep(RELISTEN_SECONDS)

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, topic: str) -> None:
        self._announce(topic)

    async def lookup(self, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)``: a read-only look-up of a few rows by an indexed key.

        On a SQLite file ``fn`` runs right here, on the event loop thread, with a read-only
        connection: an indexed look-up in SQLite takes tens of microseconds, less than
        passing work to a thread and back. Each statement sees the latest commit (WAL lets
        it read while another connection writes; there is no transaction around several
        statements). Should the database be locked (SQLite's rare exclusive moments, e.g.
        recovery), and on PostgreSQL, ``fn`` runs on a pooled async connection
        (``run_sync``). ``fn`` must not write and must not scan large tables.
        """
        if self._reader is not None:
            try:
                with self._reader.connect() as connection:
                    return fn(connection)
            except OperationalError as exc:
                code = getattr(exc.orig, "sqlite_errorcode", 0)
                if code & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
        async with self.engine.connect() as connection:
            return await connection.run_sync(fn)

    async def dispose(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None
        await self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()


_CHANGED = "arctern.changed_topics"


def mark_changed(session: Session | AsyncSession, topic: str) -> None:
    """Note that this transaction changes ``topic`` (e.g. revokes access tokens).

    Works on the async session and on the sync session inside ``run_sync``; the listeners
    run after ``Database.session`` commits, in this process and (PostgreSQL) in others.
    """
    session.info.setdefault(_CHANGED, set()).add(topic)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets admin commands and workers read while the server writes; the busy timeout
    # makes concurrent writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    cursor.close()


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()
