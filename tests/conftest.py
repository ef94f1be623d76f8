"""Fixtures shared by every suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.server import LiveServer, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One demo server per test process (per xdist worker), shared by read-mostly tests."""
    live = start_server(tmp_path_factory.mktemp("server-home"))
    yield live
    live.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start private servers for tests that change global state (clock, kill, restart)."""
    started: list[LiveServer] = []

    def factory(**kwargs: object) -> LiveServer:
        live = start_server(tmp_path / f"home{len(started)}", **kwargs)
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()
