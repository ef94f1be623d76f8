"""S3-specific behaviour against a real S3-compatible server (moto on loopback)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import google_crc32c
import pytest

from arctern.connectors.base import WriteState
from arctern.connectors.errors import (
    ConnectorError,
    ObjectNotFound,
    TransientError,
)
from arctern.connectors.registry import open_connector
from arctern.connectors.s3.connector import MiB, S3Connector, parse_root, shared_session
from tests.connectors.conftest import make_bucket, names, put, s3_options

PART = 5 * MiB


@pytest.fixture
async def bucket(moto_endpoint: str) -> str:
    return await make_bucket(moto_endpoint)


@pytest.fixture
async def raw(moto_endpoint: str) -> AsyncIterator[Any]:
    """A plain S3 client, to look at the store behind the connector's back."""
    opts = s3_options(moto_endpoint)
    async with shared_session().create_client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=opts["region"],
        aws_access_key_id=opts["access_key_id"],
        aws_secret_access_key=opts["secret_access_key"],
    ) as client:
        yield client


@pytest.fixture
async def connectors(moto_endpoint: str) -> AsyncIterator[list[S3Connector]]:
    """Connectors opened by a test, closed at its end (a "crashed" one is simply dropped)."""
    opened: list[S3Connector] = []
    yield opened
    for connector in opened:
        await connector.close()


def open_s3(opened: list[S3Connector], endpoint: str, root: str, **options: Any) -> S3Connector:
    connector = S3Connector(root, s3_options(endpoint, **options))
    opened.append(connector)
    return connector


async def all_keys(raw: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    async for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(obj["Key"] for obj in page.get("Contents") or [])
    return sorted(keys)


def crc32c_hex(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


def test_parse_root() -> None:
    assert parse_root("bucket") == ("bucket", "")
    assert parse_root("s3://bucket/a/b/") == ("bucket", "a/b/")
    assert parse_root("/bucket//a/./b") == ("bucket", "a/b/")
    with pytest.raises(ConnectorError):
        parse_root("bucket/a/../b")
    with pytest.raises(ConnectorError):
        parse_root("")


async def test_registry_opens_s3(moto_endpoint: str, bucket: str) -> None:
    connector = open_connector("s3", f"{bucket}/p", s3_options(moto_endpoint))
    try:
        assert isinstance(connector, S3Connector)
        assert connector.capabilities.write_at_offset is False
        assert connector.capabilities.min_part_size == PART
        assert connector.capabilities.max_parts == 10_000
        await put(connector, "/x", b"via registry")
        assert await connector.read("/x", 0, 100) == b"via registry"
    finally:
        await connector.close()


async def test_multipart_upload_resumed_by_upload_id(
    moto_endpoint: str, bucket: str, raw: Any, connectors: list[S3Connector]
) -> None:
    data = os.urandom(4 * PART + 1234)  # five parts, the last one short
    first = open_s3(connectors, moto_endpoint, bucket, part_size=PART)
    state = await first.begin_write("/big.bin", len(data))
    assert state.upload_id and state.part_size == PART
    # Two parts arrive, then the worker dies without aborting or committing.
    await asyncio.gather(
        first.write(state, 0, data[:PART]), first.write(state, PART, data[PART : 2 * PART])
    )
    # The worker persisted its state (JSON turns part numbers into strings).
    persisted = json.loads(json.dumps(dataclasses.asdict(state)))
    with pytest.raises(ObjectNotFound):
        await first.stat("/big.bin")

    second = open_s3(connectors, moto_endpoint, bucket, part_size=PART)
    resumed = await second.begin_write("/big.bin", len(data), resume=WriteState(**persisted))
    assert resumed.upload_id == state.upload_id
    assert resumed.temp_path == state.temp_path  # same pending write: progress is kept
    assert sorted(resumed.parts) == [1, 2]
    resent = 0
    sends = []
    for offset in range(0, len(data), resumed.part_size):
        if offset // resumed.part_size + 1 in resumed.parts:
            continue
        chunk = data[offset : offset + resumed.part_size]
        resent += len(chunk)
        sends.append(second.write(resumed, offset, chunk))
    await asyncio.gather(*sends)
    await second.commit_write(resumed, "/big.bin")

    assert resent < len(data)
    assert resent == len(data) - 2 * PART
    assert await second.read("/big.bin", 0, len(data)) == data
    head = await raw.head_object(Bucket=bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-5")
    assert await raw.list_multipart_uploads(Bucket=bucket) is not None
    uploads = (await raw.list_multipart_uploads(Bucket=bucket)).get("Uploads") or []
    assert uploads == []


async def test_resume_of_a_vanished_upload_starts_again(
    moto_endpoint: str, bucket: str, raw: Any, connectors: list[S3Connector]
) -> None:
    data = os.urandom(2 * PART + 10)
    connector = open_s3(connectors, moto_endpoint, bucket, part_size=PART)
    state = await connector.begin_write("/f", len(data))
    await connector.write(state, 0, data[:PART])
    await raw.abort_multipart_upload(Bucket=bucket, Key="f", UploadId=state.upload_id)
    fresh = await connector.begin_write("/f", len(data), resume=state)
    assert fresh.upload_id != state.upload_id
    assert fresh.temp_path != state.temp_path  # tells the engine to start again at 0
    assert fresh.parts == {}
    for offset in range(0, len(data), fresh.part_size):
        await connector.write(fresh, offset, data[offset : offset + fresh.part_size])
    await connector.commit_write(fresh, "/f")
    assert await connector.read("/f", 0, len(data)) == data


async def test_unaligned_writes_are_assembled_into_parts(
    moto_endpoint: str, bucket: str, connectors: list[S3Connector]
) -> None:
    data = os.urandom(2 * PART + 300_000)
    connector = open_s3(connectors, moto_endpoint, bucket, part_size=PART)
    state = await connector.begin_write("/pieces", len(data))
    step = 1_000_000  # does not divide the part size
    offsets = list(range(0, len(data), step))
    offsets.reverse()
    for offset in offsets:
        await connector.write(state, offset, memoryview(data)[offset : offset + step])
    await connector.commit_write(state, "/pieces")
    assert await connector.read("/pieces", 0, len(data)) == data


async def test_commit_refuses_incomplete_upload_and_abort_cleans_up(
    moto_endpoint: str, bucket: str, raw: Any, connectors: list[S3Connector]
) -> None:
    connector = open_s3(connectors, moto_endpoint, bucket, part_size=PART)
    size = 2 * PART
    state = await connector.begin_write("/half", size)
    await connector.write(state, 0, bytes(PART))
    with pytest.raises(ConnectorError, match="incomplete"):
        await connector.commit_write(state, "/half")
    await connector.abort_write(state)
    await connector.abort_write(state)  # idempotent
    assert (await raw.list_multipart_uploads(Bucket=bucket)).get("Uploads") in (None, [])
    with pytest.raises(ObjectNotFound):
        await connector.stat("/half")


async def test_store_checksums_match_the_data(
    moto_endpoint: str, bucket: str, connectors: list[S3Connector]
) -> None:
    connector = open_s3(connectors, moto_endpoint, bucket, part_size=PART)
    small = b"checksummed by the store" * 1000
    await put(connector, "/small", small)
    assert await connector.checksum("/small", "crc32c") == crc32c_hex(small)
    assert await connector.checksum("/small", "CRC32C") == crc32c_hex(small)
    assert await connector.checksum("/small", "md5") == hashlib.md5(small).hexdigest()
    assert await connector.checksum("/small", "sha256") is None

    large = os.urandom(3 * PART + 77)
    state = await connector.begin_write("/large", len(large))
    await asyncio.gather(
        *(
            connector.write(state, offset, large[offset : offset + PART])
            for offset in range(0, len(large), PART)
        )
    )
    await connector.commit_write(state, "/large")
    # A full-object CRC32C, comparable with a checksum computed while reading the source.
    assert await connector.checksum("/large", "crc32c") == crc32c_hex(large)
    # A multipart ETag is not an MD5 of the data.
    assert await connector.checksum("/large", "md5") is None
    with pytest.raises(ObjectNotFound):
        await connector.checksum("/missing", "crc32c")


async def test_listing_more_than_1000_keys_paginates(
    moto_endpoint: str, bucket: str, raw: Any, connectors: list[S3Connector]
) -> None:
    count = 1005
    limiter = asyncio.Semaphore(16)

    async def make(i: int) -> None:
        async with limiter:
            await raw.put_object(Bucket=bucket, Key=f"root/many/f{i:05d}", Body=b"x")

    await asyncio.gather(*(make(i) for i in range(count)))
    await raw.put_object(Bucket=bucket, Key="root/many/sub/deeper", Body=b"y")
    connector = open_s3(connectors, moto_endpoint, f"{bucket}/root")
    listed = [info async for info in connector.list("/many")]
    assert len(listed) == count + 1
    assert len({info.name for info in listed}) == count + 1
    assert {info.type for info in listed if info.name.startswith("f")} == {"file"}
    assert [info.type for info in listed if info.name == "sub"] == ["dir"]
    await connector.delete("/many", recursive=True)
    assert await all_keys(raw, bucket) == []


async def test_rename_of_a_prefix(
    moto_endpoint: str, bucket: str, raw: Any, connectors: list[S3Connector]
) -> None:
    connector = open_s3(connectors, moto_endpoint, f"{bucket}/coll")
    await connector.mkdir("/src/empty", parents=True)
    await connector.mkdir("/src/nested")
    await connector.mkdir("/srcx")
    await put(connector, "/src/a", b"A")
    await put(connector, "/src/nested/b", b"BB")
    await put(connector, "/srcx/untouched", b"sibling sharing the name prefix")
    await connector.mkdir("/dest")
    await connector.rename("/src", "/dest/moved")
    assert await names(connector, "/dest/moved") == ["a", "empty", "nested"]
    assert await connector.read("/dest/moved/nested/b", 0, 10) == b"BB"
    assert (await connector.stat("/dest/moved/empty")).type == "dir"
    with pytest.raises(ObjectNotFound):
        await connector.stat("/src")
    assert await connector.read("/srcx/untouched", 0, 100) == b"sibling sharing the name prefix"
    assert [k for k in await all_keys(raw, bucket) if k.startswith("coll/src/")] == []


async def test_rename_of_a_large_object_uses_part_copies(
    moto_endpoint: str, bucket: str, connectors: list[S3Connector]
) -> None:
    connector = open_s3(
        connectors,
        moto_endpoint,
        bucket,
        part_size=PART,
        copy_threshold=PART,
        copy_part_size=PART,
    )
    data = os.urandom(2 * PART + 999)
    state = await connector.begin_write("/big", len(data))
    for offset in range(0, len(data), PART):
        await connector.write(state, offset, data[offset : offset + PART])
    await connector.commit_write(state, "/big")
    await connector.rename("/big", "/renamed")
    assert await connector.read("/renamed", 0, len(data)) == data
    assert await connector.checksum("/renamed", "crc32c") == crc32c_hex(data)
    with pytest.raises(ObjectNotFound):
        await connector.stat("/big")


async def test_implicit_directories_and_parent_markers(
    moto_endpoint: str, bucket: str, raw: Any, connectors: list[S3Connector]
) -> None:
    await raw.put_object(Bucket=bucket, Key="c/x/y/file", Body=b"data")
    await raw.put_object(Bucket=bucket, Key="outside", Body=b"not in the collection")
    connector = open_s3(connectors, moto_endpoint, f"{bucket}/c")
    assert await names(connector, "/") == ["x"]
    assert (await connector.stat("/x/y")).type == "dir"
    await connector.delete("/x/y/file")
    # The emptied directory stays, as it would on a filesystem.
    assert (await connector.stat("/x/y")).type == "dir"
    assert await names(connector, "/x/y") == []
    assert "c/x/y/" in await all_keys(raw, bucket)
    await connector.delete("/x/y")
    assert await names(connector, "/x") == []
    assert (await raw.get_object(Bucket=bucket, Key="outside"))["ContentLength"] == 21


async def test_ranged_reads(moto_endpoint: str, bucket: str, connectors: list[S3Connector]) -> None:
    connector = open_s3(connectors, moto_endpoint, bucket)
    data = bytes(range(256)) * 100
    await put(connector, "/r", data)
    assert await connector.read("/r", 1000, 500) == data[1000:1500]
    assert await connector.read("/r", len(data) - 3, 100) == data[-3:]
    assert await connector.read("/r", len(data) + 5, 10) == b""
    assert await connector.read("/r", 0, 0) == b""
    await put(connector, "/empty", b"")
    assert await connector.read("/empty", 0, 10) == b""
    assert (await connector.stat("/empty")).size == 0


async def test_missing_bucket_and_unreachable_store(
    moto_endpoint: str, connectors: list[S3Connector]
) -> None:
    missing = open_s3(connectors, moto_endpoint, "arctern-no-such-bucket")
    with pytest.raises(ObjectNotFound):
        await missing.stat("/")
    # A port nobody listens on: connection refused is worth retrying.
    unreachable = S3Connector(
        "bucket", s3_options("http://127.0.0.1:9", connect_timeout=1, max_attempts=1)
    )
    connectors.append(unreachable)
    with pytest.raises(TransientError):
        await unreachable.stat("/file")


async def test_small_write_resumed_in_another_process_starts_again(
    moto_endpoint: str, bucket: str, connectors: list[S3Connector]
) -> None:
    first = open_s3(connectors, moto_endpoint, bucket)
    state = await first.begin_write("/s", 8)
    await first.write(state, 0, b"1234")
    assert state.upload_id is None and state.part_size == 0
    # The buffered bytes died with the first worker.
    second = open_s3(connectors, moto_endpoint, bucket)
    fresh = await second.begin_write("/s", 8, resume=WriteState(**dataclasses.asdict(state)))
    assert fresh.temp_path != state.temp_path
    await second.write(fresh, 0, b"abcdefgh")
    await second.commit_write(fresh, "/s")
    assert await second.read("/s", 0, 8) == b"abcdefgh"


async def test_directory_cache_saves_listings_and_forgets_on_change(
    moto_endpoint: str, bucket: str, connectors: list[S3Connector]
) -> None:
    connector = open_s3(connectors, moto_endpoint, bucket)
    await connector.mkdir("/d")
    calls: list[str] = []
    client = await connector._s3()
    client.meta.events.register(
        "provide-client-params.s3.ListObjectsV2",
        lambda params, **kw: calls.append(params["Prefix"]),
    )
    for i in range(5):
        await put(connector, f"/d/f{i}", b"x")
    # Only the "is the target a directory" probe per file; the parent is known.
    assert calls == [f"d/f{i}/" for i in range(5)]
    await connector.delete("/d", recursive=True)
    with pytest.raises(ObjectNotFound):
        await connector.begin_write("/d/again", 1)
    await connector.mkdir("/e")
    await put(connector, "/e/x", b"1")
    await connector.rename("/e", "/moved")
    with pytest.raises(ObjectNotFound):
        await connector.begin_write("/e/y", 1)


async def test_stores_without_additional_checksums_get_content_md5(
    moto_endpoint: str, bucket: str, connectors: list[S3Connector]
) -> None:
    connector = open_s3(connectors, moto_endpoint, bucket, part_size=PART, checksums="false")
    assert connector.capabilities.native_checksums == ("md5",)
    sent: list[set[str]] = []
    client = await connector._s3()
    for operation in ("PutObject", "UploadPart", "CreateMultipartUpload"):
        client.meta.events.register(
            f"provide-client-params.s3.{operation}",
            lambda params, **kw: sent.append({k for k in params if "Checksum" in k or "MD5" in k}),
        )
    small = b"plain old S3"
    await put(connector, "/small", small)
    large = os.urandom(PART + 10)
    state = await connector.begin_write("/large", len(large))
    await connector.write(state, 0, large[:PART])
    await connector.write(state, PART, large[PART:])
    await connector.commit_write(state, "/large")
    assert sent == [{"ContentMD5"}, set(), {"ContentMD5"}, {"ContentMD5"}]
    assert await connector.read("/large", 0, len(large)) == large
    assert await connector.checksum("/small", "md5") == hashlib.md5(small).hexdigest()
    assert await connector.checksum("/small", "crc32c") is None
