"""The agent's work source over ``/agent/v1/work``: an agent leases only transfers between
collections of its own endpoint, renews and hands back only its own leases, and learns of a
cancel through its heartbeat; central workers never lease that work.

Runs the agent API in process (ASGI) against migrated SQLite and PostgreSQL databases, so
tasks of every topology can be made directly.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from arctern.config import Settings
from arctern.connect import endpoints, wire
from arctern.connect.agent.client import CredentialRefused
from arctern.connect.agent.work_source import HttpWorkSource
from arctern.connect.api import create_agent_app
from arctern.context import AppContext
from arctern.db.migrate import upgrade
from arctern.db.models.transfer import Task
from arctern.db.models.work import TaskFile, WorkBatch
from arctern.engine.options import FileJob
from arctern.worker import batch_files
from arctern.worker.leases import Claim, Limits
from arctern.worker.progress import TaskProgress
from arctern.worker.source import DatabaseWorkSource
from tests.integration.test_worker_scope import collection, task
from tests.scale.test_fair_share import user

LEASE = timedelta(seconds=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'work.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def ctx(tmp_path: Path, database_url: str) -> AsyncIterator[AppContext]:
    settings = Settings(home=tmp_path, database_url=database_url, secret_key="t")
    context = AppContext.from_settings(settings)
    yield context
    await context.db.dispose()


@dataclass
class AgentSide:
    endpoint_id: uuid.UUID
    collections: list[uuid.UUID]
    http: httpx.AsyncClient

    def source(self, worker: str = "w1") -> HttpWorkSource:
        return HttpWorkSource(self.http, worker)


async def agent(ctx: AppContext, name: str, owner: str, collections: int) -> AgentSide:
    endpoint, setup_key = await endpoints.create_endpoint(ctx, name, owner)
    _, credential = await endpoints.exchange_setup_key(ctx, setup_key)
    ids = [
        (await endpoints.register_collection(ctx, endpoint.id, f"{name} {i}", "")).id
        for i in range(collections)
    ]
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_agent_app(ctx)),
        base_url="http://deployment/v1",
        headers={"Authorization": f"Bearer {credential}"},
    )
    return AgentSide(endpoint.id, ids, http)


async def drain(source: HttpWorkSource | DatabaseWorkSource) -> list[Claim]:
    claims = []
    while (claim := await source.claim()) is not None:
        claims.append(claim)
    return claims


async def test_an_agent_leases_only_its_own_endpoints_work(ctx: AppContext) -> None:
    owner = await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 2)
    other = await agent(ctx, "Other DTN", "alice@alice.edu", 1)
    central = await collection(ctx, owner)
    try:
        local = await task(ctx, owner, lab.collections[0], lab.collections[1], batches=1)
        cross_agents = await task(ctx, owner, lab.collections[0], other.collections[0])
        to_central = await task(ctx, owner, lab.collections[0], central)

        # The other agent sees none of the lab's work, nor the transfer needing both hosts.
        assert await drain(other.source()) == []
        # Central workers never lease a transfer touching an agent collection.
        central_source = DatabaseWorkSource(ctx, worker="central", lease=LEASE, limits=Limits())
        assert await drain(central_source) == []

        claims = await drain(lab.source())
        assert [(c.kind, c.task_id) for c in claims] == [("batch", local)]
        held = claims[0]
        assert {cross_agents, to_central}.isdisjoint(c.task_id for c in claims)

        # Another endpoint's credential cannot renew or hand back the lab's lease ...
        assert await other.source("w1").renew(held) == "LEASE_LOST"
        await other.source("w1").release(held)
        # ... nor can another worker name of the same agent.
        assert await lab.source("w2").renew(held) == "LEASE_LOST"
        assert await lab.source().renew(held) is None
        assert await drain(lab.source("w2")) == []

        # A cancel reaches the holder through its heartbeat.
        async with ctx.db.session() as session:
            await session.execute(
                update(Task).where(Task.id == local).values(cancel_requested=True)
            )
        assert await lab.source().renew(held) == "CANCELED"

        # Drain: the lease handed back is claimable at once (once the cancel is withdrawn).
        await lab.source().release(held)
        async with ctx.db.session() as session:
            await session.execute(
                update(Task).where(Task.id == local).values(cancel_requested=False)
            )
        again = await drain(lab.source("w2"))
        assert [(c.kind, c.batch_id) for c in again] == [("batch", held.batch_id)]
    finally:
        await lab.http.aclose()
        await other.http.aclose()


async def test_the_work_routes_refuse_bad_credentials_and_bodies(ctx: AppContext) -> None:
    await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 1)
    try:
        credential = lab.http.headers["Authorization"]
        lab.http.headers["Authorization"] = "Bearer not-a-credential"
        with pytest.raises(CredentialRefused):
            await lab.source().claim()
        lab.http.headers.pop("Authorization")
        with pytest.raises(CredentialRefused):
            await lab.source().claim()
        lab.http.headers["Authorization"] = credential
        for path, body in (
            ("/work/lease", {}),
            ("/work/lease", {"worker": "a b/../c"}),
            ("/work/renew", {"worker": "w1"}),
            ("/work/renew", {"worker": "w1", "claim": {"kind": "plan", "task_id": "x"}}),
            (
                "/work/release",
                {"worker": "w1", "claim": {"kind": "batch", "task_id": str(uuid.uuid4())}},
            ),
        ):
            response = await lab.http.post(path, json=body)
            assert response.status_code == 400, (path, body, response.text)
            doc = response.json()
            assert set(doc) >= {"code", "message", "request_id"}
        assert await lab.source().claim() is None
        # A revoked credential is refused on the work routes as on every agent route.
        await endpoints.rotate_credentials(ctx, str(lab.endpoint_id))
        with pytest.raises(CredentialRefused):
            await lab.source().claim()
    finally:
        await lab.http.aclose()


async def test_job_reports_are_accepted_only_from_the_holder_for_its_own_files(
    ctx: AppContext,
) -> None:
    """A job's reports change the database only while its worker holds the lease, and only
    for the files of the batch it holds: an agent cannot write another task's records."""
    owner = await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 2)
    try:
        mine = await task(ctx, owner, lab.collections[0], lab.collections[1], batches=1)
        theirs = await task(ctx, owner, lab.collections[0], lab.collections[1], batches=1)
        async with ctx.db.session() as session:
            batch_of = dict(
                (await session.execute(select(WorkBatch.task_id, WorkBatch.id))).tuples().all()
            )
            jobs = {}
            for task_id, batch_id in batch_of.items():
                await session.execute(
                    update(WorkBatch)
                    .where(WorkBatch.id == batch_id)
                    .values(files=[["/a", "/a", 1, 0.0, None, None]], file_count=1)
                )
                jobs[task_id] = FileJob("/a", "/a", 1, 0.0, key=batch_files.file_id(batch_id, 0))
        source = lab.source()
        held = await source.claim()
        assert held is not None and held.task_id == mine
        other = await source.claim()  # the second batch: released again below
        assert other is not None and other.task_id == theirs
        await source.release(other)

        # The holder reads its files and reports on them.
        files = await source.load_batch(held)
        assert [job for job, _ in files] == [jobs[mine]]
        progress = TaskProgress(mine, ctx.clock.now)
        progress.file_done(jobs[mine], "done")
        progress.add(files_transferred=1, bytes_transferred=1)
        beat = await source.beat(held, progress, extend=True, guarded=[])
        assert beat.stop_reason is None

        # A report naming a file of another task's batch is refused whole.
        forged = TaskProgress(mine, ctx.clock.now)
        forged.file_done(jobs[theirs], "done")
        forged.add(files_transferred=1000)
        response = await lab.http.post(
            "/work/job/beat",
            json={
                "worker": "w1",
                "claim": {"kind": "batch", "task_id": str(mine), "batch_id": held.batch_id},
                "progress": wire.progress_doc(forged),
            },
        )
        assert response.status_code == 400 and "not in the batch" in response.json()["message"]
        # Unknown counters and operations are refused too.
        bad = await lab.http.post(
            "/work/job/beat",
            json={
                "worker": "w1",
                "claim": {"kind": "batch", "task_id": str(mine), "batch_id": held.batch_id},
                "progress": {"deltas": {"status": 1}},
            },
        )
        assert bad.status_code == 400
        unknown = await lab.http.post(
            "/work/job/drop-tables",
            json={"worker": "w1", "claim": {"kind": "plan", "task_id": str(mine)}},
        )
        assert unknown.status_code == 404

        # Another worker name (or a claim not held) learns that the lease is not its own,
        # and nothing it sends is written.
        intruder = lab.source("w2")
        assert (await intruder.beat(held, forged, extend=True, guarded=[])).stop_reason == (
            "LEASE_LOST"
        )
        assert await intruder.load_batch(held) == []
        await intruder.fail(held, "UNKNOWN", "sabotage")
        async with ctx.db.session() as session:
            rows = dict(
                (await session.execute(select(TaskFile.task_id, TaskFile.state))).tuples().all()
            )
            recorded = await batch_files.recorded_files(session, mine)
            doc = await session.get(Task, mine)
            assert doc is not None
            assert doc.status == "ACTIVE" and doc.files_transferred == 1
        # A file of theirs gets a record only with its outcome (a run's place: no row).
        assert rows == {}
        assert [row.state for row in recorded] == ["done"]

        # The holder finishes its batch; the task completes.
        await source.finish_batch(held, None)
        async with ctx.db.session() as session:
            done = await session.get(Task, mine)
            assert done is not None and done.status == "SUCCEEDED"
    finally:
        await lab.http.aclose()
