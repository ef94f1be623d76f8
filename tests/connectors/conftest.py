"""Connector fixtures for the conformance suite.

To add a backend: write a fixture yielding a fresh, empty connector and append its name to
``CONNECTOR_FIXTURES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arctern.connectors.base import Connector
from arctern.connectors.memory.connector import MemoryConnector
from arctern.connectors.posix.connector import PosixConnector

CONNECTOR_FIXTURES = ["posix_connector", "memory_connector"]


@pytest.fixture
def posix_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
async def posix_connector(posix_root: Path) -> AsyncIterator[Connector]:
    connector = PosixConnector(str(posix_root))
    yield connector
    await connector.close()


@pytest.fixture
async def memory_connector() -> AsyncIterator[Connector]:
    connector = MemoryConnector()
    yield connector
    await connector.close()


@pytest.fixture(params=CONNECTOR_FIXTURES)
def connector(request: pytest.FixtureRequest) -> Connector:
    result: Connector = request.getfixturevalue(request.param)
    return result


async def put(connector: Connector, path: str, data: bytes, mtime: float | None = None) -> None:
    """Write a whole file through the connector's write protocol."""
    state = await connector.begin_write(path, len(data))
    if data:
        await connector.write(state, 0, data)
    await connector.commit_write(state, path, mtime=mtime)


async def names(connector: Connector, path: str) -> list[str]:
    return sorted([info.name async for info in connector.list(path)])
