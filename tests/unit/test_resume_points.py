"""A large file's resume point is made durable after every window (not at the next periodic
flush), small files never wait for the database, and concurrent requests share one flush."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from arctern.connectors.base import WriteState
from arctern.connectors.memory.connector import MemoryConnector
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine import copier as copier_module
from arctern.engine.copier import Copier
from arctern.engine.errors import CancelToken
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.runner import MemorySink
from arctern.worker.executor import Job, WorkerConfig
from arctern.worker.leases import Claim
from arctern.worker.progress import TaskProgress
from arctern.worker.source import Beat
from tests.unit.test_engine import put, read_all


class RecordingSink(MemorySink):
    """Tells buffered checkpoints from the ones the copier waits to be durable."""

    def __init__(self) -> None:
        super().__init__()
        self.buffered: list[int] = []
        self.persisted: list[int] = []

    def checkpoint(self, job: FileJob, bytes_done: int, state: WriteState | None) -> None:
        super().checkpoint(job, bytes_done, state)
        self.buffered.append(bytes_done)

    async def persist_checkpoint(
        self, job: FileJob, bytes_done: int, state: WriteState | None
    ) -> None:
        self.persisted.append(bytes_done)
        await super().persist_checkpoint(job, bytes_done, state)


@pytest.mark.parametrize("verify", [False, True])
async def test_every_window_but_the_last_is_persisted(verify: bool) -> None:
    src, dst = MemoryConnector(), MemoryConnector()
    data = os.urandom(10_000)
    await put(src, "/big", data)
    await put(src, "/one-window", data[:2000])
    await put(src, "/small", data[:1000])
    options = TransferOptions(verify_checksum=verify)
    sink = RecordingSink()
    copier = Copier(src, dst, options, sink, CancelToken(), chunk_size=1024, parallel_chunks=2)

    await copier.copy(FileJob("/big", "/big", len(data), 0.0))
    assert await read_all(dst, "/big") == data
    # Windows of 2 x 1024 bytes: each completed window but the last one is made durable.
    assert sink.persisted == [2048, 4096, 6144, 8192]

    sink.persisted.clear()
    await copier.copy(FileJob("/one-window", "/one-window", 2000, 0.0))
    await copier.copy(FileJob("/small", "/small", 1000, 0.0))
    assert sink.persisted == []  # a file copied in one window never waits for the database


async def test_fast_path_persists_each_step(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(copier_module, "FAST_PATH_CHUNK", 4096)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    payload = os.urandom(10_000)
    (tmp_path / "a" / "f.bin").write_bytes(payload)
    src, dst = PosixConnector(str(tmp_path / "a")), PosixConnector(str(tmp_path / "b"))
    sink = RecordingSink()
    copier = Copier(src, dst, TransferOptions(), sink, CancelToken(), chunk_size=1024)
    await copier.copy(FileJob("/f.bin", "/f.bin", len(payload), 0.0))
    assert (tmp_path / "b" / "f.bin").read_bytes() == payload
    assert sink.persisted == [4096, 8192]


class FakeSource:
    """A work source whose heartbeats take a round trip and record what they write."""

    def __init__(self) -> None:
        self.beats = 0
        self.written: dict[int, int] = {}

    async def beat(
        self, claim: Claim, progress: TaskProgress | None, *, extend: bool, guarded: Any
    ) -> Beat:
        self.beats += 1
        await asyncio.sleep(0.01)  # a database round trip: lets requests pile up
        if progress is not None:
            self.written.update({key: done for key, (done, _) in progress.checkpoints.items()})
        return Beat()


async def test_concurrent_resume_points_share_flushes() -> None:
    source = FakeSource()
    clock: Any = SimpleNamespace(now=lambda: datetime.now(UTC))
    config = WorkerConfig(name="w", lease=timedelta(seconds=60))
    factory: Any = None  # no connectors are opened
    job = Job(
        clock, config, Claim("batch", uuid.uuid4(), 1), cast(Any, source), factory, CancelToken()
    )
    state = WriteState(temp_path="/.arctern-x.part")

    async def window(key: int, done: int) -> None:
        await job.progress.persist_checkpoint(
            FileJob(f"/{key}", f"/{key}", 99, 0.0, key=key), done, state
        )
        # Once the call returns, the point is written, not merely buffered.
        assert key not in job.progress.checkpoints
        assert source.written.get(key) == done

    await asyncio.gather(*(window(key, 10 * key) for key in range(1, 9)))
    # Eight files finishing a window at once: the first flush and one more for all the rest.
    assert source.beats <= 2
    assert source.written == {key: 10 * key for key in range(1, 9)}
    # Files without a database record (``key`` None) never wait for a flush.
    before = source.beats
    await job.progress.persist_checkpoint(FileJob("/x", "/x", 99, 0.0), 5, state)
    assert source.beats == before
