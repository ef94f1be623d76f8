"""Per-user and per-collection limits in the batch claim: one user's huge task cannot take
every worker slot of the deployment; the limits count live leases only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.migrate import upgrade
from arctern.db.models.auth import Identity, IdentityProvider
from arctern.db.models.transfer import Collection, Task
from arctern.db.models.work import WorkBatch
from arctern.worker import leases
from arctern.worker.leases import Limits
from arctern.worker.pool import WorkerPool
from tests.integration.test_worker import collection as integration_collection
from tests.integration.test_worker import submit, wait_done

LEASE = timedelta(seconds=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'fair.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def ctx(tmp_path: Path, database_url: str) -> AsyncIterator[AppContext]:
    settings = Settings(home=tmp_path, database_url=database_url, secret_key="t")
    context = AppContext.from_settings(settings)
    yield context
    await context.db.dispose()


async def user(ctx: AppContext, name: str) -> uuid.UUID:
    async with ctx.db.session() as session:
        idp = IdentityProvider(name=f"IdP {name}", domain=f"{name}.edu", created_at=ctx.clock.now())
        session.add(idp)
        await session.flush()
        ident = Identity(
            provider_id=idp.id, username=f"{name}@{name}.edu", created_at=idp.created_at
        )
        session.add(ident)
        await session.flush()
        return ident.id


async def collection(ctx: AppContext, who: uuid.UUID) -> uuid.UUID:
    async with ctx.db.session() as session:
        coll = Collection(
            display_name=f"c-{uuid.uuid4().hex[:8]}",
            owner_id=who,
            connector="memory",
            root="/",
            options={},
            created_at=ctx.clock.now(),
        )
        session.add(coll)
        await session.flush()
        return coll.id


async def planned_task(
    ctx: AppContext, who: uuid.UUID, src: uuid.UUID, dst: uuid.UUID, batches: int
) -> list[int]:
    """A planned task with ``batches`` pending batches; returns their ids in claim order."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        task = Task(
            submission_id=uuid.uuid4(),
            owner_id=who,
            type="TRANSFER",
            status="ACTIVE",
            nice_status="OK",
            source_endpoint_id=src,
            destination_endpoint_id=dst,
            options={},
            request_time=now,
            deadline=now + timedelta(days=1),
            planned=True,
        )
        session.add(task)
        await session.flush()
        ids = []
        for _ in range(batches):
            row = await session.execute(
                insert(WorkBatch)
                .values(task_id=task.id, state="pending", attempts=0, file_count=1, byte_count=1)
                .returning(WorkBatch.id)
            )
            ids.append(row.scalar_one())
        return ids


async def claim(ctx: AppContext, limits: Limits, worker: str = "w", skew: float = 0) -> int | None:
    now = ctx.clock.now() + timedelta(seconds=skew)
    async with ctx.db.session() as session:
        got = await leases.claim_batch(session, worker, now, LEASE, limits)
    return got.batch_id if got else None


async def test_per_user_limit_lets_another_users_task_through(ctx: AppContext) -> None:
    alice, bob = await user(ctx, "alice"), await user(ctx, "bob")
    a_src, a_dst = await collection(ctx, alice), await collection(ctx, alice)
    b_src, b_dst = await collection(ctx, bob), await collection(ctx, bob)
    huge = await planned_task(ctx, alice, a_src, a_dst, batches=50)
    small = await planned_task(ctx, bob, b_src, b_dst, batches=2)
    limits = Limits(per_user=2)

    claimed = [await claim(ctx, limits, f"w{i}") for i in range(5)]
    # Alice's first two batches, then Bob's two although Alice has 48 older ones; then
    # nothing: both users are at their limit.
    assert claimed == [huge[0], huge[1], small[0], small[1], None]

    # A finished batch frees a slot of its owner.
    async with ctx.db.session() as session:
        await session.execute(
            update(WorkBatch)
            .where(WorkBatch.id == huge[0])
            .values(state="done", lease_owner=None, lease_expires=None)
        )
    assert await claim(ctx, limits) == huge[2]
    assert await claim(ctx, limits) is None

    # Leases of dead workers stop counting once they expire: their batches are claimable.
    later = LEASE.total_seconds() + 1
    assert await claim(ctx, limits, skew=later) == huge[1]
    assert await claim(ctx, limits, skew=later) == huge[2]
    assert await claim(ctx, limits, skew=later) == small[0]


async def test_per_collection_limit_counts_source_and_destination(ctx: AppContext) -> None:
    alice, bob = await user(ctx, "alice"), await user(ctx, "bob")
    shared = await collection(ctx, alice)
    a_src, b_dst, other_src, other_dst = [await collection(ctx, bob) for _ in range(4)]
    into_shared = await planned_task(ctx, alice, a_src, shared, batches=5)
    from_shared = await planned_task(ctx, bob, shared, b_dst, batches=5)
    elsewhere = await planned_task(ctx, bob, other_src, other_dst, batches=1)
    limits = Limits(per_collection=3)

    claimed = [await claim(ctx, limits) for _ in range(5)]
    # Three batches touch the shared collection (whatever the direction or owner), then only
    # the unrelated task runs.
    assert claimed == [*into_shared[:3], elsewhere[0], None]
    assert from_shared[0] not in claimed


async def test_no_limits_is_first_come_first_served(ctx: AppContext) -> None:
    alice, bob = await user(ctx, "alice"), await user(ctx, "bob")
    a = await planned_task(
        ctx, alice, await collection(ctx, alice), await collection(ctx, alice), 3
    )
    b = await planned_task(ctx, bob, await collection(ctx, bob), await collection(ctx, bob), 1)
    assert [await claim(ctx, Limits()) for _ in range(5)] == [*a, *b, None]


async def test_a_small_task_finishes_while_another_users_huge_task_runs(
    tmp_path: Path, database_url: str
) -> None:
    """End to end through a worker pool configured by settings: with one batch per user, the
    second slot serves Bob at once although Alice's task queued many batches before his."""
    settings = Settings(
        home=tmp_path,
        database_url=database_url,
        secret_key="t",
        progress_flush_seconds=0.2,
        worker_batch_files=10,
        max_active_batches_per_user=1,
    )
    ctx = AppContext.from_settings(settings)
    pool = WorkerPool(ctx, concurrency=2, poll_interval=0.05, reaper_interval=0.2)
    try:
        alice, bob = await user(ctx, "alice"), await user(ctx, "bob")
        roots = {name: tmp_path / name for name in ("a-src", "a-dst", "b-src", "b-dst")}
        for root in roots.values():
            root.mkdir()
        for i in range(600):
            (roots["a-src"] / f"{i:03}.bin").write_bytes(b"a" * (1000 + i))
        for i in range(5):
            (roots["b-src"] / f"{i}.bin").write_bytes(b"b" * 100)
        a_src = await posix(ctx, alice, roots["a-src"])
        a_dst = await posix(ctx, alice, roots["a-dst"])
        b_src = await posix(ctx, bob, roots["b-src"])
        b_dst = await posix(ctx, bob, roots["b-dst"])
        everything = [{"source_path": "/", "destination_path": "/", "recursive": True}]
        huge = await submit(ctx, alice, a_src, a_dst, everything)
        small = await submit(ctx, bob, b_src, b_dst, everything)
        await pool.start()

        done = await wait_done(ctx, small, timeout=60)
        assert done.status == "SUCCEEDED", done.fatal_error
        async with ctx.db.session() as session:
            still = await session.get(Task, huge)
            assert still is not None
            assert still.status == "ACTIVE", "Bob waited for Alice's whole task"
            assert (still.files_transferred or 0) < 600
        finished = await wait_done(ctx, huge, timeout=120)
        assert finished.status == "SUCCEEDED", finished.fatal_error
        assert len(list(roots["a-dst"].iterdir())) == 600
    finally:
        await pool.stop(timeout=5)
        await ctx.db.dispose()


async def posix(ctx: AppContext, who: uuid.UUID, root: Path) -> uuid.UUID:
    return await integration_collection(ctx, who, "posix", str(root))


async def test_simultaneous_claims_respect_the_limit_exactly(ctx: AppContext) -> None:
    alice = await user(ctx, "alice")
    await planned_task(ctx, alice, await collection(ctx, alice), await collection(ctx, alice), 20)
    limits = Limits(per_user=2)
    for _round in range(3):
        claimed = await asyncio.gather(*(claim(ctx, limits, f"w{i}") for i in range(8)))
        assert len([c for c in claimed if c is not None]) == 2, claimed
        async with ctx.db.session() as session:
            await session.execute(
                update(WorkBatch)
                .where(WorkBatch.lease_owner.is_not(None))
                .values(state="done", lease_owner=None, lease_expires=None)
            )
