"""Storage gateways of an endpoint as its administrators see and set them: one per kind of
storage its collections are on, with path restrictions (``db/gateways`` applies them).

An endpoint's administrators (its owner, or the ``administrator`` role on it) change a
gateway's name, path restrictions and whether users reach an S3 gateway with access keys
of their own, through the GCS Manager API; the deployment's operator can also with
``arctern gateway``. Users register those keys as their user credential of the gateway.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID, host_endpoint_named
from arctern.connectors.s3.secrets import encrypt_options
from arctern.context import AppContext
from arctern.db.gateways import RESTRICTION_KINDS, gateway_id
from arctern.db.models.transfer import Collection, StorageGateway, UserCredential
from arctern.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
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
    user_credentials_required: bool = False


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
                bool(row and row.user_credentials_required),
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
    """Set a gateway's display name, path restrictions and (S3) whether users reach it with
    their own credentials (``policies.s3_user_credential_required``). The caller's right to
    is checked by the caller."""
    current = await get_gateway(ctx, endpoint, raw_id)
    name = body.get("display_name", current.display_name)
    if not isinstance(name, str) or not name.strip() or len(name) > 300:
        raise InvalidRequest("display_name must be a non-empty string of at most 300 characters")
    restrict = (
        parse_restrictions(body["restrict_paths"])
        if "restrict_paths" in body
        else current.restrict_paths
    )
    required = current.user_credentials_required
    policies = body.get("policies")
    if policies is not None:
        if not isinstance(policies, dict):
            raise InvalidRequest("policies must be an object")
        if "s3_user_credential_required" in policies:
            wanted = policies["s3_user_credential_required"]
            if not isinstance(wanted, bool):
                raise InvalidRequest("s3_user_credential_required must be true or false")
            if wanted and current.kind != "s3":
                raise InvalidRequest("Only S3 storage gateways take users' own credentials")
            required = wanted
    async with ctx.db.session() as session:
        row = await session.get(StorageGateway, current.id)
        if row is None:
            row = StorageGateway(id=current.id, endpoint_id=endpoint, connector=current.kind)
            session.add(row)
        row.display_name = name.strip()
        row.restrict_paths = restrict
        row.user_credentials_required = required
        row.modified_time = ctx.clock.now()
    return GatewayView(current.id, endpoint, current.kind, name.strip(), restrict, required)


# -- users' own credentials ----------------------------------------------------------------


def credential_not_found(raw: object) -> NotFound:
    return NotFound(f"No user credential {raw} of yours on this endpoint", code="not_found")


async def list_credentials(
    ctx: AppContext, identity_id: uuid.UUID, endpoint: uuid.UUID
) -> list[UserCredential]:
    ids = [g.id for g in await list_gateways(ctx, endpoint)]
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(UserCredential)
                .where(
                    UserCredential.identity_id == identity_id, UserCredential.gateway_id.in_(ids)
                )
                .order_by(UserCredential.created_at)
            )
        )


async def get_credential(
    ctx: AppContext, identity_id: uuid.UUID, endpoint: uuid.UUID, raw_id: object
) -> UserCredential:
    found = next(
        (c for c in await list_credentials(ctx, identity_id, endpoint) if str(c.id) == str(raw_id)),
        None,
    )
    if found is None:
        raise credential_not_found(raw_id)
    return found


def _s3_keys(ctx: AppContext, policies: object) -> dict[str, Any]:
    if not isinstance(policies, dict):
        raise InvalidRequest("An S3 user credential needs policies with s3_key_id, s3_secret_key")
    key_id, secret = policies.get("s3_key_id"), policies.get("s3_secret_key")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        raise InvalidRequest("An S3 user credential needs both s3_key_id and s3_secret_key")
    return encrypt_options(
        {"access_key_id": key_id, "secret_access_key": secret}, ctx.settings.secret_key or ""
    )


async def save_credential(
    ctx: AppContext,
    identity_id: uuid.UUID,
    endpoint: uuid.UUID,
    body: dict[str, Any],
    *,
    existing: UserCredential | None = None,
) -> UserCredential:
    """Create (or, with ``existing``, change) the caller's own credential for a gateway: one
    per gateway and identity."""
    if existing is None:
        gateway = await get_gateway(ctx, endpoint, body.get("storage_gateway_id"))
        if gateway.kind != "s3":
            raise InvalidRequest(
                f"'{gateway.display_name}' knows users by their identity: no credential to add"
            )
        if body.get("identity_id") not in (None, str(identity_id)):
            raise PermissionDenied("A user credential is made for yourself")
    name = body.get("display_name")
    if name is not None and (not isinstance(name, str) or len(name) > 300):
        raise InvalidRequest("display_name must be a string of at most 300 characters")
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        if existing is not None:
            row = await session.get(UserCredential, existing.id)
            if row is None:
                raise credential_not_found(existing.id)
        else:
            taken = await session.scalar(
                select(UserCredential.id).where(
                    UserCredential.gateway_id == gateway.id,
                    UserCredential.identity_id == identity_id,
                )
            )
            if taken is not None:
                raise Conflict(
                    f"You have a credential for this gateway already ({taken}): update it",
                    code="conflict",
                )
            row = UserCredential(
                gateway_id=gateway.id, identity_id=identity_id, created_at=now, options={}
            )
            session.add(row)
        if existing is None or "policies" in body:
            row.options = _s3_keys(ctx, body.get("policies"))
        if name is not None:
            row.display_name = name
        row.modified_time = now
        await session.flush()
        return row


async def delete_credential(
    ctx: AppContext, identity_id: uuid.UUID, endpoint: uuid.UUID, raw_id: object
) -> None:
    found = await get_credential(ctx, identity_id, endpoint, raw_id)
    async with ctx.db.session() as session:
        row = await session.get(UserCredential, found.id)
        if row is not None:
            await session.delete(row)


async def endpoint_named(ctx: AppContext, raw: str) -> uuid.UUID:
    """An endpoint an operator names: ``builtin`` (the deployment's own storage), or the
    id of a Connect endpoint."""
    if raw.strip().lower() == "builtin":
        return BUILTIN_ENDPOINT_ID
    host = await host_endpoint_named(ctx, raw.strip())
    if host is None:
        raise NotFound(f"No endpoint '{raw}' (give an endpoint id, or 'builtin')")
    return host.id
