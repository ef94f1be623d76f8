"""The SQLite adapter that makes each statement one trip to aiosqlite's thread
(``db/sqlite_driver.py``): results, row counts, generated keys, errors and transactions
behave as with SQLAlchemy's own adapter, and a session that only reads ends without a trip.

A real SQLite file through ``Database``, as the server uses it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from arctern.db import sqlite_driver
from arctern.db.engine import Database

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
    Column("size", Integer, nullable=False),
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'notes.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made on aiosqlite's connection thread, by name."""
    made: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


def test_the_server_engine_uses_the_adapter(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert isinstance(database.engine.dialect.dbapi, sqlite_driver.OneTripDBAPI)


async def test_rows_counts_and_keys_come_back_as_from_sqlalchemy(db: Database) -> None:
    async with db.session() as session:
        result = await session.execute(insert(notes).values(name="a", size=1))
        assert result.inserted_primary_key == (1,)  # from the cursor's lastrowid
        many = await session.execute(
            insert(notes), [{"name": f"n{i}", "size": i} for i in range(5)]
        )
        assert many.rowcount == 5
        returned = await session.execute(
            insert(notes).values(name="r", size=9).returning(notes.c.id, notes.c.name)
        )
        assert returned.one() == (7, "r")
    async with db.session() as session:
        changed = await session.execute(update(notes).where(notes.c.size < 3).values(size=0))
        assert changed.rowcount == 4  # a, n0, n1, n2
        rows = (
            await session.execute(select(notes.c.name, notes.c.size).order_by(notes.c.id))
        ).all()
    assert rows[:3] == [("a", 0), ("n0", 0), ("n1", 0)] and len(rows) == 7
    # Written for good: a plain connection sees it.
    with sqlite3.connect(db.engine.url.database or "") as plain:
        assert plain.execute("SELECT count(*) FROM notes").fetchone() == (7,)


async def test_a_failed_statement_raises_sqlalchemys_error_and_rolls_back(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await session.execute(insert(notes).values(name="twice", size=1))
            await session.execute(insert(notes).values(name="twice", size=2))
    with pytest.raises(OperationalError):
        async with db.session() as session:
            await session.execute(text("SELECT nothing FROM nowhere"))
    async with db.session() as session:
        assert await session.scalar(select(notes.c.id)) is None  # the first insert is gone
        # The connections went back to the pool in working order.
        await session.execute(insert(notes).values(name="twice", size=3))
    async with db.session() as session:
        assert await session.scalar(select(notes.c.size)) == 3


async def test_each_statement_is_one_trip_and_reading_ends_without_one(
    db: Database, trips: list[str]
) -> None:
    async with db.session() as session:
        await session.scalar(select(notes.c.id).where(notes.c.name == "x"))
        await session.scalar(select(notes.c.id).where(notes.c.name == "y"))
    assert trips == ["_run", "_run"]  # no cursor, fetch or close trips; no commit
    trips.clear()
    async with db.session() as session:
        await session.execute(insert(notes).values(name="x", size=1))
    assert trips == ["_run", "commit"]
    trips.clear()
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await session.execute(insert(notes).values(name="y", size=1))
            raise RuntimeError("the caller gives up")
    assert trips == ["_run", "rollback"]
    async with db.session() as session:
        names = list(await session.scalars(select(notes.c.name)))
    assert names == ["x"]


async def test_writers_take_turns_in_the_order_they_asked(db: Database) -> None:
    """A writer that asks while another's transaction is open waits its turn, and the
    turns go in order: SQLite's busy handler would let a fast re-writer win every race."""
    order: list[str] = []
    first_open = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with db.session() as session:
            await session.execute(insert(notes).values(name="first", size=1))
            first_open.set()
            await release_first.wait()
            order.append("first")

    async def writer(name: str) -> None:
        async with db.session() as session:
            await session.execute(insert(notes).values(name=name, size=2))
            order.append(name)

    holder = asyncio.create_task(first())
    await first_open.wait()
    second = asyncio.create_task(writer("second"))
    await asyncio.sleep(0.05)  # "second" is in line before "third" asks
    third = asyncio.create_task(writer("third"))
    await asyncio.sleep(0.05)
    assert order == []  # both wait while the first transaction is open
    # Reading is never held up by a writer's turn.
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(notes)) == 0
    release_first.set()
    await asyncio.gather(holder, second, third)
    assert order == ["first", "second", "third"]


async def test_a_write_nested_in_another_writers_transaction_fails_as_locked(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'nested.db'}")
    database.engine.dialect.dbapi.write_gate.timeout = 0.2  # type: ignore[union-attr]
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        with pytest.raises(RuntimeError):
            async with database.session() as outer:
                await outer.execute(insert(notes).values(name="outer", size=1))
                with pytest.raises(OperationalError, match="database is locked"):
                    async with database.session() as inner:
                        await inner.execute(insert(notes).values(name="inner", size=1))
                raise RuntimeError("give up the outer transaction too")
        # Every turn was given back: writing works again.
        async with database.session() as session:
            await session.execute(insert(notes).values(name="after", size=1))
        async with database.session() as session:
            assert list(await session.scalars(select(notes.c.name))) == ["after"]
    finally:
        await database.dispose()


async def test_a_writer_is_not_starved_by_one_that_writes_again_at_once(db: Database) -> None:
    """The case that mattered: a planner commits back to back while a worker's claim waits
    to write. The claim gets in after the transaction in progress, not after many."""
    hog_commits = 0
    stop = asyncio.Event()
    warmed_up = asyncio.Event()

    async def hog() -> None:
        nonlocal hog_commits
        while not stop.is_set():
            async with db.session() as session:
                await session.execute(
                    insert(notes).values(name=f"hog{hog_commits}", size=hog_commits)
                )
                await asyncio.sleep(0.005)  # work inside the transaction
            hog_commits += 1
            if hog_commits == 3:
                warmed_up.set()

    running = asyncio.create_task(hog())
    await warmed_up.wait()
    asked_at = hog_commits
    async with db.session() as session:
        await session.execute(insert(notes).values(name="claim", size=-1))
    got_in_after = hog_commits - asked_at
    stop.set()
    await running
    assert got_in_after <= 2, f"waited for {got_in_after} transactions of the other writer"
