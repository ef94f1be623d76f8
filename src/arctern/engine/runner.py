"""Runs a whole transfer or delete in one process, without a database.

The worker uses the same pieces with persistence in between; this module serves unit tests,
and gives both a single definition of how plan entries touch the destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from arctern.connectors.base import Connector, FileInfo, WriteState
from arctern.connectors.errors import ConnectorError, ObjectNotFound
from arctern.connectors.paths import normalize
from arctern.engine.copier import DEFAULT_CHUNK_SIZE, Copier, ProgressSink, RetryPolicy
from arctern.engine.errors import Canceled, CancelToken, FileFailed
from arctern.engine.options import (
    DeleteOptions,
    FileJob,
    ItemSpec,
    TransferOptions,
    collection_path,
)
from arctern.engine.planner import (
    CopyFile,
    DeleteExtra,
    MakeDir,
    PlanEntry,
    PlanError,
    Planner,
    SkippedSymlink,
)


async def apply_namespace_entry(destination: Connector, entry: MakeDir | DeleteExtra) -> None:
    """Carry out a planned mkdir or extra-file deletion (both idempotent)."""
    if isinstance(entry, MakeDir):
        await destination.mkdir(entry.path, parents=True, exist_ok=True)
    else:
        with contextlib.suppress(ObjectNotFound):
            await destination.delete(entry.path, recursive=entry.is_dir)


@dataclass
class FileOutcome:
    source_path: str
    destination_path: str
    state: str  # done | skipped | failed | canceled | sync_skipped
    code: str | None = None
    message: str | None = None
    checksum: str | None = None


@dataclass
class MemorySink:
    """A ProgressSink that just keeps totals (tests, and the worker's per-batch buffer)."""

    bytes_transferred: int = 0
    bytes_checksummed: int = 0
    faults: int = 0
    fault_codes: list[str] = field(default_factory=list)
    checkpoints: dict[str, tuple[int, WriteState | None]] = field(default_factory=dict)

    def count(
        self, *, bytes_transferred: int = 0, bytes_checksummed: int = 0, faults: int = 0
    ) -> None:
        self.bytes_transferred += bytes_transferred
        self.bytes_checksummed += bytes_checksummed
        self.faults += faults

    def fault(self, code: str, message: str) -> None:
        self.faults += 1
        self.fault_codes.append(code)

    def checkpoint(self, job: FileJob, bytes_done: int, state: WriteState | None) -> None:
        self.checkpoints[job.destination_path] = (bytes_done, state)

    async def persist_checkpoint(
        self, job: FileJob, bytes_done: int, state: WriteState | None
    ) -> None:
        self.checkpoint(job, bytes_done, state)


@dataclass
class TransferSummary:
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    files_skipped: int = 0
    files_transferred: int = 0
    deleted_extra: list[str] = field(default_factory=list)
    outcomes: list[FileOutcome] = field(default_factory=list)
    fatal_error: tuple[str, str] | None = None

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.state == "failed"]


async def run_transfer(
    source: Connector,
    destination: Connector,
    items: list[ItemSpec],
    options: TransferOptions,
    sink: ProgressSink,
    cancel: CancelToken,
    *,
    concurrency: int = 4,
    chunk_size: int | None = None,
    retry: RetryPolicy | None = None,
    same_storage: bool = False,
) -> TransferSummary:
    """Plan and copy everything; per-file failures are reported in the summary."""
    summary = TransferSummary()
    copier = Copier(
        source,
        destination,
        options,
        sink,
        cancel,
        retry=retry,
        chunk_size=chunk_size or DEFAULT_CHUNK_SIZE,
    )
    planner = Planner(source, destination, options, same_storage=same_storage)
    slots = asyncio.Semaphore(max(1, concurrency))
    running: set[asyncio.Task[None]] = set()

    async def copy_one(job: FileJob) -> None:
        try:
            result = await copier.copy(job)
        except FileFailed as exc:
            skip = options.skip_source_errors and exc.source_side and not exc.quota
            state = "skipped" if skip else "failed"
            if exc.quota and options.fail_on_quota_errors:
                summary.fatal_error = (exc.code, exc.message)
                cancel.cancel("QUOTA")
            summary.outcomes.append(
                FileOutcome(job.source_path, job.destination_path, state, exc.code, exc.message)
            )
        except Canceled:
            summary.outcomes.append(FileOutcome(job.source_path, job.destination_path, "canceled"))
        else:
            if result.status == "skipped":
                summary.files_skipped += 1
                summary.outcomes.append(
                    FileOutcome(job.source_path, job.destination_path, "sync_skipped")
                )
            else:
                summary.files_transferred += 1
                summary.outcomes.append(
                    FileOutcome(
                        job.source_path, job.destination_path, "done", checksum=result.checksum
                    )
                )
        finally:
            slots.release()

    try:
        async for entry in planner.plan(items):
            cancel.check()
            await _consume(entry, destination, summary, options)
            if isinstance(entry, CopyFile):
                summary.files += 1
                await slots.acquire()
                task = asyncio.create_task(copy_one(entry.job))
                running.add(task)
                task.add_done_callback(running.discard)
        if running:
            await asyncio.gather(*running)
    except Canceled:
        for task in list(running):
            await task  # each copy stops at its next chunk boundary and cleans up
    return summary


async def _consume(
    entry: PlanEntry, destination: Connector, summary: TransferSummary, options: TransferOptions
) -> None:
    if isinstance(entry, MakeDir):
        if entry.counted:
            summary.directories += 1
        try:
            await apply_namespace_entry(destination, entry)
        except ConnectorError as exc:
            summary.outcomes.append(
                FileOutcome(entry.path, entry.path, "failed", exc.code, str(exc))
            )
    elif isinstance(entry, DeleteExtra):
        await apply_namespace_entry(destination, entry)
        summary.deleted_extra.append(entry.path)
    elif isinstance(entry, PlanError):
        state = "skipped" if options.skip_source_errors and entry.source_side else "failed"
        summary.outcomes.append(
            FileOutcome(entry.source_path, entry.destination_path, state, entry.code, entry.message)
        )
    elif isinstance(entry, SkippedSymlink):
        summary.symlinks += 1


# -- delete tasks --------------------------------------------------------------------------

GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class DeleteTarget:
    path: str
    is_dir: bool


@dataclass
class DeleteSummary:
    files: int = 0
    directories: int = 0
    deleted: list[str] = field(default_factory=list)
    errors: list[FileOutcome] = field(default_factory=list)


async def expand_delete_item(
    connector: Connector, raw_path: str, options: DeleteOptions
) -> AsyncIterator[DeleteTarget]:
    """The concrete paths one delete item names (shell globs in the last component)."""
    path = normalize(collection_path(raw_path))
    if path == "/":
        raise FileFailed("PERMISSION_DENIED", "the collection root cannot be deleted")
    head, _, name = path.rpartition("/")
    parent = head or "/"
    if options.interpret_globs and GLOB_CHARS & set(name):
        matched = False
        try:
            entries = sorted([i async for i in connector.list(parent)], key=lambda i: i.name)
        except ObjectNotFound:
            entries = []
        for info in entries:
            if fnmatch.fnmatchcase(info.name, name):
                matched = True
                yield DeleteTarget(info.path, info.type == "dir")
        if not matched and not options.ignore_missing:
            raise FileFailed("FILE_NOT_FOUND", f"No such file or directory: {path}")
        return
    try:
        info = await _lstat(connector, path)
    except ObjectNotFound:
        if options.ignore_missing:
            return
        raise FileFailed("FILE_NOT_FOUND", f"No such file or directory: {path}") from None
    except ConnectorError as exc:
        raise FileFailed(exc.code, str(exc)) from exc
    yield DeleteTarget(path, info.type == "dir")


async def _lstat(connector: Connector, path: str) -> FileInfo:
    """Symlinks are deleted themselves, never followed: prefer the connector's lstat."""
    lstat = getattr(connector, "lstat", None)
    if lstat is not None:
        info: FileInfo = await lstat(path)
        return info
    return await connector.stat(path)


async def delete_target(
    connector: Connector,
    target: DeleteTarget,
    options: DeleteOptions,
    cancel: CancelToken,
    summary: DeleteSummary,
) -> None:
    """Delete one target, depth-first so progress is counted and cancel is honoured."""
    if not target.is_dir:
        await connector.delete(target.path)
        summary.files += 1
        summary.deleted.append(target.path)
        return
    if not options.recursive:
        raise FileFailed(
            "IS_A_DIRECTORY", f"{target.path} is a directory; use recursive to delete it"
        )
    stack: list[tuple[str, bool]] = [(target.path, False)]
    while stack:
        cancel.check()
        path, expanded = stack.pop()
        if expanded:
            await connector.delete(path)
            summary.directories += 1
            summary.deleted.append(path)
            continue
        stack.append((path, True))
        # One directory's listing is materialised so deleting does not disturb iteration.
        for info in [i async for i in connector.list(path)]:
            if info.type == "dir":
                stack.append((info.path, False))
            else:
                await connector.delete(info.path)  # files and symlinks: never followed
                summary.files += 1
                summary.deleted.append(info.path)


async def run_delete(
    connector: Connector, paths: list[str], options: DeleteOptions, cancel: CancelToken
) -> DeleteSummary:
    summary = DeleteSummary()
    for raw in paths:
        try:
            async for target in expand_delete_item(connector, raw, options):
                await delete_target(connector, target, options, cancel, summary)
        except FileFailed as exc:
            summary.errors.append(FileOutcome(raw, raw, "failed", exc.code, exc.message))
        except ConnectorError as exc:
            if isinstance(exc, ObjectNotFound) and options.ignore_missing:
                continue
            summary.errors.append(FileOutcome(raw, raw, "failed", exc.code, str(exc)))
    return summary
