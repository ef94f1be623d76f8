"""Which worker may lease which task: central workers lease a transfer touching a Connect
agent's collection only when that agent accepts data connections (deletes run through relayed
file operations); an agent leases transfers between its own collections, and those with a
peer agent that it must run (it pulls from a listening source, or pushes when it does not
listen itself). Each transfer has exactly one possible runner.
"""

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
from arctern.db.models.connect import Endpoint
from arctern.db.models.transfer import Collection, Task
from arctern.db.models.work import WorkBatch
from arctern.worker import leases
from arctern.worker.leases import CENTRAL, Limits, Scope
from arctern.worker.source import DatabaseWorkSource
from tests.scale.test_fair_share import user

LEASE = timedelta(seconds=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'scope.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def ctx(tmp_path: Path, database_url: str) -> AsyncIterator[AppContext]:
    url = database_url
    context = AppContext.from_settings(Settings(home=tmp_path, database_url=url, secret_key="t"))
    yield context
    await context.db.dispose()


async def endpoint(ctx: AppContext, who: uuid.UUID) -> uuid.UUID:
    async with ctx.db.session() as session:
        row = Endpoint(
            display_name=f"e-{uuid.uuid4().hex[:8]}", owner_id=who, created_at=ctx.clock.now()
        )
        session.add(row)
        await session.flush()
        return row.id


async def collection(ctx: AppContext, who: uuid.UUID, on: uuid.UUID | None = None) -> uuid.UUID:
    async with ctx.db.session() as session:
        coll = Collection(
            display_name=f"c-{uuid.uuid4().hex[:8]}",
            owner_id=who,
            connector="agent" if on else "memory",
            root="/",
            options={},
            created_at=ctx.clock.now(),
            endpoint_id=on,
        )
        session.add(coll)
        await session.flush()
        if on:  # an agent collection's root is its own id
            coll.root = str(coll.id)
        return coll.id


async def task(
    ctx: AppContext,
    who: uuid.UUID,
    src: uuid.UUID,
    dst: uuid.UUID | None,
    *,
    batches: int = 0,
) -> uuid.UUID:
    """A new (unplanned) task, or a planned one with ``batches`` pending batches."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        row = Task(
            submission_id=uuid.uuid4(),
            owner_id=who,
            type="TRANSFER" if dst else "DELETE",
            status="ACTIVE",
            nice_status="Queued",
            source_endpoint_id=src,
            destination_endpoint_id=dst,
            options={},
            request_time=now,
            deadline=now + timedelta(days=1),
            planned=batches > 0,
        )
        session.add(row)
        await session.flush()
        for _ in range(batches):
            await session.execute(
                insert(WorkBatch).values(
                    task_id=row.id, state="pending", attempts=0, file_count=1, byte_count=1
                )
            )
        return row.id


async def claim_all(ctx: AppContext, scope: Scope) -> list[tuple[str, uuid.UUID]]:
    source = DatabaseWorkSource(
        ctx, worker=f"w-{uuid.uuid4().hex[:6]}", lease=LEASE, limits=Limits(), scope=scope
    )
    claimed = []
    while (claim := await source.claim()) is not None:
        claimed.append((claim.kind, claim.task_id))
    return claimed


async def test_work_is_leased_only_by_workers_that_reach_its_collections(
    ctx: AppContext,
) -> None:
    alice = await user(ctx, "alice")
    lab, other = await endpoint(ctx, alice), await endpoint(ctx, alice)
    lab_a, lab_b = await collection(ctx, alice, lab), await collection(ctx, alice, lab)
    elsewhere = await collection(ctx, alice, other)
    central_a, central_b = await collection(ctx, alice), await collection(ctx, alice)

    same_agent = await task(ctx, alice, lab_a, lab_b)
    same_agent_planned = await task(ctx, alice, lab_a, lab_b, batches=2)
    agent_to_central = await task(ctx, alice, lab_a, central_a)
    central_to_agent = await task(ctx, alice, central_a, lab_b)
    agent_to_agent = await task(ctx, alice, lab_a, elsewhere)
    delete_on_agent = await task(ctx, alice, lab_a, None)
    central_only = await task(ctx, alice, central_a, central_b, batches=1)

    # Another agent first: nothing of the lab's is its work.
    assert await claim_all(ctx, Scope(agent_endpoint=other)) == []

    central = await claim_all(ctx, CENTRAL)
    assert sorted(central) == sorted([("plan", delete_on_agent), ("batch", central_only)]), (
        "a central worker leased a transfer it cannot reach"
    )
    for unreachable in (same_agent, same_agent_planned, agent_to_central, central_to_agent):
        assert all(task_id != unreachable for _, task_id in central)

    lab_work = await claim_all(ctx, Scope(agent_endpoint=lab))
    assert sorted(lab_work) == sorted(
        [("plan", same_agent), ("batch", same_agent_planned), ("batch", same_agent_planned)]
    )
    # Transfers needing the data channel are nobody's work while no side listens.
    leased = {task_id for _, task_id in central + lab_work}
    assert not leased & {agent_to_central, central_to_agent, agent_to_agent}


async def test_the_data_channel_gives_each_cross_host_transfer_exactly_one_runner(
    ctx: AppContext,
) -> None:
    alice = await user(ctx, "alice")
    dtn, laptop = await endpoint(ctx, alice), await endpoint(ctx, alice)
    dtn_c, laptop_c = await collection(ctx, alice, dtn), await collection(ctx, alice, laptop)
    central_c = await collection(ctx, alice)
    async with ctx.db.session() as session:
        await session.execute(
            update(Endpoint)
            .where(Endpoint.id == dtn)
            .values(data_address="127.0.0.1:50500", data_fingerprint="ab" * 32)
        )
    pull = await task(ctx, alice, dtn_c, laptop_c)  # the laptop pulls from the DTN
    push = await task(ctx, alice, laptop_c, dtn_c)  # the laptop pushes to the DTN
    from_dtn = await task(ctx, alice, dtn_c, central_c)  # central workers connect to the DTN
    to_dtn = await task(ctx, alice, central_c, dtn_c)
    to_laptop = await task(ctx, alice, central_c, laptop_c)  # nobody: the laptop cannot listen

    assert await claim_all(ctx, Scope(agent_endpoint=dtn)) == []
    assert sorted(await claim_all(ctx, Scope(agent_endpoint=laptop))) == sorted(
        [("plan", pull), ("plan", push)]
    )
    central = await claim_all(ctx, CENTRAL)
    assert sorted(central) == sorted([("plan", from_dtn), ("plan", to_dtn)])
    assert to_laptop not in {task_id for _, task_id in central}

    # Both listening: the destination pulls, so still one runner per transfer.
    async with ctx.db.session() as session:
        await session.execute(
            update(Endpoint)
            .where(Endpoint.id == laptop)
            .values(data_address="127.0.0.1:50501", data_fingerprint="cd" * 32)
        )
    both = await task(ctx, alice, dtn_c, laptop_c)
    assert await claim_all(ctx, Scope(agent_endpoint=dtn)) == []
    assert await claim_all(ctx, Scope(agent_endpoint=laptop)) == [("plan", both)]


async def test_a_released_lease_is_claimable_again_through_the_source(ctx: AppContext) -> None:
    alice = await user(ctx, "alice")
    src, dst = await collection(ctx, alice), await collection(ctx, alice)
    task_id = await task(ctx, alice, src, dst, batches=1)
    source = DatabaseWorkSource(ctx, worker="w1", lease=LEASE, limits=Limits())
    claim = await source.claim()
    assert claim is not None and claim.task_id == task_id
    assert await source.claim() is None
    await source.release(claim)
    again = await source.claim()
    assert again is not None and again.batch_id == claim.batch_id
    async with ctx.db.session() as session:
        assert await leases.live_lease_exists(session, task_id, ctx.clock.now())
