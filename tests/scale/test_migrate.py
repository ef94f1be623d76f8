"""``arctern migrate`` and start-up on PostgreSQL when several hosts start at once, and the
example configuration of docs/deploy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.postgres import PostgresCluster
from tests.support.server import ARCTERN

pytestmark = pytest.mark.timeout(120)


def test_simultaneous_migrations_of_a_fresh_database_all_succeed(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.create_database()
    runs = [
        subprocess.Popen(
            [ARCTERN, "migrate", "--home", str(tmp_path / f"host{i}"), "--database", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(4)
    ]
    outputs = [run.communicate(timeout=90)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, outputs
    assert all("Database is up to date" in out for out in outputs), outputs
