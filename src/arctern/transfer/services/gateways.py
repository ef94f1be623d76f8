"""Storage gateways of an endpoint as its administrators see and set them: one per kind of
storage its collections are on, with path restrictions (``db/gateways`` applies them).

An endpoint's administrators (its owner, or the ``administrator`` role on it) change a
gateway's name and path restrictions through the GCS Manager API; the deployment's
operator can also with ``arctern gateway``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID, host_endpoint_named
from arctern.context import AppContext
from arctern.db.gateways import RESTRICTION_KINDS, gateway_id
from arctern.db.models.transfer import Collection, StorageGateway
from arctern.errors import InvalidRequest, NotFound
from arctern.transfer.paths import normalize_path

MAX_RESTRICTIONS = 100
KIND_NAMES = {"posix": "POSIX", "s3": "S3", "memory": "memory", "agent": "POSIX (agent host)"}


@dataclass(frozen=True, slots=True)
class GatewayView:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    kind: str
    display_name: str
    restrict_paths: dict[str, list[str]] | None


def gateway_not_found(raw: object) -> NotFound:
    return NotFound(f"No storage gateway {raw} on this endpoint", code="not_found")


async def list_gateways(ctx: AppContext, endpoint: uuid.UUID) -> list[GatewayView]:
    """The endpoint's gateways: one per kind of storage of its collections, and any with a
    policy set."""
    async with ctx.db.session() as session:
        on_endpoint = (
            Collection.endpoint_id.is_(None)
            if endpoint == BUILTIN_ENDPOINT_ID
            else Collection.endpoint_id == endpoint
        )
        kinds = set(
            await session.scalars(
                select(Collection.connector).where(on_endpoint, Collection.deleted_at.is_(None))
            )
        )
        rows = {
            row.connector: row
            for row in await session.scalars(
                select(StorageGateway).where(StorageGateway.endpoint_id == endpoint)
            )
        }
    views = []
    for kind in sorted(kinds | set(rows)):
        row = rows.get(kind)
        views.append(
            GatewayView(
                gateway_id(endpoint, kind),
                endpoint,
                kind,
                row.display_name if row else f"{KIND_NAMES.get(kind, kind)} storage",
                row.restrict_paths if row else None,
            )
        )
    return views


async def get_gateway(ctx: AppContext, endpoint: uuid.UUID, raw_id: object) -> GatewayView:
    found = next((g for g in await list_gateways(ctx, endpoint) if str(g.id) == str(raw_id)), None)
    if found is None:
        raise gateway_not_found(raw_id)
    return found


def parse_restrictions(raw: object) -> dict[str, list[str]] | None:
    """``restrict_paths`` as a request gives it (GCS ``path_restrictions``): lists of
    absolute storage paths under ``read``, ``read_write`` and ``none``; null removes them."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest("restrict_paths must be an object with read, read_write, none")
    unknown = set(raw) - {"DATA_TYPE", *RESTRICTION_KINDS}
    if unknown:
        raise InvalidRequest(f"Unknown restrict_paths field {sorted(unknown)[0]!r}")
    parsed: dict[str, list[str]] = {}
    total = 0
    for kind in RESTRICTION_KINDS:
        paths = raw.get(kind) or []
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise InvalidRequest(f"restrict_paths.{kind} must be a list of paths")
        total += len(paths)
        cleaned = []
        for path in paths:
            if not path.startswith("/"):
                raise InvalidRequest(f"restrict_paths.{kind}: '{path}' is not an absolute path")
            cleaned.append(normalize_path(path).rstrip("/") + "/")
        parsed[kind] = sorted(set(cleaned))
    if total > MAX_RESTRICTIONS:
        raise InvalidRequest(f"At most {MAX_RESTRICTIONS} path restrictions")
    return parsed


async def update_gateway(
    ctx: AppContext, endpoint: uuid.UUID, raw_id: object, body: dict[str, Any]
) -> GatewayView:
    """Set a gateway's display name and/or path restrictions (the caller's right to is
    checked by the caller)."""
    current = await get_gateway(ctx, endpoint, raw_id)
    name = body.get("display_name", current.display_name)
    if not isinstance(name, str) or not name.strip() or len(name) > 300:
        raise InvalidRequest("display_name must be a non-empty string of at most 300 characters")
    restrict = (
        parse_restrictions(body["restrict_paths"])
        if "restrict_paths" in body
        else current.restrict_paths
    )
    async with ctx.db.session() as session:
        row = await session.get(StorageGateway, current.id)
        if row is None:
            row = StorageGateway(id=current.id, endpoint_id=endpoint, connector=current.kind)
            session.add(row)
        row.display_name = name.strip()
        row.restrict_paths = restrict
        row.modified_time = ctx.clock.now()
    return GatewayView(current.id, endpoint, current.kind, name.strip(), restrict)


async def endpoint_named(ctx: AppContext, raw: str) -> uuid.UUID:
    """An endpoint an operator names: ``builtin`` (the deployment's own storage), or the
    id of a Connect endpoint."""
    if raw.strip().lower() == "builtin":
        return BUILTIN_ENDPOINT_ID
    host = await host_endpoint_named(ctx, raw.strip())
    if host is None:
        raise NotFound(f"No endpoint '{raw}' (give an endpoint id, or 'builtin')")
    return host.id
