"""Applies Alembic migrations; a fresh home is initialised by ``upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from arctern.db.filemodes import restrict_sqlite_files

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url)
    cfg.set_main_option("file_template", "%%(rev)s")
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Synchronous: call outside the event loop.

    Every command that opens the database comes through here first, so this is where an
    SQLite file is created private (see ``filemodes``).
    """
    restrict_sqlite_files(database_url)
    command.upgrade(alembic_config(database_url), revision)
