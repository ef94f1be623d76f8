"""The caller's bookmarks: named (collection, directory) pairs."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.context import AppContext
from arctern.db.models.transfer import Bookmark
from arctern.errors import ArcternError, NotFound
from arctern.transfer.filters import bad_request
from arctern.transfer.paths import display_path
from arctern.transfer.services.acl import visible_collection
from arctern.transfer.services.common import Caller, parse_uuid

MAX_NAME = 128


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("A bookmark needs a non-empty 'name'")
    if len(value) > MAX_NAME:
        raise bad_request(f"A bookmark name has at most {MAX_NAME} characters")
    return value.strip()


async def _unique(session: AsyncSession, caller: Caller, name: str, skip: uuid.UUID | None) -> None:
    clash = await session.scalar(
        select(Bookmark).where(Bookmark.owner_id == caller.identity_id, Bookmark.name == name)
    )
    if clash is not None and clash.id != skip:
        raise ArcternError(
            f"A bookmark named '{name}' already exists", code="ClientError.Conflict", status=409
        )


async def list_bookmarks(ctx: AppContext, caller: Caller) -> list[Bookmark]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(Bookmark)
            .where(Bookmark.owner_id == caller.identity_id)
            .order_by(Bookmark.name, Bookmark.id)
        )
        return list(rows)


async def create_bookmark(ctx: AppContext, caller: Caller, body: dict[str, Any]) -> Bookmark:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    name = _name(body.get("name"))
    endpoint_id = parse_uuid(body.get("endpoint_id"), "endpoint_id")
    raw_path = body.get("path")
    if not isinstance(raw_path, str) or not raw_path:
        raise bad_request("A bookmark needs a 'path'")
    path = display_path(raw_path)
    pinned = body.get("pinned", False)
    if not isinstance(pinned, bool):
        raise bad_request("'pinned' must be a boolean")
    async with ctx.db.session() as session:
        await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        await _unique(session, caller, name, None)
        bookmark = Bookmark(
            owner_id=caller.identity_id,
            name=name,
            collection_id=endpoint_id,
            path=path,
            pinned=pinned,
            created_at=ctx.clock.now(),
        )
        session.add(bookmark)
        await session.flush()
        return bookmark


async def _own(session: AsyncSession, caller: Caller, bookmark_id: str) -> Bookmark:
    try:
        key = uuid.UUID(bookmark_id)
    except ValueError:
        raise NotFound(f"No bookmark '{bookmark_id}'", code="BookmarkNotFound") from None
    bookmark = await session.get(Bookmark, key)
    if bookmark is None or bookmark.owner_id != caller.identity_id:
        raise NotFound(f"No bookmark '{bookmark_id}'", code="BookmarkNotFound")
    return bookmark


async def get_bookmark(ctx: AppContext, caller: Caller, bookmark_id: str) -> Bookmark:
    async with ctx.db.session() as session:
        return await _own(session, caller, bookmark_id)


async def update_bookmark(
    ctx: AppContext, caller: Caller, bookmark_id: str, body: dict[str, Any]
) -> Bookmark:
    """Rename and/or (un)pin; endpoint and path are fixed, as in Globus."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    async with ctx.db.session() as session:
        bookmark = await _own(session, caller, bookmark_id)
        if "name" in body:
            name = _name(body["name"])
            await _unique(session, caller, name, bookmark.id)
            bookmark.name = name
        if "pinned" in body:
            if not isinstance(body["pinned"], bool):
                raise bad_request("'pinned' must be a boolean")
            bookmark.pinned = body["pinned"]
        return bookmark


async def delete_bookmark(ctx: AppContext, caller: Caller, bookmark_id: str) -> None:
    async with ctx.db.session() as session:
        bookmark = await _own(session, caller, bookmark_id)
        await session.delete(bookmark)
