"""Fixtures shared by every suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresCluster, postgres_available
from tests.support.server import LiveServer, start_server


def _database_args(request: pytest.FixtureRequest) -> list[str]:
    """``--database`` for servers when the suite runs against PostgreSQL.

    ``ARCTERN_TEST_DATABASE=postgresql`` runs every live-server test on PostgreSQL instead of
    the embedded SQLite default.
    """
    if os.environ.get("ARCTERN_TEST_DATABASE", "sqlite") != "postgresql":
        return []
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return ["--database", cluster.create_database()]


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """One demo server per test process (per xdist worker), shared by read-mostly tests."""
    live = start_server(tmp_path_factory.mktemp("server-home"), extra_args=_database_args(request))
    yield live
    live.stop()


@pytest.fixture
def server_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., LiveServer]]:
    """Start private servers for tests that change global state (clock, kill, restart)."""
    started: list[LiveServer] = []

    def factory(
        *,
        demo: bool = True,
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> LiveServer:
        args = list(extra_args or [])
        if "--database" not in args:
            args += _database_args(request)
        live = start_server(
            tmp_path / f"home{len(started)}", demo=demo, extra_env=extra_env, extra_args=args
        )
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL 15 cluster for this test process."""
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed (scripts/system-deps installs it)")
    cluster = PostgresCluster.start()
    yield cluster
    cluster.stop()
