"""The agent's work source uses the reads a lease answer carries (one round trip instead of
four across a WAN link), each once, and asks for them when they are not carried."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from arctern.connect import wire
from arctern.connect.agent.work_source import HttpWorkSource
from arctern.engine.options import ItemSpec
from arctern.worker.leases import Claim
from arctern.worker.source import Collections, CollectionView, PlanView, TaskView

TASK = TaskView(
    id=uuid.uuid4(),
    type="TRANSFER",
    status="ACTIVE",
    options={"verify_checksum": True},
    owner_id=uuid.uuid4(),
    source_endpoint_id=uuid.uuid4(),
    destination_endpoint_id=uuid.uuid4(),
)
PLAN = PlanView(0, 0, 1, [ItemSpec("/a", "/b", recursive=True)])
DESTINATION = uuid.uuid4()
COLLECTIONS = Collections(
    CollectionView(TASK.source_endpoint_id, "agent", str(TASK.source_endpoint_id), {}),
    CollectionView(DESTINATION, "agent", str(DESTINATION), {}),
    None,
    None,
)
ANSWERS: dict[str, dict[str, Any]] = {
    "task": {"task": wire.task_doc(TASK)},
    "plan": {"plan": wire.plan_doc(PLAN)},
    "collections": {"collections": wire.collections_doc(COLLECTIONS)},
}


def agent_source(carry: bool) -> tuple[HttpWorkSource, list[str]]:
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        asked.append(path)
        if path == "/work/lease":
            claim = {"kind": "plan", "task_id": str(TASK.id), "batch_id": None}
            body: dict[str, Any] = {"claim": claim, "lease_seconds": 30}
            if carry:
                body["job"] = ANSWERS
            return httpx.Response(200, json=body)
        op = path.rsplit("/", 1)[-1]
        assert json.loads(request.content)["claim"]["task_id"] == str(TASK.id)
        return httpx.Response(200, json=ANSWERS.get(op, {}))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://api")
    return HttpWorkSource(http, "agent-worker"), asked


async def read_job(source: HttpWorkSource) -> tuple[Any, ...]:
    claim = await source.claim()
    assert claim is not None
    task = await source.load_task(claim)
    assert task is not None
    return claim, task, await source.load_plan(claim), await source.collections(claim, task)


async def test_the_first_reads_come_with_the_lease() -> None:
    source, asked = agent_source(carry=True)
    claim, task, plan, collections = await read_job(source)
    assert (task, plan) == (TASK, PLAN)
    assert collections.source.id == TASK.source_endpoint_id
    assert asked == ["/work/lease"]
    # Each carried answer is used once: later reads are asked for.
    assert await source.load_task(claim) == TASK
    assert asked == ["/work/lease", "/work/job/task"]


async def test_without_carried_reads_each_is_asked_for() -> None:
    source, asked = agent_source(carry=False)
    _claim, task, plan, _collections = await read_job(source)
    assert (task, plan) == (TASK, PLAN)
    assert asked == ["/work/lease", "/work/job/task", "/work/job/plan", "/work/job/collections"]


async def test_a_job_handed_back_forgets_what_it_did_not_read() -> None:
    source, asked = agent_source(carry=True)
    claim = await source.claim()
    assert claim is not None
    await source.release(claim)
    assert await source.load_task(claim) == TASK
    assert asked == ["/work/lease", "/work/release", "/work/job/task"]


async def test_reports_in_flight_at_once_ask_for_one_next_job_between_them() -> None:
    """Two batches finish at once: only one report asks for the pool's next job, so a job
    leased ahead is never displaced by a second one (which would sit leased and unrun until
    its lease ran out); the pool's next claim takes it without asking."""
    both_sent = asyncio.Event()
    reports: list[bool] = []
    asked: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path != "/work/job/finish":
            return httpx.Response(200, json={"claim": None, "lease_seconds": 30})
        wants = json.loads(request.content).get("lease_next") is True
        reports.append(wants)
        if len(reports) == 2:
            both_sent.set()
        await both_sent.wait()
        if not wants:
            return httpx.Response(200, json={})
        batch = {"kind": "batch", "task_id": str(TASK.id), "batch_id": 7}
        return httpx.Response(200, json={"next": {"claim": batch, "lease_seconds": 30}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://api")
    source = HttpWorkSource(http, "agent-worker")
    finished = [Claim("batch", TASK.id, batch_id) for batch_id in (1, 2)]
    await asyncio.gather(*(source.finish_batch(c, None, lease_next=True) for c in finished))
    assert sorted(reports) == [False, True]
    following = await source.claim()
    assert following == Claim("batch", TASK.id, 7)
    assert "/work/lease" not in asked
    assert await source.claim() is None  # nothing more kept: this one asks
    assert asked[-1] == "/work/lease"
