"""Compressed agent traffic: a job's large bodies (a plan commit, a batch's files) travel
gzip-compressed both ways, and a compressed body is held to the same limits, counted inflated.

Runs the agent API in process (ASGI) against migrated SQLite and PostgreSQL databases, as
``test_connect_work`` does.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from arctern.connect.agent.client import AgentApiError, AsyncAgentClient
from arctern.connect.agent.work_source import HttpWorkSource
from arctern.context import AppContext
from arctern.db.models.work import WorkBatch
from arctern.engine.options import FileJob
from arctern.worker.leases import Claim
from arctern.worker.source import PlanCommit
from tests.integration import test_connect_work
from tests.integration.test_connect_work import AgentSide, agent
from tests.integration.test_worker_scope import task
from tests.scale.test_fair_share import user

# The same databases and context as the work source's tests.
database_url = test_connect_work.database_url
ctx = test_connect_work.ctx

# Long enough that a thousand of them (~4 MB of JSON) pass the agent API's default 1 MiB.
LONG = "/".join(["deeply-nested-directory-name"] * 60)


def _jobs(count: int) -> list[FileJob]:
    return [
        FileJob(f"/{LONG}/f{i:05d}", f"/copy/{LONG}/f{i:05d}", 4096, 1.7e9 + i)
        for i in range(count)
    ]


@dataclass
class Planning:
    """An agent holding the plan of a new task, recording the requests it sends."""

    lab: AgentSide
    task_id: uuid.UUID
    sent: list[httpx.Request]
    source: HttpWorkSource
    plan: Claim


async def planning(ctx: AppContext, monotonic: Callable[[], float] = time.monotonic) -> Planning:
    owner = await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 2)
    task_id = await task(ctx, owner, lab.collections[0], lab.collections[1])
    sent: list[httpx.Request] = []
    lab.http.event_hooks["request"] = [_record(sent)]
    source = HttpWorkSource(lab.http, "w1", compress=True, monotonic=monotonic)
    plan = await source.claim()
    assert plan is not None and plan.kind == "plan"
    return Planning(lab, task_id, sent, source, plan)


async def test_a_large_plan_commit_and_its_batch_travel_compressed(ctx: AppContext) -> None:
    held = await planning(ctx)
    lab, task_id, sent, source, plan = held.lab, held.task_id, held.sent, held.source, held.plan
    try:
        jobs = _jobs(1000)
        assert len(json.dumps([job.source_path for job in jobs])) > 1 << 20
        await source.commit_plan(plan, PlanCommit(1, 0, final=True, batches=[jobs]), None)
        commit = next(r for r in sent if r.url.path.endswith("/work/job/commit"))
        assert commit.headers["content-encoding"] == "gzip"
        assert len(commit.content) < 200_000  # what a fresh connection carries at once
        async with ctx.db.session() as session:
            stored = await session.scalar(
                select(func.sum(WorkBatch.file_count)).where(WorkBatch.task_id == task_id)
            )
        assert stored == 1000

        # The lease carries the batch's files; the answer comes compressed.
        answer = await lab.http.post(
            "/work/lease", json={"worker": "w2"}, headers={"Accept-Encoding": "gzip"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-encoding"] == "gzip"
        assert int(answer.headers["content-length"]) < 200_000
        files = answer.json()["job"]["batch"]["files"]
        assert [f["source_path"] for f in files] == [job.source_path for job in jobs]
    finally:
        await lab.http.aclose()


def _record(sent: list[httpx.Request]):  # type: ignore[no-untyped-def]
    async def hook(request: httpx.Request) -> None:
        sent.append(request)

    return hook


@pytest.mark.parametrize(
    ("body", "encoding", "status", "code"),
    [
        # 64 MiB of zeros in 64 KiB: refused once the inflated bytes pass the 1 MiB limit.
        (
            gzip.compress(b'{"worker": "' + b"0" * (64 << 20) + b'"}'),
            "gzip",
            413,
            "RequestTooLarge",
        ),
        (b"not gzip at all", "gzip", 400, "BadRequest"),
        (gzip.compress(b'{"worker": "w1"}')[:-6], "gzip", 400, "BadRequest"),
        (b'{"worker": "w1"}', "br", 415, "UnsupportedMediaType"),
    ],
    ids=["bomb", "corrupt", "truncated", "unsupported"],
)
async def test_bad_compressed_bodies_get_clear_errors(
    ctx: AppContext, body: bytes, encoding: str, status: int, code: str
) -> None:
    await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 1)
    try:
        response = await lab.http.post(
            "/work/lease",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )
        assert response.status_code == status, response.text
        doc = response.json()
        assert doc["code"] == f"ClientError.{code}"
        assert set(doc) >= {"code", "message", "request_id"}
        # A well-formed compressed body on the same route is fine.
        fine = await lab.http.post(
            "/work/lease",
            content=gzip.compress(b'{"worker": "w1"}'),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert fine.status_code == 200 and fine.json()["claim"] is None
    finally:
        await lab.http.aclose()


async def test_the_agent_compresses_only_for_a_deployment_that_says_it_inflates(
    ctx: AppContext,
) -> None:
    await user(ctx, "alice")
    lab = await agent(ctx, "Lab DTN", "alice@alice.edu", 1)
    client = AsyncAgentClient("http://deployment", "unused", poll_hold=1.0)
    await client.http.aclose()
    client.http = lab.http
    try:
        assert client.compress is False
        description = await client.endpoint()
        assert description["request_encodings"] == ["gzip"]
        assert client.compress is True
        sent: list[httpx.Request] = []
        lab.http.event_hooks["request"] = [_record(sent)]
        # A relayed request's answer (here: to a request that does not exist) goes
        # compressed when large, plain when small.
        for size, encoded in ((100, False), (100_000, True)):
            with pytest.raises(AgentApiError):
                await client.answer(str(uuid.uuid4()), {"padding": "x" * size})
            assert ("content-encoding" in sent[-1].headers) is encoded
    finally:
        await lab.http.aclose()


async def test_a_plan_commit_leases_the_next_job_when_the_pool_has_room(
    ctx: AppContext,
) -> None:
    """With room in its pool, the agent's plan commit comes back with the batch it made
    leased to the same worker: the next claim costs no round trip. A job leased that way
    and not claimed soon is handed back, not started late."""
    now = [1000.0]
    held = await planning(ctx, monotonic=lambda: now[0])
    lab, task_id, sent, source, plan = held.lab, held.task_id, held.sent, held.source, held.plan
    try:
        first = PlanCommit(1, 0, final=False, batches=[_jobs(3)])
        await source.commit_plan(plan, first, None, lease_next=True)
        asked = len(sent)
        batch = await source.claim()
        assert batch is not None and (batch.kind, batch.task_id) == ("batch", task_id)
        assert len(sent) == asked  # no lease request: it came with the commit
        files = await source.load_batch(batch)  # carried by the commit's answer too
        assert len(files) == 3 and len(sent) == asked
        assert await source.renew(batch) is None  # the lease is this worker's

        # Without room nothing is leased ahead: the next claim asks for a lease.
        await source.commit_plan(plan, PlanCommit(1, 0, final=False, batches=[_jobs(2)]), None)
        asked = len(sent)
        second = await source.claim()
        assert [r.url.path for r in sent[asked:]] == ["/v1/work/lease"]
        assert second is not None and second.kind == "batch" and second != batch

        # Leased ahead when the pool stops: handed back, leased again by the next claim.
        await source.commit_plan(
            plan, PlanCommit(1, 0, final=False, batches=[_jobs(1)]), None, lease_next=True
        )
        asked = len(sent)
        await source.hand_back_ahead()
        await source.hand_back_ahead()  # once only
        third = await source.claim()
        assert [r.url.path for r in sent[asked:]] == ["/v1/work/release", "/v1/work/lease"]
        assert third is not None and third.kind == "batch" and third not in (batch, second)

        # Leased ahead but claimed late: handed back, then leased again the usual way.
        await source.commit_plan(
            plan, PlanCommit(1, 0, final=True, batches=[_jobs(1)]), None, lease_next=True
        )
        now[0] += 60.0
        asked = len(sent)
        again = await source.claim()
        paths = [r.url.path for r in sent[asked:]]
        assert paths == ["/v1/work/release", "/v1/work/lease"]
        assert again is not None and again.kind == "batch"
    finally:
        await lab.http.aclose()


async def test_a_finished_batch_leases_the_next_job_in_its_report(ctx: AppContext) -> None:
    """The report of a finished batch comes back with the agent's next job leased (the
    finished job's place in the pool frees with it): no claim round trip between batches.
    Once nothing is left, the answer leases nothing and the next claim asks as usual."""
    held = await planning(ctx)
    lab, task_id, sent, source, plan = held.lab, held.task_id, held.sent, held.source, held.plan
    try:
        await source.commit_plan(
            plan, PlanCommit(1, 0, final=True, batches=[_jobs(2), _jobs(3)]), None
        )
        await source.finalize(plan)
        first = await source.claim()
        assert first is not None and (first.kind, first.task_id) == ("batch", task_id)
        await source.finish_batch(first, None, lease_next=True)
        asked = len(sent)
        second = await source.claim()
        assert len(sent) == asked  # it came with the report of the first
        assert second is not None and second.kind == "batch" and second != first
        assert len(await source.load_batch(second)) in (2, 3) and len(sent) == asked
        assert await source.renew(second) is None  # the lease is this worker's

        await source.finish_batch(second, None, lease_next=True)  # nothing left to lease
        asked = len(sent)
        assert await source.claim() is None
        assert [r.url.path for r in sent[asked:]] == ["/v1/work/lease"]
        async with ctx.db.session() as session:
            states = set(
                await session.scalars(select(WorkBatch.state).where(WorkBatch.task_id == task_id))
            )
        assert states == {"done"}
    finally:
        await lab.http.aclose()
