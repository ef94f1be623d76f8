"""File operations relayed to agents through the database.

Requester (any API or worker process): ``relay`` inserts an ``AgentRequest`` row and waits for
its answer. Agent side (whichever API process holds the agent's long poll): ``take`` hands out
pending rows, ``answer`` stores the result. Every process polls the rows at ``POLL_SECONDS``;
commits made in the same process wake the waiters at once (``AppContext.agent_requests``), so
one API process answers without polling delay and several processes stay correct.

Presence: while a long poll is held, ``connected_until`` lies past the hold's end; when the
agent's connection closes the holder sets it to now; when the poll answers, it lasts only
``PRESENCE_GRACE`` more, the time the agent has to poll again. A request fails with
``EndpointDisconnected`` (Globus: 502 ``ExternalError.<Op>Failed.GCDisconnected``) when the
endpoint is not marked connected, at once or while waiting (an agent that died holding the
request), or when no agent takes it within ``connect_pickup_seconds`` (e.g. the API process
holding the poll died).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from arctern.connect.endpoints import agent_reference, is_connected
from arctern.connectors import errors as connector_errors
from arctern.connectors.access import AccessDenied
from arctern.connectors.errors import ConnectorError, TransientError
from arctern.context import AGENT_REQUESTS_TOPIC, AppContext
from arctern.db.engine import mark_changed
from arctern.db.models.connect import AgentRequest, Endpoint
from arctern.db.models.transfer import Collection
from arctern.errors import Unauthorized

# A held poll looks at the database again this soon after a change, then less and less
# often while nothing changes (new requests wake it at once: ``ctx.agent_requests``); the
# look also notices a revoked credential and an agent that went away.
POLL_SECONDS = 0.2
IDLE_POLL_SECONDS = 2.0
# While a poll is held the agent counts as connected until the hold ends plus this much; once
# the poll has answered, for this much only: the agent polls again at once, and one that died
# after its poll returned (or whose answer went into a closed socket) is offline this soon.
PRESENCE_GRACE = timedelta(seconds=5)
MAX_BATCH = 32


class EndpointDisconnected(TransientError):
    """The collection's agent is not connected (Globus: GC_NOT_CONNECTED)."""

    code = "GC_NOT_CONNECTED"

    def __init__(self, collection: str, endpoint: str | None = None) -> None:
        if endpoint is None:
            message = f"The endpoint of collection '{collection}' is not connected: it was deleted"
        else:
            message = (
                f"The endpoint '{endpoint}' (collection '{collection}') is not currently "
                "connected: its Arctern Connect agent is offline"
            )
        super().__init__(message)


class AgentTimeout(TransientError):
    code = "ENDPOINT_TIMEOUT"


async def relay(ctx: AppContext, collection_id: uuid.UUID, request: dict[str, Any]) -> Any:
    """Run ``request`` on the agent serving ``collection_id``; its ``ok`` value, or the
    ``ConnectorError`` it answered with."""
    settings = ctx.settings
    now = ctx.clock.now()
    pickup_by = now + timedelta(seconds=settings.connect_pickup_seconds)
    answer_by = pickup_by + timedelta(seconds=settings.connect_answer_seconds)
    async with ctx.db.session() as session:
        collection = await session.get(Collection, collection_id)
        endpoint = (
            await session.get(Endpoint, collection.endpoint_id)
            if collection is not None and collection.endpoint_id is not None
            else None
        )
        name = collection.display_name if collection is not None else str(collection_id)
        if endpoint is None:
            raise EndpointDisconnected(name)
        host = endpoint.display_name
        if not is_connected(endpoint, now):
            raise EndpointDisconnected(name, host)
        # Rows whose requester gave up long ago (a crashed process) are cleared here.
        await session.execute(
            delete(AgentRequest).where(
                AgentRequest.endpoint_id == endpoint.id, AgentRequest.expires_at < now
            )
        )
        row = AgentRequest(
            endpoint_id=endpoint.id,
            state="pending",
            request={
                **request,
                "collection_id": agent_reference(collection)
                if collection is not None
                else str(collection_id),
            },
            created_at=now,
            expires_at=answer_by,
        )
        session.add(row)
        await session.flush()
        request_id = row.id
        mark_changed(session, AGENT_REQUESTS_TOPIC)
    try:
        while True:
            async with ctx.agent_requests.listening() as changed:
                async with ctx.db.session() as session:
                    state, response = (
                        await session.execute(
                            select(AgentRequest.state, AgentRequest.response).where(
                                AgentRequest.id == request_id
                            )
                        )
                    ).one_or_none() or (None, None)
                    presence = await session.scalar(
                        select(Endpoint.connected_until).where(Endpoint.id == endpoint.id)
                    )
                if state == "done":
                    return _unwrap(response)
                now = ctx.clock.now()
                if state is None:
                    raise EndpointDisconnected(name)
                if (state == "pending" and now >= pickup_by) or presence is None or presence <= now:
                    # Not taken in time, or the agent went away (possibly with the request).
                    raise EndpointDisconnected(name, host)
                if now >= answer_by:
                    raise AgentTimeout(f"The endpoint '{host}' did not answer in time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), POLL_SECONDS)
    finally:
        async with ctx.db.session() as session:
            await session.execute(delete(AgentRequest).where(AgentRequest.id == request_id))


# The errors an agent may answer with, by class name; anything else is a plain ConnectorError.
ERROR_KINDS: dict[str, type[ConnectorError]] = {
    cls.__name__: cls
    for cls in [*vars(connector_errors).values(), AccessDenied]
    if isinstance(cls, type) and issubclass(cls, ConnectorError)
}


def error_answer(exc: ConnectorError) -> dict[str, Any]:
    """How the agent reports a connector failure (class name within a fixed set)."""
    return {"error": {"kind": type(exc).__name__, "message": str(exc)}}


def _unwrap(response: dict[str, Any] | None) -> Any:
    if not isinstance(response, dict):
        raise ConnectorError("The agent sent a malformed answer")
    if "error" in response:
        error = response["error"] if isinstance(response["error"], dict) else {}
        cls = ERROR_KINDS.get(str(error.get("kind")), ConnectorError)
        raise cls(str(error.get("message", "")))
    return response.get("ok")


# -- agent side (called by the agent API) ---------------------------------------------------


async def take(
    ctx: AppContext,
    endpoint_id: uuid.UUID,
    credential_hash: str,
    *,
    hold: float,
    gone: Callable[[], Awaitable[bool]],
) -> tuple[list[dict[str, Any]], bool]:
    """Pending requests for the endpoint, waiting up to ``hold`` seconds for some; and
    whether new work was stored meanwhile (the agent then claims at once instead of at its
    next poll for work). Refuses (401) as soon as the credential is revoked; marks the
    agent offline when ``gone()``."""
    loop = asyncio.get_running_loop()
    until = loop.time() + hold
    async with ctx.db.session() as session:
        await session.execute(
            update(Endpoint)
            .where(Endpoint.id == endpoint_id)
            .values(connected_until=ctx.clock.now() + timedelta(seconds=hold) + PRESENCE_GRACE)
        )
    async with ctx.new_work.listening() as work:
        return await _take(ctx, endpoint_id, credential_hash, until, gone, work)


async def _take(
    ctx: AppContext,
    endpoint_id: uuid.UUID,
    credential_hash: str,
    until: float,
    gone: Callable[[], Awaitable[bool]],
    work: asyncio.Event,
) -> tuple[list[dict[str, Any]], bool]:
    loop = asyncio.get_running_loop()
    pause = POLL_SECONDS
    while True:
        async with ctx.agent_requests.listening() as changed:
            now = ctx.clock.now()
            async with ctx.db.session() as session:
                current = await session.scalar(
                    select(Endpoint.credential_hash).where(Endpoint.id == endpoint_id)
                )
                if current != credential_hash:
                    raise Unauthorized(
                        "The endpoint credential was revoked (endpoint deleted or "
                        "credentials rotated)"
                    )
                rows = list(
                    await session.scalars(
                        select(AgentRequest)
                        .where(
                            AgentRequest.endpoint_id == endpoint_id,
                            AgentRequest.state == "pending",
                            AgentRequest.expires_at > now,
                        )
                        .order_by(AgentRequest.created_at)
                        .limit(MAX_BATCH)
                    )
                )
                taken: list[dict[str, Any]] = []
                for row in rows:
                    claimed = await session.execute(
                        update(AgentRequest)
                        .where(AgentRequest.id == row.id, AgentRequest.state == "pending")
                        .values(state="taken")
                    )
                    if getattr(claimed, "rowcount", 0) == 1:
                        taken.append({"id": str(row.id), **row.request})
            if taken or work.is_set() or loop.time() >= until:
                if await gone():
                    await _mark_offline(ctx, endpoint_id)
                    return [], False
                # Presence now lasts only until the agent's next poll is due.
                async with ctx.db.session() as session:
                    await session.execute(
                        update(Endpoint)
                        .where(Endpoint.id == endpoint_id)
                        .values(connected_until=ctx.clock.now() + PRESENCE_GRACE)
                    )
                return taken, work.is_set()
            if await gone():
                await _mark_offline(ctx, endpoint_id)
                return [], False
            waits = {asyncio.ensure_future(changed.wait()), asyncio.ensure_future(work.wait())}
            await asyncio.wait(
                waits,
                timeout=min(pause, max(0.0, until - loop.time())),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for waiting in waits:
                waiting.cancel()
            pause = POLL_SECONDS if changed.is_set() else min(pause * 2, IDLE_POLL_SECONDS)


async def _mark_offline(ctx: AppContext, endpoint_id: uuid.UUID) -> None:
    async with ctx.db.session() as session:
        await session.execute(
            update(Endpoint)
            .where(Endpoint.id == endpoint_id)
            .values(connected_until=ctx.clock.now())
        )
        # Requesters waiting on this endpoint learn at once that it went away.
        mark_changed(session, AGENT_REQUESTS_TOPIC)


async def answer(
    ctx: AppContext, endpoint_id: uuid.UUID, request_id: uuid.UUID, response: dict[str, Any]
) -> bool:
    """Store the agent's answer; False when the requester has given up already."""
    async with ctx.db.session() as session:
        result = await session.execute(
            update(AgentRequest)
            .where(
                AgentRequest.id == request_id,
                AgentRequest.endpoint_id == endpoint_id,
                AgentRequest.state == "taken",
            )
            .values(state="done", response=response)
        )
        mark_changed(session, AGENT_REQUESTS_TOPIC)
    return getattr(result, "rowcount", 0) == 1


async def went_offline(ctx: AppContext, endpoint_id: uuid.UUID) -> None:
    """The agent said it is stopping."""
    await _mark_offline(ctx, endpoint_id)
