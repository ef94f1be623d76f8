"""Runs one claimed job: plan a task into batches, copy a batch, or execute a delete task.

Also finalizes tasks (success, failure, cancel, expiry). Every status change is a conditional
UPDATE on an ACTIVE/INACTIVE task, so concurrent finalizers agree and finished tasks are
never touched again.

A task runs with its owner's access, read again when it is planned, when each batch is
leased and at every progress flush: the connectors of a task whose owner does not own a
collection enforce an access guard on every path they resolve, and once a rule is deleted or
expires the files it no longer covers fail with PERMISSION_DENIED (the task then ends FAILED,
like any task with failed files); files not yet copied are never written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update

from arctern.connectors.access import AccessGuard, with_guard
from arctern.connectors.base import Connector, WriteState
from arctern.connectors.errors import ConnectorError, ObjectNotFound
from arctern.context import AppContext
from arctern.db.grants import access_guard, applicable_rules, guard_from_rules
from arctern.db.models.transfer import Collection, Task, TaskEvent, TaskItem
from arctern.db.models.work import TaskFile, TaskPlan, WorkBatch
from arctern.engine.copier import Copier, CopyResult, Resume, RetryPolicy
from arctern.engine.errors import Canceled, CancelToken, FileFailed
from arctern.engine.offload import Offload
from arctern.engine.options import DeleteOptions, FileJob, ItemSpec, TransferOptions
from arctern.engine.planner import (
    CopyFile,
    DeleteExtra,
    MakeDir,
    PlanError,
    Planner,
    SkippedSymlink,
)
from arctern.engine.runner import (
    DeleteSummary,
    apply_namespace_entry,
    delete_target,
    expand_delete_item,
)
from arctern.worker import leases
from arctern.worker.leases import Claim
from arctern.worker.progress import TaskProgress, event_code

log = logging.getLogger("arctern.worker")

ConnectorFactory = Callable[[str, str, dict[str, Any]], Connector]

FINISHED = ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class WorkerConfig:
    """Tunables of one worker process (from settings; tests shrink them)."""

    name: str
    lease: timedelta
    flush_seconds: float = 1.0
    batch_files: int = 1000
    batch_bytes: int = 512 << 20
    plan_commit_entries: int = 1000
    file_concurrency: int = 4
    chunk_size: int = 8 << 20
    parallel_chunks: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: leases.Limits = field(default_factory=leases.Limits)


class LeaseLost(Exception):
    pass


class Job:
    """Shared machinery of a leased job: the cancel token and the periodic flush/heartbeat."""

    def __init__(
        self,
        ctx: AppContext,
        config: WorkerConfig,
        claim: Claim,
        factory: ConnectorFactory,
        cancel: CancelToken,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.claim = claim
        self.factory = factory
        self.cancel = cancel
        self.progress = TaskProgress(claim.task_id, ctx.clock.now)
        self._last_flush = time.monotonic()
        self._last_extend = time.monotonic()  # the claim itself set a fresh lease
        self._flush_lock = asyncio.Lock()
        # Immediate flushes asked for by large files' windows (``persist``), and how many of
        # those requests a completed flush has covered.
        self._persist_requested = 0
        self._persist_done = 0
        self.progress.persist = self.persist
        # (collection id, guard) of the task's connectors that run under a non-owner's access.
        self.guards: list[tuple[uuid.UUID, AccessGuard]] = []
        self.task_owner: uuid.UUID | None = None

    def account_time(self) -> None:
        """Add the time spent since the last call to the task's active seconds."""
        now_mono = time.monotonic()
        self.progress.active_seconds += now_mono - self._last_flush
        self._last_flush = now_mono

    async def persist(self) -> None:
        """Flush now, for a large file's resume point just buffered. Requests made while a
        flush waits for the lock share the next one; a failing database is logged, not fatal
        (the point stays buffered for the next flush)."""
        self._persist_requested += 1
        try:
            await self.flush(heartbeat=False, covering=self._persist_requested)
        except Exception as exc:
            log.warning("resume point flush failed for task %s: %s", self.claim.task_id, exc)

    async def flush(self, *, heartbeat: bool = True, covering: int = 0) -> None:
        """Persist buffered progress, extend the lease and pick up cancel/deadline.

        ``covering``: skip the flush if one begun after ``persist`` request number
        ``covering`` has completed already."""
        async with self._flush_lock:
            if covering and self._persist_done >= covering:
                return
            requested = self._persist_requested
            self.account_time()
            now = self.ctx.clock.now()
            # Idle beats only read (SQLite: no write lock); the lease is extended a few times
            # per lease period, progress is written when there is some.
            extend = heartbeat and (
                time.monotonic() - self._last_extend >= self.config.lease.total_seconds() / 3
            )
            async with self.ctx.db.session() as session:
                alive = True
                if extend or self.progress.has_news():
                    alive = await self.progress.flush(session)
                row = (
                    await session.execute(
                        select(Task.status, Task.cancel_requested, Task.deadline).where(
                            Task.id == self.claim.task_id
                        )
                    )
                ).first()
                finished = not alive or row is None or row.status in FINISHED
                if not finished:
                    await self.refresh_access(session, now)
                if extend and not finished:
                    self._last_extend = time.monotonic()
                    if not await leases.extend(
                        session, self.claim, self.config.name, now, self.config.lease
                    ):
                        self.cancel.cancel("LEASE_LOST")
            self._persist_done = requested
            if finished or row is None:
                self.cancel.cancel("FINISHED")
            elif row.cancel_requested:
                self.cancel.cancel("CANCELED")
            elif row.deadline is not None and row.deadline <= now:
                self.cancel.cancel("EXPIRED")

    async def stop_and_finalize(self, reason: str) -> None:
        """Cancel/expiry seen by this job: its partial files are gone; hand in the claim and
        finalize the task unless other workers are still cleaning up theirs (the last one
        out, or the reaper, finalizes)."""
        with contextlib.suppress(Exception):
            await self.flush(heartbeat=False)
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            await leases.finish(session, self.claim, self.config.name)
        async with self.ctx.db.session() as session:
            busy = await leases.live_lease_exists(session, self.claim.task_id, now)
        if not busy:
            await finalize_stopped(self.ctx, self.claim.task_id, reason, self.factory)

    @asynccontextmanager
    async def heartbeat(self) -> AsyncIterator[None]:
        """Flush every ``flush_seconds`` while the body runs (and check cancel twice as often)."""

        stop = asyncio.Event()

        async def beat() -> None:
            interval = max(0.05, min(self.config.flush_seconds, 0.5))
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
                if stop.is_set():
                    return
                try:
                    await self.flush()
                except Exception:  # a flaky database must not kill the copy
                    log.exception("progress flush failed for task %s", self.claim.task_id)

        beater = asyncio.create_task(beat())
        try:
            yield
        finally:
            # Let a flush in progress finish: cancelling it mid-transaction could lose it.
            stop.set()
            await beater

    async def run(self) -> None:
        raise NotImplementedError

    async def open_connectors(self, task: Task) -> tuple[Connector, Connector | None]:
        """The task's connectors, under its owner's access as the rules stand now."""
        now = self.ctx.clock.now()
        self.task_owner = task.owner_id
        async with self.ctx.db.session() as session:
            src = await session.get(Collection, task.source_endpoint_id)
            dst = (
                await session.get(Collection, task.destination_endpoint_id)
                if task.destination_endpoint_id
                else None
            )
            if src is None or (task.destination_endpoint_id and dst is None):
                raise FileFailed("ENDPOINT_ERROR", "the collection no longer exists")
            src_guard = await access_guard(session, task.owner_id, src, now)
            dst_guard = await access_guard(session, task.owner_id, dst, now) if dst else None
        self.guards = [
            (collection.id, guard)
            for collection, guard in ((src, src_guard), (dst, dst_guard))
            if collection is not None and guard is not None
        ]
        source = with_guard(
            self.factory(src.connector, src.root, dict(src.options or {})), src_guard
        )
        destination = (
            with_guard(self.factory(dst.connector, dst.root, dict(dst.options or {})), dst_guard)
            if dst
            else None
        )
        return source, destination

    async def refresh_access(self, session: Any, now: Any) -> None:
        """Re-read the owner's rules into the live guards: a deleted or expired rule stops
        the files it covered from the next operation on (in-flight system calls finish)."""
        if self.task_owner is None:
            return
        for collection_id, guard in self.guards:
            rules = await applicable_rules(session, self.task_owner, collection_id, now)
            fresh = guard_from_rules(rules)
            guard.replace(fresh.readable, fresh.writable)


async def load_task(ctx: AppContext, task_id: uuid.UUID) -> Task | None:
    async with ctx.db.session() as session:
        return await session.get(Task, task_id)


# -- planning -----------------------------------------------------------------------------


class PlanJob(Job):
    """Walks the source into TaskFile rows and batches (or runs a delete task)."""

    async def run(self) -> None:
        task = await load_task(self.ctx, self.claim.task_id)
        if task is None or task.status in FINISHED:
            return
        async with self.ctx.db.session() as session:
            plan = await session.get(TaskPlan, task.id)
            items = list(
                await session.scalars(
                    select(TaskItem).where(TaskItem.task_id == task.id).order_by(TaskItem.position)
                )
            )
        if plan is None:
            return
        if plan.item_index == 0 and plan.entries_done == 0:
            self.progress.nice_status = "OK"
            self.progress.event("STARTED", "started", f"worker {self.config.name}", is_error=False)
        try:
            source, destination = await self.open_connectors(task)
        except (FileFailed, ConnectorError) as exc:
            code = getattr(exc, "code", "ENDPOINT_ERROR")
            await fail_task(self.ctx, task.id, code, str(exc))
            return
        try:
            async with self.heartbeat():
                if task.type == "DELETE":
                    await self._delete(task, source, items, plan)
                else:
                    assert destination is not None
                    await self._transfer(task, source, destination, items, plan)
        except Canceled:
            await self.stop_after_cancel(task.id)
            return
        finally:
            await source.close()
            if destination is not None:
                await destination.close()
        await finalize_if_complete(self.ctx, task.id)

    async def stop_after_cancel(self, task_id: uuid.UUID) -> None:
        reason = self.cancel.reason
        if reason in ("CANCELED", "EXPIRED"):
            await self.stop_and_finalize(reason)
        elif reason == "SHUTDOWN":
            await self.flush(heartbeat=False)
            async with self.ctx.db.session() as session:
                await leases.release(session, self.claim, self.config.name)

    async def _transfer(
        self,
        task: Task,
        source: Connector,
        destination: Connector,
        items: list[TaskItem],
        plan: TaskPlan,
    ) -> None:
        options = TransferOptions.from_dict(task.options)
        planner = Planner(
            source,
            destination,
            options,
            same_storage=task.source_endpoint_id == task.destination_endpoint_id,
        )
        buffer = _PlanBuffer(task.id, options)
        item_index = plan.item_index
        entries_done = plan.entries_done
        for index in range(plan.item_index, len(items)):
            row = items[index]
            spec = ItemSpec(
                source_path=row.source_path,
                destination_path=row.destination_path or row.source_path,
                recursive=row.recursive,
                external_checksum=row.external_checksum,
                checksum_algorithm=row.checksum_algorithm,
            )
            skip = entries_done if index == plan.item_index else 0
            position = 0
            async for entry in planner.plan_item(spec):
                position += 1
                if position <= skip:
                    continue  # committed by an earlier planner; its side effects are done
                self.cancel.check()
                await self._consume(entry, destination, buffer)
                if buffer.entries >= self.config.plan_commit_entries or (
                    time.monotonic() - buffer.started > self.config.flush_seconds
                ):
                    await self._commit(buffer, index, position, final=False)
            item_index, entries_done = index + 1, 0
        await self._commit(buffer, item_index, entries_done, final=True)

    async def _consume(self, entry: Any, destination: Connector, buffer: _PlanBuffer) -> None:
        if isinstance(entry, CopyFile):
            buffer.add_file(entry.job)
        elif isinstance(entry, MakeDir | DeleteExtra):
            try:
                await apply_namespace_entry(destination, entry)
            except ConnectorError as exc:
                path = entry.path
                buffer.add_error(path, path, exc.code, str(exc), True, source_side=False)
                return
            if isinstance(entry, MakeDir) and entry.counted:
                buffer.counts["directories"] += 1
        elif isinstance(entry, PlanError):
            buffer.add_error(
                entry.source_path,
                entry.destination_path,
                entry.code,
                entry.message,
                entry.is_directory,
                source_side=entry.source_side,
            )
        elif isinstance(entry, SkippedSymlink):
            buffer.counts["symlinks"] += 1
        buffer.entries += 1

    async def _commit(
        self, buffer: _PlanBuffer, item_index: int, entries_done: int, *, final: bool
    ) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            status = await session.scalar(select(Task.status).where(Task.id == buffer.task_id))
            if status in FINISHED:
                raise Canceled("FINISHED")
            if not await leases.extend(
                session, self.claim, self.config.name, now, self.config.lease
            ):
                raise Canceled("LEASE_LOST")
            await buffer.write(session, self.config, self.progress)
            values: dict[str, Any] = {"item_index": item_index, "entries_done": entries_done}
            if final:
                values.update(done=True, lease_owner=None, lease_expires=None)
            await session.execute(
                update(TaskPlan).where(TaskPlan.task_id == buffer.task_id).values(**values)
            )
            if final:
                await session.execute(
                    update(Task).where(Task.id == buffer.task_id).values(planned=True)
                )
            self.account_time()
            await self.progress.flush(session)

    async def _delete(
        self, task: Task, connector: Connector, items: list[TaskItem], plan: TaskPlan
    ) -> None:
        options = DeleteOptions.from_dict(task.options)
        for index in range(plan.item_index, len(items)):
            path = items[index].source_path
            resumed = index == plan.item_index and plan.attempts > 1
            summary = DeleteSummary()
            opts = options
            if resumed:
                # An earlier worker may have deleted part of this item already.
                opts = DeleteOptions(options.recursive, True, options.interpret_globs)
            try:
                async for target in expand_delete_item(connector, path, opts):
                    await delete_target(connector, target, opts, self.cancel, summary)
                    self._count_deleted(summary)
            except FileFailed as exc:
                self._count_deleted(summary)
                await self._delete_error(task.id, path, exc.code, exc.message)
            except ObjectNotFound as exc:
                self._count_deleted(summary)
                if not opts.ignore_missing:
                    await self._delete_error(task.id, path, exc.code, str(exc))
            except ConnectorError as exc:
                self._count_deleted(summary)
                await self._delete_error(task.id, path, exc.code, str(exc))
            async with self.ctx.db.session() as session:
                await session.execute(
                    update(TaskPlan)
                    .where(TaskPlan.task_id == task.id)
                    .values(item_index=index + 1, entries_done=0)
                )
                self.account_time()
                await self.progress.flush(session)
        async with self.ctx.db.session() as session:
            await session.execute(
                update(TaskPlan)
                .where(TaskPlan.task_id == task.id)
                .values(done=True, lease_owner=None, lease_expires=None)
            )
            await session.execute(update(Task).where(Task.id == task.id).values(planned=True))
            self.account_time()
            await self.progress.flush(session)

    def _count_deleted(self, summary: DeleteSummary) -> None:
        files, dirs = summary.files, summary.directories
        summary.files = summary.directories = 0
        self.progress.add(
            files=files,
            directories=dirs,
            subtasks_total=files + dirs,
            subtasks_succeeded=files + dirs,
        )

    async def _delete_error(self, task_id: uuid.UUID, path: str, code: str, message: str) -> None:
        """Delete failures are rare: record each at once as a failed TaskFile row."""
        self.progress.add(subtasks_total=1, subtasks_failed=1)
        self.progress.event(event_code(code), "delete failed", message, is_error=True)
        async with self.ctx.db.session() as session:
            await session.execute(
                insert(TaskFile).values(
                    task_id=task_id,
                    source_path=path,
                    destination_path=path,
                    size=0,
                    mtime=0.0,
                    state="failed",
                    is_directory=False,
                    error_code=code,
                    error_message=message,
                    done_time=self.ctx.clock.now(),
                    bytes_done=0,
                )
            )


class _PlanBuffer:
    """Plan output not yet committed: file rows, error rows and counter deltas."""

    def __init__(self, task_id: uuid.UUID, options: TransferOptions) -> None:
        self.task_id = task_id
        self.options = options
        self.files: list[FileJob] = []
        self.errors: list[dict[str, Any]] = []
        self.counts = {"directories": 0, "symlinks": 0}
        self.entries = 0
        self.started = time.monotonic()

    def add_file(self, job: FileJob) -> None:
        self.files.append(job)

    def add_error(
        self,
        source: str,
        destination: str,
        code: str,
        message: str,
        is_directory: bool,
        *,
        source_side: bool,
    ) -> None:
        # skip_source_errors skips what could not be read, never a destination failure.
        skipped = self.options.skip_source_errors and source_side
        self.errors.append(
            {
                "source_path": source,
                "destination_path": destination,
                "code": code,
                "message": message,
                "is_directory": is_directory,
                "skipped": skipped,
            }
        )

    async def write(self, session: Any, config: WorkerConfig, progress: TaskProgress) -> None:
        now = progress.clock_now()
        for group in split_jobs(self.files, config.batch_files, config.batch_bytes):
            batch_id = (
                await session.execute(
                    insert(WorkBatch)
                    .values(
                        task_id=self.task_id,
                        state="pending",
                        file_count=len(group),
                        byte_count=sum(j.size for j in group),
                        attempts=0,
                    )
                    .returning(WorkBatch.id)
                )
            ).scalar_one()
            await session.execute(
                insert(cast(Table, TaskFile.__table__)),  # Core executemany: no ORM cost per row
                [
                    {
                        "task_id": self.task_id,
                        "batch_id": batch_id,
                        "source_path": j.source_path,
                        "destination_path": j.destination_path,
                        "size": j.size,
                        "mtime": j.mtime,
                        "state": "pending",
                        "is_directory": False,
                        "external_checksum": j.external_checksum,
                        "checksum_algorithm": j.checksum_algorithm,
                        "bytes_done": 0,
                    }
                    for j in group
                ],
            )
        if self.errors:
            await session.execute(
                insert(TaskFile),
                [
                    {
                        "task_id": self.task_id,
                        "batch_id": None,
                        "source_path": e["source_path"],
                        "destination_path": e["destination_path"],
                        "size": 0,
                        "mtime": 0.0,
                        "state": "skipped" if e["skipped"] else "failed",
                        "is_directory": e["is_directory"],
                        "error_code": e["code"],
                        "error_message": e["message"],
                        "done_time": now,
                        "bytes_done": 0,
                    }
                    for e in self.errors
                ],
            )
            for e in self.errors[:5]:
                progress.event(event_code(e["code"]), e["message"], e["source_path"], is_error=True)
        n_files = len(self.files)
        n_skipped = sum(1 for e in self.errors if e["skipped"])
        progress.add(
            files=n_files,
            directories=self.counts["directories"],
            symlinks=self.counts["symlinks"],
            subtasks_total=n_files + len(self.errors),
            subtasks_pending=n_files,
            subtasks_failed=len(self.errors) - n_skipped,
            subtasks_skipped_errors=n_skipped,
        )
        self.files = []
        self.errors = []
        self.counts = {"directories": 0, "symlinks": 0}
        self.entries = 0
        self.started = time.monotonic()


# -- copying a batch ------------------------------------------------------------------------


class BatchJob(Job):
    """Copies the pending files of one leased batch.

    ``offload`` runs groups of small local files (the pool's helper processes), and
    ``group_slots`` limits how many run at once; the pool shares both among its jobs.
    """

    def __init__(
        self,
        ctx: AppContext,
        config: WorkerConfig,
        claim: Claim,
        factory: ConnectorFactory,
        cancel: CancelToken,
        *,
        group_slots: asyncio.Semaphore | None = None,
        offload: Offload | None = None,
    ) -> None:
        super().__init__(ctx, config, claim, factory, cancel)
        self.group_slots = group_slots or asyncio.Semaphore(1)
        self.offload = offload

    async def run(self) -> None:
        task = await load_task(self.ctx, self.claim.task_id)
        if task is None or task.status in FINISHED:
            return
        async with self.ctx.db.session() as session:
            # Plain rows, not ORM objects: a batch holds a thousand files.
            rows = await session.execute(
                select(
                    TaskFile.id,
                    TaskFile.source_path,
                    TaskFile.destination_path,
                    TaskFile.size,
                    TaskFile.mtime,
                    TaskFile.external_checksum,
                    TaskFile.checksum_algorithm,
                    TaskFile.write_state,
                    TaskFile.bytes_done,
                )
                .where(TaskFile.batch_id == self.claim.batch_id, TaskFile.state == "pending")
                .order_by(TaskFile.id)
            )
            files = [_job_of(row) for row in rows]
        options = TransferOptions.from_dict(task.options)
        try:
            source, destination = await self.open_connectors(task)
        except (FileFailed, ConnectorError) as exc:
            code = getattr(exc, "code", "ENDPOINT_ERROR")
            await fail_task(self.ctx, task.id, code, str(exc))
            return
        assert destination is not None
        copier = Copier(
            source,
            destination,
            options,
            self.progress,
            self.cancel,
            chunk_size=self.config.chunk_size,
            parallel_chunks=self.config.parallel_chunks,
            retry=self.config.retry,
            offload=self.offload,
        )
        self.fatal: tuple[str, str] | None = None
        try:
            async with self.heartbeat():
                await self._copy_all(files, copier, options)
                self.cancel.check()
        except Canceled:
            pass
        finally:
            await source.close()
            await destination.close()
        reason = self.cancel.reason
        if reason is None:
            async with self.ctx.db.session() as session:
                self.account_time()
                await self.progress.flush(session)
                await session.execute(
                    update(WorkBatch)
                    .where(WorkBatch.id == self.claim.batch_id)
                    .values(state="done", lease_owner=None, lease_expires=None)
                )
            await finalize_if_complete(self.ctx, task.id)
        elif reason == "QUOTA" and self.fatal is not None:
            await self.flush(heartbeat=False)
            await fail_task(self.ctx, task.id, *self.fatal, factory=self.factory)
        elif reason in ("CANCELED", "EXPIRED"):
            await self.stop_and_finalize(reason)
        elif reason == "SHUTDOWN":
            await self.flush(heartbeat=False)
            async with self.ctx.db.session() as session:
                await leases.release(session, self.claim, self.config.name)
        else:  # LEASE_LOST / FINISHED: someone else owns the outcome now
            with contextlib.suppress(Exception):
                await self.flush(heartbeat=False)

    async def _copy_all(
        self,
        files: list[tuple[FileJob, Resume | None]],
        copier: Copier,
        options: TransferOptions,
    ) -> None:
        slots = asyncio.Semaphore(self.config.file_concurrency)
        group_slots = self.group_slots
        singles: list[tuple[FileJob, Resume | None]] = []
        small: list[FileJob] = []
        for job, resume in files:
            if copier.groupable(job, resume):
                small.append(job)
            else:
                singles.append((job, resume))

        async def one(job: FileJob, resume: Resume | None) -> None:
            async with slots:
                if self.cancel.cancelled:
                    return
                try:
                    outcome: CopyResult | FileFailed | Canceled = await copier.copy(job, resume)
                except (FileFailed, Canceled) as exc:
                    outcome = exc
                self._record(job, outcome, options)

        async def group(members: list[FileJob]) -> None:
            async with group_slots:
                if self.cancel.cancelled:
                    return
                outcomes = await copier.copy_group(members)
            for job, outcome in zip(members, outcomes, strict=True):
                self._record(job, outcome, options)

        await asyncio.gather(
            *(group(members) for members in split_jobs(small, GROUP_FILES, GROUP_BYTES)),
            *(one(job, resume) for job, resume in singles),
        )

    def _record(
        self,
        job: FileJob,
        outcome: CopyResult | FileFailed | Canceled,
        options: TransferOptions,
    ) -> None:
        """Account for one file's outcome (buffered; written by the next flush)."""
        progress = self.progress
        assert job.key is not None
        file_id = job.key
        if isinstance(outcome, Canceled):
            return
        if isinstance(outcome, FileFailed):
            if outcome.quota and options.fail_on_quota_errors:
                self.fatal = (outcome.code, outcome.message)
                self.cancel.cancel("QUOTA")
            skipped = options.skip_source_errors and outcome.source_side and not outcome.quota
            progress.file_done(
                file_id,
                "skipped" if skipped else "failed",
                error_code=outcome.code,
                error_message=outcome.message,
            )
            progress.add(
                subtasks_pending=-1,
                subtasks_skipped_errors=1 if skipped else 0,
                subtasks_failed=0 if skipped else 1,
            )
            progress.event(
                event_code(outcome.code), outcome.message, job.source_path, is_error=True
            )
            return
        if outcome.status == "skipped":
            progress.file_done(file_id, "unchanged")
            progress.add(subtasks_pending=-1, subtasks_succeeded=1, files_skipped=1)
        else:
            progress.file_done(
                file_id,
                "done",
                checksum=outcome.checksum,
                checksum_algorithm=outcome.algorithm.upper() if outcome.algorithm else None,
            )
            progress.add(subtasks_pending=-1, subtasks_succeeded=1, files_transferred=1)
        if progress.nice_status not in (None, "OK"):
            progress.nice_status = "OK"


# Small files per offloaded call: enough to make the hand-off negligible, few enough that a
# cancel waits for little.
GROUP_FILES = 100
GROUP_BYTES = 32 << 20


def _job_of(row: Any) -> tuple[FileJob, Resume | None]:
    """The engine's job (and resume point) for a TaskFile row."""
    job = FileJob(
        source_path=row.source_path,
        destination_path=row.destination_path,
        size=row.size,
        mtime=row.mtime,
        external_checksum=row.external_checksum,
        checksum_algorithm=row.checksum_algorithm,
        key=row.id,
    )
    resume = None
    if row.write_state:
        resume = Resume(row.bytes_done or 0, WriteState(**row.write_state))
    return job, resume


def split_jobs(jobs: list[FileJob], max_files: int, max_bytes: int) -> list[list[FileJob]]:
    """``jobs`` in order, cut into runs of at most ``max_files`` files and ``max_bytes`` bytes
    (a single larger file makes a run of its own): work batches, and groups of small files."""
    runs: list[list[FileJob]] = []
    current: list[FileJob] = []
    size = 0
    for job in jobs:
        if current and (len(current) >= max_files or size + job.size > max_bytes):
            runs.append(current)
            current, size = [], 0
        current.append(job)
        size += job.size
    if current:
        runs.append(current)
    return runs


# -- finalization ---------------------------------------------------------------------------


async def _event(
    session: Any, task_id: uuid.UUID, now: Any, code: str, desc: str, **kw: Any
) -> None:
    await session.execute(
        insert(TaskEvent).values(
            task_id=task_id,
            time=now,
            code=code,
            description=desc,
            details=kw.get("details", ""),
            is_error=kw.get("is_error", False),
        )
    )


async def _has_event(session: Any, task_id: uuid.UUID, code: str) -> bool:
    found = await session.scalar(
        select(TaskEvent.id).where(TaskEvent.task_id == task_id, TaskEvent.code == code).limit(1)
    )
    return found is not None


async def finalize_if_complete(ctx: AppContext, task_id: uuid.UUID) -> bool:
    """SUCCEEDED/FAILED once planning is done and no batch is outstanding."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        task = await session.get(Task, task_id)
        if task is None or task.status not in ("ACTIVE", "INACTIVE") or not task.planned:
            return False
        if task.cancel_requested:
            return False  # the cancel path owns this task's outcome
        outstanding = await session.scalar(
            select(func.count())
            .select_from(WorkBatch)
            .where(WorkBatch.task_id == task_id, WorkBatch.state != "done")
        )
        if outstanding:
            return False
        failed = (
            await session.execute(
                select(TaskFile.error_code, TaskFile.error_message)
                .where(TaskFile.task_id == task_id, TaskFile.state == "failed")
                .order_by(TaskFile.id)
                .limit(1)
            )
        ).first()
        values: dict[str, Any] = {
            "completion_time": now,
            "nice_status": None,
            "subtasks_pending": 0,
        }
        if failed is None:
            values.update(status="SUCCEEDED", fatal_error=None)
        else:
            code = event_code(failed.error_code or "UNKNOWN")
            values.update(
                status="FAILED",
                fatal_error={"code": code, "description": failed.error_message or code},
            )
        result = await session.execute(
            update(Task)
            .where(Task.id == task_id, Task.status.in_(("ACTIVE", "INACTIVE")))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        skipped = await session.scalar(
            select(func.count())
            .select_from(TaskFile)
            .where(TaskFile.task_id == task_id, TaskFile.state == "skipped")
        )
        if skipped:
            await _event(session, task_id, now, "SKIPPED_ERRORS", f"{skipped} errors were skipped")
        if failed is None:
            await _event(session, task_id, now, "SUCCEEDED", "succeeded")
        elif not await _has_event(session, task_id, values["fatal_error"]["code"]):
            # The fatal error is the first failed file's, whose event the planner or the copier
            # has normally written already; a second event with the same code would show the
            # one failure twice in the event list.
            await _event(
                session,
                task_id,
                now,
                values["fatal_error"]["code"],
                "task failed",
                details=values["fatal_error"]["description"],
                is_error=True,
            )
    return True


async def fail_task(
    ctx: AppContext,
    task_id: uuid.UUID,
    code: str,
    message: str,
    *,
    factory: ConnectorFactory | None = None,
) -> bool:
    """A fatal error: the task fails now, unfinished files are canceled."""
    return await _stop(ctx, task_id, code, message, "subtasks_canceled", factory, event_error=True)


async def finalize_stopped(
    ctx: AppContext, task_id: uuid.UUID, reason: str, factory: ConnectorFactory | None
) -> bool:
    """Cancel or expiry: FAILED with fatal_error CANCELED / EXPIRED."""
    if reason == "EXPIRED":
        return await _stop(
            ctx, task_id, "EXPIRED", "The task deadline passed", "subtasks_expired", factory
        )
    return await _stop(
        ctx, task_id, "CANCELED", "The task was canceled", "subtasks_canceled", factory
    )


async def _stop(
    ctx: AppContext,
    task_id: uuid.UUID,
    code: str,
    message: str,
    counter: str,
    factory: ConnectorFactory | None,
    *,
    event_error: bool = False,
) -> bool:
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        result = await session.execute(
            update(Task)
            .where(Task.id == task_id, Task.status.in_(("ACTIVE", "INACTIVE")))
            .values(
                status="FAILED",
                nice_status=None,
                completion_time=now,
                fatal_error={"code": code, "description": message},
            )
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        partial = list(
            (
                await session.execute(
                    select(TaskFile.destination_path, TaskFile.write_state).where(
                        TaskFile.task_id == task_id,
                        TaskFile.state == "pending",
                        TaskFile.write_state.is_not(None),
                    )
                )
            ).all()
        )
        stopped = await session.execute(
            update(TaskFile)
            .where(TaskFile.task_id == task_id, TaskFile.state == "pending")
            .values(state="canceled", done_time=now, write_state=None, bytes_done=0)
            .execution_options(synchronize_session=False)
        )
        count = int(stopped.rowcount or 0)  # type: ignore[attr-defined]
        await session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values({counter: getattr(Task, counter) + count, "subtasks_pending": 0})
        )
        # Leases stay with their holders: a live job must not mistake this for a takeover
        # (it would keep its partial file for a successor that never comes).
        await session.execute(
            update(WorkBatch).where(WorkBatch.task_id == task_id).values(state="done")
        )
        await session.execute(update(TaskPlan).where(TaskPlan.task_id == task_id).values(done=True))
        await _event(session, task_id, now, code, message.lower(), is_error=event_error)
        task = await session.get(Task, task_id)
        dst_id = task.destination_endpoint_id if task else None
        collection = await session.get(Collection, dst_id) if dst_id else None
    if partial and collection is not None and factory is not None:
        # Temporary files of writers that died; live writers remove their own.
        connector = factory(collection.connector, collection.root, dict(collection.options or {}))
        try:
            for _path, state in partial:
                with contextlib.suppress(ConnectorError, TypeError):
                    await connector.abort_write(WriteState(**state))
        finally:
            await connector.close()
    return True
