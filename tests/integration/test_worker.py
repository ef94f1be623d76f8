"""Worker pools against a real database: tasks inserted as the transfer API does, then run.

Covers planning into batches, copying, counters and events, two pools sharing one task, a
lease taken over after a crash (resuming a large file mid-way), cancel, expiry, delete tasks
and injected faults. SQLite by default; ``ARCTERN_TEST_DATABASE=postgresql`` uses PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from arctern.config import Settings
from arctern.connectors.base import Connector
from arctern.connectors.registry import open_connector
from arctern.context import AppContext
from arctern.db.migrate import upgrade
from arctern.db.models.auth import Identity, IdentityProvider
from arctern.db.models.transfer import Collection, Task, TaskEvent, TaskItem
from arctern.db.models.work import TaskFile, TaskPlan, WorkBatch
from arctern.engine.copier import RetryPolicy
from arctern.worker import batch_files
from arctern.worker.executor import WorkerConfig
from arctern.worker.pool import WorkerPool

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if os.environ.get("ARCTERN_TEST_DATABASE", "sqlite") == "postgresql":
        url: str = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def ctx(tmp_path: Path, database_url: str) -> AsyncIterator[AppContext]:
    settings = Settings(
        home=tmp_path,
        database_url=database_url,
        secret_key="test",
        lease_seconds=30,
        progress_flush_seconds=0.2,
    )
    context = AppContext.from_settings(settings)
    yield context
    await context.db.dispose()


def config(name: str, **overrides: Any) -> WorkerConfig:
    base = WorkerConfig(
        name=name,
        lease=timedelta(seconds=30),
        flush_seconds=0.2,
        retry=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05, checksum_attempts=10),
    )
    return replace(base, **overrides)


@pytest.fixture
async def pools(ctx: AppContext) -> AsyncIterator[Callable[..., Any]]:
    started: list[WorkerPool] = []

    async def start(
        name: str = "w1", factory: Any = None, concurrency: int = 2, **overrides: Any
    ) -> WorkerPool:
        pool = WorkerPool(
            ctx,
            concurrency=concurrency,
            connector_factory=factory,
            config=config(name, **overrides),
            reaper_interval=0.2,
            crash_retry_delay=0.05,
        )
        await pool.start()
        started.append(pool)
        return pool

    yield start
    for pool in started:
        await pool.stop(timeout=5)


async def owner(ctx: AppContext) -> uuid.UUID:
    async with ctx.db.session() as session:
        idp = IdentityProvider(name="U", domain="u.edu", created_at=ctx.clock.now())
        session.add(idp)
        await session.flush()
        ident = Identity(provider_id=idp.id, username="a@u.edu", created_at=ctx.clock.now())
        session.add(ident)
        await session.flush()
        return ident.id


async def collection(ctx: AppContext, who: uuid.UUID, kind: str, root: str) -> uuid.UUID:
    async with ctx.db.session() as session:
        coll = Collection(
            display_name=f"c-{uuid.uuid4().hex[:8]}",
            owner_id=who,
            connector=kind,
            root=root,
            options={},
            created_at=ctx.clock.now(),
        )
        session.add(coll)
        await session.flush()
        return coll.id


async def submit(
    ctx: AppContext,
    who: uuid.UUID,
    src: uuid.UUID,
    dst: uuid.UUID | None,
    items: list[dict[str, Any]],
    *,
    kind: str = "TRANSFER",
    deadline_in: float = 3600,
    **options: Any,
) -> uuid.UUID:
    """Insert a task and its items in one transaction, exactly as the transfer API does."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        task = Task(
            submission_id=uuid.uuid4(),
            owner_id=who,
            type=kind,
            status="ACTIVE",
            nice_status="Queued",
            source_endpoint_id=src,
            destination_endpoint_id=dst,
            options=options,
            request_time=now,
            deadline=now + timedelta(seconds=deadline_in),
            planned=False,
        )
        session.add(task)
        await session.flush()
        for position, item in enumerate(items):
            session.add(TaskItem(task_id=task.id, position=position, **item))
        return task.id


async def wait_done(ctx: AppContext, task_id: uuid.UUID, timeout: float = 20) -> Task:
    end = time.monotonic() + timeout
    while True:
        async with ctx.db.session() as session:
            task = await session.get(Task, task_id)
            assert task is not None
            if task.status in ("SUCCEEDED", "FAILED"):
                return task
        if time.monotonic() > end:
            raise AssertionError(f"task still {task.status} / {task.nice_status}")
        await asyncio.sleep(0.05)


async def files_of(ctx: AppContext, task_id: uuid.UUID) -> list[TaskFile]:
    """Every file of the task with a record (a row, or a place in a run of files done)."""
    async with ctx.db.session() as session:
        return await batch_files.recorded_files(session, task_id)


async def event_codes(ctx: AppContext, task_id: uuid.UUID) -> list[str]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(TaskEvent.code).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
        )
        return list(rows)


def part_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".arctern-*.part")]


@pytest.fixture
async def posix_pair(
    ctx: AppContext, tmp_path: Path
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, Path, Path]:
    who = await owner(ctx)
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    dst_root.mkdir()
    src = await collection(ctx, who, "posix", str(src_root))
    dst = await collection(ctx, who, "posix", str(dst_root))
    return who, src, dst, src_root, dst_root


async def test_one_file_task_completes_quickly(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    (src_root / "hello.txt").write_bytes(b"hello, arctern")
    await pools("w1")
    await asyncio.sleep(0.3)  # the pool is idle and polling
    started = time.monotonic()
    task_id = await submit(
        ctx,
        who,
        src,
        dst,
        [{"source_path": "/hello.txt", "destination_path": "/out/hello.txt"}],
        verify_checksum=True,
    )
    task = await wait_done(ctx, task_id)
    elapsed = time.monotonic() - started
    assert task.status == "SUCCEEDED", task.fatal_error
    # Latency is measured in bench/ (about 40 ms); here only "promptly, not at some later
    # poll or lease expiry", with room for a busy machine.
    assert elapsed < 15.0, elapsed
    assert (dst_root / "out" / "hello.txt").read_bytes() == b"hello, arctern"
    assert task.nice_status is None and task.completion_time is not None
    assert (task.files, task.files_transferred, task.bytes_transferred) == (1, 1, 14)
    assert (task.subtasks_total, task.subtasks_succeeded, task.subtasks_pending) == (1, 1, 0)
    assert task.bytes_checksummed >= 14
    assert 0 < task.active_seconds < 5
    (row,) = await files_of(ctx, task_id)
    assert row.state == "done" and row.done_time is not None
    assert row.checksum_algorithm == "MD5" and len(row.checksum or "") == 32
    assert await event_codes(ctx, task_id) == ["STARTED", "SUCCEEDED"]


async def test_recursive_transfer_with_errors_fails_or_skips(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    (src_root / "tree" / "sub").mkdir(parents=True)
    for i in range(7):
        (src_root / "tree" / f"f{i}.dat").write_bytes(os.urandom(1000 + i))
    (src_root / "tree" / "sub" / "inner.txt").write_bytes(b"inner")
    await pools("w1", batch_files=3)
    items = [
        {"source_path": "/tree", "destination_path": "/copy", "recursive": True},
        {"source_path": "/missing.txt", "destination_path": "/missing.txt"},
    ]
    task_id = await submit(ctx, who, src, dst, items)
    task = await wait_done(ctx, task_id)
    assert task.status == "FAILED"
    assert task.fatal_error == {
        "code": "FILE_NOT_FOUND",
        "description": task.fatal_error["description"],
    }
    assert (dst_root / "copy" / "sub" / "inner.txt").read_bytes() == b"inner"
    assert task.files == 8 and task.files_transferred == 8 and task.directories == 2
    assert task.subtasks_failed == 1 and task.subtasks_succeeded == 8
    async with ctx.db.session() as session:
        batches = (
            await session.execute(
                select(WorkBatch.file_count, WorkBatch.state)
                .where(WorkBatch.task_id == task_id)
                .order_by(WorkBatch.id)
            )
        ).all()
    # Eight files in batches of three, and the planner's error under a batch of its own.
    assert sorted(batches) == [(0, "done"), (2, "done"), (3, "done"), (3, "done")]

    skip_id = await submit(ctx, who, src, dst, items, skip_source_errors=True)
    task = await wait_done(ctx, skip_id)
    assert task.status == "SUCCEEDED"
    assert task.subtasks_skipped_errors == 1
    states = sorted(r.state for r in await files_of(ctx, skip_id))
    assert states == ["done"] * 8 + ["skipped"]
    assert "SKIPPED_ERRORS" in await event_codes(ctx, skip_id)


async def test_sync_level_skips_unchanged_files(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    (src_root / "d").mkdir()
    (src_root / "d" / "same").write_bytes(b"same")
    (src_root / "d" / "changed").write_bytes(b"new!")
    (dst_root / "d").mkdir()
    (dst_root / "d" / "same").write_bytes(b"same")
    (dst_root / "d" / "changed").write_bytes(b"old!")
    await pools("w1")
    item = [{"source_path": "/d", "destination_path": "/d", "recursive": True}]
    task = await wait_done(ctx, await submit(ctx, who, src, dst, item, sync_level=3))
    assert task.status == "SUCCEEDED"
    assert (task.files, task.files_skipped, task.files_transferred) == (2, 1, 1)
    assert (dst_root / "d" / "changed").read_bytes() == b"new!"


class Recording:
    """Wraps a connector: counts reads, optionally slows them or blocks after a budget."""

    def __init__(
        self, inner: Connector, log: list[tuple[str, int]], delay: float = 0.0, budget: int = -1
    ) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.log = log
        self.delay = delay
        self.budget = budget

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        if self.budget == 0:
            await asyncio.Event().wait()  # hangs: the worker is stuck, then dies
        self.budget -= 1
        self.log.append((path, offset))
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.inner.read(path, offset, length)


def recording_factory(log: list[tuple[str, int]], **kw: Any) -> Callable[..., Connector]:
    def factory(kind: str, root: str, options: dict[str, Any]) -> Connector:
        return Recording(open_connector(kind, root, options), log, **kw)  # type: ignore[return-value]

    return factory


async def test_two_pools_share_one_task(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    (src_root / "many").mkdir()
    for i in range(24):
        (src_root / "many" / f"{i:02}.bin").write_bytes(bytes([i]) * 2000)
    log_a: list[tuple[str, int]] = []
    log_b: list[tuple[str, int]] = []
    await pools("A", recording_factory(log_a, delay=0.02), batch_files=2, file_concurrency=1)
    await pools("B", recording_factory(log_b, delay=0.02), batch_files=2, file_concurrency=1)
    item = [{"source_path": "/many", "destination_path": "/many", "recursive": True}]
    task = await wait_done(ctx, await submit(ctx, who, src, dst, item))
    assert task.status == "SUCCEEDED"
    assert task.files_transferred == 24 and task.subtasks_succeeded == 24
    read_a = {p for p, _ in log_a}
    read_b = {p for p, _ in log_b}
    assert read_a and read_b, "both pools must have copied files"
    assert not read_a & read_b, "no file may be copied by both pools"
    assert len(read_a | read_b) == 24
    for i in range(24):
        assert (dst_root / "many" / f"{i:02}.bin").read_bytes() == bytes([i]) * 2000


async def test_expired_lease_is_taken_over_and_large_file_resumes(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    payload = os.urandom(64 * 1024 * 16)
    (src_root / "big.bin").write_bytes(payload)
    log_a: list[tuple[str, int]] = []
    chunk = 64 * 1024
    dead = await pools(
        "dying",
        recording_factory(log_a, budget=6),
        lease=timedelta(seconds=1),
        chunk_size=chunk,
        parallel_chunks=1,
    )
    task_id = await submit(
        ctx, who, src, dst, [{"source_path": "/big.bin", "destination_path": "/big.bin"}]
    )
    # Wait until the stuck worker has persisted a resume point, then let it die.
    persisted = 0
    end = time.monotonic() + 10
    while persisted == 0 and time.monotonic() < end:
        rows = await files_of(ctx, task_id)
        persisted = rows[0].bytes_done if rows else 0
        await asyncio.sleep(0.05)
    assert persisted >= chunk
    await dead.abort()
    # Resume points are persisted after every window, so the dead worker may have stored a
    # later one between the poll above and its death: the successor starts from the last.
    persisted = (await files_of(ctx, task_id))[0].bytes_done
    assert persisted >= chunk
    assert len(part_files(dst_root)) == 1  # the dead worker's partial file is still there

    log_b: list[tuple[str, int]] = []
    await pools("rescuer", recording_factory(log_b), chunk_size=chunk, parallel_chunks=1)
    task = await wait_done(ctx, task_id)
    assert task.status == "SUCCEEDED", task.fatal_error
    assert (dst_root / "big.bin").read_bytes() == payload
    assert min(offset for _p, offset in log_b) == persisted
    assert part_files(dst_root) == []
    async with ctx.db.session() as session:
        attempts = await session.scalar(
            select(WorkBatch.attempts).where(WorkBatch.task_id == task_id)
        )
    assert attempts == 2


@pytest.mark.parametrize("how", ["cancel", "deadline"])
async def test_cancel_stops_within_two_seconds_and_cleans_up(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any, how: str
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    (src_root / "slow").mkdir()
    for i in range(4):
        (src_root / "slow" / f"{i}.bin").write_bytes(os.urandom(256 * 1024))
    log: list[tuple[str, int]] = []
    await pools("w1", recording_factory(log, delay=0.05), chunk_size=16 * 1024, parallel_chunks=1)
    item = [{"source_path": "/slow", "destination_path": "/slow", "recursive": True}]
    task_id = await submit(ctx, who, src, dst, item)
    for _ in range(500):  # until the copy has started reading
        if log:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    if how == "cancel":
        change: dict[str, Any] = {"cancel_requested": True}
        code = "CANCELED"
    else:
        change = {"deadline": ctx.clock.now() - timedelta(seconds=1)}
        code = "EXPIRED"
    async with ctx.db.session() as session:
        await session.execute(update(Task).where(Task.id == task_id).values(**change))
    asked = time.monotonic()
    task = await wait_done(ctx, task_id, timeout=5)
    assert time.monotonic() - asked < 2.0
    assert task.status == "FAILED" and task.fatal_error is not None
    assert task.fatal_error["code"] == code
    assert task.nice_status is None and task.completion_time is not None
    await asyncio.sleep(0.3)  # let the copies finish cleaning up
    assert part_files(dst_root) == []
    assert [p.name for p in (dst_root / "slow").iterdir()] == []
    assert code in await event_codes(ctx, task_id)
    states = {r.state for r in await files_of(ctx, task_id)}
    assert states == {"canceled"}
    if how == "cancel":
        assert task.subtasks_canceled == 4
    else:
        assert task.subtasks_expired == 4


async def test_reaper_cancels_and_expires_unclaimed_tasks(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, _dst_root = posix_pair
    (src_root / "f").write_bytes(b"x")
    item = [{"source_path": "/f", "destination_path": "/f"}]
    canceled = await submit(ctx, who, src, dst, item)
    async with ctx.db.session() as session:
        await session.execute(update(Task).where(Task.id == canceled).values(cancel_requested=True))
    expired = await submit(ctx, who, src, dst, item, deadline_in=-1)
    await pools("w1")
    task = await wait_done(ctx, canceled, timeout=5)
    assert task.fatal_error is not None and task.fatal_error["code"] == "CANCELED"
    task = await wait_done(ctx, expired, timeout=5)
    assert task.status == "FAILED"
    assert task.fatal_error is not None and task.fatal_error["code"] == "EXPIRED"
    assert "EXPIRED" in await event_codes(ctx, expired)


async def test_delete_tasks(ctx: AppContext, pools: Callable[..., Any], tmp_path: Path) -> None:
    who = await owner(ctx)
    root = tmp_path / "del"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "sub" / "a").write_bytes(b"a")
    (root / "dir" / "b").write_bytes(b"b")
    (root / "x1.txt").write_bytes(b"1")
    (root / "x2.txt").write_bytes(b"2")
    (root / "keep.dat").write_bytes(b"k")
    os.symlink(str(tmp_path), root / "link")  # removed, never followed
    coll = await collection(ctx, who, "posix", str(root))
    await pools("w1")

    items = [{"source_path": p} for p in ("/dir", "/x*.txt", "/link", "/gone")]
    task_id = await submit(
        ctx,
        who,
        coll,
        None,
        items,
        kind="DELETE",
        recursive=True,
        interpret_globs=True,
        ignore_missing=True,
    )
    task = await wait_done(ctx, task_id)
    assert task.status == "SUCCEEDED", task.fatal_error
    assert sorted(p.name for p in root.iterdir()) == ["keep.dat"]
    assert tmp_path.exists() and (tmp_path / "del").exists()
    assert (task.files, task.directories) == (5, 2)

    (root / "d2").mkdir()
    task_id = await submit(ctx, who, coll, None, [{"source_path": "/d2"}], kind="DELETE")
    task = await wait_done(ctx, task_id)
    assert task.status == "FAILED" and task.fatal_error is not None
    assert task.fatal_error["code"] == "IS_A_DIRECTORY"
    assert (root / "d2").exists()

    task_id = await submit(ctx, who, coll, None, [{"source_path": "/nope"}], kind="DELETE")
    task = await wait_done(ctx, task_id)
    assert task.fatal_error is not None and task.fatal_error["code"] == "FILE_NOT_FOUND"


async def test_injected_faults_are_retried_and_verified(
    tmp_path: Path, database_url: str, posix_pair: Any, ctx: AppContext
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    (src_root / "data").mkdir()
    blobs = {f"{i}.bin": os.urandom(40_000 + i) for i in range(12)}
    for name, blob in blobs.items():
        (src_root / "data" / name).write_bytes(blob)
    faulty = AppContext.from_settings(
        ctx.settings.model_copy(
            update={"fault_injection": "read_error=0.05,write_error=0.05,flip=0.05,seed=5"}
        )
    )
    pool = WorkerPool(
        faulty, concurrency=2, config=config("faulty", chunk_size=8192), reaper_interval=0.2
    )
    await pool.start()
    try:
        item = [{"source_path": "/data", "destination_path": "/data", "recursive": True}]
        task_id = await submit(ctx, who, src, dst, item, verify_checksum=True)
        task = await wait_done(ctx, task_id, timeout=30)
    finally:
        await pool.stop()
        await faulty.db.dispose()
    assert task.status == "SUCCEEDED", task.fatal_error
    assert task.faults > 0
    for name, blob in blobs.items():
        assert (dst_root / "data" / name).read_bytes() == blob
    codes = await event_codes(ctx, task_id)
    assert "VERIFY_CHECKSUM" in codes or "ENDPOINT_ERROR" in codes


async def test_planning_commits_in_batches_and_resumes(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    (src_root / "p").mkdir()
    for i in range(30):
        (src_root / "p" / f"{i:02}").write_bytes(b"%d" % i)
    item = [{"source_path": "/p", "destination_path": "/p", "recursive": True}]
    task_id = await submit(ctx, who, src, dst, item)
    # A previous planner committed the first 11 entries (the root mkdir and 10 files) and died.
    async with ctx.db.session() as session:
        session.add(
            TaskPlan(
                task_id=task_id,
                done=False,
                lease_owner="dead",
                lease_expires=ctx.clock.now() - timedelta(seconds=1),
                attempts=1,
                item_index=0,
                entries_done=11,
                created_at=ctx.clock.now(),
            )
        )
        listed = [[f"/p/{i:02}", f"/p/{i:02}", len(b"%d" % i), 0.0, None, None] for i in range(10)]
        batch = WorkBatch(
            task_id=task_id, state="pending", file_count=10, byte_count=0, files=listed
        )
        session.add(batch)
        await session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(files=10, directories=1, subtasks_total=10, subtasks_pending=10)
        )
    (dst_root / "p").mkdir()
    await pools("w1", plan_commit_entries=7, batch_files=4)
    task = await wait_done(ctx, task_id)
    assert task.status == "SUCCEEDED", task.fatal_error
    assert (task.files, task.directories, task.files_transferred) == (30, 1, 30)
    rows = await files_of(ctx, task_id)
    assert len(rows) == 30 and {r.state for r in rows} == {"done"}
    assert sorted(r.source_path for r in rows) == [f"/p/{i:02}" for i in range(30)]
    for i in range(30):
        assert (dst_root / "p" / f"{i:02}").read_bytes() == b"%d" % i


async def test_graceful_stop_hands_work_over_at_once(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, dst_root = posix_pair
    payload = os.urandom(32 * 16 * 1024)
    (src_root / "big.bin").write_bytes(payload)
    log_a: list[tuple[str, int]] = []
    chunk = 16 * 1024
    first = await pools(
        "first", recording_factory(log_a, delay=0.05), chunk_size=chunk, parallel_chunks=1
    )
    task_id = await submit(
        ctx, who, src, dst, [{"source_path": "/big.bin", "destination_path": "/big.bin"}]
    )
    for _ in range(500):
        if len(log_a) >= 4:
            break
        await asyncio.sleep(0.02)
    await first.stop()
    rows = await files_of(ctx, task_id)
    assert rows[0].state == "pending" and rows[0].bytes_done >= chunk
    async with ctx.db.session() as session:
        lease = await session.scalar(
            select(WorkBatch.lease_owner).where(WorkBatch.task_id == task_id)
        )
    assert lease is None  # released, not left to expire
    log_b: list[tuple[str, int]] = []
    await pools("second", recording_factory(log_b), chunk_size=chunk, parallel_chunks=1)
    task = await wait_done(ctx, task_id, timeout=10)
    assert task.status == "SUCCEEDED", task.fatal_error
    assert (dst_root / "big.bin").read_bytes() == payload
    assert min(offset for _p, offset in log_b) == rows[0].bytes_done
    assert part_files(dst_root) == []


class Broken:
    """A storage driver with a bug: every listing raises something no one expects."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list(self, path: str) -> Any:
        raise RuntimeError("driver bug")


async def test_a_job_that_keeps_crashing_fails_its_task(
    ctx: AppContext, pools: Callable[..., Any], posix_pair: Any
) -> None:
    who, src, dst, src_root, _dst_root = posix_pair
    (src_root / "d").mkdir()

    def factory(kind: str, root: str, options: dict[str, Any]) -> Connector:
        return Broken(open_connector(kind, root, options))  # type: ignore[return-value]

    await pools("w1", factory)
    item = [{"source_path": "/d", "destination_path": "/d", "recursive": True}]
    task = await wait_done(ctx, await submit(ctx, who, src, dst, item), timeout=15)
    assert task.status == "FAILED" and task.fatal_error is not None
    assert task.fatal_error["code"] == "UNKNOWN"
    assert "driver bug" in task.fatal_error["description"]
