"""Owner-only permissions for an SQLite database file and its WAL and shared-memory files.

SQLite creates the database with the process umask (usually 0644) and gives ``-wal`` and
``-shm`` the database file's mode. Creating the (empty) database file 0600 before SQLite
first opens it therefore makes all three private; files of an older install are tightened.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy import make_url

PRIVATE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL; None for other databases and in-memory ones."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def restrict_sqlite_files(url: str) -> None:
    """Create the database file 0600 if missing; make it and its side files 0600."""
    path = sqlite_path(url)
    if path is None:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE)
    os.close(fd)
    for candidate in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            candidate.chmod(PRIVATE)
