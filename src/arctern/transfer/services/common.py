"""Who is calling, and the shared look-ups every transfer service starts from.

Services take an ``AppContext`` and a ``Caller`` and know nothing of HTTP, so the web UI calls
the same functions the Transfer API routes call.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connectors.access import AccessGuard, with_guard
from arctern.connectors.base import Connector
from arctern.connectors.errors import ConnectorError
from arctern.connectors.registry import open_connector
from arctern.context import AppContext
from arctern.db.gateways import storage_options
from arctern.db.models.auth import Identity
from arctern.db.models.transfer import Collection
from arctern.errors import NotFound, StorageError
from arctern.transfer.filters import bad_request


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a request acts for (from an access token or a web session)."""

    identity_id: uuid.UUID
    username: str


def endpoint_not_found(endpoint_id: object) -> NotFound:
    return NotFound(f"No such endpoint or collection '{endpoint_id}'", code="EndpointNotFound")


def parse_uuid(value: object, what: str) -> uuid.UUID:
    """A UUID from client input, or a 400 naming ``what``."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise bad_request(f"Invalid {what}: expected a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise bad_request(f"Invalid {what} '{value}': not a UUID") from None


async def load_collection(session: AsyncSession, endpoint_id: object) -> Collection:
    """The collection with this id (a UUID or its string); EndpointNotFound otherwise."""
    try:
        key = endpoint_id if isinstance(endpoint_id, uuid.UUID) else uuid.UUID(str(endpoint_id))
    except ValueError:
        raise NotFound(
            f"No such endpoint with legacy name '{endpoint_id}'", code="EndpointNotFound"
        ) from None
    collection = await session.get(Collection, key)
    if collection is None or collection.deleted_at is not None:
        raise endpoint_not_found(endpoint_id)
    return collection


async def usernames(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Identity.id, Identity.username).where(Identity.id.in_(ids)))
    return {row[0]: row[1] for row in rows}


@asynccontextmanager
async def open_storage(
    ctx: AppContext,
    collection: Collection,
    guard: AccessGuard | None = None,
    *,
    identity_id: uuid.UUID | None = None,
) -> AsyncIterator[Connector]:
    """The collection's connector for ``identity_id``, closed afterwards; ``guard`` (the
    caller's grants, from ``acl.caller_guard``) is enforced on the location each path
    resolves to. A gateway may require the user's own storage credential
    (``db.gateways.storage_options``)."""
    options = dict(collection.options or {})
    if collection.connector == "s3":
        async with ctx.db.session() as session:
            options = await storage_options(session, collection, identity_id)
    if collection.connector == "agent":
        # Served by an Arctern Connect agent: operations are relayed to it.
        from arctern.connect.agent_connector import AgentConnector

        yield with_guard(AgentConnector(ctx, collection.id), guard)
        return
    try:
        if collection.connector == "s3":
            # Stored S3 credentials are encrypted with the server's secret key.
            from arctern.connectors.s3.secrets import decrypt_options

            options = decrypt_options(options, ctx.settings.secret_key or "")
        connector = with_guard(
            open_connector(collection.connector, collection.root, options), guard
        )
    except ConnectorError as exc:
        raise StorageError(
            f"The storage of collection '{collection.display_name}' is unavailable: {exc}",
            code="ExternalError.EndpointError",
        ) from exc
    try:
        yield connector
    finally:
        await connector.close()
