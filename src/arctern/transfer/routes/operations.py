"""File operations on a collection: ls, stat, mkdir, rename."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from arctern.context import AppContext
from arctern.transfer.documents import file_document
from arctern.transfer.filters import bad_request, parse_filters, parse_orderby
from arctern.transfer.http import json_body, query_bool, query_int, result
from arctern.transfer.services import files
from arctern.transfer.services.common import Caller


def create_router(ctx: AppContext, authenticate: Callable[..., Awaitable[Caller]]) -> APIRouter:
    router = APIRouter(prefix="/operation/endpoint/{endpoint_id}")
    Auth = Depends(authenticate)

    @router.get("/ls")
    async def ls(endpoint_id: str, request: Request, caller: Caller = Auth) -> dict[str, Any]:
        q = request.query_params
        limit = query_int(
            request, "limit", default=files.MAX_LS_LIMIT, minimum=0, maximum=files.MAX_LS_LIMIT
        )
        offset = query_int(request, "offset", default=0, minimum=0, maximum=10**9)
        listing = await files.list_directory(
            ctx,
            caller,
            endpoint_id,
            q.get("path"),
            show_hidden=query_bool(request, "show_hidden", default=True),
            filters=parse_filters(q.getlist("filter"), files.LS_FILTER_FIELDS),
            orderby=parse_orderby(q.get("orderby"), files.LS_ORDER_FIELDS),
            limit=limit,
            offset=offset,
        )
        data = [file_document(entry) for entry in listing.entries]
        return {
            "DATA_TYPE": "file_list",
            "DATA": data,
            "path": listing.path,
            "absolute_path": listing.absolute_path,
            "endpoint": str(listing.collection.id),
            "length": len(data),
            "total": listing.total,
            "offset": offset,
            "limit": limit,
            "rename_supported": True,
            "symlink_supported": False,
        }

    @router.get("/stat")
    async def stat(endpoint_id: str, request: Request, caller: Caller = Auth) -> dict[str, Any]:
        path = request.query_params.get("path")
        if not path:
            raise bad_request("stat needs a 'path'")
        return file_document(await files.stat_path(ctx, caller, endpoint_id, path))

    @router.post("/mkdir")
    async def mkdir(endpoint_id: str, request: Request, caller: Caller = Auth) -> JSONResponse:
        body = await json_body(request)
        if body.get("DATA_TYPE", "mkdir") != "mkdir":
            raise bad_request("Invalid DATA_TYPE, expected 'mkdir'")
        await files.make_directory(ctx, caller, endpoint_id, body.get("path"))
        return result(
            request,
            "DirectoryCreated",
            "The directory was created successfully",
            data_type="mkdir_result",
            status=202,
        )

    @router.post("/rename")
    async def rename(endpoint_id: str, request: Request, caller: Caller = Auth) -> JSONResponse:
        body = await json_body(request)
        if body.get("DATA_TYPE", "rename") != "rename":
            raise bad_request("Invalid DATA_TYPE, expected 'rename'")
        await files.rename_path(
            ctx,
            caller,
            endpoint_id,
            body.get("old_path"),
            body.get("new_path"),
        )
        return result(request, "FileRenamed", "File or directory renamed successfully")

    return router
