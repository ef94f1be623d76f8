"""Escaped names (``arctern.connectors.names``) on S3, whose keys must be valid UTF-8."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arctern.connectors.errors import InvalidPath
from arctern.connectors.posix.connector import PosixConnector
from arctern.connectors.s3.connector import S3Connector
from arctern.engine.errors import CancelToken
from arctern.engine.options import ItemSpec, TransferOptions
from arctern.engine.runner import MemorySink, run_transfer
from tests.connectors.conftest import make_bucket, names, put, s3_options


@pytest.fixture
async def s3(moto_endpoint: str) -> AsyncIterator[S3Connector]:
    connector = S3Connector(f"{await make_bucket(moto_endpoint)}/names", s3_options(moto_endpoint))
    yield connector
    await connector.close()


async def test_a_name_that_is_not_utf8_is_refused_for_that_file(s3: S3Connector) -> None:
    with pytest.raises(InvalidPath, match="valid UTF-8"):
        await s3.begin_write("/caf\\xe9.txt", 3)


async def test_keys_that_look_like_escapes_round_trip(s3: S3Connector) -> None:
    # The key is the four characters \xff: shown with its backslash doubled, read back.
    await put(s3, "/\\\\xff", b"lookalike")
    await put(s3, "/a\\b", b"plain backslash")
    assert sorted(await names(s3, "/")) == ["\\\\xff", "a\\b"]
    assert await s3.read("/\\\\xff", 0, 100) == b"lookalike"
    assert (await s3.stat("/a\\b")).size == len(b"plain backslash")


async def test_recursive_posix_to_s3_fails_only_the_undecodable_file(
    s3: S3Connector, tmp_path: Path
) -> None:
    root = tmp_path / "src"
    (root / "tree").mkdir(parents=True)
    (root / "tree" / "good.txt").write_bytes(b"good")
    with open(os.fsencode(root / "tree") + b"/bad\xff.txt", "wb") as f:
        f.write(b"bad")
    summary = await run_transfer(
        PosixConnector(str(root)),
        s3,
        [ItemSpec(source_path="/tree/", destination_path="/tree/", recursive=True)],
        TransferOptions(),
        MemorySink(),
        CancelToken(),
    )
    by_path = {o.source_path: o for o in summary.outcomes}
    assert by_path["/tree/good.txt"].state == "done"
    failed = by_path["/tree/bad\\xff.txt"]
    assert failed.state == "failed" and failed.code == "INVALID_PATH_NAME", failed
    assert "UTF-8" in (failed.message or "")
    assert await names(s3, "/tree") == ["good.txt"]
