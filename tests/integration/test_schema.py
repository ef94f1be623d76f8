"""The Alembic migrations produce exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import arctern.db.models  # noqa: F401
from arctern.db.base import Base
from arctern.db.migrate import upgrade
from tests.support.postgres import PostgresCluster


def _diff(url: str) -> list[object]:
    upgrade(url)

    async def compare() -> list[object]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync_conn: compare_metadata(
                    MigrationContext.configure(sync_conn, opts={"compare_type": True}),
                    Base.metadata,
                )
            )
        await engine.dispose()
        return list(diff)

    return asyncio.run(compare())


def test_sqlite_schema_matches_models(tmp_path: pytest.TempPathFactory) -> None:
    assert _diff(f"sqlite+aiosqlite:///{tmp_path}/schema.db") == []


def test_postgres_schema_matches_models(postgres: PostgresCluster) -> None:
    assert _diff(postgres.create_database()) == []
