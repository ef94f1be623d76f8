"""SQLAlchemy's aiosqlite adapter, with each statement one trip to the connection's thread.

aiosqlite runs a ``sqlite3`` connection in a thread of its own and every call on it is a
trip there and back: a wake-up of that thread and of the event loop, and two GIL hand-offs.
SQLAlchemy's adapter makes four such trips per statement (open a cursor, execute, fetch,
close), which cost more than the statement itself: 0.47 ms of CPU for an indexed look-up,
of which SQLite's own work is a few microseconds. The worker makes hundreds of short
statements per thousand small files, so this adapter sends the four steps to the thread
as one call (0.23 ms). Everything else — transactions, errors, the connection's thread,
the pool — stays aiosqlite's and SQLAlchemy's: ``Database`` passes ``dbapi()`` as the
engine's ``module``.

Writers take turns (``WriteGate``). SQLite lets one connection write at a time; another
that wants to write sleeps in SQLite's busy handler for 1, 2, 5, 10, 15, 20, 25… ms between
tries, and loses every race to a connection that writes again at once. A planner committing
a thousand files after another kept a batch's lease waiting 160 to 340 ms, and the helper
processes idle, in one transfer of small files. A write transaction of this process
therefore first waits its turn in line (first come, first served), and only then begins.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# What one trip brings back: description, rows, rowcount, lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run(connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: the whole statement, with its rows fetched."""
    cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement, fetch and close are one call in the connection's thread;
    results are kept here (SQLAlchemy's adapter buffers them the same way)."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No driver cursor is opened here: that was a trip of its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # None before any insert

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the driver's cursor was closed in the statement's trip."""

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._trip(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        self._trip(operation, seq_of_parameters, many=True)

    def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection = self._connection
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        adapted.wait_turn_to_write(operation)
        try:
            outcome: _Outcome = await_(
                connection._execute(_run, connection, operation, parameters, many)  # type: ignore[attr-defined]
            )
        except Exception as error:
            adapted.end_turn_if_idle()
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


# The statements before which ``sqlite3`` begins a transaction (its default, "legacy" mode).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


class WriteGate:
    """Turns to write, one connection at a time, in the order they were asked for.

    ``timeout``: how long a connection waits for its turn before failing as SQLite would
    ("database is locked"), so that a write nested in another's transaction fails as before
    instead of waiting forever.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # One line per event loop (a process normally runs one).
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def take(self) -> _Turn:
        loop = asyncio.get_running_loop()
        line = self._lines.get(loop)
        if line is None:
            line = self._lines[loop] = asyncio.Lock()
        try:
            await asyncio.wait_for(line.acquire(), self.timeout)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        return _Turn(loop, line)


class _Turn:
    """A connection's turn to write, until its transaction ends."""

    __slots__ = ("_line", "_loop", "_thread")

    def __init__(self, loop: asyncio.AbstractEventLoop, line: asyncio.Lock) -> None:
        self._loop = loop
        self._line = line
        self._thread = threading.get_ident()

    def end(self) -> None:
        if threading.get_ident() == self._thread:
            self._line.release()
        elif not self._loop.is_closed():  # a connection collected on another thread
            self._loop.call_soon_threadsafe(self._line.release)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_turn",)
    _cursor_cls: type[AsyncAdapt_aiosqlite_cursor] = OneTripCursor

    def __init__(self, dbapi: OneTripDBAPI, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._turn: _Turn | None = None

    # A session that only read has no transaction to end (``sqlite3`` begins one before
    # the first write): its commit or rollback costs no trip. Reading the flag from this
    # thread is safe: the connection is idle whenever this adapter is not awaiting a trip.

    def commit(self) -> None:
        try:
            if self._in_transaction():
                super().commit()
        finally:
            self.end_turn_if_idle()

    def rollback(self) -> None:
        try:
            if self._in_transaction():
                super().rollback()
        finally:
            self.end_turn_if_idle()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._end_turn()

    def terminate(self) -> None:
        try:
            super().terminate()
        finally:
            self._end_turn()

    def wait_turn_to_write(self, operation: Any) -> None:
        """Before a statement: if it begins a write transaction, wait for this connection's
        turn (``WriteGate``)."""
        if (
            self._turn is None
            and isinstance(operation, str)
            and operation.lstrip()[:6].upper() in _WRITES
            and not self._in_transaction()
        ):
            gate: WriteGate = self.dbapi.write_gate
            self._turn = await_(gate.take())

    def end_turn_if_idle(self) -> None:
        """After the transaction ended (or a write failed before one began)."""
        if self._turn is not None and not self._in_transaction():
            self._end_turn()

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.end()

    def _in_transaction(self) -> bool:
        raw = self._connection._connection
        return raw is not None and raw.in_transaction


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self, aiosqlite: Any, sqlite: Any, *, busy_timeout: float) -> None:
        super().__init__(aiosqlite, sqlite)
        self.write_gate = WriteGate(busy_timeout)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi(busy_timeout: float) -> OneTripDBAPI:
    """The DB-API module to give ``create_async_engine`` for ``sqlite+aiosqlite`` URLs: one
    per database (its connections take turns to write); ``busy_timeout`` as the
    connections' own, in seconds."""
    return OneTripDBAPI(aiosqlite, sqlite3, busy_timeout=busy_timeout)
