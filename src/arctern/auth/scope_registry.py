"""Which scopes exist here, and their documents (``GET /v2/api/scopes``).

A scope is known when it is one of the scopes of this deployment's services (Auth, Transfer,
Groups, Timers), a collection's own scope (``data_access``, ``https``) for a collection that exists,
a scope a client registered for itself (``auth_client_scopes``), or a scope of another
Globus service (Search, Flows, Compute) that clients such as globus-cli always ask
for. Anything else is ``invalid_scope`` for every grant.

A registered client scope lists dependent scopes: asking a user for it asks for them too
(they appear on the consent page and are recorded as consents under it), and the client that
owns it may then get tokens for them on the user's behalf (the dependent-token grant).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from arctern.auth.scopes import (
    AUTH_RS,
    COLLECTION_SCOPE_NAMES,
    OIDC_SCOPES,
    TRANSFER_RS,
    ScopeError,
    ScopeNode,
    describe,
    resource_server_of,
    scope_uuid,
)
from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID
from arctern.db.models.auth import ClientScope
from arctern.db.models.connect import Endpoint
from arctern.db.models.transfer import Collection

GROUPS_RS = "groups.api.globus.org"
TIMERS_RS = "524230d7-ea86-4a52-8312-86065a9e0417"
# The scopes of the services this deployment runs, by resource server.
SERVED_SCOPE_NAMES: dict[str, frozenset[str]] = {
    AUTH_RS: frozenset(
        {
            "view_identities",
            "view_identity_set",
            "view_consents",
            "manage_projects",
            "view_authentications",
            "view_clients",
            "view_clients_and_scopes",
        }
    ),
    TRANSFER_RS: frozenset({"all", "gcp_install"}),
    GROUPS_RS: frozenset({"all", "view_my_groups_and_memberships"}),
    TIMERS_RS: frozenset({"timer"}),
}
# Other Globus services clients ask for (globus-cli's login); not served here, still granted.
OTHER_URN_SERVICES = frozenset({"search.api.globus.org"})
OTHER_URL_SERVICES = frozenset(
    {
        "eec9b274-0c81-4334-bdc2-54e90e689b9a",  # Flows
        "facd7ccc-c5f4-42aa-916b-a0e270e2c2a9",  # Compute
    }
)
_URN_NAME = re.compile(r"^urn:globus:auth:scope:[^:]+:(.+)$")
_URL = re.compile(r"^https://auth\.globus\.org/scopes/([^/]+)/([^/]+)$")
SUFFIX = re.compile(r"[A-Za-z0-9_.-]{1,100}")
ENDPOINT_SCOPE_NAME = "manage_collections"


def client_scope_string(client_id: uuid.UUID | str, suffix: str) -> str:
    return f"https://auth.globus.org/scopes/{client_id}/{suffix}"


def _url_parts(scope: str) -> tuple[uuid.UUID, str] | None:
    match = _URL.match(scope)
    if match is None:
        return None
    try:
        return uuid.UUID(match.group(1)), match.group(2)
    except ValueError:
        return None


def _static_known(scope: str) -> bool | None:
    """Known or not from the scope string alone; None when the database must say."""
    if scope in OIDC_SCOPES:
        return True
    try:
        rs = resource_server_of(scope)
    except ScopeError:
        return False
    urn = _URN_NAME.match(scope)
    if urn is not None:
        if endpoint_of_scope(scope) is not None:
            return None  # an endpoint's: known when the endpoint exists
        if rs in SERVED_SCOPE_NAMES:
            return urn.group(1) in SERVED_SCOPE_NAMES[rs]
        return rs in OTHER_URN_SERVICES
    parts = _url_parts(scope)
    if parts is None:
        return False
    if str(parts[0]) in OTHER_URL_SERVICES:
        return True
    if str(parts[0]) in SERVED_SCOPE_NAMES:
        return parts[1] in SERVED_SCOPE_NAMES[str(parts[0])]
    return None


def _lookups(scope: str) -> tuple[Any, Any] | None:
    """Statements finding the collection or client scope a URL scope names."""
    parts = _url_parts(scope)
    if parts is None:
        return None
    owner, name = parts
    collection = (
        select(Collection.id).where(Collection.id == owner)
        if name in COLLECTION_SCOPE_NAMES
        else None
    )
    registered = select(ClientScope).where(
        ClientScope.client_id == owner, ClientScope.suffix == name
    )
    return collection, registered


def endpoint_of_scope(scope: str) -> uuid.UUID | None:
    """The endpoint a GCS endpoint scope (``urn:globus:auth:scope:<id>:manage_collections``,
    for its GCS Manager API) names."""
    urn = _URN_NAME.match(scope)
    if urn is None or urn.group(1) != ENDPOINT_SCOPE_NAME:
        return None
    try:
        return uuid.UUID(resource_server_of(scope))
    except (ValueError, ScopeError):
        return None


def is_known(session: Session, scope: str) -> bool:
    """Whether ``scope`` exists here (sync session: the Authlib request path)."""
    static = _static_known(scope)
    if static is not None:
        return static
    endpoint = endpoint_of_scope(scope)
    if endpoint is not None:
        return endpoint == BUILTIN_ENDPOINT_ID or session.get(Endpoint, endpoint) is not None
    lookups = _lookups(scope)
    if lookups is None:
        return False
    collection, registered = lookups
    if collection is not None and session.scalar(collection) is not None:
        return True
    return session.scalar(registered) is not None


def registered_scope(session: Session, scope: str) -> ClientScope | None:
    lookups = _lookups(scope)
    return session.scalar(lookups[1]) if lookups is not None else None


def with_registered_dependencies(session: Session, nodes: list[ScopeNode]) -> list[ScopeNode]:
    """The requested scope tree with each registered client scope's dependent scopes added
    under it (unless the request named them already)."""

    def expand(node: ScopeNode, depth: int) -> ScopeNode:
        children = [expand(child, depth + 1) for child in node.dependencies]
        registered = registered_scope(session, node.name) if depth < 4 else None
        if registered is not None:
            named = {child.name for child in children}
            for dependent in registered.dependent_scopes:
                scope = str(dependent.get("scope", ""))
                if scope and scope not in named:
                    optional = bool(dependent.get("optional"))
                    children.append(ScopeNode(scope, optional=optional))
        return ScopeNode(node.name, optional=node.optional, dependencies=children)

    return [expand(node, 0) for node in nodes]


def registered_labels(session: Session, nodes: list[ScopeNode]) -> dict[str, str]:
    """``scope -> "name: description"`` for the registered client scopes in the tree."""
    labels: dict[str, str] = {}
    pending = list(nodes)
    while pending:
        node = pending.pop()
        pending.extend(node.dependencies)
        row = registered_scope(session, node.name)
        if row is not None:
            labels[node.name] = f"{row.name}: {row.description}" if row.description else row.name
    return labels


# -- documents --------------------------------------------------------------------------------


def builtin_document(scope: str) -> dict[str, Any]:
    rs = resource_server_of(scope)
    return {
        "id": str(scope_uuid(scope)),
        "scope_string": scope,
        "name": describe(scope),
        "description": describe(scope),
        "client": str(uuid.uuid5(uuid.NAMESPACE_DNS, rs)),
        "advertised": True,
        "allows_refresh_token": True,
        "required_domains": [],
        "dependent_scopes": [],
    }


def client_scope_document(row: ClientScope, ids_by_string: dict[str, str]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "scope_string": client_scope_string(row.client_id, row.suffix),
        "name": row.name,
        "description": row.description,
        "client": str(row.client_id),
        "advertised": row.advertised,
        "allows_refresh_token": row.allows_refresh_token,
        "required_domains": list(row.required_domains or []),
        "dependent_scopes": [
            {
                "scope": ids_by_string.get(str(d.get("scope")), str(scope_uuid(str(d["scope"])))),
                "optional": bool(d.get("optional")),
                "requires_refresh_token": bool(d.get("requires_refresh_token")),
            }
            for d in row.dependent_scopes or []
        ],
    }


def builtin_scopes() -> list[str]:
    """Every scope of this deployment's own services."""
    found = sorted(OIDC_SCOPES)
    for rs, names in SERVED_SCOPE_NAMES.items():
        found += [f"urn:globus:auth:scope:{rs}:{name}" for name in sorted(names)]
    return found


async def scope_string_of_id(session: AsyncSession, scope_id: uuid.UUID) -> str | None:
    """The scope string an id names (a registered scope, or a built-in one)."""
    row = await session.get(ClientScope, scope_id)
    if row is not None:
        return client_scope_string(row.client_id, row.suffix)
    for scope in builtin_scopes():
        if scope_uuid(scope) == scope_id:
            return scope
    return None


async def documents_for(session: AsyncSession, scopes: list[str]) -> list[dict[str, Any]]:
    """Documents of the known scopes among ``scopes`` (unknown ones are left out)."""
    docs: list[dict[str, Any]] = []
    for scope in scopes:
        parts = _url_parts(scope)
        if parts is not None:
            row = await session.scalar(
                select(ClientScope).where(
                    ClientScope.client_id == parts[0], ClientScope.suffix == parts[1]
                )
            )
            if row is not None:
                docs.append(client_scope_document(row, await _ids(session, row)))
                continue
        if _static_known(scope) or (
            parts is not None
            and parts[1] in COLLECTION_SCOPE_NAMES
            and await session.scalar(select(Collection.id).where(Collection.id == parts[0]))
        ):
            docs.append(builtin_document(scope))
    return docs


async def _ids(session: AsyncSession, row: ClientScope) -> dict[str, str]:
    """Ids of a scope's dependent scopes, by scope string."""
    found: dict[str, str] = {}
    for dependent in row.dependent_scopes or []:
        scope = str(dependent.get("scope"))
        parts = _url_parts(scope)
        if parts is not None:
            other = await session.scalar(
                select(ClientScope.id).where(
                    ClientScope.client_id == parts[0], ClientScope.suffix == parts[1]
                )
            )
            if other is not None:
                found[scope] = str(other)
                continue
        found[scope] = str(scope_uuid(scope))
    return found
