"""The server side of the agent's work source: leases for a Connect agent, over HTTP.

An agent leases with its endpoint credential only, so the scope comes from the credential,
never from the request: ``Scope(agent_endpoint=<its endpoint>)`` holds transfers whose source
and destination are both collections of that endpoint. Lease owners are named
``agent:<endpoint id>:<worker>``, so an agent can renew or hand back only leases it holds.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from arctern.context import AppContext
from arctern.db.models.transfer import Task
from arctern.transfer.filters import bad_request
from arctern.worker import leases
from arctern.worker.leases import Claim, Scope
from arctern.worker.source import DatabaseWorkSource

_WORKER_NAME = re.compile(r"[A-Za-z0-9._-]{1,80}")


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
    settings = ctx.settings
    return DatabaseWorkSource(
        ctx,
        worker=who.lease_owner,
        lease=timedelta(seconds=settings.lease_seconds),
        limits=leases.Limits(
            per_user=settings.max_active_batches_per_user,
            per_collection=settings.max_active_batches_per_collection,
        ),
        scope=Scope(agent_endpoint=who.endpoint_id),
    )


async def lease(ctx: AppContext, who: AgentWorker) -> dict[str, Any]:
    claim = await _source(ctx, who).claim()
    return {"claim": claim_document(claim), "lease_seconds": ctx.settings.lease_seconds}


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
