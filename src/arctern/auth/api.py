"""Globus Auth ``/v2/api``: identities, consents, and the developer API (projects, clients).

Callers authenticate with a Bearer token for ``auth.globus.org`` (developer calls need the
``manage_projects`` scope) or, where Globus allows it, with the client's own Basic credentials.
The one unauthenticated call is ``POST /v2/api/clients`` with the globus-cli's ``template_id``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.auth import identity_sets, registry, scope_registry
from arctern.auth.client_identities import CLIENTS_DOMAIN
from arctern.auth.consents import consent_documents
from arctern.auth.endpoints import bearer_grant
from arctern.auth.hashing import same_digest
from arctern.auth.scopes import AUTH_RS, MANAGE_PROJECTS
from arctern.auth.service import AuthService
from arctern.auth.verifier import TokenVerifier
from arctern.db.models.auth import (
    ClientCredential,
    ClientScope,
    Consent,
    Identity,
    IdentityProvider,
    OAuthClient,
    Project,
)
from arctern.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unauthorized,
)
from arctern.json_input import InvalidJson, parse_json
from arctern.limits import (
    MAX_IDENTITY_LOOKUP,
    MAX_NAME,
    MAX_URI,
    MAX_USERNAME,
    bounded_count,
    bounded_text,
)


class NotAuthenticated(Unauthorized):
    code = "UNAUTHORIZED"


class Forbidden(PermissionDenied):
    code = "FORBIDDEN"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a user (through a token) or a client (Basic or client-credentials)."""

    identity_id: uuid.UUID | None
    client_id: uuid.UUID
    scopes: frozenset[str]


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No {what} {value}", code="NOT_FOUND") from None


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


async def _json_object(request: Request, key: str) -> dict[str, Any]:
    try:
        body = parse_json(await request.body() or b"{}")
    except InvalidJson as exc:
        raise InvalidRequest(str(exc), code="INVALID_JSON") from None
    inner = body.get(key) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise InvalidRequest(f'The body must be {{"{key}": {{...}}}}', code="INVALID_PARAMETERS")
    return inner


def identity_document(identity: Identity) -> dict[str, Any]:
    return {
        "id": str(identity.id),
        "username": identity.username,
        "status": identity.status,
        "name": identity.name,
        "email": identity.email,
        "organization": identity.provider.name,
        "identity_provider": str(identity.provider_id),
        "identity_type": "login",
    }


def client_document(client: OAuthClient) -> dict[str, Any]:
    public = client.client_type == registry.PUBLIC
    grant_types = ["authorization_code", "refresh_token"]
    if not public:
        grant_types.append("client_credentials")
    return {
        "id": str(client.id),
        "name": client.name,
        "project": str(client.project_id) if client.project_id else None,
        "public_client": public,
        "client_type": client.client_type,
        "grant_types": grant_types,
        "redirect_uris": list(client.redirect_uris or []),
        "scopes": [],
        "fqdns": [],
        "visibility": client.visibility,
        "parent_client": str(client.parent_client) if client.parent_client else None,
        "required_idp": str(client.required_idp) if client.required_idp else None,
        "preselect_idp": str(client.preselect_idp) if client.preselect_idp else None,
        "links": {
            "terms_and_conditions": (client.links or {}).get("terms_and_conditions"),
            "privacy_policy": (client.links or {}).get("privacy_policy"),
        },
        "prompt_for_named_grant": True,
        "userinfo_from_effective_identity": True,
    }


def credential_document(credential: ClientCredential, secret: str | None = None) -> dict[str, Any]:
    document = {
        "id": str(credential.id),
        "name": credential.name,
        "client": str(credential.client_id),
        "created": credential.created_at.isoformat(),
    }
    if secret is not None:
        document["secret"] = secret
    return document


async def project_document(session: AsyncSession, project: Project) -> dict[str, Any]:
    admins = []
    for raw in project.admin_ids or []:
        try:
            identity = await session.get(Identity, uuid.UUID(raw))
        except ValueError:
            identity = None
        if identity is not None:
            admins.append(identity_document(identity))
    return {
        "id": str(project.id),
        "display_name": project.display_name,
        "project_name": project.display_name,
        "contact_email": project.contact_email,
        "admin_ids": list(project.admin_ids or []),
        "admin_group_ids": list(project.admin_group_ids or []),
        "admins": {"identities": admins, "groups": []},
    }


def create_api_router(service: AuthService, verifier: TokenVerifier) -> APIRouter:
    router = APIRouter(prefix="/v2/api")
    ctx = service.ctx

    async def basic_client(request: Request) -> uuid.UUID | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            client_id_text, _, secret = base64.b64decode(encoded).decode().partition(":")
            client_id = uuid.UUID(client_id_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise NotAuthenticated("Invalid client credentials") from None
        async with ctx.db.session() as session:
            hashes = await session.scalars(
                select(ClientCredential.secret_hash).where(ClientCredential.client_id == client_id)
            )
            if not any(same_digest(secret, h) for h in hashes):
                raise NotAuthenticated("Invalid client credentials")
        return client_id

    async def caller(request: Request, *, required_scope: str | None = None) -> Caller:
        client_id = await basic_client(request)
        if client_id is not None:
            if required_scope is not None:
                raise Forbidden("This call needs a user's token")
            return Caller(None, client_id, frozenset())
        grant = await bearer_grant(request, verifier)
        if grant is None:
            raise NotAuthenticated("Call must be authenticated")
        if grant.resource_server != AUTH_RS:
            raise Forbidden("This token is not for auth.globus.org")
        if required_scope is not None and required_scope not in grant.scopes:
            raise Forbidden(f"This call needs the scope {required_scope}")
        return Caller(grant.identity_id, grant.client_id, grant.scopes)

    async def developer(request: Request) -> uuid.UUID:
        who = await caller(request, required_scope=MANAGE_PROJECTS)
        if who.identity_id is None:
            raise Forbidden("Projects belong to users; use a user's token")
        return who.identity_id

    # ------------------------------------------------------------------ identities

    async def user_caller(request: Request) -> Caller:
        """A user's token for auth.globus.org: a client alone (Basic, client credentials, or
        an anonymously made CLI-template client) may not look people up."""
        who = await caller(request)
        if who.identity_id is None:
            raise Forbidden("Identity lookups need a user's token")
        return who

    @router.get("/identities")
    async def identities(request: Request) -> Response:
        who = await user_caller(request)
        ids = _csv(request.query_params.get("ids"))
        usernames = _csv(request.query_params.get("usernames"))
        if ids and usernames:
            raise InvalidRequest("Use ids or usernames, not both", code="INVALID_PARAMETERS")
        bounded_count(ids or usernames, "ids or usernames", MAX_IDENTITY_LOOKUP)
        for name in usernames:
            bounded_text(name, "A username", MAX_USERNAME)
        found: list[Identity] = []
        async with ctx.db.session() as session:
            if ids:
                keys = []
                for raw in ids:
                    try:
                        keys.append(uuid.UUID(raw))
                    except ValueError:
                        raise InvalidRequest(
                            f"Invalid identity id {raw!r}", code="INVALID_PARAMETERS"
                        ) from None
                rows = await session.scalars(select(Identity).where(Identity.id.in_(keys)))
                by_id = {row.id: row for row in rows}
                found = [by_id[k] for k in keys if k in by_id]
            elif usernames:
                lowered = [u.lower() for u in usernames]
                rows = await session.scalars(
                    select(Identity).where(func.lower(Identity.username).in_(lowered))
                )
                by_name = {row.username.lower(): row for row in rows}
                provision = request.query_params.get("provision", "false").lower() == "true"
                missing = list(dict.fromkeys(n for n in lowered if n not in by_name))
                if provision and missing:
                    await charge_provisions(who, len(missing))
                    for name in missing:
                        created = await _provision(session, name, ctx.clock.now())
                        if created is not None:
                            by_name[name] = created
                found = [by_name[u] for u in lowered if u in by_name]
            else:
                # Neither: the caller's own identity set, as Globus Auth answers.
                assert who.identity_id is not None
                found = await identity_sets.members(session, who.identity_id)
        return JSONResponse({"identities": [identity_document(i) for i in found]})

    async def charge_provisions(who: Caller, count: int) -> None:
        limiter = ctx.identity_provisions
        wait = limiter.acquire(str(who.identity_id), count) if limiter is not None else None
        if wait is not None:
            raise TooManyRequests(
                "Too many identities provisioned; try again later", retry_after=wait
            )

    @router.get("/identity_providers")
    async def identity_providers(request: Request) -> Response:
        await caller(request)
        domains = _csv(request.query_params.get("domains"))
        ids = _csv(request.query_params.get("ids"))
        async with ctx.db.session() as session:
            rows = list(await session.scalars(select(IdentityProvider)))
        if domains:
            rows = [r for r in rows if r.domain in domains]
        if ids:
            rows = [r for r in rows if str(r.id) in ids]
        return JSONResponse(
            {
                "identity_providers": [
                    {
                        "id": str(r.id),
                        "name": r.name,
                        "short_name": r.domain,
                        "domains": [r.domain],
                        "alternative_names": [],
                    }
                    for r in rows
                ]
            }
        )

    @router.get("/identities/{identity_id}/consents")
    async def consents(request: Request, identity_id: str) -> Response:
        who = await caller(request)
        target = _uuid(identity_id, "identity")
        if who.identity_id != target:
            raise Forbidden("You can only view your own consents")
        show_all = request.query_params.get("all", "false").lower() in ("true", "1", "yes")
        async with ctx.db.session() as session:
            query = select(Consent).where(Consent.identity_id == target)
            if not show_all:
                query = query.where(Consent.client_id == who.client_id)
            rows = list(await session.scalars(query.order_by(Consent.id)))
        return JSONResponse({"consents": consent_documents(rows, target)})

    # ------------------------------------------------------------------ projects

    @router.get("/projects")
    async def list_projects(request: Request) -> Response:
        identity_id = await developer(request)
        async with ctx.db.session() as session:
            projects = await registry.list_projects(session, identity_id)
            documents = [await project_document(session, p) for p in projects]
        return JSONResponse({"projects": documents})

    @router.post("/projects", status_code=201)
    async def create_project(request: Request) -> Response:
        identity_id = await developer(request)
        body = await _json_object(request, "project")
        admin_ids = [_admin_uuid(a) for a in body.get("admin_ids") or []]
        if identity_id not in admin_ids and not body.get("admin_group_ids"):
            admin_ids.insert(0, identity_id)
        async with ctx.db.session() as session:
            project = await registry.create_project(
                session,
                ctx.clock.now(),
                display_name=str(body.get("display_name") or ""),
                contact_email=str(body.get("contact_email") or ""),
                admin_ids=admin_ids,
                admin_group_ids=[str(g) for g in body.get("admin_group_ids") or []],
            )
            document = await project_document(session, project)
        return JSONResponse({"project": document}, status_code=201)

    @router.get("/projects/{project_id}")
    async def get_project(request: Request, project_id: str) -> Response:
        identity_id = await developer(request)
        async with ctx.db.session() as session:
            project = await registry.project_for_admin(
                session, _uuid(project_id, "project"), identity_id
            )
            document = await project_document(session, project)
        return JSONResponse({"project": document})

    @router.put("/projects/{project_id}")
    async def update_project(request: Request, project_id: str) -> Response:
        identity_id = await developer(request)
        body = await _json_object(request, "project")
        async with ctx.db.session() as session:
            project = await registry.project_for_admin(
                session, _uuid(project_id, "project"), identity_id
            )
            admin_ids = body.get("admin_ids")
            await registry.update_project(
                project,
                display_name=body.get("display_name"),
                contact_email=body.get("contact_email"),
                admin_ids=[_admin_uuid(a) for a in admin_ids] if admin_ids is not None else None,
            )
            document = await project_document(session, project)
        return JSONResponse({"project": document})

    @router.delete("/projects/{project_id}")
    async def delete_project(request: Request, project_id: str) -> Response:
        identity_id = await developer(request)
        async with ctx.db.session() as session:
            project = await registry.project_for_admin(
                session, _uuid(project_id, "project"), identity_id
            )
            document = await project_document(session, project)
            await registry.delete_project(session, project)
        return JSONResponse({"project": document})

    # ------------------------------------------------------------------ clients

    @router.post("/clients", status_code=201)
    async def create_client(request: Request) -> Response:
        body = await _json_object(request, "client")
        if body.get("template_id"):
            return await instantiate_template(request, body)
        identity_id = await developer(request)
        name = str(body.get("name") or "")
        if "public_client" in body and "client_type" in body:
            raise InvalidRequest(
                "Give public_client or client_type, not both", code="INVALID_PARAMETERS"
            )
        client_type = body.get("client_type")
        if client_type is not None:
            if client_type not in (registry.PUBLIC, registry.CONFIDENTIAL):
                raise InvalidRequest(
                    f"Unsupported client_type {client_type!r}", code="INVALID_PARAMETERS"
                )
            public = client_type == registry.PUBLIC
        else:
            public = bool(body.get("public_client", False))
        redirect_uris = body.get("redirect_uris") or []
        if not isinstance(redirect_uris, list):
            raise InvalidRequest("redirect_uris must be a list", code="INVALID_PARAMETERS")
        project_raw = body.get("project")
        if not project_raw:
            raise InvalidRequest("A client needs a project", code="INVALID_PARAMETERS")
        async with ctx.db.session() as session:
            project = await registry.project_for_admin(
                session, _uuid(str(project_raw), "project"), identity_id
            )
            client, _secret = await registry.create_client(
                session,
                ctx.clock.now(),
                name=name,
                public_client=public,
                redirect_uris=[str(u) for u in redirect_uris],
                project_id=project.id,
                owner_id=identity_id,
                visibility=str(body.get("visibility") or "private"),
                with_credential=False,
            )
            links = body.get("links")
            if isinstance(links, dict):
                client.links = {
                    k: _link(links.get(k)) for k in ("terms_and_conditions", "privacy_policy")
                }
        return JSONResponse({"client": client_document(client)}, status_code=201)

    async def instantiate_template(request: Request, body: dict[str, Any]) -> Response:
        template = _uuid(str(body["template_id"]), "template")
        if template != registry.CLI_TEMPLATE_ID:
            raise NotFound(f"No template client {template}", code="NOT_FOUND")
        # Anyone may call this (globus login before any token exists), so each address may
        # only make a few clients an hour; the name is bounded like every stored string.
        name = bounded_text(str(body.get("name") or "Globus CLI"), "name", MAX_NAME)
        limiter = ctx.template_clients
        address = request.client.host if request.client else "unknown"
        wait = limiter.acquire(address) if limiter is not None else None
        if wait is not None:
            raise TooManyRequests(
                "Too many clients created from this address; try again later", retry_after=wait
            )
        async with ctx.db.session() as session:
            client, secret = await registry.create_client(
                session,
                ctx.clock.now(),
                name=name,
                public_client=False,
                redirect_uris=[],
                parent_client=template,
            )
            credentials = await registry.list_credentials(session, client.id)
        assert secret is not None
        return JSONResponse(
            {
                "client": client_document(client),
                "included": {"client_credential": credential_document(credentials[0], secret)},
            },
            status_code=201,
        )

    @router.get("/clients")
    async def list_clients(request: Request) -> Response:
        identity_id = await developer(request)
        async with ctx.db.session() as session:
            clients = await registry.list_clients_for(session, identity_id)
        return JSONResponse({"clients": [client_document(c) for c in clients]})

    async def managed_client(request: Request, client_id: str) -> tuple[uuid.UUID, bool]:
        """The client id, and whether the caller is the client itself (Basic auth)."""
        key = _uuid(client_id, "client")
        self_client = await basic_client(request)
        if self_client is not None:
            if self_client != key:
                raise Forbidden("A client can only manage itself")
            return key, True
        identity_id = await developer(request)
        async with ctx.db.session() as session:
            await registry.client_for_admin(session, key, identity_id)
        return key, False

    @router.get("/clients/{client_id}")
    async def get_client(request: Request, client_id: str) -> Response:
        key, _ = await managed_client(request, client_id)
        async with ctx.db.session() as session:
            client = await session.get(OAuthClient, key)
            if client is None:
                raise NotFound(f"No client {key}", code="NOT_FOUND")
        return JSONResponse({"client": client_document(client)})

    @router.put("/clients/{client_id}")
    async def update_client(request: Request, client_id: str) -> Response:
        key, _ = await managed_client(request, client_id)
        body = await _json_object(request, "client")
        async with ctx.db.session() as session:
            client = await session.get(OAuthClient, key)
            if client is None:
                raise NotFound(f"No client {key}", code="NOT_FOUND")
            uris = body.get("redirect_uris")
            await registry.update_client(
                client,
                name=body.get("name"),
                redirect_uris=[str(u) for u in uris] if isinstance(uris, list) else None,
                visibility=body.get("visibility"),
            )
        return JSONResponse({"client": client_document(client)})

    @router.delete("/clients/{client_id}")
    async def delete_client(request: Request, client_id: str) -> Response:
        key, _ = await managed_client(request, client_id)
        async with ctx.db.session() as session:
            client = await session.get(OAuthClient, key)
            if client is None:
                raise NotFound(f"No client {key}", code="NOT_FOUND")
            document = client_document(client)
            await registry.delete_client(session, client)
        return JSONResponse({"client": document})

    @router.get("/clients/{client_id}/credentials")
    async def list_credentials(request: Request, client_id: str) -> Response:
        key, _ = await managed_client(request, client_id)
        async with ctx.db.session() as session:
            rows = await registry.list_credentials(session, key)
        return JSONResponse({"credentials": [credential_document(c) for c in rows]})

    @router.post("/clients/{client_id}/credentials", status_code=201)
    async def create_credential(request: Request, client_id: str) -> Response:
        key, _ = await managed_client(request, client_id)
        body = await _json_object(request, "credential")
        async with ctx.db.session() as session:
            client = await session.get(OAuthClient, key)
            if client is None:
                raise NotFound(f"No client {key}", code="NOT_FOUND")
            credential, secret = await registry.create_credential(
                session, ctx.clock.now(), client, name=str(body.get("name") or "")
            )
        return JSONResponse(
            {"credential": credential_document(credential, secret)}, status_code=201
        )

    @router.delete("/clients/{client_id}/credentials/{credential_id}")
    async def delete_credential(request: Request, client_id: str, credential_id: str) -> Response:
        key, _ = await managed_client(request, client_id)
        async with ctx.db.session() as session:
            credential = await registry.delete_credential(
                session, key, _uuid(credential_id, "credential")
            )
        return JSONResponse({"credential": credential_document(credential)})

    # ------------------------------------------------------------------ scopes

    @router.get("/scopes")
    async def list_scopes(request: Request) -> Response:
        """Scope documents by ``ids`` or ``scope_strings`` (unknown ones left out), or the
        scopes of the clients the caller manages."""
        who = await caller(request)
        ids = _csv(request.query_params.get("ids"))
        strings = _csv(request.query_params.get("scope_strings"))
        if ids and strings:
            raise InvalidRequest("Use ids or scope_strings, not both", code="INVALID_PARAMETERS")
        bounded_count(ids or strings, "ids or scope_strings", MAX_IDENTITY_LOOKUP)
        async with ctx.db.session() as session:
            if ids:
                found = [
                    await scope_registry.scope_string_of_id(session, _uuid(i, "scope")) for i in ids
                ]
                strings = [s for s in found if s is not None]
            elif not strings:
                clients = (
                    [who.client_id]
                    if who.identity_id is None
                    else [c.id for c in await registry.list_clients_for(session, who.identity_id)]
                )
                rows = await session.scalars(
                    select(ClientScope).where(ClientScope.client_id.in_(clients))
                )
                strings = [scope_registry.client_scope_string(r.client_id, r.suffix) for r in rows]
            docs = await scope_registry.documents_for(session, strings)
        return JSONResponse({"scopes": docs})

    @router.get("/scopes/{scope_id}")
    async def get_scope(request: Request, scope_id: str) -> Response:
        await caller(request)
        async with ctx.db.session() as session:
            scope = await scope_registry.scope_string_of_id(session, _uuid(scope_id, "scope"))
            docs = await scope_registry.documents_for(session, [scope] if scope else [])
        if not docs:
            raise NotFound(f"No scope {scope_id}", code="NOT_FOUND")
        return JSONResponse({"scope": docs[0]})

    @router.post("/clients/{client_id}/scopes", status_code=201)
    async def create_scope(request: Request, client_id: str) -> Response:
        key, _ = await managed_client(request, client_id)
        body = await _json_object(request, "scope")
        async with ctx.db.session() as session:
            client = await session.get(OAuthClient, key)
            if client is None:
                raise NotFound(f"No client {key}", code="NOT_FOUND")
            if client.client_type == registry.PUBLIC:
                raise InvalidRequest(
                    "Native apps cannot define scopes; use a confidential client",
                    code="INVALID_PARAMETERS",
                )
            suffix = body.get("scope_suffix")
            if not isinstance(suffix, str) or not scope_registry.SUFFIX.fullmatch(suffix):
                raise InvalidRequest(
                    "scope_suffix must be 1-100 letters, digits, '_', '.' or '-'",
                    code="INVALID_PARAMETERS",
                )
            clash = await session.scalar(
                select(ClientScope.id).where(
                    ClientScope.client_id == key, ClientScope.suffix == suffix
                )
            )
            if clash is not None:
                raise Conflict(f"The client already has a scope '{suffix}'", code="CONFLICT")
            row = ClientScope(client_id=key, suffix=suffix, created_at=ctx.clock.now())
            await _fill_scope(session, row, body, creating=True)
            session.add(row)
            await session.flush()
            docs = await scope_registry.documents_for(
                session, [scope_registry.client_scope_string(key, suffix)]
            )
        return JSONResponse({"scope": docs[0]}, status_code=201)

    async def managed_scope(request: Request, scope_id: str) -> uuid.UUID:
        key = _uuid(scope_id, "scope")
        async with ctx.db.session() as session:
            row = await session.get(ClientScope, key)
        if row is None:
            raise NotFound(f"No scope {scope_id} defined by a client", code="NOT_FOUND")
        await managed_client(request, str(row.client_id))
        return key

    @router.put("/scopes/{scope_id}")
    async def update_scope(request: Request, scope_id: str) -> Response:
        key = await managed_scope(request, scope_id)
        body = await _json_object(request, "scope")
        async with ctx.db.session() as session:
            row = await session.get(ClientScope, key)
            assert row is not None
            await _fill_scope(session, row, body, creating=False)
            await session.flush()
            docs = await scope_registry.documents_for(
                session, [scope_registry.client_scope_string(row.client_id, row.suffix)]
            )
        return JSONResponse({"scope": docs[0]})

    @router.delete("/scopes/{scope_id}")
    async def delete_scope(request: Request, scope_id: str) -> Response:
        key = await managed_scope(request, scope_id)
        async with ctx.db.session() as session:
            row = await session.get(ClientScope, key)
            assert row is not None
            docs = await scope_registry.documents_for(
                session, [scope_registry.client_scope_string(row.client_id, row.suffix)]
            )
            await session.delete(row)
        return JSONResponse({"scope": docs[0]})

    @router.get("/policies")
    async def list_policies(request: Request) -> Response:
        await developer(request)
        return JSONResponse({"policies": []})

    return router


async def _provision(session: AsyncSession, username: str, now: Any) -> Identity | None:
    """Like Globus, make an "unused" identity for a username at a known provider (no login)."""
    if username.count("@") != 1:
        return None
    domain = username.split("@", 1)[1]
    if domain == CLIENTS_DOMAIN:
        return None  # a client's identity has the client's id; it is made on its first use
    provider = await session.scalar(
        select(IdentityProvider).where(IdentityProvider.domain == domain)
    )
    if provider is None:
        return None
    identity = Identity(
        provider_id=provider.id,
        username=username,
        name="",
        email=None,
        password_hash=None,
        status="unused",
        created_at=now,
    )
    session.add(identity)
    await session.flush()
    identity.provider = provider
    return identity


def _link(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("links must be URL strings", code="INVALID_PARAMETERS")
    return bounded_text(value, "A link", MAX_URI)


def _admin_uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidRequest(f"Invalid admin id {value!r}", code="INVALID_PARAMETERS") from None


async def _fill_scope(
    session: AsyncSession, row: ClientScope, body: dict[str, Any], *, creating: bool
) -> None:
    """Apply a scope body (create: name and description required; update: what is given)."""
    for key in ("name", "description"):
        if key in body or creating:
            value = body.get(key)
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequest(f"{key} must be a non-empty string", code="INVALID_PARAMETERS")
            setattr(row, key, bounded_text(value.strip(), f"The scope's {key}", MAX_NAME))
    for key in ("advertised", "allows_refresh_token"):
        if key in body:
            if not isinstance(body[key], bool):
                raise InvalidRequest(f"{key} must be true or false", code="INVALID_PARAMETERS")
            setattr(row, key, body[key])
        elif creating:
            setattr(row, key, key == "allows_refresh_token")
    if "required_domains" in body or creating:
        domains = body.get("required_domains") or []
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise InvalidRequest("required_domains must be a list", code="INVALID_PARAMETERS")
        row.required_domains = [bounded_text(d, "A domain", MAX_NAME) for d in domains[:20]]
    if "dependent_scopes" in body or creating:
        row.dependent_scopes = await _dependent_scopes(session, body.get("dependent_scopes") or [])


async def _dependent_scopes(session: AsyncSession, raw: Any) -> list[dict[str, Any]]:
    """Dependent scopes named by id (as Globus takes them) or scope string, resolved to
    scope strings; each must exist here."""
    if not isinstance(raw, list) or len(raw) > 20:
        raise InvalidRequest("dependent_scopes must be a list", code="INVALID_PARAMETERS")
    found: list[dict[str, Any]] = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("scope"), str):
            raise InvalidRequest(
                'each dependent scope is {"scope": <id>, "optional": bool, '
                '"requires_refresh_token": bool}',
                code="INVALID_PARAMETERS",
            )
        named = entry["scope"]
        try:
            scope = await scope_registry.scope_string_of_id(session, uuid.UUID(named))
        except ValueError:
            known = await scope_registry.documents_for(session, [named])
            scope = named if known else None
        if scope is None:
            raise InvalidRequest(f"Unknown dependent scope {named}", code="INVALID_PARAMETERS")
        found.append(
            {
                "scope": scope,
                "optional": bool(entry.get("optional")),
                "requires_refresh_token": bool(entry.get("requires_refresh_token")),
            }
        )
    return found
