"""Storage gateways: the storage of one kind (POSIX, S3, an agent's disk, …) on one
endpoint, which every collection of that kind on the endpoint lies in. A gateway's path
restrictions bound what anyone — a collection's owner included — reaches in its
collections; ``access_guard`` (``db/grants``) applies them with the access rules, so the
API, the workers, HTTPS access and Connect agents all enforce them.

Gateway ids are derived from the endpoint and the kind, so they are stable without a row;
a row exists once an administrator sets a policy (``transfer.services.gateways``). An S3
gateway may require each user's own access keys (``storage_options``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID
from arctern.connectors.access import AccessGuard
from arctern.db.models.transfer import Collection, StorageGateway, UserCredential
from arctern.errors import PermissionDenied

GATEWAY_NAMESPACE = uuid.UUID("6a7c6e2e-0000-4000-8000-617263746777")
RESTRICTION_KINDS = ("read", "read_write", "none")


def gateway_id(endpoint_id: uuid.UUID, kind: str) -> uuid.UUID:
    return uuid.uuid5(GATEWAY_NAMESPACE, f"{endpoint_id}:{kind}")


def gateway_of(collection: Collection) -> uuid.UUID:
    return gateway_id(collection.endpoint_id or BUILTIN_ENDPOINT_ID, collection.connector)


def storage_path(collection: Collection) -> str:
    """The collection's root in its gateway's terms: an absolute host directory for POSIX,
    ``/bucket/prefix`` for S3, and for an agent's collection the folder inside it."""
    if collection.connector == "agent":
        # An agent's root is its own (``ID`` or ``ID/folder`` for a guest collection).
        return "/" + collection.root.partition("/")[2].strip("/")
    return "/" + collection.root.strip().strip("/")


def _prefix(path: str) -> str:
    return path.rstrip("/") + "/"


def _seen_from(base: str, path: str) -> str | None:
    """A storage path (a directory prefix) as a path of the collection rooted at ``base``:
    the part inside it, all of it, or nothing."""
    path = _prefix(path)
    if path.startswith(base):
        return "/" + path[len(base) :]
    if base.startswith(path):
        return "/"
    return None


def restriction_guard(collection: Collection, restrict: dict[str, list[str]]) -> AccessGuard:
    base = _prefix(storage_path(collection))

    def seen(kinds: tuple[str, ...]) -> list[str]:
        return [
            p for kind in kinds for path in restrict.get(kind, []) if (p := _seen_from(base, path))
        ]

    return AccessGuard(
        readable=seen(("read", "read_write")),
        writable=seen(("read_write",)),
        denied=seen(("none",)),
    )


async def gateway_limit(session: AsyncSession, collection: Collection) -> AccessGuard | None:
    """What the collection's gateway lets anyone reach in it; None: no restriction."""
    gateway = await session.get(StorageGateway, gateway_of(collection))
    if gateway is None or gateway.restrict_paths is None:
        return None
    return restriction_guard(collection, gateway.restrict_paths)


class CredentialRequired(PermissionDenied):
    """The gateway needs the user's own storage credential, and they have registered none."""

    code = "CredentialRequired"


async def storage_options(
    session: AsyncSession, collection: Collection, identity_id: uuid.UUID | None
) -> dict[str, Any]:
    """The connector options to open ``collection`` with on behalf of ``identity_id``: the
    collection's own, or — on an S3 gateway requiring users' credentials — with the user's
    access keys (on a guest collection, its creator's). Secrets stay encrypted."""
    options = dict(collection.options or {})
    if collection.connector != "s3":
        return options
    gateway = await session.get(StorageGateway, gateway_of(collection))
    if gateway is None or not gateway.user_credentials_required:
        return options
    who = collection.owner_id if collection.is_guest else identity_id
    credential = (
        await session.scalar(
            select(UserCredential).where(
                UserCredential.gateway_id == gateway.id, UserCredential.identity_id == who
            )
        )
        if who is not None
        else None
    )
    if credential is None:
        whose = "its creator's" if collection.is_guest else "your own"
        raise CredentialRequired(
            f"'{collection.display_name}' is reached with {whose} S3 access keys: register "
            f"them with 'globus gcs user-credential create s3 ENDPOINT_ID {gateway.id} …'"
        )
    options.pop("session_token", None)
    options["access_key_id"] = credential.options.get("access_key_id")
    options["secret_access_key"] = credential.options.get("secret_access_key")
    return options
