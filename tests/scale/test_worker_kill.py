"""Three ``arctern worker`` processes share one 2,000-file task on PostgreSQL; one is killed
with SIGKILL mid-task. The task still succeeds, every file is byte-identical, and only files of
the dead worker's open batches were delivered twice (counted on the destination by inotify).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from sqlalchemy import select

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.work import WorkBatch
from arctern.worker import batch_files
from tests.scale.conftest import Deployment
from tests.scale.inotify import DeliveryCounter
from tests.support.auth_flow import native_tokens

FILES = 2000
BATCH_FILES = 40
WORKERS = ("w1", "w2", "w3")
VICTIM = "w2"
TRANSFER_RS = "transfer.api.globus.org"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
async def deploy(
    deployment: Callable[[], Deployment], tmp_path: Path
) -> AsyncIterator[tuple[Deployment, AppContext]]:
    made = deployment()
    ctx = AppContext.from_settings(
        Settings(home=tmp_path / "observer", database_url=made.database_url, secret_key="x")
    )
    yield made, ctx
    await ctx.db.dispose()


async def open_batches(ctx: AppContext, worker: str) -> list[int]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(WorkBatch.id).where(
                WorkBatch.lease_owner == worker, WorkBatch.state == "pending"
            )
        )
        return list(rows)


async def lease_holders(ctx: AppContext) -> set[str]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(WorkBatch.lease_owner).where(
                WorkBatch.state == "pending", WorkBatch.lease_owner.is_not(None)
            )
        )
        return {owner for owner in rows if owner}


async def files_done(ctx: AppContext, task_id: uuid.UUID) -> int:
    async with ctx.db.session() as session:
        recorded = await batch_files.recorded_files(session, task_id)
        return sum(row.state == "done" for row in recorded)


async def test_three_workers_one_killed_task_succeeds_without_duplicates(
    deploy: tuple[Deployment, AppContext],
) -> None:
    deployment, ctx = deploy
    env = {"ARCTERN_LEASE_SECONDS": "5", "ARCTERN_WORKER_BATCH_FILES": str(BATCH_FILES)}
    api = deployment.api(demo=True, extra_env=env)
    for name in WORKERS:
        deployment.worker(name, concurrency=2, extra_env=env)

    rng = random.Random(7)
    source = api.home / "demo" / "collection1" / "many"
    source.mkdir()
    expected: dict[str, bytes] = {}
    for i in range(FILES):
        data = rng.randbytes(rng.randrange(1, 24 << 10))
        expected[f"f{i:04}.dat"] = data
        (source / f"f{i:04}.dat").write_bytes(data)
    target = api.home / "demo" / "collection2" / "many-copy"
    target.mkdir()
    deliveries = DeliveryCounter(target)

    token = native_tokens(api).by_resource_server[TRANSFER_RS]["access_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(token), base_url=f"{api.url}/transfer/"
    )
    demo = {d["display_name"]: d["id"] for d in tc.endpoint_search("Demo Collection")}
    request = globus_sdk.TransferData(
        source_endpoint=demo["Demo Collection 1"],
        destination_endpoint=demo["Demo Collection 2"],
        verify_checksum=True,
    )
    request.add_item("/many/", "/many-copy/", recursive=True)
    task_id = str(tc.submit_transfer(request)["task_id"])
    task_uuid = uuid.UUID(task_id)

    # Watch the leases; kill the victim while it holds a batch, once the task is under way.
    # The victim is frozen first and its leases read again, so it cannot finish the batch
    # between the look and the kill; if it did, it thaws and the watch goes on.
    victim = deployment.workers[VICTIM]
    holders: set[str] = set()
    progress: list[int] = []
    end = time.monotonic() + 90
    while True:
        holders |= await lease_holders(ctx)
        done = await files_done(ctx, task_uuid)
        if done >= FILES // 5 and await open_batches(ctx, VICTIM):
            os.kill(victim.pid, signal.SIGSTOP)
            orphaned = await open_batches(ctx, VICTIM)
            if orphaned:
                break
            os.kill(victim.pid, signal.SIGCONT)
        assert done < FILES * 0.8, "the task ran too fast to kill a worker in the middle"
        assert time.monotonic() < end, f"no progress: {done} files done"
        await asyncio.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    async with ctx.db.session() as session:
        orphaned_names = {
            Path(job.destination_path).name
            for batch_id in orphaned
            for job in await batch_files.batch_jobs(session, batch_id)
        }

    # The survivors take the orphaned batches over once their leases expire.
    end = time.monotonic() + 120
    while True:
        doc: dict[str, Any] = dict(tc.get_task(task_id).data)
        progress.append(doc["files_transferred"])
        holders |= await lease_holders(ctx)
        if doc["status"] != "ACTIVE":
            break
        assert time.monotonic() < end, doc
        await asyncio.sleep(0.25)

    assert doc["status"] == "SUCCEEDED", doc
    assert set(WORKERS) <= holders, f"only {holders} ever held a batch"
    # The task document adds up every worker's flushed progress, exactly once.
    assert progress == sorted(progress)
    total = sum(len(v) for v in expected.values())
    assert doc["files"] == doc["files_transferred"] == doc["subtasks_succeeded"] == FILES
    assert doc["bytes_transferred"] == total
    assert doc["subtasks_failed"] == doc["subtasks_pending"] == 0
    assert doc["faults"] == 0

    # Byte-identical, nothing extra.
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith(".")) == sorted(
        expected
    )
    # The survivors reuse the dead worker's temporary files (named after the file records),
    # so none is left behind.
    leftovers = [p.name for p in target.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    for name, content in expected.items():
        assert (target / name).read_bytes() == content, name

    # Each file delivered once, except files of the batches the dead worker held.
    counts = deliveries.collect()
    deliveries.close()
    assert set(counts) == set(expected)
    twice = {name for name, n in counts.items() if n > 1}
    assert twice <= orphaned_names, sorted(twice - orphaned_names)[:10]
    assert max(counts.values()) <= 2
    print(
        f"{len(orphaned)} orphaned batch(es) of {len(orphaned_names)} files, "
        f"{len(twice)} files delivered twice, {len(leftovers)} temporary files left, "
        f"lease holders {sorted(holders)}"
    )

    async with ctx.db.session() as session:
        batches = list(
            await session.execute(
                select(WorkBatch.id, WorkBatch.state, WorkBatch.attempts, WorkBatch.file_count)
            )
        )
        rows = [
            (row.destination_path, row.state)
            for row in await batch_files.recorded_files(session, task_uuid)
        ]
    assert len(batches) >= FILES // BATCH_FILES
    assert all(state == "done" for _id, state, _attempts, _n in batches)
    assert all(0 < n <= BATCH_FILES for *_rest, n in batches)
    retried = {batch_id for batch_id, _state, attempts, _n in batches if attempts > 1}
    assert retried == set(orphaned)
    assert len(rows) == FILES and {state for _path, state in rows} == {"done"}
    assert len({path for path, _state in rows}) == FILES
