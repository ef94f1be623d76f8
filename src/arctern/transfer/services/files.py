"""Synchronous file operations on a collection (ls, stat, mkdir, rename), access-checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arctern.connectors.base import FileInfo
from arctern.connectors.errors import ConnectorError
from arctern.context import AppContext
from arctern.db.models.transfer import Collection
from arctern.errors import ArcternError
from arctern.transfer.documents import globus_file_type
from arctern.transfer.errors import storage_error
from arctern.transfer.filters import (
    Clauses,
    bad_request,
    parse_datetime,
    parse_pattern,
    patterns_match,
)
from arctern.transfer.paths import display_path, normalize_path
from arctern.transfer.services.acl import check_access, require_access, visible_collection
from arctern.transfer.services.common import Caller, open_storage
from arctern.transfer.services.pause_rules import refuse_if_paused

LS_FILTER_FIELDS = frozenset(
    {"name", "type", "size", "permissions", "user", "group", "last_modified"}
)
LS_ORDER_FIELDS = LS_FILTER_FIELDS
MAX_LS_LIMIT = 100_000
# Engine temporary files (".arctern-*.part") are never shown: they are not user data.
_TEMP_PREFIX = ".arctern-"
_TEMP_SUFFIX = ".part"


@dataclass(frozen=True, slots=True)
class Listing:
    collection: Collection
    path: str  # as echoed to the client: normalised, ends with "/"
    absolute_path: str
    entries: list[FileInfo]
    total: int


def _entry_value(info: FileInfo, field: str) -> Any:
    if field == "type":
        return globus_file_type(info)
    if field == "permissions":
        return f"{info.permissions & 0o7777:04o}"
    if field == "last_modified":
        return info.mtime
    return getattr(info, field)


def _size_matches(spec: str, size: int) -> bool:
    for op in (">=", "<=", "!=", ">", "<", "="):
        if spec.startswith(op):
            number = spec[len(op) :]
            break
    else:
        op, number = "=", spec
    try:
        value = int(number)
    except ValueError:
        raise bad_request(f"Invalid size filter '{spec}'") from None
    return {
        ">=": size >= value,
        "<=": size <= value,
        "!=": size != value,
        ">": size > value,
        "<": size < value,
        "=": size == value,
    }[op]


def _clauses_match(info: FileInfo, clauses: Clauses) -> bool:
    for field, values in clauses.items():
        if field == "last_modified":
            if len(values) != 2:
                raise bad_request("last_modified filter takes 'start,end'")
            start = parse_datetime(values[0]).timestamp() if values[0].strip() else None
            end = parse_datetime(values[1]).timestamp() if values[1].strip() else None
            if (start is not None and info.mtime < start) or (end is not None and info.mtime > end):
                return False
        elif field == "size":
            if not all(_size_matches(v, info.size) for v in values if v):
                return False
        else:
            patterns = [parse_pattern(v) for v in values]
            if not patterns_match(patterns, str(_entry_value(info, field))):
                return False
    return True


def _sort(entries: list[FileInfo], orderby: list[tuple[str, bool]]) -> list[FileInfo]:
    if not orderby:
        orderby = [("type", False), ("name", False)]
    result = list(entries)
    for field, descending in reversed(orderby):

        def key(info: FileInfo, f: str = field) -> Any:
            return _entry_value(info, f)

        result.sort(key=key, reverse=descending)
    return result


async def list_directory(
    ctx: AppContext,
    caller: Caller,
    endpoint_id: object,
    path: str | None = None,
    *,
    show_hidden: bool = True,
    filters: list[Clauses] | None = None,
    orderby: list[tuple[str, bool]] | None = None,
    limit: int = MAX_LS_LIMIT,
    offset: int = 0,
) -> Listing:
    """The entries of a directory, filtered (alternatives ORed), sorted and paged."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, now)
        await refuse_if_paused(session, caller, collection, "pause_ls", now)
        default = collection.default_directory or "/~/"
        canonical = normalize_path(path, default=default)
        shown = display_path(path, default=default)
        guard = await require_access(session, caller, collection, canonical, "r", now)
    entries: list[FileInfo] = []
    async with open_storage(ctx, collection, guard, identity_id=caller.identity_id) as storage:
        try:
            info = await storage.stat(canonical)
            if info.type != "dir":
                raise ArcternError(
                    f"Path '{shown.rstrip('/')}' is not a directory",
                    code="ExternalError.DirListingFailed.NotDirectory",
                    status=502,
                )
            async for entry in storage.list(canonical):
                if entry.name.startswith(_TEMP_PREFIX) and entry.name.endswith(_TEMP_SUFFIX):
                    continue
                if not show_hidden and entry.name.startswith("."):
                    continue
                entries.append(entry)
        except ConnectorError as exc:
            raise storage_error(exc, "DirListing", shown) from exc
    if filters:
        entries = [e for e in entries if any(_clauses_match(e, c) for c in filters)]
    entries = _sort(entries, orderby or [])
    total = len(entries)
    return Listing(
        collection=collection,
        path=shown,
        absolute_path=canonical.rstrip("/") + "/",
        entries=entries[offset : offset + limit],
        total=total,
    )


async def stat_path(ctx: AppContext, caller: Caller, endpoint_id: object, path: str) -> FileInfo:
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, now)
        await refuse_if_paused(session, caller, collection, "pause_ls", now)
        canonical = normalize_path(path, default=collection.default_directory or "/~/")
        guard = await require_access(session, caller, collection, canonical, "r", now)
    async with open_storage(ctx, collection, guard, identity_id=caller.identity_id) as storage:
        try:
            return await storage.stat(canonical)
        except ConnectorError as exc:
            raise storage_error(exc, "Stat", path) from exc


async def make_directory(ctx: AppContext, caller: Caller, endpoint_id: object, path: object) -> str:
    """Create one directory (its parent must exist); returns its canonical path."""
    if not isinstance(path, str) or not path.strip():
        raise bad_request("mkdir needs a 'path'")
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, now)
        await refuse_if_paused(session, caller, collection, "pause_mkdir", now)
        canonical = normalize_path(path)
        if canonical == "/":
            raise ArcternError(
                "The collection root already exists",
                code="ExternalError.MkdirFailed.Exists",
                status=502,
            )
        guard = await require_access(session, caller, collection, canonical, "rw", now)
    async with open_storage(ctx, collection, guard, identity_id=caller.identity_id) as storage:
        try:
            await storage.mkdir(canonical)
        except ConnectorError as exc:
            raise storage_error(exc, "Mkdir", path) from exc
    return canonical


async def rename_path(
    ctx: AppContext, caller: Caller, endpoint_id: object, old_path: object, new_path: object
) -> None:
    if not isinstance(old_path, str) or not old_path.strip():
        raise bad_request("rename needs 'old_path'")
    if not isinstance(new_path, str) or not new_path.strip():
        raise bad_request("rename needs 'new_path'")
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, now)
        await refuse_if_paused(session, caller, collection, "pause_rename", now)
        old = normalize_path(old_path)
        new = normalize_path(new_path)
        if "/" in (old, new):
            raise bad_request("The collection root cannot be renamed")
        guard = await require_access(session, caller, collection, old, "rw", now)
        check_access(guard, collection, new, "rw")
    async with open_storage(ctx, collection, guard, identity_id=caller.identity_id) as storage:
        try:
            try:
                await storage.stat(new)
            except ConnectorError as exc:
                if exc.code != "FILE_NOT_FOUND":
                    raise
            else:
                raise ArcternError(
                    f"Path '{new_path}' already exists",
                    code="ExternalError.RenameFailed.Exists",
                    status=502,
                )
            await storage.rename(old, new)
        except ConnectorError as exc:
            raise storage_error(exc, "Rename", old_path) from exc
