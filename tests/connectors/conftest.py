"""Connector fixtures for the conformance suite.

To add a backend: write a fixture yielding a fresh, empty connector and append its name to
``CONNECTOR_FIXTURES``.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from arctern.connectors.base import Connector
from arctern.connectors.memory.connector import MemoryConnector
from arctern.connectors.posix.connector import PosixConnector

CONNECTOR_FIXTURES = ["posix_connector", "memory_connector", "s3_connector"]


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


def _give_moto_a_crc32c() -> None:
    """Let the in-process moto compute real CRC32C.

    moto imports the optional ``crc32c`` package and silently falls back to plain CRC32
    without it, which would make the full-object checksums of multipart uploads wrong.
    """
    try:
        import crc32c  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        import google_crc32c

        shim = types.ModuleType("crc32c")
        shim.__spec__ = importlib.machinery.ModuleSpec("crc32c", None)
        shim.crc32c = google_crc32c.value  # type: ignore[attr-defined]
        sys.modules["crc32c"] = shim


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto) on a free loopback port, shared by the session."""
    from moto.server import ThreadedMotoServer

    # One INFO line per request would drown the output of a failing test.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _give_moto_a_crc32c()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_options(endpoint: str, **extra: Any) -> dict[str, Any]:
    """Connector options for the moto server (it accepts any key pair)."""
    return {
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "access_key_id": "arctern-test",
        "secret_access_key": "arctern-test-secret",
        **extra,
    }


async def make_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a uniquely named bucket (unique names keep tests independent without resets)."""
    from arctern.connectors.s3.connector import shared_session

    bucket = name or f"arctern-{uuid.uuid4().hex[:16]}"
    opts = s3_options(endpoint)
    async with shared_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=opts["region"],
        aws_access_key_id=opts["access_key_id"],
        aws_secret_access_key=opts["secret_access_key"],
    ) as client:
        await client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
async def s3_connector(moto_endpoint: str) -> AsyncIterator[Connector]:
    """An S3 collection rooted below a prefix of a fresh bucket."""
    from arctern.connectors.s3.connector import S3Connector

    bucket = await make_bucket(moto_endpoint)
    connector = S3Connector(f"{bucket}/collection/root", s3_options(moto_endpoint))
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
