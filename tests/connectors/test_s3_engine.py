"""The engine's copier writing into S3: whole parts, verification, resume across workers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import AsyncIterator

import google_crc32c
import pytest

from arctern.connectors.base import WriteState
from arctern.connectors.memory.connector import MemoryConnector
from arctern.connectors.s3.connector import MiB, S3Connector, shared_session
from arctern.engine.copier import Copier, Resume
from arctern.engine.errors import CancelToken
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.runner import MemorySink
from tests.connectors.conftest import make_bucket, put, s3_options

PART = 5 * MiB


class Crash(Exception):
    pass


class CrashingSink(MemorySink):
    """Dies right after the worker has persisted ``after`` bytes of progress."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def checkpoint(self, job: FileJob, bytes_done: int, state: WriteState | None) -> None:
        super().checkpoint(job, bytes_done, state)
        if bytes_done >= self.after:
            raise Crash


@pytest.fixture
async def source() -> AsyncIterator[MemoryConnector]:
    connector = MemoryConnector()
    yield connector
    await connector.close()


@pytest.fixture
async def s3_root(moto_endpoint: str) -> str:
    return f"{await make_bucket(moto_endpoint)}/dest"


@pytest.fixture
async def opened(moto_endpoint: str) -> AsyncIterator[list[S3Connector]]:
    connectors: list[S3Connector] = []
    yield connectors
    for connector in connectors:
        await connector.close()


def s3(opened: list[S3Connector], endpoint: str, root: str) -> S3Connector:
    connector = S3Connector(root, s3_options(endpoint, part_size=PART))
    opened.append(connector)
    return connector


async def read_all(connector: S3Connector, path: str) -> bytes:
    size = (await connector.stat(path)).size
    return await connector.read(path, 0, size)


def persisted(state: WriteState | None) -> WriteState:
    """The state as the worker stores it (JSON) and loads it back."""
    assert state is not None
    return WriteState(**json.loads(json.dumps(dataclasses.asdict(state))))


@pytest.mark.parametrize("algorithm", ["md5", "crc32c"])
async def test_copy_large_file_with_verification(
    source: MemoryConnector,
    moto_endpoint: str,
    s3_root: str,
    opened: list[S3Connector],
    algorithm: str,
) -> None:
    data = os.urandom(3 * PART + 4321)
    await put(source, "/big", data)
    info = await source.stat("/big")
    dest = s3(opened, moto_endpoint, s3_root)
    sink = MemorySink()
    copier = Copier(source, dest, TransferOptions(verify_checksum=True), sink, CancelToken())
    job = FileJob("/big", "/big", info.size, info.mtime, checksum_algorithm=algorithm)
    result = await copier.copy(job)
    assert result.status == "done"
    assert await read_all(dest, "/big") == data
    expected = (
        hashlib.md5(data).hexdigest() if algorithm == "md5" else f"{google_crc32c.value(data):08x}"
    )
    assert result.checksum == expected
    assert sink.bytes_transferred == len(data)
    # CRC32C comes from the store; a multipart MD5 has to be read back.
    assert sink.bytes_checksummed == (len(data) if algorithm == "md5" else 0)


async def test_copy_of_small_files_and_sync_skip(
    source: MemoryConnector, moto_endpoint: str, s3_root: str, opened: list[S3Connector]
) -> None:
    await put(source, "/small", b"a small file")
    info = await source.stat("/small")
    dest = s3(opened, moto_endpoint, s3_root)
    job = FileJob("/small", "/small", info.size, info.mtime)
    options = TransferOptions(verify_checksum=True, sync_level=3)
    first = await Copier(source, dest, options, MemorySink(), CancelToken()).copy(job)
    assert first.status == "done"
    assert await read_all(dest, "/small") == b"a small file"
    again = await Copier(source, dest, options, MemorySink(), CancelToken()).copy(job)
    assert again.status == "skipped"  # checksum sync: the store's MD5 (ETag) matches


async def test_worker_crash_resumes_multipart_upload(
    source: MemoryConnector, moto_endpoint: str, s3_root: str, opened: list[S3Connector]
) -> None:
    data = os.urandom(4 * PART + 99)
    await put(source, "/big", data)
    info = await source.stat("/big")
    job = FileJob("/big", "/big", info.size, info.mtime)
    options = TransferOptions(verify_checksum=True)

    crashing = CrashingSink(after=2 * PART)
    first = Copier(
        source,
        s3(opened, moto_endpoint, s3_root),
        options,
        crashing,
        CancelToken(),
        parallel_chunks=2,
    )
    with pytest.raises(Crash):
        await first.copy(job)
    done, state = crashing.checkpoints["/big"]
    assert done == 2 * PART

    # Another worker, another connector, the state as loaded from the database.
    dest = s3(opened, moto_endpoint, s3_root)
    sink = MemorySink()
    second = Copier(source, dest, options, sink, CancelToken(), parallel_chunks=2)
    result = await second.copy(job, Resume(done, persisted(state)))
    assert result.status == "done"
    assert await read_all(dest, "/big") == data
    assert sink.bytes_transferred == len(data) - done


async def test_lost_upload_restarts_from_zero(
    source: MemoryConnector, moto_endpoint: str, s3_root: str, opened: list[S3Connector]
) -> None:
    data = os.urandom(2 * PART + 5)
    await put(source, "/big", data)
    info = await source.stat("/big")
    job = FileJob("/big", "/big", info.size, info.mtime)
    crashing = CrashingSink(after=PART)
    first = Copier(
        source,
        s3(opened, moto_endpoint, s3_root),
        TransferOptions(),
        crashing,
        CancelToken(),
        parallel_chunks=1,
    )
    with pytest.raises(Crash):
        await first.copy(job)
    done, state = crashing.checkpoints["/big"]
    assert state is not None and state.upload_id
    # A lifecycle rule (or an operator) aborted the upload in the meantime.
    bucket = s3_root.split("/")[0]
    opts = s3_options(moto_endpoint)
    async with shared_session().create_client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=opts["region"],
        aws_access_key_id=opts["access_key_id"],
        aws_secret_access_key=opts["secret_access_key"],
    ) as raw:
        await raw.abort_multipart_upload(Bucket=bucket, Key="dest/big", UploadId=state.upload_id)

    dest = s3(opened, moto_endpoint, s3_root)
    sink = MemorySink()
    second = Copier(source, dest, TransferOptions(), sink, CancelToken())
    await second.copy(job, Resume(done, persisted(state)))
    assert await read_all(dest, "/big") == data
    assert sink.bytes_transferred == len(data)


async def test_copy_out_of_s3_with_native_checksum(
    moto_endpoint: str, s3_root: str, opened: list[S3Connector]
) -> None:
    origin = s3(opened, moto_endpoint, s3_root)
    data = os.urandom(2 * PART + 17)
    state = await origin.begin_write("/src.bin", len(data))
    for offset in range(0, len(data), state.part_size):
        await origin.write(state, offset, data[offset : offset + state.part_size])
    await origin.commit_write(state, "/src.bin")
    info = await origin.stat("/src.bin")
    target = MemoryConnector()
    sink = MemorySink()
    job = FileJob("/src.bin", "/copy.bin", info.size, info.mtime, checksum_algorithm="crc32c")
    options = TransferOptions(verify_checksum=True, sync_level=3)
    result = await Copier(origin, target, options, sink, CancelToken()).copy(job)
    assert result.status == "done"
    assert result.checksum == f"{google_crc32c.value(data):08x}"
    assert await target.read("/copy.bin", 0, len(data)) == data
    # Checksum sync compares the source's stored CRC32C with the copy, without a re-send.
    again = await Copier(origin, target, options, MemorySink(), CancelToken()).copy(job)
    assert again.status == "skipped"
