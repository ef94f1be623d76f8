"""The GCS Manager API of each endpoint, as globus-sdk's ``GCSClient`` and ``globus gcs`` /
``globus collection`` use it, at ``/gcs/<endpoint id>/api/`` (the ``gcs_manager_url`` of
endpoint documents; globus-sdk reaches it only over HTTPS, so it is advertised only when the
server serves HTTPS).

The subset served: the endpoint, its storage gateways (one per kind of storage the
deployment opens itself; administrators set their path restrictions), collections (list
with the GCS filters, show, create a guest collection, update and delete your guest
collections), and the user credential a guest collection is made with. Tokens must be for
the endpoint (resource server = its id) with the ``manage_collections`` scope. Answers and
errors are GCS ``result#1.0.0`` envelopes.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.exceptions import HTTPException

from arctern.auth.verifier import TokenVerifier
from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID, host_endpoint_named
from arctern.context import AppContext
from arctern.db.gateways import gateway_id
from arctern.db.models.transfer import Collection, EndpointRole, UserCredential
from arctern.errors import ArcternError
from arctern.http_limits import BodyLimit
from arctern.transfer.app import too_large_response
from arctern.transfer.documents import https_server
from arctern.transfer.http import json_body
from arctern.transfer.security import bearer_token
from arctern.transfer.services import gateways, roles
from arctern.transfer.services.acl import can_see
from arctern.transfer.services.common import Caller, usernames
from arctern.transfer.services.guests import GUEST_CONNECTORS, create_guest, delete_guest

CONNECTOR_IDS = {
    # Globus's connector ids, which globus-cli names ("POSIX", "S3").
    "posix": "145812c8-decc-41f1-83cf-bb2a85a2a70b",
    "s3": "7643e831-5f6c-4b47-a07f-8ee90f401d23",
    "memory": "145812c8-decc-41f1-83cf-bb2a85a2a70b",
}
PRINCIPAL_URNS = (("urn:globus:auth:identity:", "identity"), ("urn:globus:groups:id:", "group"))
FILTERS = ("mapped_collections", "guest_collections", "managed_by_me", "created_by_me")


class GcsError(ArcternError):
    """An error in the GCS envelope; ``code`` is GCS's (``not_found``, ``permission_denied``)."""


def envelope(
    data: list[dict[str, Any]], *, status: int = 200, code: str = "success", detail: str = ""
) -> JSONResponse:
    return JSONResponse(
        {
            "DATA_TYPE": "result#1.0.0",
            "code": code,
            "detail": detail or code,
            "http_response_code": status,
            "has_next_page": False,
            "data": data,
        },
        status_code=status,
    )


def create_gcs_app(ctx: AppContext, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(title="Arctern GCS Manager API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, render=too_large_response)
    base = ctx.settings.base_url

    @app.exception_handler(ArcternError)
    async def handle(_request: Request, exc: ArcternError) -> JSONResponse:
        code = exc.code if isinstance(exc, GcsError) else _gcs_code(exc.status)
        return envelope([], status=exc.status, code=code, detail=exc.message)

    @app.exception_handler(HTTPException)
    async def handle_http(_request: Request, exc: HTTPException) -> JSONResponse:
        return envelope([], status=exc.status_code, code=_gcs_code(exc.status_code))

    async def caller(request: Request, endpoint_id: str) -> tuple[Caller, uuid.UUID]:
        host = await host_endpoint_named(ctx, endpoint_id)
        if host is None:
            raise GcsError("No such endpoint", code="not_found", status=404)
        endpoint = host.id
        token = bearer_token(request)
        grant = await verifier.verify(token) if token else None
        if grant is None or grant.identity_id is None:
            raise GcsError("A user's access token is required", code="unauthorized", status=401)
        scope = f"urn:globus:auth:scope:{endpoint}:manage_collections"
        if grant.resource_server != str(endpoint) or scope not in grant.scopes:
            raise GcsError(
                f"The token is not for this endpoint (scope {scope})",
                code="permission_denied",
                status=403,
            )
        return Caller(grant.identity_id, grant.username or ""), endpoint

    async def on_endpoint(endpoint: uuid.UUID) -> list[Collection]:
        async with ctx.db.session() as session:
            query = select(Collection).where(Collection.deleted_at.is_(None))
            query = query.where(
                Collection.endpoint_id.is_(None)
                if endpoint == BUILTIN_ENDPOINT_ID
                else Collection.endpoint_id == endpoint
            )
            return list(await session.scalars(query.order_by(Collection.display_name)))

    async def documents(collections: list[Collection], endpoint: uuid.UUID) -> list[dict[str, Any]]:
        async with ctx.db.session() as session:
            owners = await usernames(session, {c.owner_id for c in collections})
        return [document(c, endpoint, owners.get(c.owner_id)) for c in collections]

    def document(
        collection: Collection, endpoint: uuid.UUID, owner_username: str | None
    ) -> dict[str, Any]:
        guest = collection.is_guest
        return {
            "DATA_TYPE": "collection#1.10.0",
            "id": str(collection.id),
            "display_name": collection.display_name,
            "collection_type": "guest" if guest else "mapped",
            "storage_gateway_id": str(gateway_id(endpoint, collection.connector)),
            "connector_id": CONNECTOR_IDS.get(collection.connector),
            "mapped_collection_id": str(collection.mapped_collection_id) if guest else None,
            "collection_base_path": collection.guest_base_path if guest else "/",
            "user_credential_id": (
                str(credential_id(endpoint, collection.connector, collection.owner_id))
                if guest
                else None
            ),
            "identity_id": str(collection.owner_id),
            "owner_username": owner_username,
            "public": collection.public,
            "description": collection.description or None,
            "organization": collection.organization or None,
            "department": collection.department or None,
            "keywords": collection.keywords.split(",") if collection.keywords else None,
            "contact_email": collection.contact_email or None,
            "contact_info": None,
            "info_link": collection.info_link or None,
            "user_message": None,
            "user_message_link": None,
            "default_directory": collection.default_directory,
            "allow_guest_collections": collection.connector in GUEST_CONNECTORS and not guest,
            "disable_anonymous_writes": True,
            "high_assurance": False,
            "authentication_timeout_mins": None,
            "require_mfa": False,
            "force_encryption": False,
            "enable_https": True,
            "https_url": https_server(base, collection.id),
            "tlsftp_url": None,
            "manager_url": f"{base}/gcs/{endpoint}",
            "domain_name": None,
        }

    def credential_id(endpoint: uuid.UUID, kind: str, identity_id: uuid.UUID) -> uuid.UUID:
        return uuid.uuid5(gateway_id(endpoint, kind), str(identity_id))

    @app.get("/{endpoint_id}/api/info")
    async def info(endpoint_id: str, request: Request) -> JSONResponse:
        _, endpoint = await caller(request, endpoint_id)
        return envelope([{"DATA_TYPE": "info#1.0.0", "endpoint_id": str(endpoint)}])

    def gateway_document(view: gateways.GatewayView) -> dict[str, Any]:
        restrict = view.restrict_paths
        return {
            "DATA_TYPE": "storage_gateway#1.2.0",
            "id": str(view.id),
            "display_name": view.display_name,
            "connector_id": CONNECTOR_IDS.get(view.kind),
            "restrict_paths": None
            if restrict is None
            else {"DATA_TYPE": "path_restrictions#1.0.0", **restrict},
            "allowed_domains": [],
            "high_assurance": False,
            "require_high_assurance": False,
            "require_mfa": False,
            "authentication_timeout_mins": None,
            "users_allow": [],
            "users_deny": [],
            "identity_mappings": [],
            "policies": (
                {
                    "DATA_TYPE": "s3_storage_policies#1.0.0",
                    "s3_endpoint": None,
                    "s3_user_credential_required": view.user_credentials_required,
                }
                if view.kind == "s3"
                else {"DATA_TYPE": "posix_storage_policies#1.0.0"}
            ),
        }

    async def administrator(me: Caller, endpoint: uuid.UUID) -> None:
        host = await host_endpoint_named(ctx, str(endpoint))
        async with ctx.db.session() as session:
            held = await roles.roles_on_endpoint(session, me, host) if host else set()
        if "administrator" not in held:
            raise GcsError(
                "Only the endpoint's administrators change its storage gateways",
                code="permission_denied",
                status=403,
            )

    @app.get("/{endpoint_id}/api/storage_gateways")
    async def storage_gateways(endpoint_id: str, request: Request) -> JSONResponse:
        _, endpoint = await caller(request, endpoint_id)
        return envelope([gateway_document(g) for g in await gateways.list_gateways(ctx, endpoint)])

    @app.get("/{endpoint_id}/api/storage_gateways/{gateway}")
    async def storage_gateway(endpoint_id: str, gateway: str, request: Request) -> JSONResponse:
        _, endpoint = await caller(request, endpoint_id)
        return envelope([gateway_document(await gateways.get_gateway(ctx, endpoint, gateway))])

    @app.patch("/{endpoint_id}/api/storage_gateways/{gateway}")
    async def update_storage_gateway(
        endpoint_id: str, gateway: str, request: Request
    ) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        await administrator(me, endpoint)
        body = await json_body(request)
        view = await gateways.update_gateway(ctx, endpoint, gateway, body)
        return envelope([gateway_document(view)])

    def identity_credential(me: Caller, view: gateways.GatewayView) -> dict[str, Any]:
        """Where the storage knows users by their identity: one implicit credential."""
        return {
            "DATA_TYPE": "user_credential#1.0.0",
            "id": str(credential_id(view.endpoint_id, view.kind, me.identity_id)),
            "identity_id": str(me.identity_id),
            "username": me.username,
            "storage_gateway_id": str(view.id),
            "connector_id": CONNECTOR_IDS.get(view.kind),
            "display_name": me.username,
            "invalid": False,
            "policies": {},
        }

    def credential_document(me: Caller, row: UserCredential) -> dict[str, Any]:
        """A user's own S3 keys: the key id, never the secret."""
        return {
            "DATA_TYPE": "user_credential#1.0.0",
            "id": str(row.id),
            "identity_id": str(row.identity_id),
            "username": me.username,
            "storage_gateway_id": str(row.gateway_id),
            "connector_id": CONNECTOR_IDS["s3"],
            "display_name": row.display_name or me.username,
            "invalid": False,
            "policies": {
                "DATA_TYPE": "s3_user_credential_policies#1.0.0",
                "s3_key_id": row.options.get("access_key_id"),
            },
        }

    @app.get("/{endpoint_id}/api/user_credentials")
    async def user_credentials(endpoint_id: str, request: Request) -> JSONResponse:
        """The caller's credentials: their own keys for S3 gateways, and an implicit one
        for gateways that know them by their identity."""
        me, endpoint = await caller(request, endpoint_id)
        wanted = request.query_params.get("storage_gateway")
        own = await gateways.list_credentials(ctx, me.identity_id, endpoint)
        found: list[dict[str, Any]] = []
        for view in await gateways.list_gateways(ctx, endpoint):
            if wanted not in (None, str(view.id)):
                continue
            if view.kind == "s3":
                found += [credential_document(me, c) for c in own if c.gateway_id == view.id]
            else:
                found.append(identity_credential(me, view))
        return envelope(found)

    @app.get("/{endpoint_id}/api/user_credentials/{credential}")
    async def user_credential(endpoint_id: str, credential: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        row = await gateways.get_credential(ctx, me.identity_id, endpoint, credential)
        return envelope([credential_document(me, row)])

    @app.post("/{endpoint_id}/api/user_credentials")
    async def create_user_credential(endpoint_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        row = await gateways.save_credential(
            ctx, me.identity_id, endpoint, await json_body(request)
        )
        return envelope([credential_document(me, row)], status=201)

    @app.patch("/{endpoint_id}/api/user_credentials/{credential}")
    async def update_user_credential(
        endpoint_id: str, credential: str, request: Request
    ) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        existing = await gateways.get_credential(ctx, me.identity_id, endpoint, credential)
        row = await gateways.save_credential(
            ctx, me.identity_id, endpoint, await json_body(request), existing=existing
        )
        return envelope([credential_document(me, row)])

    @app.delete("/{endpoint_id}/api/user_credentials/{credential}")
    async def delete_user_credential(
        endpoint_id: str, credential: str, request: Request
    ) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        await gateways.delete_credential(ctx, me.identity_id, endpoint, credential)
        return envelope([], detail="User credential deleted")

    @app.get("/{endpoint_id}/api/collections")
    async def list_collections(endpoint_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        filters = {f for f in (request.query_params.get("filter") or "").split(",") if f}
        if unknown := filters - set(FILTERS):
            raise GcsError(f"Unknown filter {sorted(unknown)[0]!r}", code="invalid_parameter")
        now = ctx.clock.now()
        found = []
        async with ctx.db.session() as session:
            for c in await on_endpoint(endpoint):
                if not await can_see(session, me, c, now):
                    continue
                if "mapped_collections" in filters and c.is_guest:
                    continue
                if "guest_collections" in filters and not c.is_guest:
                    continue
                mine = c.owner_id == me.identity_id
                if filters & {"managed_by_me", "created_by_me"} and not mine:
                    continue
                found.append(c)
        return envelope(await documents(found, endpoint))

    @app.get("/{endpoint_id}/api/collections/{collection_id}")
    async def show(endpoint_id: str, collection_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        return envelope(await documents([await _visible(me, endpoint, collection_id)], endpoint))

    async def _visible(me: Caller, endpoint: uuid.UUID, collection_id: str) -> Collection:
        try:
            key = uuid.UUID(collection_id)
        except ValueError:
            key = None
        async with ctx.db.session() as session:
            wanted = await session.get(Collection, key) if key is not None else None
            if (
                wanted is not None
                and wanted.deleted_at is None
                and (wanted.endpoint_id or BUILTIN_ENDPOINT_ID) == endpoint
                and await can_see(session, me, wanted, ctx.clock.now())
            ):
                return wanted
        raise GcsError(
            f"No collection {collection_id} on this endpoint", code="not_found", status=404
        )

    @app.post("/{endpoint_id}/api/collections")
    async def create(endpoint_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        body = await json_body(request)
        if body.get("collection_type") != "guest":
            raise GcsError(
                "Mapped collections are made by an administrator ('arctern collection create')",
                code="permission_denied",
                status=403,
            )
        mapped = await _visible(me, endpoint, str(body.get("mapped_collection_id")))
        if body.get("identity_id") not in (None, str(me.identity_id)):
            raise GcsError(
                "A guest collection is made for yourself", code="permission_denied", status=403
            )
        guest = await create_guest(
            ctx,
            me,
            mapped.id,
            body.get("collection_base_path"),
            body.get("display_name"),
            description=str(body.get("description") or ""),
            public=bool(body.get("public", False)),
        )
        return envelope(await documents([guest], endpoint), status=201)

    @app.patch("/{endpoint_id}/api/collections/{collection_id}")
    async def update(endpoint_id: str, collection_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        target = await _visible(me, endpoint, collection_id)
        if target.owner_id != me.identity_id:
            raise GcsError(
                "Only its creator or an administrator changes a collection",
                code="permission_denied",
                status=403,
            )
        body = await json_body(request)
        async with ctx.db.session() as session:
            row = await session.get(Collection, target.id)
            assert row is not None
            for field in ("display_name", "description", "organization", "department",
                          "contact_email", "info_link"):  # fmt: skip
                if field in body and isinstance(body[field], str | None):
                    setattr(row, field, (body[field] or "")[:300])
            if "public" in body:
                row.public = bool(body["public"])
        return envelope(await documents([row], endpoint))

    @app.delete("/{endpoint_id}/api/collections/{collection_id}")
    async def delete(endpoint_id: str, collection_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        target = await _visible(me, endpoint, collection_id)
        await delete_guest(ctx, me, target.id)
        return envelope([], detail="Collection deleted")

    # ---------------------------------------------------------------- roles

    def role_document(role: EndpointRole, endpoint: uuid.UUID) -> dict[str, Any]:
        prefix = next(p for p, kind in PRINCIPAL_URNS if kind == role.principal_type)
        return {
            "DATA_TYPE": "role#1.0.0",
            "id": str(role.id),
            "collection": None if role.target_id == endpoint else str(role.target_id),
            "principal": prefix + role.principal,
            "role": role.role,
        }

    async def role_target(me: Caller, endpoint: uuid.UUID, collection: str | None) -> str:
        """The Transfer-side id roles.* use: the collection, or the endpoint itself."""
        if collection:
            await _visible(me, endpoint, collection)
            return collection
        return str(endpoint)

    @app.get("/{endpoint_id}/api/roles")
    async def list_roles(endpoint_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        target = await role_target(me, endpoint, request.query_params.get("collection_id"))
        _, granted = await roles.list_roles(ctx, me, target)
        return envelope([role_document(r, endpoint) for r in granted])

    @app.post("/{endpoint_id}/api/roles")
    async def create_role(endpoint_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        body = await json_body(request)
        principal = str(body.get("principal") or "")
        urn = next(((p, k) for p, k in PRINCIPAL_URNS if principal.startswith(p)), None)
        if urn is None:
            raise GcsError("principal must be an identity or group URN", code="invalid_parameter")
        prefix, kind = urn
        collection = body.get("collection")
        target = await role_target(me, endpoint, str(collection) if collection else None)
        role = await roles.create_role(
            ctx,
            me,
            target,
            {"principal_type": kind, "principal": principal[len(prefix) :],
             "role": body.get("role")},
        )  # fmt: skip
        return envelope([role_document(role, endpoint)])

    async def own_role(me: Caller, endpoint: uuid.UUID, role_id: str) -> EndpointRole:
        """A role on this endpoint or one of its collections, which the caller administers."""
        missing = GcsError(f"No role {role_id} you administer", code="not_found", status=404)
        try:
            key = uuid.UUID(role_id)
        except ValueError:
            raise missing from None
        async with ctx.db.session() as session:
            role = await session.get(EndpointRole, key)
            target = await session.get(Collection, role.target_id) if role else None
        if role is None or (
            role.target_id != endpoint
            and (target is None or (target.endpoint_id or BUILTIN_ENDPOINT_ID) != endpoint)
        ):
            raise missing
        try:
            return await roles.get_role(ctx, me, str(role.target_id), role_id)
        except ArcternError:
            raise missing from None

    @app.get("/{endpoint_id}/api/roles/{role_id}")
    async def show_role(endpoint_id: str, role_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        return envelope([role_document(await own_role(me, endpoint, role_id), endpoint)])

    @app.delete("/{endpoint_id}/api/roles/{role_id}")
    async def delete_role(endpoint_id: str, role_id: str, request: Request) -> JSONResponse:
        me, endpoint = await caller(request, endpoint_id)
        role = await own_role(me, endpoint, role_id)
        await roles.delete_role(ctx, me, str(role.target_id), str(role.id))
        return envelope([], detail="Role deleted")

    return app


def _gcs_code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "request_too_large",
    }.get(status, "error")
