"""The async engine and session factory for one database, SQLite or PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

T = TypeVar("T")


class Database:
    """Owns the engine; hands out sessions. One per process, passed to whoever needs it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._listeners: dict[str, list[Callable[[], None]]] = {}
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
        process once the transaction has committed (never when it rolled back).
        """
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
            for topic in session.info.pop(_CHANGED, ()):
                for listener in self._listeners.get(topic, ()):
                    listener()

    def subscribe(self, topic: str, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every commit in this process that marked ``topic``."""
        self._listeners.setdefault(topic, []).append(listener)

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
        await self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()


_CHANGED = "arctern.changed_topics"


def mark_changed(session: Session | AsyncSession, topic: str) -> None:
    """Note that this transaction changes ``topic`` (e.g. revokes access tokens).

    Works on the async session and on the sync session inside ``run_sync``; the listeners
    run after ``Database.session`` commits. Other processes are not told.
    """
    session.info.setdefault(_CHANGED, set()).add(topic)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets admin commands and workers read while the server writes; the busy timeout
    # makes concurrent writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()
