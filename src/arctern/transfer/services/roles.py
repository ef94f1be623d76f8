"""Roles on endpoints and collections, as Globus Connect Server v5 has them.

``administrator`` may do everything, including granting roles; an ``access_manager``
manages a collection's access rules; an ``activity_manager`` sees and cancels other users'
tasks on it; an ``activity_monitor`` sees them. A role on an endpoint applies to every
collection of the endpoint, and a role on a mapped collection to its guest collections. A
collection's owner (for a guest collection, its creator and the mapped collection's owner)
and a Connect endpoint's owner are administrators without a stored role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID, HostEndpoint, host_endpoint_named
from arctern.context import AppContext
from arctern.db.grants import identity_set_of
from arctern.db.models.auth import Identity
from arctern.db.models.connect import Endpoint
from arctern.db.models.groups import Group, GroupMembership
from arctern.db.models.transfer import Collection, EndpointRole
from arctern.errors import NotFound, PermissionDenied
from arctern.transfer.filters import bad_request
from arctern.transfer.services.acl import visible_collection
from arctern.transfer.services.common import Caller

ROLES = ("administrator", "access_manager", "activity_manager", "activity_monitor")
MONITOR = frozenset({"administrator", "activity_manager", "activity_monitor"})
MANAGE_ACTIVITY = frozenset({"administrator", "activity_manager"})
MANAGE_ACCESS = frozenset({"administrator", "access_manager"})


def host_of(collection: Collection) -> uuid.UUID:
    return collection.endpoint_id or BUILTIN_ENDPOINT_ID


async def _principal_condition(session: AsyncSession, identity_id: uuid.UUID) -> Any:
    ids = await identity_set_of(session, identity_id)
    groups = select(GroupMembership.group_key).where(
        GroupMembership.identity_id.in_(ids), GroupMembership.status == "active"
    )
    return or_(
        (EndpointRole.principal_type == "identity")
        & EndpointRole.principal.in_([str(i) for i in ids]),
        (EndpointRole.principal_type == "group") & EndpointRole.principal.in_(groups),
    )


async def roles_on(session: AsyncSession, caller: Caller, collection: Collection) -> set[str]:
    """The caller's roles on a collection (its own, and its endpoint's)."""
    roles: set[str] = set()
    if collection.owner_id == caller.identity_id:
        roles.add("administrator")
    if collection.endpoint_id is not None:
        endpoint = await session.get(Endpoint, collection.endpoint_id)
        if endpoint is not None and endpoint.owner_id == caller.identity_id:
            roles.add("administrator")
    # A role on a mapped collection holds on its guest collections too.
    targets = [collection.id, host_of(collection)]
    if collection.mapped_collection_id is not None:
        targets.append(collection.mapped_collection_id)
        mapped = await session.get(Collection, collection.mapped_collection_id)
        if mapped is not None and mapped.owner_id == caller.identity_id:
            roles.add("administrator")
    matches = await _principal_condition(session, caller.identity_id)
    rows = await session.scalars(
        select(EndpointRole.role).where(EndpointRole.target_id.in_(targets), matches)
    )
    roles.update(rows)
    return roles


async def roles_on_endpoint(
    session: AsyncSession, caller: Caller, endpoint: HostEndpoint
) -> set[str]:
    """The caller's roles on a GCSv5 endpoint (its owner administers it)."""
    roles: set[str] = set()
    if endpoint.owner_id is not None and endpoint.owner_id == caller.identity_id:
        roles.add("administrator")
    matches = await _principal_condition(session, caller.identity_id)
    rows = await session.scalars(
        select(EndpointRole.role).where(EndpointRole.target_id == endpoint.id, matches)
    )
    roles.update(rows)
    return roles


async def require_role(
    session: AsyncSession, caller: Caller, collection: Collection, allowed: Iterable[str]
) -> None:
    wanted = frozenset(allowed)
    if not (await roles_on(session, caller, collection)) & wanted:
        raise PermissionDenied(
            f"You need one of the roles {', '.join(sorted(wanted))} on '{collection.display_name}'",
            code="PermissionDenied",
        )


async def monitored_collection_ids(session: AsyncSession, caller: Caller) -> set[uuid.UUID]:
    """Collections whose activity the caller may see (owner, or a monitoring role on the
    collection or its endpoint)."""
    owned_endpoints = set(
        await session.scalars(select(Endpoint.id).where(Endpoint.owner_id == caller.identity_id))
    )
    matches = await _principal_condition(session, caller.identity_id)
    targets = set(
        await session.scalars(
            select(EndpointRole.target_id).where(EndpointRole.role.in_(MONITOR), matches)
        )
    )
    endpoints = owned_endpoints | targets
    owned = select(Collection.id).where(Collection.owner_id == caller.identity_id)
    conditions: list[ColumnElement[bool]] = [
        Collection.owner_id == caller.identity_id,
        Collection.id.in_(targets),
        Collection.mapped_collection_id.in_(targets),
        Collection.mapped_collection_id.in_(owned),
        Collection.endpoint_id.in_(endpoints),
    ]
    if BUILTIN_ENDPOINT_ID in targets:
        conditions.append(Collection.endpoint_id.is_(None))
    return set(await session.scalars(select(Collection.id).where(or_(*conditions))))


async def _target(
    session: AsyncSession, ctx: AppContext, caller: Caller, endpoint_id: str
) -> tuple[uuid.UUID, Collection | None]:
    """A collection, or a GCSv5 endpoint, the caller administers."""
    try:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
    except NotFound as missing:
        host = await host_endpoint_named(ctx, endpoint_id)
        if host is None:
            raise missing from None
        if host.owner_id != caller.identity_id:
            raise PermissionDenied(
                f"Only the administrators of '{host.display_name}' manage its roles",
                code="PermissionDenied",
            ) from None
        return host.id, None
    await require_role(session, caller, collection, {"administrator"})
    return collection.id, collection


async def create_role(
    ctx: AppContext, caller: Caller, endpoint_id: str, body: dict[str, Any]
) -> EndpointRole:
    principal_type = body.get("principal_type")
    principal = body.get("principal")
    role = body.get("role")
    if principal_type not in ("identity", "group"):
        raise bad_request("principal_type must be 'identity' or 'group'")
    if role not in ROLES:
        raise bad_request(f"role must be one of {', '.join(ROLES)}")
    try:
        principal_id = uuid.UUID(str(principal))
    except ValueError:
        raise bad_request(f"Invalid principal '{principal}'") from None
    async with ctx.db.session() as session:
        target, _ = await _target(session, ctx, caller, endpoint_id)
        kind = Identity if principal_type == "identity" else Group
        if await session.get(kind, principal_id) is None:
            raise bad_request(f"No such {principal_type} '{principal}'")
        existing = await session.scalar(
            select(EndpointRole).where(
                EndpointRole.target_id == target,
                EndpointRole.principal_type == principal_type,
                EndpointRole.principal == str(principal_id),
                EndpointRole.role == role,
            )
        )
        if existing is not None:
            return existing
        row = EndpointRole(
            target_id=target,
            principal_type=principal_type,
            principal=str(principal_id),
            role=role,
            created_at=ctx.clock.now(),
        )
        session.add(row)
        await session.flush()
        return row


async def list_roles(
    ctx: AppContext, caller: Caller, endpoint_id: str
) -> tuple[Collection | None, list[EndpointRole]]:
    async with ctx.db.session() as session:
        target, collection = await _target(session, ctx, caller, endpoint_id)
        rows = list(
            await session.scalars(
                select(EndpointRole)
                .where(EndpointRole.target_id == target)
                .order_by(EndpointRole.created_at)
            )
        )
        return collection, rows


async def get_role(ctx: AppContext, caller: Caller, endpoint_id: str, role_id: str) -> EndpointRole:
    _, rows = await list_roles(ctx, caller, endpoint_id)
    found = next((r for r in rows if str(r.id) == role_id), None)
    if found is None:
        raise NotFound(f"No role '{role_id}' on this endpoint", code="RoleNotFound")
    return found


async def delete_role(ctx: AppContext, caller: Caller, endpoint_id: str, role_id: str) -> None:
    role = await get_role(ctx, caller, endpoint_id, role_id)
    async with ctx.db.session() as session:
        row = await session.get(EndpointRole, role.id)
        if row is not None:
            await session.delete(row)


def role_document(role: EndpointRole) -> dict[str, Any]:
    return {
        "DATA_TYPE": "role",
        "id": str(role.id),
        "principal_type": role.principal_type,
        "principal": role.principal,
        "role": role.role,
    }


async def grant_role(ctx: AppContext, target: uuid.UUID, username: str, role: str) -> EndpointRole:
    """The deployment operator grants a role on an endpoint or collection (``arctern
    endpoint grant-role``); the built-in endpoint has no owner to do it over the API."""
    if role not in ROLES:
        raise bad_request(f"role must be one of {', '.join(ROLES)}")
    async with ctx.db.session() as session:
        identity = await session.scalar(select(Identity).where(Identity.username == username))
        if identity is None:
            raise NotFound(f"No such user '{username}'")
        existing = await session.scalar(
            select(EndpointRole).where(
                EndpointRole.target_id == target,
                EndpointRole.principal_type == "identity",
                EndpointRole.principal == str(identity.id),
                EndpointRole.role == role,
            )
        )
        if existing is not None:
            return existing
        row = EndpointRole(
            target_id=target,
            principal_type="identity",
            principal=str(identity.id),
            role=role,
            created_at=ctx.clock.now(),
        )
        session.add(row)
        await session.flush()
        return row
