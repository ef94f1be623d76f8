"""The server side of the agent's work source: leases for a Connect agent, over HTTP.

An agent leases with its endpoint credential only, so the scope comes from the credential,
never from the request: ``Scope(agent_endpoint=<its endpoint>)`` holds transfers whose source
and destination are both collections of that endpoint. Lease owners are named
``agent:<endpoint id>:<worker>``, so an agent can renew or hand back only leases it holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connect import wire
from arctern.connect.datachannel import (
    TOKEN_LIFETIME_SECONDS,
    DataGrant,
    check_token,
    issue_token,
)
from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID, agent_reference
from arctern.connectors.access import AccessGuard
from arctern.context import AppContext
from arctern.db.models.connect import CentralDataListener, Endpoint
from arctern.db.models.transfer import Collection, Task
from arctern.engine.errors import Canceled, FileFailed
from arctern.engine.options import FileJob
from arctern.errors import NotFound
from arctern.transfer.filters import bad_request
from arctern.worker import batch_files, leases
from arctern.worker.leases import Claim, Scope
from arctern.worker.source import (
    Beat,
    Collections,
    CollectionView,
    DatabaseWorkSource,
    PeerViews,
    TaskView,
)

_WORKER_NAME = re.compile(r"[A-Za-z0-9._-]{1,80}")

log = logging.getLogger("arctern.connect")


@dataclass(frozen=True)
class AgentWorker:
    endpoint_id: uuid.UUID
    worker: str

    @property
    def lease_owner(self) -> str:
        return f"agent:{self.endpoint_id}:{self.worker}"


def worker_of(endpoint_id: uuid.UUID, body: dict[str, Any]) -> AgentWorker:
    name = body.get("worker")
    if not isinstance(name, str) or not _WORKER_NAME.fullmatch(name):
        raise bad_request("'worker' must be 1-80 letters, digits, '.', '_' or '-'")
    return AgentWorker(endpoint_id, name)


def claim_of(body: dict[str, Any]) -> Claim:
    raw = body.get("claim")
    if not isinstance(raw, dict) or raw.get("kind") not in ("plan", "batch"):
        raise bad_request("'claim' must be an object with 'kind' 'plan' or 'batch'")
    try:
        task_id = uuid.UUID(str(raw.get("task_id")))
    except ValueError:
        raise bad_request("'claim.task_id' must be a task id") from None
    batch_id = raw.get("batch_id")
    if raw["kind"] == "batch" and (not isinstance(batch_id, int) or isinstance(batch_id, bool)):
        raise bad_request("'claim.batch_id' must be an integer for a batch")
    return Claim(raw["kind"], task_id, batch_id if raw["kind"] == "batch" else None)


def claim_document(claim: Claim | None) -> dict[str, Any] | None:
    if claim is None:
        return None
    return {"kind": claim.kind, "task_id": str(claim.task_id), "batch_id": claim.batch_id}


def _source(ctx: AppContext, who: AgentWorker) -> DatabaseWorkSource:
    from arctern.worker.pool import connector_factory_for

    settings = ctx.settings
    return DatabaseWorkSource(
        ctx,
        worker=who.lease_owner,
        factory=connector_factory_for(ctx),
        lease=timedelta(seconds=settings.lease_seconds),
        limits=leases.Limits(
            per_user=settings.max_active_batches_per_user,
            per_collection=settings.max_active_batches_per_collection,
        ),
        scope=Scope(agent_endpoint=who.endpoint_id),
    )


async def lease(ctx: AppContext, who: AgentWorker) -> dict[str, Any]:
    """The next job, with what it reads first (``job``: its task, plan or files, and
    collections): an agent across a WAN link would spend a round trip on each."""
    source = _source(ctx, who)
    claim = await source.claim()
    answer: dict[str, Any] = {
        "claim": claim_document(claim),
        "lease_seconds": ctx.settings.lease_seconds,
    }
    if claim is not None:
        answer["job"] = await _job_reads(ctx, who, source, claim)
    return answer


async def _job_reads(
    ctx: AppContext, who: AgentWorker, source: DatabaseWorkSource, claim: Claim
) -> dict[str, Any]:
    """What a freshly leased job reads: the answers of its ``task``, ``plan`` or ``batch``,
    and ``collections`` operations."""
    task = await source.load_task(claim)
    reads = {"task": {"task": wire.task_doc(task) if task else None}}
    if task is None:
        return reads
    if claim.kind == "plan":
        reads["plan"] = await _operation_answer(ctx, who, source, claim, "plan")
    else:
        reads["batch"] = await _operation_answer(ctx, who, source, claim, "batch")
    reads["collections"] = await _collections_answer(ctx, who, source, claim, task)
    return reads


async def _operation_answer(
    ctx: AppContext, who: AgentWorker, source: DatabaseWorkSource, claim: Claim, op: str
) -> dict[str, Any]:
    """The answer of a reading operation of a held job (``task``, ``plan``, ``batch``,
    ``collections``)."""
    if op == "task":
        task = await source.load_task(claim)
        return {"task": wire.task_doc(task) if task else None}
    if op == "plan":
        plan = await source.load_plan(claim)
        return {"plan": wire.plan_doc(plan) if plan else None}
    if op == "batch":
        files = await source.load_batch(claim)
        return {"files": [wire.file_doc(job, resume) for job, resume in files]}
    task = await source.load_task(claim)
    if task is None:
        return {"lease_lost": True}
    return await _collections_answer(ctx, who, source, claim, task)


async def _collections_answer(
    ctx: AppContext, who: AgentWorker, source: DatabaseWorkSource, claim: Claim, task: TaskView
) -> dict[str, Any]:
    """The ``collections`` answer: the task's collections as the agent sees them."""
    try:
        found = await as_seen_from(
            ctx, who.endpoint_id, task, await source.collections(claim, task)
        )
    except FileFailed as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    return {"collections": wire.collections_doc(found)}


async def renew(ctx: AppContext, who: AgentWorker, claim: Claim) -> dict[str, Any]:
    """Heartbeat: extend the lease; ``stop`` says why the job must end (None: carry on)."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        alive = await leases.extend(
            session, claim, who.lease_owner, now, timedelta(seconds=ctx.settings.lease_seconds)
        )
        row = (
            await session.execute(
                select(Task.status, Task.cancel_requested, Task.deadline).where(
                    Task.id == claim.task_id
                )
            )
        ).first()
    stop: str | None = None
    if not alive:
        stop = "LEASE_LOST"
    elif row is None or row.status in ("SUCCEEDED", "FAILED"):
        stop = "FINISHED"
    elif row.cancel_requested:
        stop = "CANCELED"
    elif row.deadline is not None and row.deadline <= now:
        stop = "EXPIRED"
    return {"alive": alive, "stop": stop}


async def release(ctx: AppContext, who: AgentWorker, claim: Claim) -> dict[str, Any]:
    await _source(ctx, who).release(claim)
    return {"released": True}


# -- running a leased job: the rest of the work source, for the agent's jobs ------------------

JOB_OPERATIONS = (
    "task",
    "plan",
    "batch",
    "collections",
    "beat",
    "commit",
    "finish",
    "finalize",
    "fail",
    "stop",
    "crashed",
)


async def _batch_files(ctx: AppContext, claim: Claim) -> dict[int, FileJob]:
    """The files of the batch ``claim`` holds, by row id (none for a plan)."""
    if claim.kind != "batch" or claim.batch_id is None:
        return {}
    async with ctx.db.session() as session:
        jobs = await batch_files.batch_jobs(session, claim.batch_id)
    return {job.key: job for job in jobs if job.key is not None}


async def job_operation(
    ctx: AppContext, who: AgentWorker, claim: Claim, op: str, body: dict[str, Any]
) -> dict[str, Any]:
    """One call of a leased job's work source. Only the holder of the claim's lease may make
    it; a job whose lease is gone learns it here (``lease_lost``) and stops, as a worker on
    the database does."""
    if op not in JOB_OPERATIONS:
        raise NotFound(f"No work operation {op!r}")
    source = _source(ctx, who)
    if op == "stop":  # hands the lease in itself, and only if it is still this worker's
        await source.stop(claim, _reason(body))
        return {}
    if op == "finalize":
        await source.finalize(claim)
        return {}
    if not await source.holds(claim):
        if op == "beat":
            return {"beat": wire.beat_doc(Beat(lease_kept=False))}
        return {"lease_lost": True}
    if op in ("task", "plan", "batch", "collections"):
        return await _operation_answer(ctx, who, source, claim, op)
    reported = body.get("progress")
    names_files = isinstance(reported, dict) and bool(
        reported.get("file_updates") or reported.get("checkpoints")
    )
    files = await _batch_files(ctx, claim) if names_files else {}
    progress = wire.progress_of(reported, claim.task_id, ctx.clock.now, files)
    if op == "beat":
        guarded = [_uuid(value) for value in body.get("guarded") or []]
        beat = await source.beat(claim, progress, extend=bool(body.get("extend")), guarded=guarded)
        return {"beat": wire.beat_doc(beat)}
    if op == "commit":
        try:
            await source.commit_plan(claim, wire.commit_of(body.get("commit")), progress)
        except Canceled as exc:
            return {"canceled": str(exc) or "FINISHED"}
        # The agent's next job (most often the batch just committed) in the same answer:
        # a round trip across a WAN link less before the first data moves.
        return await _lease_next(ctx, who, body)
    if op == "finish":
        # Likewise the job that takes the finished batch's place in the agent's pool.
        await source.finish_batch(claim, progress)
        return await _lease_next(ctx, who, body)
    message = str(body.get("message") or "")[:4096]
    if op == "fail":
        code = str(body.get("code") or "ENDPOINT_ERROR")[:64]
        await source.fail(claim, code, message)
        return {}
    await source.crashed(claim, message)
    return {}


async def _lease_next(ctx: AppContext, who: AgentWorker, body: dict[str, Any]) -> dict[str, Any]:
    """The answer of a report that asked for the agent's next job (``lease_next``): that
    job, leased. The report stands whatever happens here; the agent then claims as usual."""
    if body.get("lease_next") is not True:
        return {}
    try:
        return {"next": await lease(ctx, who)}
    except Exception:
        log.exception("leasing the next job with a job's report failed")
        return {}


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if reason not in ("CANCELED", "EXPIRED"):
        raise bad_request("'reason' must be CANCELED or EXPIRED")
    return str(reason)


def _uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise bad_request("'guarded' must list collection ids") from None


# -- the data channel ------------------------------------------------------------------------

_ADDRESS = re.compile(r"[A-Za-z0-9.\-\[\]:]{1,255}:[0-9]{1,5}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


async def announce(ctx: AppContext, endpoint_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    address, fingerprint = body.get("address"), body.get("fingerprint")
    if address is None:
        fingerprint = None
    elif not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise bad_request("'address' must be host:port")
    elif not isinstance(fingerprint, str) or not _FINGERPRINT.fullmatch(fingerprint):
        raise bad_request("'fingerprint' must be the certificate's SHA-256 in hex")
    async with ctx.db.session() as session:
        await session.execute(
            update(Endpoint)
            .where(Endpoint.id == endpoint_id)
            .values(data_address=address, data_fingerprint=fingerprint)
        )
    return {"address": address}


async def as_seen_from(
    ctx: AppContext, here: uuid.UUID | None, task: TaskView, found: Collections
) -> Collections:
    """The task's collections as the worker running its job opens them: a Connect agent
    (``here``: its endpoint) opens its own by id; the deployment's workers (``here`` None)
    open central storage directly. Anything else is opened through the data channel of the
    side that listens, with a credential for this task alone: another agent's collection
    through that agent, central storage (for an agent that does not listen) through one of
    the deployment's workers that accept data connections."""
    now = ctx.clock.now()
    default_streams = ctx.settings.connect_data_streams
    async with ctx.db.session() as session:
        # The runner's own preference; the serving side's is added below (smaller wins).
        own_streams = (
            await session.scalar(select(Endpoint.data_streams).where(Endpoint.id == here))
            if here is not None
            else None
        ) or default_streams

    async def view(
        collection: CollectionView | None, guard: AccessGuard | None
    ) -> CollectionView | None:
        if collection is None:
            return None
        if here is None and collection.connector != "agent":
            return collection
        async with ctx.db.session() as session:
            if collection.connector != "agent":
                listener = await live_central_listener(session, now)
                if listener is None:
                    raise FileFailed(
                        "ENDPOINT_ERROR",
                        "no worker of the deployment accepts data connections right now",
                    )
                serving, address, fingerprint = BUILTIN_ENDPOINT_ID, *listener
                streams = own_streams
            else:
                row = (
                    await session.execute(
                        select(
                            Collection.endpoint_id,
                            Endpoint.data_address,
                            Endpoint.data_fingerprint,
                            Endpoint.data_streams,
                        )
                        .join(Endpoint, Endpoint.id == Collection.endpoint_id)
                        .where(Collection.id == collection.id)
                    )
                ).one()
                if row.endpoint_id == here:
                    return collection
                if not row.data_address or not row.data_fingerprint:
                    raise FileFailed(
                        "ENDPOINT_ERROR", "the other endpoint does not accept data connections now"
                    )
                serving, address, fingerprint = (
                    row.endpoint_id,
                    row.data_address,
                    row.data_fingerprint,
                )
                streams = min(own_streams, row.data_streams or default_streams)
        token = issue_token(
            ctx.settings.secret_key or "",
            DataGrant(
                task_id=task.id,
                collection_id=collection.id,
                endpoint_id=serving,
                guard=guard,
                expires=now.timestamp() + TOKEN_LIFETIME_SECONDS,
            ),
        )
        options = {
            "address": address,
            "fingerprint": fingerprint,
            "token": token,
            # The grant without its expiry: the jobs of a task may share their data
            # connections under it (``LinkPool``), never across tasks or access rules.
            "link_key": _grant_key(task.id, collection.id, serving, guard),
            "streams": streams,
            # Groups of small files per frame need a POSIX collection on the serving side.
            "small_files": collection.connector in ("agent", "posix"),
        }
        return CollectionView(collection.id, "remote", str(collection.id), options)

    source = await view(found.source, found.source_guard)
    assert source is not None
    return Collections(
        source,
        await view(found.destination, found.destination_guard),
        found.source_guard,
        found.destination_guard,
    )


def _grant_key(
    task_id: uuid.UUID, collection_id: uuid.UUID, serving: uuid.UUID, guard: AccessGuard | None
) -> str:
    grant = [
        str(task_id),
        str(collection_id),
        str(serving),
        None if guard is None else guard.to_doc(),
    ]
    return hashlib.sha256(json.dumps(grant, sort_keys=True).encode()).hexdigest()[:32]


async def live_central_listener(session: AsyncSession, now: datetime) -> tuple[str, str] | None:
    """``(address, fingerprint)`` of a deployment worker accepting data connections now
    (any of them: the load spreads over the workers that listen)."""
    row = (
        await session.execute(
            select(CentralDataListener.address, CentralDataListener.fingerprint)
            .where(CentralDataListener.live_until > now)
            .order_by(func.random())
            .limit(1)
        )
    ).first()
    return None if row is None else (row.address, row.fingerprint)


async def running_task_grant(
    ctx: AppContext, token: Any, serving_endpoint: uuid.UUID
) -> DataGrant | None:
    """The grant of a credential presented to ``serving_endpoint``'s data channel, if it is
    genuine, current, meant for that endpoint and, for a task's, the task still runs (one for
    a relayed HTTPS request lives only minutes and names no task)."""
    grant = (
        check_token(ctx.settings.secret_key or "", token, ctx.clock.now().timestamp())
        if isinstance(token, str)
        else None
    )
    if grant is None or grant.endpoint_id != serving_endpoint:
        return None
    if grant.task_id is None:
        return grant
    async with ctx.db.session() as session:
        status = await session.scalar(select(Task.status).where(Task.id == grant.task_id))
    return grant if status in ("ACTIVE", "INACTIVE") else None


async def verify_data_token(
    ctx: AppContext, endpoint_id: uuid.UUID, body: dict[str, Any]
) -> dict[str, Any]:
    """Whether a credential a peer presented to this agent is valid (``running_task_grant``);
    and then what it opens."""
    grant = await running_task_grant(ctx, body.get("token"), endpoint_id)
    if grant is None:
        return {"valid": False}
    async with ctx.db.session() as session:
        collection = await session.get(Collection, grant.collection_id)
    if collection is None:
        return {"valid": False}
    return {
        "valid": True,
        "collection_id": agent_reference(collection),
        "guard": None if grant.guard is None else wire.guard_doc(grant.guard),
    }


def central_peer_views(ctx: AppContext) -> PeerViews:
    """For the deployment's own workers: an agent collection of a TRANSFER is reached over
    the data channel (delete tasks keep using the relayed operations)."""

    async def views(task: TaskView, found: Collections) -> Collections:
        if task.type != "TRANSFER":
            return found
        return await as_seen_from(ctx, None, task, found)

    return views
