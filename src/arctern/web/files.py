"""File manager pages: two collection panes, directory listings, new folders, starting transfers."""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData, UploadFile

from arctern import https_access
from arctern.context import AppContext
from arctern.errors import ArcternError
from arctern.timers.service import Timers
from arctern.transfer.services import files as file_service
from arctern.transfer.services.bookmarks import create_bookmark, list_bookmarks
from arctern.transfer.services.collections import search_collections
from arctern.transfer.services.common import Caller
from arctern.transfer.services.guests import GUEST_CONNECTORS
from arctern.transfer.services.submission import submit_delete
from arctern.web.pages import Pages, caller_of
from arctern.web.tasks import (
    REPEATS,
    SYNC_LEVELS,
    repeat_schedule,
    submit_from_form,
    transfer_document,
)
from arctern.web.timers import describe_schedule

# The two panes, named like the Globus web app's URL parameters.
PANES = ("origin", "destination")
# Rows a pane renders; bigger directories show their first entries and a count.
MAX_ROWS = 1000


# Files that are listed but never transferred (see ``SPECIAL_TYPES``), by Globus type.
SPECIAL_LABELS = {
    "pipe": "named pipe",
    "chr": "character device",
    "blk": "block device",
    "other": "socket / special",
}


@dataclass
class Entry:
    # Text (HTML-escaped by the template); a name that is not valid UTF-8 is in the escaped
    # form of ``arctern.connectors.names``, which the file service accepts back.
    name: str
    is_dir: bool
    size: int
    modified: datetime
    path: str
    special: str | None = None  # a label for named pipes, devices, sockets


@dataclass
class Found:
    """A collection matching a search: what a researcher needs to pick the right one."""

    id: str
    name: str
    owner: str
    description: str
    where: str  # "Central storage" or the Connect endpoint's kind


# Where the file manager remembers each browser's last collections and folders.
LAST_PLACES_KEY = "files_last"


@dataclass
class Pane:
    """One side of the file manager: the chosen collection, path and its listing (or error)."""

    key: str
    collection_id: str = ""
    collection_name: str = ""
    path: str = ""
    parent: str | None = None
    entries: list[Entry] = field(default_factory=list)
    total: int = 0
    error: str | None = None
    # Files can be downloaded and uploaded over HTTPS (not on agents that do not listen).
    https: bool = False
    # The folder can be shared as a guest collection (a mapped collection of the
    # deployment's own storage).
    shareable: bool = False
    # How many names start with a dot (listed only when asked for).
    hidden: int = 0
    crumbs: list[tuple[str, str]] = field(default_factory=list)
    # A collection search in this pane: the term and what matched (instead of a listing).
    search: str = ""
    found: list[Found] = field(default_factory=list)

    @property
    def other(self) -> str:
        return PANES[1] if self.key == PANES[0] else PANES[0]


def state_query(state: dict[str, str], **changes: str) -> str:
    """The /files query string for ``state`` with ``changes`` applied (empty values dropped)."""
    merged = {**state, **changes}
    return urlencode({k: v for k, v in merged.items() if v})


# How a pane's listing is ordered (``<pane>_sort``), by the column a header link names.
SORT_KEYS = ("name", "size", "modified")


def read_state(source: Any) -> dict[str, str]:
    """The panes' collection ids and paths, sort order and hidden-files choice, from a query
    string or a posted form."""
    state: dict[str, str] = {}
    for pane in PANES:
        for suffix in ("id", "path", "sort", "desc", "hidden", "search"):
            value = source.get(f"{pane}_{suffix}")
            if isinstance(value, str) and value:
                state[f"{pane}_{suffix}"] = value
    return state


def ordered(entries: list[Entry], sort: str, descending: bool) -> list[Entry]:
    """Folders first, then by ``sort`` (name, size or modification time)."""
    key = sort if sort in SORT_KEYS else "name"

    def value(entry: Entry) -> Any:
        if key == "size":
            return entry.size
        if key == "modified":
            return entry.modified
        return entry.name.lower()

    folders = sorted((e for e in entries if e.is_dir), key=value, reverse=descending)
    files = sorted((e for e in entries if not e.is_dir), key=value, reverse=descending)
    return folders + files


def breadcrumbs(path: str) -> list[tuple[str, str]]:
    """``(label, path)`` from the collection root to ``path``."""
    crumbs = [("Top", "/")]
    so_far = "/"
    for part in [p for p in path.split("/") if p]:
        so_far += part + "/"
        crumbs.append((part, so_far))
    return crumbs


def create_files_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter()

    async def load_pane(
        caller: Caller, key: str, state: dict[str, str], names: dict[str, str]
    ) -> Pane:
        collection_id, path = state.get(f"{key}_id", ""), state.get(f"{key}_path", "")
        pane = Pane(key=key, collection_id=collection_id, path=path)
        if not collection_id:
            return pane
        pane.collection_name = names.get(collection_id, collection_id)
        try:
            listing = await file_service.list_directory(
                ctx, caller, collection_id, path or None, limit=MAX_ROWS
            )
        except ArcternError as exc:
            pane.error = exc.message
            return pane
        pane.path = listing.absolute_path
        pane.total = listing.total
        pane.https = await https_access.serves_https(ctx, listing.collection)
        pane.shareable = (
            listing.collection.connector in GUEST_CONNECTORS and not listing.collection.is_guest
        )
        if pane.path != "/":
            pane.parent = posixpath.dirname(pane.path.rstrip("/")).rstrip("/") + "/"
        show_hidden = state.get(f"{key}_hidden") == "1"
        entries = [
            Entry(
                name=info.name,
                is_dir=info.type == "dir",
                size=info.size,
                modified=datetime.fromtimestamp(info.mtime, UTC),
                path=pane.path + info.name + ("/" if info.type == "dir" else ""),
                special=SPECIAL_LABELS.get(info.type),
            )
            for info in listing.entries
        ]
        pane.hidden = sum(1 for e in entries if e.name.startswith("."))
        if not show_hidden:
            entries = [e for e in entries if not e.name.startswith(".")]
        pane.entries = ordered(
            entries, state.get(f"{key}_sort", "name"), state.get(f"{key}_desc") == "1"
        )
        pane.crumbs = breadcrumbs(pane.path)
        return pane

    @router.get("/files", response_class=HTMLResponse)
    async def file_manager(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        caller = caller_of(user)
        views, _ = await search_collections(ctx, caller, scope="all", limit=1000)
        collections = [(str(v.collection.id), v.collection.display_name) for v in views]
        names = dict(collections)
        query = request.query_params
        state = read_state(query)
        # A changed collection picker makes the old path meaningless: start at its default.
        for pane in PANES:
            previous = query.get(f"{pane}_previous")
            if previous is not None and previous != state.get(f"{pane}_id", ""):
                state.pop(f"{pane}_path", None)
        if not any(f"{p}_id" in state for p in PANES):
            # Where this browser was last (if those collections are still visible), or the
            # first two collections.
            remembered = request.session.get(LAST_PLACES_KEY)
            if isinstance(remembered, dict):
                state.update(
                    {
                        k: str(v)
                        for k, v in remembered.items()
                        if k in ("origin_id", "origin_path", "destination_id", "destination_path")
                        and (not k.endswith("_id") or str(v) in names)
                    }
                )
            if not any(f"{p}_id" in state for p in PANES) and collections:
                state["origin_id"] = collections[0][0]
                if len(collections) > 1:
                    state["destination_id"] = collections[1][0]
        panes = [await load_pane(caller, key, state, names) for key in PANES]
        for loaded in panes:
            if loaded.collection_id and not loaded.error:
                state[f"{loaded.key}_path"] = loaded.path
            term = state.get(f"{loaded.key}_search", "").strip()
            if term:
                loaded.search = term
                loaded.found = await find_collections(caller, term)
        request.session[LAST_PLACES_KEY] = {
            k: v for k, v in state.items() if k.endswith(("_id", "_path"))
        }
        bookmarks = [
            (b, names.get(str(b.collection_id), ""))
            for b in await list_bookmarks(ctx, caller)
            if str(b.collection_id) in names
        ]
        ticked = {f"{pane}:{value}" for pane in PANES for value in query.getlist(f"{pane}_item")}
        return pages.render(
            request,
            "files.html",
            ticked=ticked,
            user=user,
            active_nav="files",
            collections=collections,
            panes=panes,
            state=state,
            state_query=state_query,
            sync_levels=SYNC_LEVELS,
            repeats=REPEATS,
            bookmarks=bookmarks,
        )

    async def find_collections(caller: Caller, term: str) -> list[Found]:
        views, _ = await search_collections(ctx, caller, fulltext=term[:200], limit=25)
        return [
            Found(
                id=str(v.collection.id),
                name=v.collection.display_name,
                owner=v.owner_username,
                description=v.collection.description or "",
                where="Arctern Connect endpoint"
                if v.collection.connector == "agent"
                else "Central storage",
            )
            for v in views
        ]

    def back_to_files(state: dict[str, str], form: FormData | None = None) -> Response:
        """Back to the panes; after a refused action, with the same entries still ticked."""
        query = state_query(state)
        if form is not None:
            kept = [
                (f"{pane}_item", str(value))
                for pane in PANES
                for value in form.getlist(f"{pane}_item")
            ]
            if kept:
                query += "&" + urlencode(kept)
        return pages.redirect(f"/files?{query}")

    @router.post("/files/mkdir", response_class=HTMLResponse)
    async def mkdir(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        state = read_state(form)
        pane = str(form.get("pane", ""))
        name = str(form.get("name", "")).strip()
        if pane not in PANES or not state.get(f"{pane}_id"):
            pages.flash(request, "Choose a collection first.", error=True)
            return back_to_files(state)
        if not is_entry_name(name):
            pages.flash(request, "Enter a folder name without slashes.", error=True)
            return back_to_files(state)
        parent = state.get(f"{pane}_path", "/")
        try:
            await file_service.make_directory(
                ctx, caller_of(user), state[f"{pane}_id"], posixpath.join(parent, name)
            )
        except ArcternError as exc:
            pages.flash(request, f"Could not create folder “{name}”: {exc.message}", error=True)
            return back_to_files(state)
        pages.flash(request, f"Folder “{name}” created.")
        return back_to_files(state)

    @router.get("/files/download")
    async def download(request: Request) -> Response:
        """Download one file, over the same code path as HTTPS GET with a token."""
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        query = request.query_params
        try:
            return await https_access.download(
                ctx,
                caller_of(user),
                query.get("collection", ""),
                query.get("path", ""),
                range_header=request.headers.get("range"),
                attachment=True,
            )
        except https_access.HttpsError as exc:
            pages.flash(request, f"Could not download: {exc.message}", error=True)
            return back_to_files(read_state(query))

    @router.post("/files/upload", response_class=HTMLResponse)
    async def upload(request: Request) -> Response:
        """Upload files into a pane's current folder (HTTPS PUT's code path)."""
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        state = read_state(form)
        pane = str(form.get("pane", ""))
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        if pane not in PANES or not state.get(f"{pane}_id"):
            pages.flash(request, "Choose a collection first.", error=True)
            return back_to_files(state)
        if not files:
            pages.flash(request, "Choose one or more files to upload.", error=True)
            return back_to_files(state)
        folder = state.get(f"{pane}_path", "/")
        done = []
        for upload_file in files:
            name = posixpath.basename(upload_file.filename or "")
            if not name or name in (".", ".."):
                continue

            async def chunks(source: UploadFile = upload_file) -> AsyncIterator[bytes]:
                while data := await source.read(1 << 20):
                    yield data

            try:
                await https_access.upload(
                    ctx,
                    caller_of(user),
                    state[f"{pane}_id"],
                    posixpath.join(folder, name),
                    chunks(),
                    declared_size=upload_file.size,
                )
            except https_access.HttpsError as exc:
                pages.flash(request, f"Could not upload “{name}”: {exc.message}", error=True)
                return back_to_files(state)
            done.append(name)
        pages.flash(request, f"Uploaded {', '.join(done)}.")
        return back_to_files(state)

    @router.post("/files/bookmark", response_class=HTMLResponse)
    async def bookmark(request: Request) -> Response:
        """Bookmark a pane's current folder (the Transfer API's bookmarks)."""
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        state = read_state(form)
        pane = str(form.get("pane", ""))
        if pane not in PANES or not state.get(f"{pane}_id"):
            pages.flash(request, "Choose a collection first.", error=True)
            return back_to_files(state)
        folder = state.get(f"{pane}_path", "/")
        name = str(form.get("name", "")).strip() or folder
        try:
            await create_bookmark(
                ctx,
                caller_of(user),
                {"name": name, "endpoint_id": state[f"{pane}_id"], "path": folder},
            )
        except ArcternError as exc:
            pages.flash(request, f"Not bookmarked: {exc.message}", error=True)
            return back_to_files(state)
        pages.flash(request, f"Bookmarked {folder} as “{name}”.")
        return back_to_files(state)

    @router.post("/files/delete", response_class=HTMLResponse)
    async def delete(request: Request) -> Response:
        """Delete the ticked entries of a pane: a delete task, as in the Globus web app."""
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        state = read_state(form)
        pane = str(form.get("source", ""))
        items = selected_items(form, pane) if pane in PANES else []
        if not items or not state.get(f"{pane}_id"):
            pages.flash(request, "Select the files or folders to delete first.", error=True)
            return back_to_files(state)
        folder = state.get(f"{pane}_path", "/")
        body = {
            "DATA_TYPE": "delete",
            "endpoint": state[f"{pane}_id"],
            "recursive": any(is_dir for _, is_dir in items),
            "label": f"Delete {len(items)} item{'s' if len(items) != 1 else ''} in {folder}",
            "DATA": [
                {"DATA_TYPE": "delete_item", "path": posixpath.join(folder, name)}
                for name, _ in items
            ],
        }
        try:
            submitted = await submit_delete(ctx, caller_of(user), body)
        except ArcternError as exc:
            pages.flash(request, f"Nothing was deleted: {exc.message}", error=True)
            return back_to_files(state, form)
        names = ", ".join(name for name, _ in items[:3]) + ("…" if len(items) > 3 else "")
        pages.flash(
            request,
            f"Deleting {names}. Task ID {submitted.task_id}.",
            link=(f"/activity/{submitted.task_id}", "View details in Activity"),
        )
        return back_to_files(state)

    @router.post("/files/rename", response_class=HTMLResponse)
    async def rename(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        state = read_state(form)
        pane = str(form.get("source", ""))
        items = selected_items(form, pane) if pane in PANES else []
        new_name = str(form.get(f"{pane}_new_name", "")).strip()
        if len(items) != 1 or not state.get(f"{pane}_id"):
            pages.flash(request, "Select exactly one file or folder to rename.", error=True)
            return back_to_files(state, form)
        if not is_entry_name(new_name):
            pages.flash(request, "Enter a new name without slashes.", error=True)
            return back_to_files(state, form)
        folder = state.get(f"{pane}_path", "/")
        old_name = items[0][0]
        try:
            await file_service.rename_path(
                ctx,
                caller_of(user),
                state[f"{pane}_id"],
                posixpath.join(folder, old_name),
                posixpath.join(folder, new_name),
            )
        except ArcternError as exc:
            pages.flash(request, f"Could not rename “{old_name}”: {exc.message}", error=True)
            return back_to_files(state, form)
        pages.flash(request, f"Renamed “{old_name}” to “{new_name}”.")
        return back_to_files(state)

    @router.post("/files/transfer", response_class=HTMLResponse)
    async def start_transfer(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        state = read_state(form)
        source = str(form.get("source", ""))
        if source not in PANES:
            pages.flash(request, "Use one of the Start transfer buttons.", error=True)
            return back_to_files(state)
        target = PANES[1] if source == PANES[0] else PANES[0]
        items = selected_items(form, source)
        if not state.get(f"{source}_id") or not state.get(f"{target}_id"):
            pages.flash(request, "Choose a collection in both panes.", error=True)
            return back_to_files(state, form)
        if not items:
            pages.flash(request, "Select files or folders to transfer first.", error=True)
            return back_to_files(state)
        body = transfer_document(
            source_id=state[f"{source}_id"],
            destination_id=state[f"{target}_id"],
            source_dir=state.get(f"{source}_path", "/"),
            destination_dir=state.get(f"{target}_path", "/"),
            items=items,
            form=form,
        )
        schedule = repeat_schedule(form)
        try:
            if schedule is not None:
                timer = await Timers(ctx).create(
                    caller_of(user), timer_name(body, items), schedule, body
                )
            else:
                task_id = await submit_from_form(ctx, caller_of(user), body)
        except ArcternError as exc:
            what = "timer was not created" if schedule else "transfer was not started"
            pages.flash(request, f"The {what}: {exc.message}", error=True)
            return back_to_files(state, form)
        if schedule is not None:
            pages.flash(
                request,
                f"Timer “{timer.name}” created: {describe_schedule(timer.schedule).lower()}, "
                "the first run starts now.",
                link=(f"/my-timers/{timer.id}", "View the timer"),
            )
            return back_to_files(state)
        pages.flash(
            request,
            f"Transfer request submitted. Task ID {task_id}.",
            link=(f"/activity/{task_id}", "View details in Activity"),
        )
        return back_to_files(state)

    return router


def timer_name(body: dict[str, Any], items: list[tuple[str, bool]]) -> str:
    """The transfer's label, or what it copies."""
    if body.get("label"):
        return str(body["label"])
    first = items[0][0]
    return f"Copy {first}" + (f" and {len(items) - 1} more" if len(items) > 1 else "")


def is_entry_name(name: str) -> bool:
    """A single name inside a folder: not empty, no slash, not ``.`` or ``..``."""
    return bool(name) and "/" not in name and name not in (".", "..")


def selected_items(form: FormData, pane: str) -> list[tuple[str, bool]]:
    """(name, is_directory) of the entries ticked in ``pane``; values look like ``d:name``."""
    items: list[tuple[str, bool]] = []
    for value in form.getlist(f"{pane}_item"):
        text = str(value)
        kind, _, name = text.partition(":")
        if kind in ("d", "f") and is_entry_name(name):
            items.append((name, kind == "d"))
    return items
