"""Endpoint (collection) search and documents, and their access rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from arctern.connect.endpoints import host_endpoint_named, host_endpoints
from arctern.context import AppContext
from arctern.errors import NotFound
from arctern.transfer.documents import (
    HOST_ENTITY_TYPE,
    access_document,
    access_list_document,
    endpoint_document,
    host_endpoint_document,
    owner_role_document,
)
from arctern.transfer.http import json_body, query_bool, query_int, result
from arctern.transfer.services import acl, collections, guests, pause_rules, roles
from arctern.transfer.services.common import Caller

SEARCH_MAX_LIMIT = 100
SEARCH_MAX_RESULTS = 1000


def create_router(ctx: AppContext, authenticate: Callable[..., Awaitable[Caller]]) -> APIRouter:
    # HTTPS servers are named from the configured base URL, never from the Host header.
    base = ctx.settings.base_url
    streams = ctx.settings.connect_data_streams
    router = APIRouter()
    Auth = Depends(authenticate)

    @router.get("/endpoint_search")
    async def endpoint_search(request: Request, caller: Caller = Auth) -> dict[str, Any]:
        q = request.query_params
        limit = query_int(request, "limit", default=25, minimum=1, maximum=SEARCH_MAX_LIMIT)
        offset = query_int(request, "offset", default=0, minimum=0, maximum=SEARCH_MAX_RESULTS - 1)
        limit = min(limit, SEARCH_MAX_RESULTS - offset)
        non_functional = (
            query_bool(request, "filter_non_functional", default=False)
            if "filter_non_functional" in q
            else None
        )
        if q.get("filter_entity_type") == HOST_ENTITY_TYPE:
            return await _host_search(request, caller, limit, offset)
        views, has_next = await collections.search_collections(
            ctx,
            caller,
            fulltext=q.get("filter_fulltext"),
            scope=q.get("filter_scope") or "all",
            owner_id=q.get("filter_owner_id"),
            entity_type=q.get("filter_entity_type"),
            non_functional=non_functional,
            limit=limit,
            offset=offset,
        )
        return {
            "DATA_TYPE": "endpoint_list",
            "DATA": [
                endpoint_document(
                    v.collection, v.owner_username, caller.identity_id, https_base=base
                )
                for v in views
            ],
            "offset": offset,
            "limit": limit,
            "has_next_page": has_next and offset + limit < SEARCH_MAX_RESULTS,
        }

    async def _host_search(
        request: Request, caller: Caller, limit: int, offset: int
    ) -> dict[str, Any]:
        """GCSv5 endpoints (Connect agents and the built-in one) matching the search."""
        q = request.query_params
        terms = (q.get("filter_fulltext") or "").lower().split()
        scope = q.get("filter_scope") or "all"
        hosts = [
            h
            for h in await host_endpoints(ctx)
            if all(t in f"{h.display_name} {h.owner_username} {h.id}".lower() for t in terms)
            and (
                scope not in ("my-endpoints", "administered-by-me")
                or h.owner_id == caller.identity_id
            )
        ]
        page = hosts[offset : offset + limit]
        return {
            "DATA_TYPE": "endpoint_list",
            "DATA": [
                host_endpoint_document(
                    h.id,
                    h.display_name,
                    h.owner_id,
                    h.owner_username,
                    caller.identity_id,
                    parallelism=h.parallelism or streams,
                )
                for h in page
            ],
            "offset": offset,
            "limit": limit,
            "has_next_page": offset + limit < len(hosts),
        }

    @router.get("/endpoint/{endpoint_id}")
    async def get_endpoint(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        try:
            view = await collections.get_collection(ctx, caller, endpoint_id)
        except NotFound as missing:
            # Not a collection: perhaps the GCSv5 endpoint hosting some.
            h = await host_endpoint_named(ctx, endpoint_id)
            if h is None:
                raise missing from None
            return host_endpoint_document(
                h.id,
                h.display_name,
                h.owner_id,
                h.owner_username,
                caller.identity_id,
                parallelism=h.parallelism or streams,
                https_base=base,
            )
        return endpoint_document(
            view.collection,
            view.owner_username,
            caller.identity_id,
            https_base=base,
            mapped_name=await collections.mapped_name(ctx, view.collection),
        )

    @router.put("/endpoint/{endpoint_id}")
    async def update_endpoint(
        endpoint_id: str, request: Request, caller: Caller = Auth
    ) -> JSONResponse:
        await collections.update_collection(ctx, caller, endpoint_id, await json_body(request))
        return result(request, "Updated", "Endpoint updated successfully")

    @router.post("/shared_endpoint")
    async def create_shared_endpoint(request: Request, caller: Caller = Auth) -> JSONResponse:
        """A guest collection, the Transfer API way (``create_shared_endpoint``)."""
        body = await json_body(request)
        guest = await guests.create_guest(
            ctx,
            caller,
            body.get("host_endpoint"),
            body.get("host_path"),
            body.get("display_name"),
            description=str(body.get("description") or ""),
        )
        return result(
            request,
            "Created",
            "Shared endpoint created successfully",
            data_type="endpoint_create_result",
            status=201,
            id=str(guest.id),
            globus_connect_setup_key=None,
        )

    @router.get("/endpoint/{endpoint_id}/my_shared_endpoint_list")
    async def my_shared_endpoint_list(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        view = await collections.get_collection(ctx, caller, endpoint_id)
        async with ctx.db.session() as session:
            mine = await guests.guests_of(session, caller.identity_id, view.collection.id)
        return {
            "DATA_TYPE": "endpoint_list",
            "DATA": [
                endpoint_document(
                    g,
                    caller.username,
                    caller.identity_id,
                    https_base=base,
                    mapped_name=view.collection.display_name,
                )
                for g in mine
            ],
        }

    @router.get("/endpoint/{endpoint_id}/my_effective_pause_rule_list")
    async def my_effective_pause_rules(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        view = await collections.get_collection(ctx, caller, endpoint_id)
        rules = await pause_rules.effective_rules(ctx, caller, view.collection)
        return {
            "DATA_TYPE": "pause_rule_list",
            "DATA": [pause_rules.limited_rule_document(r) for r in rules],
        }

    @router.delete("/endpoint/{endpoint_id}")
    async def delete_endpoint(
        endpoint_id: str, request: Request, caller: Caller = Auth
    ) -> JSONResponse:
        await guests.delete_guest(ctx, caller, endpoint_id)
        return result(request, "Deleted", "Endpoint deleted successfully")

    @router.get("/endpoint/{endpoint_id}/role_list")
    async def role_list(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        collection, granted = await roles.list_roles(ctx, caller, endpoint_id)
        documents = [owner_role_document(collection)] if collection is not None else []
        documents += [roles.role_document(r) for r in granted]
        return {"DATA_TYPE": "role_list", "DATA": documents}

    @router.get("/endpoint/{endpoint_id}/access_list")
    async def access_list(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        return access_list_document(endpoint_id, await acl.list_rules(ctx, caller, endpoint_id))

    @router.post("/endpoint/{endpoint_id}/access")
    async def add_access(endpoint_id: str, request: Request, caller: Caller = Auth) -> JSONResponse:
        rule = await acl.create_rule(ctx, caller, endpoint_id, await json_body(request))
        return result(
            request,
            "Created",
            "Access rule created successfully.",
            data_type="access_create_result",
            status=201,
            access_id=str(rule.id),
        )

    @router.get("/endpoint/{endpoint_id}/access/{rule_id}")
    async def get_access(endpoint_id: str, rule_id: str, caller: Caller = Auth) -> dict[str, Any]:
        return access_document(await acl.get_rule(ctx, caller, endpoint_id, rule_id))

    @router.put("/endpoint/{endpoint_id}/access/{rule_id}")
    async def update_access(
        endpoint_id: str, rule_id: str, request: Request, caller: Caller = Auth
    ) -> JSONResponse:
        await acl.update_rule(ctx, caller, endpoint_id, rule_id, await json_body(request))
        return result(request, "Updated", "Access rule updated successfully.")

    @router.delete("/endpoint/{endpoint_id}/access/{rule_id}")
    async def delete_access(
        endpoint_id: str, rule_id: str, request: Request, caller: Caller = Auth
    ) -> JSONResponse:
        await acl.delete_rule(ctx, caller, endpoint_id, rule_id)
        return result(request, "Deleted", "Access rule deleted successfully.")

    return router
