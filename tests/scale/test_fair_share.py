"""Per-user and per-collection limits in the batch claim: one user's huge task cannot take
every worker slot of the deployment; the limits count live leases only."""

from __future__ import annotations

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
