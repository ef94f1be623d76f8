"""Developer registry: projects, OAuth clients and client credentials (HTTP-free services).

Every function takes an open ``AsyncSession`` (so callers compose them in one transaction) and,
where rows are created, ``now`` from ``ctx.clock``. Typical use from a web page::

    async with ctx.db.session() as session:
        project = await registry.create_project(
            session, ctx.clock.now(), display_name="My project",
            contact_email="me@example.edu", admin_ids=[identity.id])
        client, secret = await registry.create_client(
            session, ctx.clock.now(), name="My app", public_client=True,
            redirect_uris=[], project_id=project.id, owner_id=identity.id)

Authorization helpers (``project_for_admin``, ``client_for_admin``) raise NotFound for rows the
identity may not manage, so callers never leak other people's projects.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.auth.hashing import digest, new_secret
from arctern.db.engine import mark_changed
from arctern.db.models.auth import ClientCredential, OAuthClient, Project
from arctern.errors import InvalidRequest, NotFound
from arctern.limits import (
    MAX_ADMINS,
    MAX_EMAIL,
    MAX_NAME,
    MAX_REDIRECT_URIS,
    MAX_URI,
    bounded_count,
    bounded_text,
)

PUBLIC = "public_installed_client"
CONFIDENTIAL = "confidential_client"
# The globus-cli's native template client id (hard-coded in globus-cli for unknown environments).
CLI_TEMPLATE_ID = uuid.UUID("95fdeba8-fac2-42bd-a357-e068d82ff78e")
# The native client ``arctern connect setup`` logs in with (a login link, code pasted back).
CONNECT_CLIENT_ID = uuid.UUID("a5c7e0e2-7c3b-4f64-9d1e-61726374c0c1")
# Native clients every deployment has, created on first use: id -> name shown on consent.
BUILTIN_NATIVE_CLIENTS = {CLI_TEMPLATE_ID: "Globus CLI", CONNECT_CLIENT_ID: "Arctern Connect"}


def validate_redirect_uris(uris: list[str]) -> list[str]:
    """Absolute http(s) URLs without fragments; duplicates dropped, order kept."""
    bounded_count(uris, "redirect_uris", MAX_REDIRECT_URIS)
    clean: list[str] = []
    for uri in uris:
        uri = bounded_text(uri.strip(), "A redirect URI", MAX_URI)
        if not uri:
            continue
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise InvalidRequest(
                f"Invalid redirect URI {uri!r}: use an absolute http(s) URL without a fragment",
                code="INVALID_PARAMETERS",
            )
        if uri not in clean:
            clean.append(uri)
    return clean


async def create_project(
    session: AsyncSession,
    now: datetime,
    *,
    display_name: str,
    contact_email: str,
    admin_ids: list[uuid.UUID],
    admin_group_ids: list[str] | None = None,
) -> Project:
    display_name = bounded_text(display_name.strip(), "display_name", MAX_NAME)
    contact_email = bounded_text(contact_email.strip(), "contact_email", MAX_EMAIL)
    bounded_count(admin_ids, "admin_ids", MAX_ADMINS)
    bounded_count(admin_group_ids or [], "admin_group_ids", MAX_ADMINS)
    if not display_name:
        raise InvalidRequest("A project needs a display name", code="INVALID_PARAMETERS")
    if "@" not in contact_email:
        raise InvalidRequest("A project needs a contact email", code="INVALID_PARAMETERS")
    if not admin_ids and not admin_group_ids:
        raise InvalidRequest("A project needs at least one admin", code="INVALID_PARAMETERS")
    project = Project(
        display_name=display_name,
        contact_email=contact_email,
        admin_ids=[str(a) for a in admin_ids],
        admin_group_ids=list(admin_group_ids or []),
        created_at=now,
    )
    session.add(project)
    await session.flush()
    return project


async def list_projects(session: AsyncSession, identity_id: uuid.UUID) -> list[Project]:
    """Projects the identity administers, oldest first."""
    rows = await session.scalars(select(Project).order_by(Project.created_at, Project.id))
    return [p for p in rows if str(identity_id) in (p.admin_ids or [])]


async def project_for_admin(
    session: AsyncSession, project_id: uuid.UUID, identity_id: uuid.UUID
) -> Project:
    project = await session.get(Project, project_id)
    if project is None or str(identity_id) not in (project.admin_ids or []):
        raise NotFound(f"No project {project_id}", code="NOT_FOUND")
    return project


async def update_project(
    project: Project,
    *,
    display_name: str | None = None,
    contact_email: str | None = None,
    admin_ids: list[uuid.UUID] | None = None,
) -> Project:
    if display_name is not None:
        if not display_name.strip():
            raise InvalidRequest("A project needs a display name", code="INVALID_PARAMETERS")
        project.display_name = bounded_text(display_name.strip(), "display_name", MAX_NAME)
    if contact_email is not None:
        project.contact_email = bounded_text(contact_email.strip(), "contact_email", MAX_EMAIL)
    if admin_ids is not None:
        bounded_count(admin_ids, "admin_ids", MAX_ADMINS)
        if not admin_ids:
            raise InvalidRequest("A project needs at least one admin", code="INVALID_PARAMETERS")
        project.admin_ids = [str(a) for a in admin_ids]
    return project


async def delete_project(session: AsyncSession, project: Project) -> None:
    """Delete a project and its clients (and, through them, their tokens and credentials)."""
    for client in await list_clients(session, project.id):
        await delete_client(session, client)
    await session.delete(project)
    await session.flush()


async def create_client(
    session: AsyncSession,
    now: datetime,
    *,
    name: str,
    public_client: bool,
    redirect_uris: list[str],
    project_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    parent_client: uuid.UUID | None = None,
    visibility: str = "private",
    with_credential: bool = True,
) -> tuple[OAuthClient, str | None]:
    """Register a client; a confidential one gets a first credential (unless
    ``with_credential`` is False), whose secret is returned once."""
    name = bounded_text(name.strip(), "name", MAX_NAME)
    if not name:
        raise InvalidRequest("A client needs a name", code="INVALID_PARAMETERS")
    if visibility not in ("public", "private"):
        raise InvalidRequest("visibility must be public or private", code="INVALID_PARAMETERS")
    client = OAuthClient(
        name=name,
        project_id=project_id,
        owner_id=owner_id,
        client_type=PUBLIC if public_client else CONFIDENTIAL,
        redirect_uris=validate_redirect_uris(redirect_uris),
        visibility=visibility,
        parent_client=parent_client,
        links={},
        created_at=now,
    )
    session.add(client)
    await session.flush()
    secret = None
    if not public_client and with_credential:
        _, secret = await create_credential(session, now, client, name=name)
    return client, secret


async def list_clients(session: AsyncSession, project_id: uuid.UUID) -> list[OAuthClient]:
    rows = await session.scalars(
        select(OAuthClient)
        .where(OAuthClient.project_id == project_id)
        .order_by(OAuthClient.created_at, OAuthClient.id)
    )
    return list(rows)


async def list_clients_for(session: AsyncSession, identity_id: uuid.UUID) -> list[OAuthClient]:
    """Clients in the identity's projects plus clients it owns outside any project."""
    project_ids = [p.id for p in await list_projects(session, identity_id)]
    query = select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.id)
    rows = await session.scalars(query)
    return [c for c in rows if c.project_id in project_ids or c.owner_id == identity_id]


async def client_for_admin(
    session: AsyncSession, client_id: uuid.UUID, identity_id: uuid.UUID
) -> OAuthClient:
    client = await session.get(OAuthClient, client_id)
    if client is None:
        raise NotFound(f"No client {client_id}", code="NOT_FOUND")
    if client.owner_id == identity_id:
        return client
    if client.project_id is not None:
        project = await session.get(Project, client.project_id)
        if project is not None and str(identity_id) in (project.admin_ids or []):
            return client
    raise NotFound(f"No client {client_id}", code="NOT_FOUND")


async def update_client(
    client: OAuthClient,
    *,
    name: str | None = None,
    redirect_uris: list[str] | None = None,
    visibility: str | None = None,
) -> OAuthClient:
    if name is not None:
        if not name.strip():
            raise InvalidRequest("A client needs a name", code="INVALID_PARAMETERS")
        client.name = bounded_text(name.strip(), "name", MAX_NAME)
    if redirect_uris is not None:
        client.redirect_uris = validate_redirect_uris(redirect_uris)
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise InvalidRequest("visibility must be public or private", code="INVALID_PARAMETERS")
        client.visibility = visibility
    return client


async def delete_client(session: AsyncSession, client: OAuthClient) -> None:
    from arctern.auth.verifier import TOKENS_REVOKED
    from arctern.db.models.auth import AuthorizationCode, Consent, OAuthToken

    # Explicit deletes: SQLite only cascades when foreign keys are on, PostgreSQL always.
    for model in (OAuthToken, AuthorizationCode, Consent, ClientCredential):
        await session.execute(delete(model).where(model.client_id == client.id))
    mark_changed(session, TOKENS_REVOKED)
    await session.delete(client)
    await session.flush()


async def create_credential(
    session: AsyncSession, now: datetime, client: OAuthClient, *, name: str = ""
) -> tuple[ClientCredential, str]:
    if client.client_type != CONFIDENTIAL:
        raise InvalidRequest(
            "Public (native) clients cannot have credentials", code="INVALID_PARAMETERS"
        )
    bounded_text(name, "name", MAX_NAME)
    secret = new_secret(32)
    credential = ClientCredential(
        client_id=client.id, name=name, secret_hash=digest(secret), created_at=now
    )
    session.add(credential)
    await session.flush()
    return credential, secret


async def list_credentials(session: AsyncSession, client_id: uuid.UUID) -> list[ClientCredential]:
    rows = await session.scalars(
        select(ClientCredential)
        .where(ClientCredential.client_id == client_id)
        .order_by(ClientCredential.created_at)
    )
    return list(rows)


async def delete_credential(
    session: AsyncSession, client_id: uuid.UUID, credential_id: uuid.UUID
) -> ClientCredential:
    credential = await session.get(ClientCredential, credential_id)
    if credential is None or credential.client_id != client_id:
        raise NotFound(f"No credential {credential_id}", code="NOT_FOUND")
    await session.delete(credential)
    await session.flush()
    return credential
