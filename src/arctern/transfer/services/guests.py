"""Guest collections: a folder of a mapped collection, shared by whoever made it.

As in Globus Connect Server v5, sharing happens on guest collections: a user with access to
a folder of a mapped collection makes a guest collection rooted there and grants others
access to it with access rules. The guest collection's root is a hard boundary (its storage
root is that folder, whose real location is checked when it is made: no symbolic link on
the way), and guests get at most what the creator can still reach in the mapped collection
(``db/grants.py``): when the creator loses access, so do the guests.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connect.endpoints import AGENT_CONNECTOR
from arctern.connectors.access import AccessGuard
from arctern.connectors.errors import ConnectorError
from arctern.context import AppContext
from arctern.db.models.transfer import AclRule, Collection, Task
from arctern.errors import ArcternError, Conflict, InvalidRequest, PermissionDenied
from arctern.transfer.paths import dir_prefix, normalize_path
from arctern.transfer.services.acl import require_access, visible_collection
from arctern.transfer.services.common import Caller, open_storage

GUEST_ENTITY_TYPE = "GCSv5_guest_collection"
MAPPED_ENTITY_TYPE = "GCSv5_mapped_collection"
# Connectors whose storage the deployment opens itself (a guest on an agent's collection
# would need the agent to know the guest collection).
GUEST_CONNECTORS = ("posix", "s3", "memory", AGENT_CONNECTOR)
MAX_NAME = 300


def entity_type_of(collection: Collection) -> str:
    return GUEST_ENTITY_TYPE if collection.is_guest else MAPPED_ENTITY_TYPE


def guest_root(mapped: Collection, base: str) -> str:
    """The storage root of a guest collection at ``base`` (a directory prefix)."""
    inner = base.strip("/")
    if mapped.connector == AGENT_CONNECTOR:
        # What the agent opens: its collection, and the folder in it (``agent_reference``).
        return f"{mapped.id}/{inner}" if inner else str(mapped.id)
    if not inner:
        return mapped.root
    if mapped.connector == "posix":
        return os.path.join(mapped.root, inner)
    return f"{mapped.root.rstrip('/')}/{inner}"


async def create_guest(
    ctx: AppContext,
    caller: Caller,
    mapped_id: object,
    base_path: object,
    display_name: object,
    *,
    description: str = "",
    public: bool = False,
) -> Collection:
    """A guest collection of the caller's at ``base_path`` of the mapped collection."""
    now = ctx.clock.now()
    if not isinstance(display_name, str) or not display_name.strip():
        raise InvalidRequest("A guest collection needs a display_name")
    if len(display_name) > MAX_NAME:
        raise InvalidRequest(f"display_name is longer than {MAX_NAME} characters")
    if not isinstance(base_path, str) or not base_path.strip():
        raise InvalidRequest("A guest collection needs a collection_base_path")
    base = dir_prefix(normalize_path(base_path))
    async with ctx.db.session() as session:
        mapped = await visible_collection(session, caller, mapped_id, now)
        if mapped.is_guest:
            raise InvalidRequest(
                "A guest collection is made in a mapped collection, not in another guest collection"
            )
        if mapped.connector not in GUEST_CONNECTORS:
            raise ArcternError(
                f"Guest collections on '{mapped.display_name}' are not available: its storage "
                "is on an Arctern Connect endpoint",
                code="ClientError.NotSupported",
                status=409,
            )
        guard = await require_access(session, caller, mapped, base, "r", now)
    await _require_real_directory(ctx, caller, mapped, base, guard)
    async with ctx.db.session() as session:
        guest = Collection(
            display_name=display_name.strip(),
            description=description,
            owner_id=caller.identity_id,
            connector=mapped.connector,
            root=guest_root(mapped, base),
            options=dict(mapped.options or {}),
            public=public,
            created_at=now,
            endpoint_id=mapped.endpoint_id,
            default_directory="/",
            mapped_collection_id=mapped.id,
            guest_base_path=base,
        )
        session.add(guest)
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(
                f"A collection named '{display_name.strip()}' already exists",
                code="ClientError.Conflict",
            ) from None
        return guest


async def _require_real_directory(
    ctx: AppContext, caller: Caller, mapped: Collection, base: str, guard: AccessGuard | None
) -> None:
    """``base`` must be a directory the creator reaches, at its own location: a symbolic
    link on the way would root the guest collection somewhere the rules of the mapped
    collection do not describe."""
    try:
        async with open_storage(ctx, mapped, guard, identity_id=caller.identity_id) as storage:
            info = await storage.stat(base.rstrip("/") or "/")
    except ConnectorError as exc:
        raise InvalidRequest(f"'{base}' cannot be used: {exc}") from None
    if info.type != "dir":
        raise InvalidRequest(f"'{base}' is not a folder")
    if mapped.connector == "posix":
        root = os.path.realpath(mapped.root)
        target = os.path.join(root, base.strip("/"))
        if os.path.realpath(target) != os.path.normpath(target):
            raise PermissionDenied(
                f"'{base}' goes through a symbolic link; make the guest collection at the "
                "folder it points to",
                code="PermissionDenied",
            )


async def guests_of(
    session: AsyncSession, owner_id: uuid.UUID, mapped_id: uuid.UUID | None = None
) -> list[Collection]:
    """The guest collections ``owner_id`` made (in one mapped collection, if given)."""
    query = select(Collection).where(
        Collection.owner_id == owner_id,
        Collection.mapped_collection_id.is_not(None),
        Collection.deleted_at.is_(None),
    )
    if mapped_id is not None:
        query = query.where(Collection.mapped_collection_id == mapped_id)
    return list(await session.scalars(query.order_by(Collection.display_name)))


async def delete_guest(ctx: AppContext, caller: Caller, collection_id: object) -> None:
    """Delete a guest collection of the caller's: its rules go with it, its files stay in
    the mapped collection, tasks that used it keep showing its name. Mapped collections are
    not deleted through the API."""
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, collection_id, ctx.clock.now())
        if not collection.is_guest:
            raise PermissionDenied(
                f"'{collection.display_name}' is a mapped collection; only guest collections "
                "are deleted this way",
                code="PermissionDenied",
            )
        if collection.owner_id != caller.identity_id:
            raise PermissionDenied(
                f"Only the creator of '{collection.display_name}' may delete it",
                code="PermissionDenied",
            )
        await session.execute(delete(AclRule).where(AclRule.collection_id == collection.id))
        used = await session.scalar(
            select(Task.id)
            .where(
                (Task.source_endpoint_id == collection.id)
                | (Task.destination_endpoint_id == collection.id)
            )
            .limit(1)
        )
        if used is None:
            await session.delete(collection)
            return
        # Kept for its tasks' history, under a name that frees the one it had.
        collection.deleted_at = ctx.clock.now()
        collection.public = False
        collection.display_name = f"{collection.display_name} (deleted {collection.id})"[:300]
