"""A plan commit on the database leases the batch it made to its own worker when the pool
has room: the pool's next claim and the batch job's first read then cost no statement, the
files come with their row ids, and a lease taken ahead is handed back when not used soon.

Migrated SQLite and PostgreSQL databases, as ``test_connect_work``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select, update

from arctern.context import AppContext
from arctern.db.models.work import TaskFile, WorkBatch
from arctern.engine.options import FileJob
from arctern.worker import batch_files
from arctern.worker.leases import Claim, Limits
from arctern.worker.progress import TaskProgress
from arctern.worker.source import DatabaseWorkSource, PlanCommit, PlannedBatches
from tests.integration import test_connect_work
from tests.integration.test_worker_scope import collection, task
from tests.scale.test_fair_share import user

database_url = test_connect_work.database_url
ctx = test_connect_work.ctx

LEASE = timedelta(seconds=30)


def _jobs(prefix: str, count: int) -> list[FileJob]:
    return [
        FileJob(f"/src/{prefix}{i}", f"/dst/{prefix}{i}", 100 + i, 1.7e9 + i, None, "md5")
        for i in range(count)
    ]


@contextmanager
def statements(ctx: AppContext) -> Iterator[list[str]]:
    """The SQL statements run while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _planning(
    ctx: AppContext, monotonic: Callable[[], float], limits: Limits = Limits()
) -> tuple[DatabaseWorkSource, Any, uuid.UUID]:
    owner = await user(ctx, "alice")
    src, dst = await collection(ctx, owner), await collection(ctx, owner)
    task_id = await task(ctx, owner, src, dst)
    source = DatabaseWorkSource(ctx, worker="w1", lease=LEASE, limits=limits, monotonic=monotonic)
    plan = await source.claim()
    assert plan is not None and plan.kind == "plan"
    return source, plan, task_id


async def _listed(ctx: AppContext, batch_id: int | None) -> list[tuple[Any, ...]]:
    """The files the batch row lists, with the row ids they are to have."""
    assert batch_id is not None
    async with ctx.db.session() as session:
        jobs = await batch_files.batch_jobs(session, batch_id)
        rows = await session.scalar(
            select(func.count()).select_from(TaskFile).where(TaskFile.batch_id == batch_id)
        )
    assert rows == 0, "a planned file has no row until it has an outcome"
    return [(j.key, j.source_path, j.destination_path, j.size) for j in jobs]


async def _lease_owner(ctx: AppContext, batch_id: int | None) -> str | None:
    async with ctx.db.session() as session:
        owner: str | None = await session.scalar(
            select(WorkBatch.lease_owner).where(WorkBatch.id == batch_id)
        )
        return owner


async def test_the_batch_just_planned_is_claimed_and_read_without_a_statement(
    ctx: AppContext,
) -> None:
    now = [1000.0]
    source, plan, task_id = await _planning(ctx, lambda: now[0])
    # The same file twice (two identical items): each entry gets a row of its own.
    planned = [*_jobs("a", 3), _jobs("a", 1)[0]]
    await source.commit_plan(
        plan, PlanCommit(1, 0, False, batches=[planned]), None, lease_next=True
    )

    with statements(ctx) as seen:
        batch = await source.claim()
        assert batch is not None and (batch.kind, batch.task_id) == ("batch", task_id)
        files = await source.load_batch(batch)
    assert seen == []
    assert await _lease_owner(ctx, batch.batch_id) == "w1"
    # The files as planned, each with its row's id (the key of its progress and temp name).
    listed = await _listed(ctx, batch.batch_id)
    assert [(j.key, j.source_path, j.destination_path, j.size) for j, _ in files] == listed
    assert batch.batch_id is not None
    assert [j.key for j, _ in files] == [batch_files.file_id(batch.batch_id, i) for i in range(4)]
    assert [(j.mtime, j.checksum_algorithm, resume) for j, resume in files] == [
        (p.mtime, "md5", None) for p in planned
    ]
    # Read again (a retried job): from the database, the same files.
    with statements(ctx) as seen:
        again = await source.load_batch(batch)
    assert len(seen) == 2 and again == files  # the batch's list, and its files' rows

    # Without room nothing is leased ahead: the next claim runs the claim statements, and
    # the batch's first lease still starts from the files planned here, without a read.
    await source.commit_plan(plan, PlanCommit(1, 0, False, batches=[_jobs("b", 2)]), None)
    with statements(ctx) as seen:
        second = await source.claim()
    assert second is not None and second.kind == "batch" and second != batch and seen
    with statements(ctx) as seen:
        files = await source.load_batch(second)
    assert seen == [] and [j.source_path for j, _ in files] == ["/src/b0", "/src/b1"]


async def test_a_batch_planned_here_but_leased_elsewhere_first_is_read_back(
    ctx: AppContext,
) -> None:
    """Files kept from planning serve only a batch's first lease: once another worker held
    it, it may have copied some, and the rows say which."""
    now = [1000.0]
    source, plan, _task_id = await _planning(ctx, lambda: now[0])
    await source.commit_plan(plan, PlanCommit(1, 0, False, batches=[_jobs("a", 3)]), None)
    other = DatabaseWorkSource(ctx, worker="w2", lease=LEASE, limits=Limits())
    taken = await other.claim()
    assert taken is not None and taken.kind == "batch" and taken.first_lease
    copied = (await other.load_batch(taken))[0][0]
    progress = TaskProgress(taken.task_id, ctx.clock.now)
    progress.file_done(copied, "done")
    await other.finish_batch(taken, progress)  # as if copied, then given back unfinished
    async with ctx.db.session() as session:
        await session.execute(
            update(WorkBatch).where(WorkBatch.id == taken.batch_id).values(state="pending")
        )

    again = await source.claim()
    assert again is not None and again.batch_id == taken.batch_id and not again.first_lease
    with statements(ctx) as seen:
        files = await source.load_batch(again)
    assert len(seen) == 2
    assert [j.source_path for j, _ in files] == ["/src/a1", "/src/a2"]


def test_planned_batches_keep_the_most_recent_files_up_to_the_bound() -> None:
    kept = PlannedBatches(max_files=5)
    for batch_id in (1, 2, 3):
        kept.keep(batch_id, _jobs(f"b{batch_id}-", 2))

    def first(batch_id: int) -> Claim:
        return Claim("batch", uuid.uuid4(), batch_id, first_lease=True)

    assert kept.take(first(1)) is None  # the oldest went first
    retried = Claim("batch", uuid.uuid4(), 2, first_lease=False)
    assert kept.take(retried) is None  # not a first lease: read back
    assert kept.take(first(2)) is None  # and no longer kept
    taken = kept.take(first(3))
    assert taken is not None and [j.source_path for j in taken] == ["/src/b3-0", "/src/b3-1"]
    kept.keep(4, _jobs("c", 5))
    kept.drop(4)
    kept.keep(5, _jobs("d", 5))  # room again after the drop: nothing else to push out
    assert kept.take(first(5)) is not None


async def test_a_lease_taken_ahead_and_not_used_soon_is_handed_back(ctx: AppContext) -> None:
    now = [1000.0]
    source, plan, _task_id = await _planning(ctx, lambda: now[0])
    await source.commit_plan(
        plan, PlanCommit(1, 0, False, batches=[_jobs("a", 2)]), None, lease_next=True
    )
    now[0] += 60.0  # the pool was full for a minute
    claimed = await source.claim()  # handed back, then claimed the usual way
    assert claimed is not None and claimed.kind == "batch"
    with statements(ctx) as seen:
        files = await source.load_batch(claimed)
    assert len(seen) == 2 and [j.source_path for j, _ in files] == ["/src/a0", "/src/a1"]

    # The pool stops with a lease taken ahead: handed back at once, and once only.
    await source.commit_plan(
        plan, PlanCommit(1, 0, False, batches=[_jobs("b", 1)]), None, lease_next=True
    )
    async with ctx.db.session() as session:
        ahead = await session.scalar(
            select(WorkBatch.id).where(
                WorkBatch.lease_owner == "w1", WorkBatch.id != claimed.batch_id
            )
        )
    assert ahead is not None
    await source.hand_back_ahead()
    await source.hand_back_ahead()
    assert await _lease_owner(ctx, ahead) is None
    other = DatabaseWorkSource(ctx, worker="w2", lease=LEASE, limits=Limits())
    taken = await other.claim()
    assert taken is not None and taken.batch_id == ahead
    assert len(await other.load_batch(taken)) == 1


async def test_leasing_ahead_keeps_the_fair_share_limits(ctx: AppContext) -> None:
    source, plan, _task_id = await _planning(ctx, lambda: 0.0, limits=Limits(per_user=1))
    await source.commit_plan(
        plan, PlanCommit(1, 0, False, batches=[_jobs("a", 1)]), None, lease_next=True
    )
    first = await source.claim()
    assert first is not None and first.kind == "batch"
    # Alice already has a batch running: the next one is not leased, ahead or otherwise.
    await source.commit_plan(
        plan, PlanCommit(1, 0, False, batches=[_jobs("b", 1)]), None, lease_next=True
    )
    assert await source.claim() is None
