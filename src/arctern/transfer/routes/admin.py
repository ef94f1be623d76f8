"""Endpoint administration in the Transfer API: roles (``endpoint_role``), the
``endpoint_manager`` calls endpoint administrators make about other users' tasks and
their collections, and pause rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from arctern.context import AppContext
from arctern.transfer.documents import (
    access_list_document,
    endpoint_document,
    event_document,
    iso,
    task_document,
)
from arctern.transfer.http import json_body, query_int, result
from arctern.transfer.routes.tasks import (
    marker_of,
    skipped_errors_document,
    successful_transfers_document,
    task_list_document,
)
from arctern.transfer.services import endpoint_manager, pause_rules, roles
from arctern.transfer.services.common import Caller

LIST_MAX_LIMIT = 1000


def _csv(request: Request, name: str) -> list[str]:
    return [v for v in (request.query_params.get(name) or "").split(",") if v]


def create_router(ctx: AppContext, authenticate: Callable[..., Awaitable[Caller]]) -> APIRouter:
    router = APIRouter()
    Auth = Depends(authenticate)
    base = ctx.settings.base_url

    # ---------------------------------------------------------------- roles

    @router.post("/endpoint/{endpoint_id}/role")
    async def add_role(endpoint_id: str, request: Request, caller: Caller = Auth) -> JSONResponse:
        role = await roles.create_role(ctx, caller, endpoint_id, await json_body(request))
        return JSONResponse(
            {**roles.role_document(role), "code": "Created", "message": "Role created"},
            status_code=201,
        )

    @router.get("/endpoint/{endpoint_id}/role/{role_id}")
    async def get_role(endpoint_id: str, role_id: str, caller: Caller = Auth) -> dict[str, Any]:
        return roles.role_document(await roles.get_role(ctx, caller, endpoint_id, role_id))

    @router.delete("/endpoint/{endpoint_id}/role/{role_id}")
    async def delete_role(
        endpoint_id: str, role_id: str, request: Request, caller: Caller = Auth
    ) -> JSONResponse:
        await roles.delete_role(ctx, caller, endpoint_id, role_id)
        return result(request, "Deleted", "Role deleted successfully")

    # ---------------------------------------------------------------- endpoint_manager

    @router.get("/endpoint_manager/monitored_endpoints")
    async def monitored_endpoints(caller: Caller = Auth) -> dict[str, Any]:
        found = await endpoint_manager.monitored_collections(ctx, caller)
        return {
            "DATA_TYPE": "endpoint_list",
            "DATA": [endpoint_document(c, "", caller.identity_id, https_base=base) for c in found],
        }

    @router.get("/endpoint_manager/task_list")
    async def admin_task_list(request: Request, caller: Caller = Auth) -> dict[str, Any]:
        limit = query_int(request, "limit", default=10, minimum=1, maximum=LIST_MAX_LIMIT)
        offset = query_int(request, "offset", default=0, minimum=0, maximum=10**9)
        views, total = await endpoint_manager.task_list(
            ctx,
            caller,
            endpoints=_csv(request, "filter_endpoint"),
            statuses=_csv(request, "filter_status"),
            limit=limit,
            offset=offset,
        )
        return task_list_document(ctx, views, total, limit=limit, offset=offset)

    @router.get("/endpoint_manager/task/{task_id}")
    async def admin_get_task(task_id: str, caller: Caller = Auth) -> JSONResponse:
        view = await endpoint_manager.get_task(ctx, caller, task_id)
        return JSONResponse(
            task_document(
                view.task,
                owner_username=view.owner_username,
                names=view.endpoint_names,
                now=ctx.clock.now(),
                held_by_rule=view.held_by_rule,
            )
        )

    @router.get("/endpoint_manager/task/{task_id}/event_list")
    async def admin_events(task_id: str, request: Request, caller: Caller = Auth) -> dict[str, Any]:
        limit = query_int(request, "limit", default=10, minimum=1, maximum=LIST_MAX_LIMIT)
        offset = query_int(request, "offset", default=0, minimum=0, maximum=10**9)
        events, total = await endpoint_manager.task_events(
            ctx, caller, task_id, limit=limit, offset=offset
        )
        data = [event_document(e) for e in events]
        return {"DATA_TYPE": "event_list", "DATA": data, "length": len(data), "total": total}

    @router.post("/endpoint_manager/admin_cancel")
    async def admin_cancel(request: Request, caller: Caller = Auth) -> JSONResponse:
        body = await json_body(request)
        outcome = await endpoint_manager.cancel_tasks(
            ctx, caller, body.get("task_id_list"), body.get("message")
        )
        return JSONResponse(outcome.document(iso(ctx.clock.now()) or ""), status_code=202)

    @router.post("/endpoint_manager/admin_pause")
    async def admin_pause(request: Request, caller: Caller = Auth) -> JSONResponse:
        body = await json_body(request)
        changed, _ = await endpoint_manager.pause_tasks(
            ctx, caller, body.get("task_id_list"), body.get("message"), pause=True
        )
        return result(
            request, "PauseAccepted", f"{len(changed)} task(s) paused", task_id_list=changed
        )

    @router.post("/endpoint_manager/admin_resume")
    async def admin_resume(request: Request, caller: Caller = Auth) -> JSONResponse:
        body = await json_body(request)
        changed, _ = await endpoint_manager.pause_tasks(
            ctx, caller, body.get("task_id_list"), None, pause=False
        )
        return result(
            request, "ResumeAccepted", f"{len(changed)} task(s) resumed", task_id_list=changed
        )

    @router.get("/endpoint_manager/task/{task_id}/successful_transfers")
    async def admin_successful(
        task_id: str, request: Request, caller: Caller = Auth
    ) -> dict[str, Any]:
        marker = marker_of(request)
        rows, following = await endpoint_manager.task_file_records(
            ctx, caller, task_id, state="done", marker=marker
        )
        return successful_transfers_document(rows, marker, following)

    @router.get("/endpoint_manager/task/{task_id}/skipped_errors")
    async def admin_skipped(
        task_id: str, request: Request, caller: Caller = Auth
    ) -> dict[str, Any]:
        marker = marker_of(request)
        rows, following = await endpoint_manager.task_file_records(
            ctx, caller, task_id, state="skipped", marker=marker
        )
        return skipped_errors_document(rows, marker, following)

    @router.get("/endpoint_manager/endpoint/{endpoint_id}")
    async def admin_get_endpoint(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        found = await endpoint_manager.monitored_collection(ctx, caller, endpoint_id)
        return endpoint_document(found, "", caller.identity_id, https_base=base)

    @router.get("/endpoint_manager/endpoint/{endpoint_id}/hosted_endpoint_list")
    async def hosted_endpoint_list(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        guests = await endpoint_manager.hosted_guests(ctx, caller, endpoint_id)
        return {
            "DATA_TYPE": "endpoint_list",
            "DATA": [endpoint_document(g, "", caller.identity_id, https_base=base) for g in guests],
        }

    @router.get("/endpoint_manager/endpoint/{endpoint_id}/access_list")
    async def admin_access_list(endpoint_id: str, caller: Caller = Auth) -> dict[str, Any]:
        rules = await endpoint_manager.access_rules(ctx, caller, endpoint_id)
        return access_list_document(endpoint_id, rules)

    @router.get("/endpoint_manager/task/{task_id}/pause_info")
    async def admin_pause_info(task_id: str, caller: Caller = Auth) -> dict[str, Any]:
        view = await endpoint_manager.get_task(ctx, caller, task_id)
        return await pause_rules.pause_info(ctx, view.task)

    # ---------------------------------------------------------------- pause rules

    @router.get("/endpoint_manager/pause_rule_list")
    async def pause_rule_list(request: Request, caller: Caller = Auth) -> dict[str, Any]:
        views = await pause_rules.list_rules(
            ctx,
            caller,
            endpoint=request.query_params.get("filter_endpoint") or None,
            host_endpoint=request.query_params.get("filter_host_endpoint") or None,
        )
        return {
            "DATA_TYPE": "pause_rule_list",
            "DATA": [pause_rules.rule_document(v) for v in views],
        }

    @router.post("/endpoint_manager/pause_rule")
    async def create_pause_rule(request: Request, caller: Caller = Auth) -> JSONResponse:
        view = await pause_rules.create_rule(ctx, caller, await json_body(request))
        return JSONResponse(pause_rules.rule_document(view), status_code=200)

    @router.get("/endpoint_manager/pause_rule/{rule_id}")
    async def get_pause_rule(rule_id: str, caller: Caller = Auth) -> dict[str, Any]:
        return pause_rules.rule_document(await pause_rules.get_rule(ctx, caller, rule_id))

    @router.put("/endpoint_manager/pause_rule/{rule_id}")
    async def update_pause_rule(
        rule_id: str, request: Request, caller: Caller = Auth
    ) -> dict[str, Any]:
        view = await pause_rules.update_rule(ctx, caller, rule_id, await json_body(request))
        return pause_rules.rule_document(view)

    @router.delete("/endpoint_manager/pause_rule/{rule_id}")
    async def delete_pause_rule(
        rule_id: str, request: Request, caller: Caller = Auth
    ) -> JSONResponse:
        await pause_rules.delete_rule(ctx, caller, rule_id)
        return result(request, "Deleted", "Pause rule deleted successfully")

    return router
