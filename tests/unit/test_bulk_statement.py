"""Rows written through the driver's executemany read back exactly as SQLAlchemy's own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import MetaData, Table, bindparam, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from arctern.db.bulk import BulkStatement
from arctern.db.engine import Database
from arctern.db.models.work import TaskFile

# The file table's columns and types, without its foreign keys (no tasks needed here).
FILES = cast(Table, TaskFile.__table__).to_metadata(MetaData(), name="files_under_test")
for _column in FILES.columns:
    _column.foreign_keys.clear()
FILES.foreign_keys.clear()
FILES.constraints = {c for c in FILES.constraints if not hasattr(c, "elements")}
COLUMNS = ["task_id", "source_path", "destination_path", "size", "mtime", "state", "is_directory",
           "bytes_done", "done_time", "write_state"]  # fmt: skip


def rows(task_id: uuid.UUID, prefix: str) -> list[dict[str, Any]]:
    when = datetime(2026, 12, 4, 17, 0, 1, 123456, tzinfo=UTC)
    return [
        {
            "task_id": task_id,
            "source_path": f"/{prefix}/é {i}",
            "destination_path": f"/out/{prefix}/{i}",
            "size": 4096 * i,
            "mtime": 1_700_000_000.5 + i,
            "state": "pending",
            "is_directory": i % 2 == 0,
            "bytes_done": 0,
            "done_time": when if i else None,
            "write_state": {"temp_path": f"/t{i}"} if i % 3 else None,
        }
        for i in range(5)
    ]


def comparable(file: Any) -> tuple[Any, ...]:
    return (file.source_path.split("/", 2)[2], file.destination_path.rsplit("/", 1)[1],
            file.size, file.mtime, file.state, file.is_directory, file.bytes_done,
            file.done_time, file.write_state, file.task_id)  # fmt: skip


async def test_inserts_and_updates_match_sqlalchemys(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'bulk.db'}")
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(FILES.metadata.create_all)
        task_id = uuid.uuid4()
        async with db.session() as session:
            await session.execute(insert(FILES), rows(task_id, "orm"))
            await BulkStatement(insert(FILES).inline(), COLUMNS).run(session, rows(task_id, "bulk"))
            await BulkStatement(insert(FILES).inline(), COLUMNS).run(session, [])  # nothing
        async with db.session() as session:
            found = (await session.execute(select(FILES).order_by(FILES.c.id))).all()
        by_origin: dict[str, list[tuple[Any, ...]]] = {"orm": [], "bulk": []}
        for file in found:
            by_origin[file.source_path.split("/")[1]].append(comparable(file))
        assert len(by_origin["bulk"]) == 5
        assert by_origin["bulk"] == by_origin["orm"]

        done = datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC)
        statement = BulkStatement(
            update(FILES).where(FILES.c.id == bindparam("file_id")),
            ["state", "checksum", "done_time", "write_state"],
        )
        changes = [
            {
                "file_id": file.id,
                "state": "done",
                "checksum": f"c{file.id}",
                "done_time": done,
                "write_state": None,
            }
            for file in found
            if file.source_path.startswith("/bulk/")
        ]
        async with db.session() as session:
            await statement.run(session, changes)
        async with db.session() as session:
            after = (await session.execute(select(FILES).order_by(FILES.c.id))).all()
        for file in after:
            if file.source_path.startswith("/bulk/"):
                assert (file.state, file.checksum, file.done_time) == ("done", f"c{file.id}", done)
                assert file.write_state is None
            else:
                assert file.state == "pending" and file.checksum is None
    finally:
        await db.dispose()


async def test_tuple_rows_and_a_statement_per_dialect(tmp_path: Path) -> None:
    """Rows given as tuples in the order of the columns, through an upsert that each dialect
    spells its own way: the second run updates the rows the first inserted."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'bulk.db'}")
    dialects: list[str] = []

    def upsert(dialect: str) -> Any:
        dialects.append(dialect)
        statement = sqlite_insert(FILES)
        return statement.on_conflict_do_update(
            index_elements=[FILES.c.id], set_={"state": statement.excluded.state}
        )

    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(FILES.metadata.create_all)
        task_id = uuid.uuid4()
        columns = ["id", *COLUMNS]
        statement = BulkStatement(upsert, columns)
        first = [
            (1000 + i, *(row[name] for name in COLUMNS)) for i, row in enumerate(rows(task_id, "t"))
        ]
        async with db.session() as session:
            await statement.run(session, first)
        again = [(row[0], *row[1:6], "done", *row[7:]) for row in first[:3]]
        async with db.session() as session:
            await statement.run(session, again)
        async with db.session() as session:
            found = (await session.execute(select(FILES).order_by(FILES.c.id))).all()
        assert dialects == ["sqlite"]  # built once per dialect
        assert [(f.id, f.state) for f in found] == [
            (1000, "done"), (1001, "done"), (1002, "done"), (1003, "pending"), (1004, "pending")
        ]  # fmt: skip
        by_name = dict(zip(columns, first[1], strict=True))
        assert (found[1].source_path, found[1].done_time, found[1].write_state) == (
            by_name["source_path"],
            by_name["done_time"],
            by_name["write_state"],
        )
    finally:
        await db.dispose()
