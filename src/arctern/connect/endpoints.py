"""Endpoints (agent installations): administration, setup-key exchange, credentials.

An administrator creates an endpoint for an owner and hands the printed one-time setup key
to whoever installs the agent; ``arctern connect setup`` exchanges it over HTTP for the
endpoint credential. Rotating the credentials revokes the current one at once and issues a
new setup key; deleting the endpoint revokes everything.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connect.secrets import (
    CREDENTIAL_PREFIX,
    SETUP_KEY_PREFIX,
    new_secret,
    secret_hash,
)
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.db.models.connect import Endpoint
from arctern.db.models.transfer import Collection, Task
from arctern.errors import Conflict, InvalidRequest, NotFound, Unauthorized

SETUP_KEY_LIFETIME = timedelta(days=1)
# Collections of agents: connector kind "agent", root = the collection's own id (the real
# directory is known only to the agent).
AGENT_CONNECTOR = "agent"


def agent_reference(collection: Collection) -> str:
    """What an agent opens for one of its collections: the collection's id, or for a guest
    collection on it, ``MAPPED_ID/folder`` (its ``root``); the agent resolves it in its own
    configuration and keeps it inside the folder."""
    return collection.root or str(collection.id)


# The deployment's own (central) collections are mapped collections of this endpoint. It
# is not stored: every central collection names it as ``host_endpoint_id``.
BUILTIN_ENDPOINT_ID = uuid.UUID("6a7c6e2e-0000-4000-8000-61726374e001")
BUILTIN_ENDPOINT_NAME = "Arctern central storage"


@dataclass(frozen=True, slots=True)
class EndpointView:
    endpoint: Endpoint
    owner_username: str
    collections: list[Collection]
    connected: bool


def is_connected(endpoint: Endpoint, now: datetime) -> bool:
    return endpoint.connected_until is not None and endpoint.connected_until > now


async def _find(session: AsyncSession, ref: str) -> Endpoint:
    """An endpoint by UUID or display name."""
    endpoint: Endpoint | None = None
    with contextlib.suppress(ValueError):
        endpoint = await session.get(Endpoint, uuid.UUID(ref))
    if endpoint is None:
        endpoint = await session.scalar(select(Endpoint).where(Endpoint.display_name == ref))
    if endpoint is None:
        raise NotFound(f"No such endpoint '{ref}'")
    return endpoint


async def create_endpoint(ctx: AppContext, name: str, owner_username: str) -> tuple[Endpoint, str]:
    """A new endpoint owned by ``owner_username``, and its one-time setup key."""
    name = name.strip()
    if not name:
        raise InvalidRequest("An endpoint needs a name")
    now = ctx.clock.now()
    setup_key = new_secret(SETUP_KEY_PREFIX)
    async with ctx.db.session() as session:
        owner = await session.scalar(select(Identity).where(Identity.username == owner_username))
        if owner is None:
            raise NotFound(f"No such user '{owner_username}'")
        if await session.scalar(select(Endpoint.id).where(Endpoint.display_name == name)):
            raise Conflict(f"An endpoint named '{name}' already exists")
        endpoint = Endpoint(
            display_name=name,
            owner_id=owner.id,
            setup_key_hash=secret_hash(setup_key),
            setup_key_expires=now + SETUP_KEY_LIFETIME,
            created_at=now,
        )
        session.add(endpoint)
        await session.flush()
    return endpoint, setup_key


async def _view(session: AsyncSession, endpoint: Endpoint, now: datetime) -> EndpointView:
    owner = await session.scalar(select(Identity.username).where(Identity.id == endpoint.owner_id))
    collections = list(
        await session.scalars(
            select(Collection)
            .where(Collection.endpoint_id == endpoint.id)
            .order_by(Collection.display_name)
        )
    )
    return EndpointView(endpoint, owner or "", collections, is_connected(endpoint, now))


async def list_endpoints(ctx: AppContext) -> list[EndpointView]:
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        rows = list(await session.scalars(select(Endpoint).order_by(Endpoint.display_name)))
        return [await _view(session, e, now) for e in rows]


async def show_endpoint(ctx: AppContext, ref: str) -> EndpointView:
    async with ctx.db.session() as session:
        return await _view(session, await _find(session, ref), ctx.clock.now())


async def rotate_credentials(ctx: AppContext, ref: str) -> tuple[Endpoint, str]:
    """Revoke the endpoint's credential now and issue a new one-time setup key."""
    setup_key = new_secret(SETUP_KEY_PREFIX)
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        endpoint = await _find(session, ref)
        endpoint.credential_hash = None
        endpoint.connected_until = None
        endpoint.setup_key_hash = secret_hash(setup_key)
        endpoint.setup_key_expires = now + SETUP_KEY_LIFETIME
    return endpoint, setup_key


MAX_PARALLELISM = 64


async def set_parallelism(ctx: AppContext, ref: str, streams: int | None) -> Endpoint:
    """Set how many parallel TCP connections transfers with the endpoint use (None: the
    deployment's default). A transfer between two endpoints uses the smaller setting."""
    if streams is not None and not 1 <= streams <= MAX_PARALLELISM:
        raise InvalidRequest(f"Parallelism must be between 1 and {MAX_PARALLELISM}")
    async with ctx.db.session() as session:
        endpoint = await _find(session, ref)
        endpoint.data_streams = streams
    return endpoint


async def delete_endpoint(ctx: AppContext, ref: str) -> Endpoint:
    """Remove the endpoint and its credential. Its collections go too, except those tasks
    still name (tasks keep their history): those stay, detached, hidden and unusable."""
    async with ctx.db.session() as session:
        endpoint = await _find(session, ref)
        used = exists().where(
            (Task.source_endpoint_id == Collection.id)
            | (Task.destination_endpoint_id == Collection.id)
        )
        await session.execute(
            delete(Collection).where(Collection.endpoint_id == endpoint.id, ~used)
        )
        await session.execute(
            update(Collection)
            .where(Collection.endpoint_id == endpoint.id)
            .values(endpoint_id=None, public=False)
        )
        await session.delete(endpoint)
    return endpoint


async def exchange_setup_key(ctx: AppContext, setup_key: str) -> tuple[Endpoint, str]:
    """The endpoint a valid, unused setup key belongs to, with a fresh credential (which
    replaces any earlier one). The key is spent."""
    now = ctx.clock.now()
    credential = new_secret(CREDENTIAL_PREFIX)
    async with ctx.db.session() as session:
        endpoint = await session.scalar(
            select(Endpoint).where(Endpoint.setup_key_hash == secret_hash(setup_key))
        )
        if (
            endpoint is None
            or endpoint.setup_key_expires is None
            or endpoint.setup_key_expires <= now
        ):
            raise Unauthorized("The setup key is not valid (unknown, already used or expired)")
        endpoint.setup_key_hash = None
        endpoint.setup_key_expires = None
        endpoint.credential_hash = secret_hash(credential)
    return endpoint, credential


async def authenticate(session: AsyncSession, credential: str) -> Endpoint:
    """The endpoint holding this credential; 401 when it is unknown or was revoked."""
    if not credential.startswith(CREDENTIAL_PREFIX):
        raise Unauthorized("Not an endpoint credential")
    endpoint = await session.scalar(
        select(Endpoint).where(Endpoint.credential_hash == secret_hash(credential))
    )
    if endpoint is None:
        raise Unauthorized(
            "The endpoint credential was refused: it was revoked (endpoint deleted or "
            "credentials rotated)"
        )
    return endpoint


async def register_collection(
    ctx: AppContext, endpoint_id: uuid.UUID, name: str, description: str = ""
) -> Collection:
    """The agent announces a collection: the deployment records its name and owner only."""
    name = name.strip()
    if not name or len(name) > 300:
        raise InvalidRequest("A collection needs a name of at most 300 characters")
    async with ctx.db.session() as session:
        endpoint = await session.get(Endpoint, endpoint_id)
        if endpoint is None:
            raise Unauthorized("The endpoint no longer exists")
        existing = await session.scalar(select(Collection).where(Collection.display_name == name))
        if existing is not None:
            if existing.endpoint_id == endpoint_id:
                return existing
            raise Conflict(f"A collection named '{name}' already exists")
        collection = Collection(
            display_name=name,
            description=description,
            owner_id=endpoint.owner_id,
            connector=AGENT_CONNECTOR,
            root="",
            options={},
            public=True,
            created_at=ctx.clock.now(),
            endpoint_id=endpoint_id,
        )
        session.add(collection)
        await session.flush()
        collection.root = str(collection.id)
    return collection


async def endpoint_collection_count(session: AsyncSession, endpoint_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Collection).where(Collection.endpoint_id == endpoint_id)
    )
    return int(count or 0)


@dataclass(frozen=True, slots=True)
class HostEndpoint:
    """What a GCSv5 endpoint document shows (agents, and the built-in endpoint)."""

    id: uuid.UUID
    display_name: str
    owner_id: uuid.UUID | None
    owner_username: str
    # Preferred parallelism set for this endpoint; None: the deployment's default.
    parallelism: int | None = None


BUILTIN_ENDPOINT = HostEndpoint(BUILTIN_ENDPOINT_ID, BUILTIN_ENDPOINT_NAME, None, "")


async def host_endpoints(
    ctx: AppContext, endpoint_id: uuid.UUID | None = None
) -> list[HostEndpoint]:
    """Every GCSv5 endpoint (or the one with ``endpoint_id``); any signed-in user may see
    them, as with public collections: a name and an owner, no files."""
    if endpoint_id == BUILTIN_ENDPOINT_ID:
        return [BUILTIN_ENDPOINT]
    async with ctx.db.session() as session:
        query = select(Endpoint, Identity.username).join(Identity, Identity.id == Endpoint.owner_id)
        if endpoint_id is not None:
            query = query.where(Endpoint.id == endpoint_id)
        rows = (await session.execute(query.order_by(Endpoint.display_name))).all()
    found = [
        HostEndpoint(e.id, e.display_name, e.owner_id, name, e.data_streams) for e, name in rows
    ]
    return found if endpoint_id is not None else [BUILTIN_ENDPOINT, *found]


async def host_endpoint_named(ctx: AppContext, endpoint_id: str) -> HostEndpoint | None:
    """The GCSv5 endpoint an id from a request names (the built-in one or an agent's), or
    None when it is not an endpoint id."""
    try:
        key = uuid.UUID(endpoint_id)
    except ValueError:
        return None
    hosts = await host_endpoints(ctx, key)
    return hosts[0] if hosts else None


# What Globus reports in a task's ``nice_status`` while an endpoint it needs is not connected.
NOT_CONNECTED_STATUS = "GC_NOT_CONNECTED"


def _needs_absent_agent(now: datetime) -> ColumnElement[bool]:
    """Condition on ``Task``: a collection of the task is served by an agent that is not
    connected now."""
    absent = (
        exists()
        .where(
            Collection.connector == AGENT_CONNECTOR,
            Endpoint.id == Collection.endpoint_id,
            or_(Endpoint.connected_until.is_(None), Endpoint.connected_until <= now),
        )
        .correlate(Task)
    )
    return or_(
        absent.where(Collection.id == Task.source_endpoint_id),
        absent.where(Collection.id == Task.destination_endpoint_id),
    )


async def mark_agent_presence(session: AsyncSession, now: datetime, limit: int = 200) -> int:
    """Say on ACTIVE tasks whether an agent they need is away (``GC_NOT_CONNECTED``), and
    clear it when it is back. Disconnection is a normal state: the task stays ACTIVE, its
    leases expire, and the agent resumes it when it returns. Reads first, so that an idle
    deployment takes no write lock."""
    away = _needs_absent_agent(now)
    to_mark = list(
        await session.scalars(
            select(Task.id)
            .where(Task.status == "ACTIVE", away)
            .where(or_(Task.nice_status.is_(None), Task.nice_status != NOT_CONNECTED_STATUS))
            .limit(limit)
        )
    )
    to_clear = list(
        await session.scalars(
            select(Task.id)
            .where(Task.status == "ACTIVE", Task.nice_status == NOT_CONNECTED_STATUS, ~away)
            .limit(limit)
        )
    )
    if to_mark:
        await session.execute(
            update(Task)
            .where(Task.id.in_(to_mark), Task.status == "ACTIVE")
            .values(nice_status=NOT_CONNECTED_STATUS)
            .execution_options(synchronize_session=False)
        )
    if to_clear:
        await session.execute(
            update(Task)
            .where(Task.id.in_(to_clear), Task.nice_status == NOT_CONNECTED_STATUS)
            .values(nice_status="OK")
            .execution_options(synchronize_session=False)
        )
    return len(to_mark) + len(to_clear)


async def active_transfers(
    ctx: AppContext, collection_ids: list[uuid.UUID], limit: int = 20
) -> list[dict[str, object]]:
    """ACTIVE tasks touching these collections, newest first (for ``arctern connect status``)."""
    if not collection_ids:
        return []
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(
                    Task.id,
                    Task.label,
                    Task.nice_status,
                    Task.bytes_transferred,
                    Task.files,
                    Task.files_transferred,
                )
                .where(
                    Task.status == "ACTIVE",
                    or_(
                        Task.source_endpoint_id.in_(collection_ids),
                        Task.destination_endpoint_id.in_(collection_ids),
                    ),
                )
                .order_by(Task.request_time.desc())
                .limit(limit)
            )
        ).all()
    return [
        {
            "task_id": str(row.id),
            "label": row.label,
            "nice_status": row.nice_status,
            "bytes_transferred": row.bytes_transferred,
            "files": row.files,
            "files_transferred": row.files_transferred,
        }
        for row in rows
    ]
