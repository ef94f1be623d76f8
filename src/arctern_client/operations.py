"""What a notebook does with Transfer: list, submit, inspect, cancel, list tasks, watch."""

from __future__ import annotations

import posixpath
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import globus_sdk

from arctern_client.display import FileListing, TaskTable, TaskView, human_bytes
from arctern_client.locations import CollectionResolver, split_location

TASK_STATUSES = ("ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED")
# Walking a source tree to estimate the total size stops here; the bar then shows no ETA.
_MAX_SIZE_WALK_ENTRIES = 5000


class SubmittedTask(str):
    """A task ID (usable wherever a task ID string is) that also knows what was submitted."""

    total_bytes: int | None
    source: str
    destination: str

    def __new__(
        cls, task_id: str, *, total_bytes: int | None, source: str, destination: str
    ) -> SubmittedTask:
        task = super().__new__(cls, task_id)
        task.total_bytes = total_bytes
        task.source = source
        task.destination = destination
        return task

    @property
    def task_id(self) -> str:
        return str(self)


def ls(
    tc: globus_sdk.TransferClient,
    location: str,
    path: str | None = None,
    *,
    show_hidden: bool = False,
    resolver: CollectionResolver | None = None,
) -> FileListing:
    """List a directory: ``ls(tc, "Demo Collection 1:/nested/")`` or ``ls(tc, name, path)``.

    Collections are given by display name or ID; pass a ``resolver`` to reuse its lookups.
    """
    name, path = split_location(location, path)
    collection = (resolver or CollectionResolver(tc)).resolve(name)
    response = tc.operation_ls(collection.id, path=path or "/~/", show_hidden=show_hidden)
    return FileListing(str(collection), str(response.get("path", path)), response.get("DATA", []))


def _stat(tc: globus_sdk.TransferClient, collection_id: str, path: str) -> dict[str, Any] | None:
    try:
        return dict(tc.operation_stat(collection_id, path=path).data)
    except globus_sdk.GlobusAPIError:
        # Unknown (missing, forbidden or unsupported): the server reports it on the task.
        return None


def _tree_size(tc: globus_sdk.TransferClient, collection_id: str, path: str) -> int | None:
    """Bytes under a directory, or None when the tree is too big or unreadable."""
    total, seen = 0, 0
    pending = [path if path.endswith("/") else path + "/"]
    while pending:
        directory = pending.pop()
        try:
            listing = tc.operation_ls(collection_id, path=directory, show_hidden=True)
        except globus_sdk.GlobusAPIError:
            return None
        base = str(listing.get("path", directory))
        for entry in listing.get("DATA", []):
            seen += 1
            if seen > _MAX_SIZE_WALK_ENTRIES:
                return None
            if entry.get("type") == "dir":
                pending.append(base + entry["name"] + "/")
            elif entry.get("type") == "file":
                total += int(entry.get("size") or 0)
    return total


def transfer(
    tc: globus_sdk.TransferClient,
    source: str,
    destination: str,
    *,
    recursive: bool | None = None,
    label: str | None = None,
    sync_level: str | int | None = None,
    verify_checksum: bool = True,
    deadline: str | None = None,
    resolver: CollectionResolver | None = None,
    **options: Any,
) -> SubmittedTask:
    """Submit a transfer between two ``collection:path`` locations; returns the task ID.

    ``recursive=None`` looks at the source: a directory is copied recursively (its contents go
    into the destination directory). A file copied to a destination ending in ``/`` keeps its
    name. ``options`` are further :class:`globus_sdk.TransferData` fields.
    """
    source_name, source_path = split_location(source)
    destination_name, destination_path = split_location(destination)
    if not source_path or not destination_path:
        raise ValueError("source and destination must both be 'collection:/path' strings")
    resolver = resolver or CollectionResolver(tc)
    source_collection = resolver.resolve(source_name)
    destination_collection = resolver.resolve(destination_name)

    info = _stat(tc, source_collection.id, source_path)
    is_dir = bool(info and info.get("type") == "dir") or source_path.endswith("/")
    if recursive is None:
        recursive = is_dir
    if not recursive and destination_path.endswith("/"):
        destination_path += posixpath.basename(source_path.rstrip("/"))
    total_bytes: int | None = None
    if recursive:
        total_bytes = _tree_size(tc, source_collection.id, source_path)
    elif info is not None and info.get("size") is not None:
        total_bytes = int(info["size"])

    fields: dict[str, Any] = dict(options)
    if label is not None:
        fields["label"] = label
    if sync_level is not None:
        fields["sync_level"] = sync_level
    if deadline is not None:
        fields["deadline"] = deadline
    data = globus_sdk.TransferData(
        source_collection.id,
        destination_collection.id,
        verify_checksum=verify_checksum,
        **fields,
    )
    data.add_item(source_path, destination_path, recursive=recursive)
    result = tc.submit_transfer(data)
    return SubmittedTask(
        str(result["task_id"]),
        total_bytes=total_bytes,
        source=f"{source_collection}:{source_path}",
        destination=f"{destination_collection}:{destination_path}",
    )


def _status_filter(status: str | Iterable[str] | None) -> list[str]:
    if status is None:
        return []
    values = [status] if isinstance(status, str) else list(status)
    wanted = []
    for value in values:
        for part in value.split(","):
            upper = part.strip().upper()
            if upper not in TASK_STATUSES:
                raise ValueError(f"unknown task status {part!r}; use one of {TASK_STATUSES}")
            wanted.append(upper)
    return wanted


def task_table(
    tc: globus_sdk.TransferClient,
    status: str | Iterable[str] | None = None,
    *,
    limit: int = 20,
) -> TaskTable:
    """The most recent tasks first, optionally only those with the given status(es)."""
    query: dict[str, Any] = {"limit": limit, "orderby": "request_time DESC"}
    wanted = _status_filter(status)
    if wanted:
        query["filter"] = {"status": wanted}
    response = tc.task_list(**query)
    return TaskTable(response.get("DATA", [])[:limit])


def tasks(
    tc: globus_sdk.TransferClient,
    status: str | Iterable[str] | None = None,
    *,
    limit: int = 20,
    dataframe: bool | None = None,
) -> Any:
    """Recent tasks as a pandas DataFrame when pandas is installed, else a :class:`TaskTable`.

    ``dataframe=False`` always returns the TaskTable (HTML in notebooks, text elsewhere).
    """
    table = task_table(tc, status, limit=limit)
    if dataframe is False:
        return table
    try:
        import pandas  # noqa: F401
    except ImportError:
        if dataframe:
            raise
        return table
    return table.to_dataframe()


def get_task(tc: globus_sdk.TransferClient, task_id: str | uuid.UUID) -> TaskView:
    return TaskView(tc.get_task(str(task_id)).data)


def cancel(tc: globus_sdk.TransferClient, task_id: str | uuid.UUID) -> dict[str, Any]:
    """Cancel a task; the result ``code`` is e.g. ``Canceled`` or ``TaskComplete``."""
    return dict(tc.cancel_task(str(task_id)).data)


def watch(
    tc: globus_sdk.TransferClient,
    task_id: str | uuid.UUID,
    *,
    interval: float = 1.0,
    timeout: float | None = None,
    total_bytes: int | None = None,
    file: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress_factory: Callable[..., Any] | None = None,
) -> TaskView:
    """Show a live progress bar until the task ends, then print a one-line summary.

    The bar counts bytes (rate and, when the total is known, ETA) and shows files done. The
    total comes from ``total_bytes`` or from a :class:`SubmittedTask`. Interrupting (Ctrl-C or
    the notebook's stop button) stops watching cleanly; the task keeps running on the server.
    Returns the last task document seen.
    """
    if total_bytes is None:
        total_bytes = getattr(task_id, "total_bytes", None)
    task_id = str(task_id)
    if progress_factory is None:
        from tqdm.auto import tqdm

        progress_factory = tqdm
    bar = progress_factory(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"Task {task_id[:8]}",
        file=file,
        dynamic_ncols=True,
    )
    started = time.monotonic()
    view: TaskView | None = None
    interrupted = False
    try:
        while True:
            view = get_task(tc, task_id)
            transferred = int(view.get("bytes_transferred") or 0)
            if transferred > bar.n:
                bar.update(transferred - bar.n)
            bar.set_postfix_str(_postfix(view), refresh=True)
            if view.status != "ACTIVE":
                break
            if timeout is not None and time.monotonic() - started >= timeout:
                break
            sleep(interval)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if view is not None and view.status == "SUCCEEDED" and bar.n:
            # Sync-skipped files or an unknown size: a finished task shows a full bar.
            bar.total = bar.n
            bar.refresh()
        bar.close()
    out = print if file is None else (lambda text: print(text, file=file))
    if view is None:
        out(f"Stopped watching task {task_id} before its status was known.")
        return TaskView({"task_id": task_id})
    if interrupted or view.status == "ACTIVE":
        reason = "Stopped watching" if interrupted else "Timed out watching"
        out(
            f"{reason} task {task_id}: it is still {view.status} on the server "
            f"({view.files_progress()} files, "
            f"{human_bytes(view.get('bytes_transferred') or 0)} so far)."
        )
    else:
        mark = {"SUCCEEDED": "✓", "FAILED": "✗"}.get(view.status, "⏸")
        out(f"{mark} {view.summary()}")
    return view


def _postfix(view: TaskView) -> str:
    text = f"{view.files_progress()} files, {view.status}"
    return f"{text} ({view.details})" if view.details else text
