"""Bookmarks: bookmark_list and bookmark/{id}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from arctern.context import AppContext
from arctern.transfer.documents import bookmark_document
from arctern.transfer.http import json_body, result
from arctern.transfer.services import bookmarks
from arctern.transfer.services.common import Caller


def create_router(ctx: AppContext, authenticate: Callable[..., Awaitable[Caller]]) -> APIRouter:
    router = APIRouter()
    Auth = Depends(authenticate)

    @router.get("/bookmark_list")
    async def bookmark_list(caller: Caller = Auth) -> dict[str, Any]:
        rows = await bookmarks.list_bookmarks(ctx, caller)
        return {"DATA_TYPE": "bookmark_list", "DATA": [bookmark_document(b) for b in rows]}

    @router.post("/bookmark")
    async def create_bookmark(request: Request, caller: Caller = Auth) -> JSONResponse:
        bookmark = await bookmarks.create_bookmark(ctx, caller, await json_body(request))
        return JSONResponse(bookmark_document(bookmark), status_code=201)

    @router.get("/bookmark/{bookmark_id}")
    async def get_bookmark(bookmark_id: str, caller: Caller = Auth) -> dict[str, Any]:
        return bookmark_document(await bookmarks.get_bookmark(ctx, caller, bookmark_id))

    @router.put("/bookmark/{bookmark_id}")
    async def update_bookmark(
        bookmark_id: str, request: Request, caller: Caller = Auth
    ) -> dict[str, Any]:
        bookmark = await bookmarks.update_bookmark(
            ctx, caller, bookmark_id, await json_body(request)
        )
        return bookmark_document(bookmark)

    @router.delete("/bookmark/{bookmark_id}")
    async def delete_bookmark(
        bookmark_id: str, request: Request, caller: Caller = Auth
    ) -> JSONResponse:
        await bookmarks.delete_bookmark(ctx, caller, bookmark_id)
        return result(request, "Deleted", "Bookmark deleted successfully")

    return router
