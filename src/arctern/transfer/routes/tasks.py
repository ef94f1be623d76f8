"""Task submission and management: submission ids, transfer, delete, task_list, task/{id}/…"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from arctern.context import AppContext
from arctern.db.models.work import TaskFile
from arctern.transfer.documents import event_document, iso, task_document
from arctern.transfer.filters import bad_request, parse_filters, parse_orderby
from arctern.transfer.http import json_body, query_int, result
from arctern.transfer.services import pause_rules, submission, tasks
from arctern.transfer.services.common import Caller

LIST_MAX_LIMIT = 1000


def _task_doc(ctx: AppContext, view: tasks.TaskView) -> dict[str, Any]:
    return task_document(
        view.task,
        owner_username=view.owner_username,
        names=view.endpoint_names,
        now=ctx.clock.now(),
        held_by_rule=view.held_by_rule,
    )


def task_list_document(
    ctx: AppContext, views: list[tasks.TaskView], total: int, *, limit: int, offset: int
) -> dict[str, Any]:
    data = [_task_doc(ctx, v) for v in views]
    return {
        "DATA_TYPE": "task_list",
        "DATA": data,
        "length": len(data),
        "limit": limit,
        "offset": offset,
        "total": total,
        "has_next_page": offset + len(data) < total,
    }


def marker_of(request: Request) -> int | None:
    raw = request.query_params.get("marker")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Invalid marker '{raw}'") from None


def successful_transfers_document(
    rows: list[TaskFile], marker: int | None, next_marker: int | None
) -> dict[str, Any]:
    return {
        "DATA_TYPE": "successful_transfers",
        "marker": marker or 0,
        "next_marker": next_marker,
        "DATA": [
            {
                "DATA_TYPE": "successful_transfer",
                "source_path": row.source_path,
                "destination_path": row.destination_path,
                "size": row.size,
                "checksum": row.checksum,
                "checksum_algorithm": row.checksum_algorithm,
                "dynamic": False,
            }
            for row in rows
        ],
    }


def skipped_errors_document(
    rows: list[TaskFile], marker: int | None, next_marker: int | None
) -> dict[str, Any]:
    return {
        "DATA_TYPE": "skipped_errors",
        "marker": marker or 0,
        "next_marker": next_marker,
        "DATA": [
            {
                "DATA_TYPE": "skipped_error",
                "source_path": row.source_path,
                "destination_path": row.destination_path,
                "error_code": row.error_code,
                "error_details": row.error_message,
                "error_time": iso(row.done_time),
                "external_checksum": row.external_checksum,
                "checksum_algorithm": row.checksum_algorithm,
                "is_delete_destination_extra": False,
                "is_directory": row.is_directory,
                "is_symlink": False,
            }
            for row in rows
        ],
    }


def _submitted(request: Request, kind: str, outcome: submission.Submitted) -> JSONResponse:
    task_id = str(outcome.task_id)
    if outcome.duplicate:
        code = "Duplicate"
        message = (
            f"A {kind} with id '{outcome.submission_id}' was already submitted; "
            "no new task was created"
        )
    else:
        code = "Accepted"
        message = (
            f"The {kind} has been accepted and a task has been created and queued for execution"
        )
    return result(
        request,
        code,
        message,
        data_type=f"{kind}_result",
        status=202,
        submission_id=str(outcome.submission_id),
        task_id=task_id,
        task_link={
            "DATA_TYPE": "link",
            "href": f"task/{task_id}?format=json",
            "rel": "related",
            "resource": "task",
            "title": "related task",
        },
    )


def create_router(ctx: AppContext, authenticate: Callable[..., Awaitable[Caller]]) -> APIRouter:
    router = APIRouter()
    Auth = Depends(authenticate)

    @router.get("/submission_id")
    async def submission_id(caller: Caller = Auth) -> dict[str, Any]:
        return {"DATA_TYPE": "submission_id", "value": str(submission.new_submission_id())}

    @router.post("/transfer")
    async def submit_transfer(request: Request, caller: Caller = Auth) -> JSONResponse:
        outcome = await submission.submit_transfer(ctx, caller, await json_body(request))
        return _submitted(request, "transfer", outcome)

    @router.post("/delete")
    async def submit_delete(request: Request, caller: Caller = Auth) -> JSONResponse:
        outcome = await submission.submit_delete(ctx, caller, await json_body(request))
        return _submitted(request, "delete", outcome)

    @router.get("/task_list")
    async def task_list(request: Request, caller: Caller = Auth) -> dict[str, Any]:
        q = request.query_params
        limit = query_int(request, "limit", default=10, minimum=1, maximum=LIST_MAX_LIMIT)
        offset = query_int(request, "offset", default=0, minimum=0, maximum=10**9)
        views, total = await tasks.list_tasks(
            ctx,
            caller,
            filters=parse_filters(q.getlist("filter"), tasks.TASK_FILTER_FIELDS),
            orderby=parse_orderby(q.get("orderby"), tasks.TASK_ORDER_FIELDS),
            limit=limit,
            offset=offset,
        )
        return task_list_document(ctx, views, total, limit=limit, offset=offset)

    @router.get("/task/{task_id}")
    async def get_task(task_id: str, caller: Caller = Auth) -> JSONResponse:
        # A JSONResponse, not a dict: FastAPI would validate and re-encode the document
        # against the return annotation on every poll.
        return JSONResponse(_task_doc(ctx, await tasks.get_task(ctx, caller, task_id)))

    @router.put("/task/{task_id}")
    async def update_task(task_id: str, request: Request, caller: Caller = Auth) -> JSONResponse:
        await tasks.update_task(ctx, caller, task_id, await json_body(request))
        return result(request, "Updated", "Task updated successfully")

    @router.post("/task/{task_id}/cancel")
    async def cancel_task(task_id: str, request: Request, caller: Caller = Auth) -> JSONResponse:
        outcome = await tasks.cancel_task(ctx, caller, task_id)
        return result(request, outcome.code, outcome.message, task_id=task_id)

    @router.get("/task/{task_id}/event_list")
    async def event_list(task_id: str, request: Request, caller: Caller = Auth) -> dict[str, Any]:
        limit = query_int(request, "limit", default=10, minimum=1, maximum=LIST_MAX_LIMIT)
        offset = query_int(request, "offset", default=0, minimum=0, maximum=10**9)
        events, total = await tasks.task_events(
            ctx,
            caller,
            task_id,
            filters=parse_filters(
                request.query_params.getlist("filter"), tasks.EVENT_FILTER_FIELDS
            ),
            limit=limit,
            offset=offset,
        )
        data = [event_document(e) for e in events]
        return {
            "DATA_TYPE": "event_list",
            "DATA": data,
            "length": len(data),
            "limit": limit,
            "offset": offset,
            "total": total,
        }

    @router.get("/task/{task_id}/successful_transfers")
    async def successful_transfers(
        task_id: str, request: Request, caller: Caller = Auth
    ) -> dict[str, Any]:
        marker = marker_of(request)
        rows, next_marker = await tasks.task_file_records(
            ctx, caller, task_id, state="done", marker=marker
        )
        return successful_transfers_document(rows, marker, next_marker)

    @router.get("/task/{task_id}/skipped_errors")
    async def skipped_errors(
        task_id: str, request: Request, caller: Caller = Auth
    ) -> dict[str, Any]:
        marker = marker_of(request)
        rows, next_marker = await tasks.task_file_records(
            ctx, caller, task_id, state="skipped", marker=marker
        )
        return skipped_errors_document(rows, marker, next_marker)

    @router.get("/task/{task_id}/pause_info")
    async def pause_info(task_id: str, caller: Caller = Auth) -> dict[str, Any]:
        view = await tasks.get_task(ctx, caller, task_id)
        return await pause_rules.pause_info(ctx, view.task)

    return router
