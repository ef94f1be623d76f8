"""Runs one claimed job: plan a task into batches, copy a batch, or execute a delete task.

Jobs read and report everything through their work source (``worker/source.py``): the same
code runs in ``arctern worker`` on the database and in a Connect agent over HTTP.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from arctern.clock import Clock
from arctern.connectors.access import AccessGuard, with_guard
from arctern.connectors.base import Connector
from arctern.connectors.errors import ConnectorError, ObjectNotFound
from arctern.engine.copier import Copier, CopyResult, Resume, RetryPolicy
from arctern.engine.errors import Canceled, CancelToken, FileFailed
from arctern.engine.offload import Offload
from arctern.engine.options import DeleteOptions, FileJob, TransferOptions
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
from arctern.worker.group_slots import GroupSlots
from arctern.worker.leases import Claim
from arctern.worker.progress import TaskProgress, event_code
from arctern.worker.source import (
    FINISHED,
    PlanCommit,
    PlanErrorRow,
    PlanView,
    TaskView,
    WorkSource,
)

log = logging.getLogger("arctern.worker")

ConnectorFactory = Callable[[str, str, dict[str, Any]], Connector]


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
        clock: Clock,
        config: WorkerConfig,
        claim: Claim,
        source: WorkSource,
        factory: ConnectorFactory,
        cancel: CancelToken,
    ) -> None:
        self.clock = clock
        self.config = config
        self.claim = claim
        self.source = source
        self.factory = factory
        self.cancel = cancel
        self.progress = TaskProgress(claim.task_id, clock.now)
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
            # Idle beats only read (SQLite: no write lock); the lease is extended a few times
            # per lease period, progress is written when there is some.
            extend = heartbeat and (
                time.monotonic() - self._last_extend >= self.config.lease.total_seconds() / 3
            )
            snapshot = self.progress.take() if extend or self.progress.has_news() else None
            try:
                beat = await self.source.beat(
                    self.claim,
                    snapshot,
                    extend=extend,
                    guarded=[collection_id for collection_id, _ in self.guards],
                )
            except BaseException:
                if snapshot is not None:
                    self.progress.merge(snapshot)
                raise
            # A deleted or expired rule stops the files it covered from the next operation
            # on (in-flight system calls finish).
            for collection_id, guard in self.guards:
                fresh = beat.grants.get(collection_id)
                if fresh is not None:
                    guard.replace(fresh.readable, fresh.writable, fresh.denied)
            if extend and not beat.finished:
                self._last_extend = time.monotonic()
            self._persist_done = requested
            reason = beat.stop_reason
            if reason is not None:
                self.cancel.cancel(reason)

    async def stop_and_finalize(self, reason: str) -> None:
        """Cancel/expiry seen by this job: its partial files are gone; hand in the claim and
        finalize the task unless other workers are still cleaning up theirs (the last one
        out, or the reaper, finalizes)."""
        with contextlib.suppress(Exception):
            await self.flush(heartbeat=False)
        await self.source.stop(self.claim, reason)

    async def hand_back(self) -> None:
        """Shutdown: persist progress and release the lease for another worker."""
        await self.flush(heartbeat=False)
        await self.source.release(self.claim)

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

    async def open_connectors(self, task: TaskView) -> tuple[Connector, Connector | None]:
        """The task's connectors, under its owner's access as the rules stand now."""
        found = await self.source.collections(self.claim, task)
        src, dst = found.source, found.destination
        self.guards = [
            (collection.id, guard)
            for collection, guard in (
                (src, found.source_guard),
                (dst, found.destination_guard),
            )
            if collection is not None and guard is not None
        ]
        source = with_guard(self.factory(src.connector, src.root, src.options), found.source_guard)
        destination = (
            with_guard(self.factory(dst.connector, dst.root, dst.options), found.destination_guard)
            if dst
            else None
        )
        return source, destination


# -- planning -----------------------------------------------------------------------------


class PlanJob(Job):
    """Walks the source into work batches (or runs a delete task).

    ``on_new_work`` is called after each commit that made batches: the pool that runs the
    plan can claim them at once (an agent would otherwise hear of them from the deployment,
    a round trip later, or at its next idle poll).
    """

    on_new_work: Callable[[], None] | None = None
    # Whether the pool running the plan has room for another job now (set by the pool).
    has_room: Callable[[], bool] | None = None

    async def run(self) -> None:
        task = await self.source.load_task(self.claim)
        if task is None or task.status in FINISHED:
            return
        plan = await self.source.load_plan(self.claim)
        if plan is None:
            return
        if plan.item_index == 0 and plan.entries_done == 0:
            self.progress.nice_status = "OK"
            self.progress.event("STARTED", "started", f"worker {self.config.name}", is_error=False)
        try:
            source, destination = await self.open_connectors(task)
        except (FileFailed, ConnectorError) as exc:
            code = getattr(exc, "code", "ENDPOINT_ERROR")
            await self.source.fail(self.claim, code, str(exc))
            return
        try:
            async with self.heartbeat():
                if task.type == "DELETE":
                    await self._delete(task, source, plan)
                else:
                    assert destination is not None
                    await self._transfer(task, source, destination, plan)
        except Canceled:
            await self.stop_after_cancel()
            return
        finally:
            await source.close()
            if destination is not None:
                await destination.close()
        await self.source.finalize(self.claim)

    async def stop_after_cancel(self) -> None:
        reason = self.cancel.reason
        if reason in ("CANCELED", "EXPIRED"):
            await self.stop_and_finalize(reason)
        elif reason == "SHUTDOWN":
            await self.hand_back()

    async def _transfer(
        self,
        task: TaskView,
        source: Connector,
        destination: Connector,
        plan: PlanView,
    ) -> None:
        options = TransferOptions.from_dict(task.options)
        planner = Planner(
            source,
            destination,
            options,
            same_storage=task.source_endpoint_id == task.destination_endpoint_id,
        )
        buffer = _PlanBuffer(options)
        commits = _CommitAhead(self._send)
        directories = _DirectoriesAhead(DIRECTORIES_IN_FLIGHT)
        item_index = plan.item_index
        entries_done = plan.entries_done
        try:
            for index in range(plan.item_index, len(plan.items)):
                spec = plan.items[index]
                skip = entries_done if index == plan.item_index else 0
                position = 0
                async for entry in planner.plan_item(spec):
                    position += 1
                    if position <= skip:
                        continue  # committed by an earlier planner; its side effects are done
                    self.cancel.check()
                    await self._consume(entry, destination, buffer, directories)
                    if buffer.entries >= self.config.plan_commit_entries or (
                        time.monotonic() - buffer.started > self.config.flush_seconds
                    ):
                        # A batch must not start before its directories exist, and a failed
                        # mkdir belongs to the commit that covers its entry.
                        await directories.wait()
                        await commits.send(self._take(buffer, index, position, final=False))
                item_index, entries_done = index + 1, 0
            await directories.wait()
            await commits.send(self._take(buffer, item_index, entries_done, final=True))
            await commits.wait()
        except BaseException:
            await directories.settle()
            await commits.settle()
            raise

    async def _consume(
        self,
        entry: Any,
        destination: Connector,
        buffer: _PlanBuffer,
        directories: _DirectoriesAhead,
    ) -> None:
        if isinstance(entry, CopyFile):
            buffer.add_file(entry.job)
        elif isinstance(entry, MakeDir):
            await directories.start(lambda: self._make_directory(entry, destination, buffer))
        elif isinstance(entry, DeleteExtra):
            await directories.wait()  # in the walk's order with the directories before it
            await self._apply(entry, destination, buffer)
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

    async def _make_directory(
        self, entry: MakeDir, destination: Connector, buffer: _PlanBuffer
    ) -> None:
        if await self._apply(entry, destination, buffer) and entry.counted:
            buffer.counts["directories"] += 1

    @staticmethod
    async def _apply(
        entry: MakeDir | DeleteExtra, destination: Connector, buffer: _PlanBuffer
    ) -> bool:
        """Carry out ``entry``; False (and an error row buffered) if the destination refused."""
        try:
            await apply_namespace_entry(destination, entry)
        except ConnectorError as exc:
            path = entry.path
            buffer.add_error(path, path, exc.code, str(exc), True, source_side=False)
            return False
        return True

    def _take(
        self, buffer: _PlanBuffer, item_index: int, entries_done: int, *, final: bool
    ) -> PlanCommit:
        counted = TaskProgress(self.claim.task_id, self.clock.now)
        return buffer.take(self.config, counted, item_index, entries_done, final)

    async def _send(self, commit: PlanCommit) -> None:
        """Make ``commit``, what it counts and the progress buffered so far durable, in one
        step."""
        self.account_time()
        progress = self.progress.take()
        if commit.counted is not None:
            progress.merge(commit.counted)
        # Not merged back on failure: a commit that fails ends the job, and whoever plans
        # next resumes from the last durable position and counts from there.
        lease_next = bool(commit.batches) and self.has_room is not None and self.has_room()
        await self.source.commit_plan(self.claim, commit, progress, lease_next=lease_next)
        if commit.batches and self.on_new_work is not None:
            self.on_new_work()

    async def _delete(self, task: TaskView, connector: Connector, plan: PlanView) -> None:
        options = DeleteOptions.from_dict(task.options)
        for index in range(plan.item_index, len(plan.items)):
            path = plan.items[index].source_path
            resumed = index == plan.item_index and plan.attempts > 1
            summary = DeleteSummary()
            errors: list[PlanErrorRow] = []
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
                errors.append(self._delete_error(path, exc.code, exc.message))
            except ObjectNotFound as exc:
                self._count_deleted(summary)
                if not opts.ignore_missing:
                    errors.append(self._delete_error(path, exc.code, str(exc)))
            except ConnectorError as exc:
                self._count_deleted(summary)
                errors.append(self._delete_error(path, exc.code, str(exc)))
            await self._send(PlanCommit(index + 1, 0, final=False, errors=errors))
        await self._send(PlanCommit(len(plan.items), 0, final=True))

    def _count_deleted(self, summary: DeleteSummary) -> None:
        files, dirs = summary.files, summary.directories
        summary.files = summary.directories = 0
        self.progress.add(
            files=files,
            directories=dirs,
            subtasks_total=files + dirs,
            subtasks_succeeded=files + dirs,
        )

    def _delete_error(self, path: str, code: str, message: str) -> PlanErrorRow:
        """A failed delete: counted now, recorded as a failed file with the item's commit."""
        self.progress.add(subtasks_total=1, subtasks_failed=1)
        self.progress.event(event_code(code), "delete failed", message, is_error=True)
        return PlanErrorRow(path, path, code, message, is_directory=False, skipped=False)


class _CommitAhead:
    """Plan commits made one at a time, in order, while the walk goes on.

    The walk and a commit use different resources (the source's directories; the database),
    so the next thousand entries are listed while the last thousand are being written. At
    most one commit is in flight: each waits for the one before, so the durable plan cursor
    only ever moves forward over committed rows.
    """

    def __init__(self, send: Callable[[PlanCommit], Awaitable[None]]) -> None:
        self._send = send
        self._running: asyncio.Task[None] | None = None

    async def send(self, commit: PlanCommit) -> None:
        """Start ``commit`` once the one before it is durable (raising its error, if any)."""
        await self.wait()
        self._running = asyncio.ensure_future(self._send(commit))

    async def wait(self) -> None:
        """Until the commit in flight, if any, is durable."""
        running, self._running = self._running, None
        if running is not None:
            await running

    async def settle(self) -> None:
        """After the walk failed: let the commit in flight end; the walk's error is the one
        reported (a resumed plan starts from whatever position became durable)."""
        with contextlib.suppress(Exception):
            await self.wait()


# Directories created at once while a plan walks on: enough to keep a wide-area link's
# round trips overlapped, few enough to bound what a failing destination piles up.
DIRECTORIES_IN_FLIGHT = 32


class _DirectoriesAhead:
    """The destination's directories, created while the walk goes on.

    Across a wide-area link each mkdir is a round trip: one after another, a tree of a
    thousand directories would wait a thousand round trips before its files moved. A planned
    mkdir creates its parents and accepts an existing directory, so mkdirs do not depend on
    each other's order; up to ``limit`` run at once, and ``wait`` (before each plan commit,
    and before anything that must follow them in the walk's order) lets them all end.
    A destination's refusal is the operation's own to record; any other error is raised
    by ``wait``.
    """

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._running: set[asyncio.Task[None]] = set()

    async def start(self, operation: Callable[[], Awaitable[None]]) -> None:
        """Run ``operation()`` once a slot is free (waiting for one if all are taken)."""
        await self._slots.acquire()
        self._running.add(asyncio.ensure_future(self._run(operation)))

    async def _run(self, operation: Callable[[], Awaitable[None]]) -> None:
        try:
            await operation()
        finally:
            self._slots.release()

    async def wait(self) -> None:
        """Until every operation started so far has ended; then the first error, if any."""
        running, self._running = self._running, set()
        if not running:
            return
        for outcome in await asyncio.gather(*running, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def settle(self) -> None:
        """After the walk failed: stop what is still running; the walk's error is the one
        reported (a resumed plan makes these directories again: mkdir is idempotent)."""
        running, self._running = self._running, set()
        for operation in running:
            operation.cancel()
        await asyncio.gather(*running, return_exceptions=True)


class _PlanBuffer:
    """Plan output not yet committed: files to copy, error rows and counter deltas."""

    def __init__(self, options: TransferOptions) -> None:
        self.options = options
        self.files: list[FileJob] = []
        self.errors: list[PlanErrorRow] = []
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
        self.errors.append(PlanErrorRow(source, destination, code, message, is_directory, skipped))

    def take(
        self,
        config: WorkerConfig,
        progress: TaskProgress,
        item_index: int,
        entries_done: int,
        final: bool,
    ) -> PlanCommit:
        """The buffered output as a commit (cut into work batches), counted into
        ``progress``, which the commit carries; the buffer starts again empty."""
        for e in self.errors[:5]:
            progress.event(event_code(e.code), e.message, e.source_path, is_error=True)
        n_files = len(self.files)
        n_skipped = sum(1 for e in self.errors if e.skipped)
        progress.add(
            files=n_files,
            directories=self.counts["directories"],
            symlinks=self.counts["symlinks"],
            subtasks_total=n_files + len(self.errors),
            subtasks_pending=n_files,
            subtasks_failed=len(self.errors) - n_skipped,
            subtasks_skipped_errors=n_skipped,
        )
        commit = PlanCommit(
            item_index,
            entries_done,
            final,
            batches=split_jobs(self.files, config.batch_files, config.batch_bytes),
            errors=self.errors,
            counted=progress,
        )
        self.files = []
        self.errors = []
        self.counts = {"directories": 0, "symlinks": 0}
        self.entries = 0
        self.started = time.monotonic()
        return commit


# -- copying a batch ------------------------------------------------------------------------


class BatchJob(Job):
    """Copies the pending files of one leased batch.

    ``offload`` runs groups of small local files (the pool's helper processes), and
    ``group_slots`` limits how many run at once; the pool shares both among its jobs.
    """

    # Whether the report of the finished batch asks for the pool's next job (set by the
    # pool: its place frees with that report).
    lease_next_on_finish = False

    def __init__(
        self,
        clock: Clock,
        config: WorkerConfig,
        claim: Claim,
        source: WorkSource,
        factory: ConnectorFactory,
        cancel: CancelToken,
        *,
        group_slots: GroupSlots | None = None,
        offload: Offload | None = None,
    ) -> None:
        super().__init__(clock, config, claim, source, factory, cancel)
        self.group_slots = group_slots or GroupSlots(1)
        self.offload = offload

    async def run(self) -> None:
        task = await self.source.load_task(self.claim)
        if task is None or task.status in FINISHED:
            return
        files = await self.source.load_batch(self.claim)
        options = TransferOptions.from_dict(task.options)
        try:
            source, destination = await self.open_connectors(task)
        except (FileFailed, ConnectorError) as exc:
            code = getattr(exc, "code", "ENDPOINT_ERROR")
            await self.source.fail(self.claim, code, str(exc))
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
            self.account_time()
            snapshot = self.progress.take()
            try:
                await self.source.finish_batch(
                    self.claim, snapshot, lease_next=self.lease_next_on_finish
                )
            except BaseException:
                self.progress.merge(snapshot)
                raise
        elif reason == "QUOTA" and self.fatal is not None:
            await self.flush(heartbeat=False)
            await self.source.fail(self.claim, *self.fatal)
        elif reason in ("CANCELED", "EXPIRED"):
            await self.stop_and_finalize(reason)
        elif reason == "SHUTDOWN":
            await self.hand_back()
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
        # Local groups share the pool's helpers; groups sent over the network overlap their
        # round trips, as many at once as the copier has connections for.
        parallel = copier.group_parallelism
        group_slots = GroupSlots(parallel) if parallel else self.group_slots
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
            async with group_slots.turn(members[0].destination_path.rpartition("/")[0]):
                if self.cancel.cancelled:
                    return
                outcomes = await copier.copy_group(members)
            finished = self.clock.now()  # one time for the group: its rows share the value
            copied = unchanged = 0
            for job, outcome in zip(members, outcomes, strict=True):
                kind = self._note(job, outcome, options, finished)
                copied += kind == "done"
                unchanged += kind == "unchanged"
            self._count_successes(copied, unchanged)

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
        kind = self._note(job, outcome, options)
        self._count_successes(kind == "done", kind == "unchanged")

    def _note(
        self,
        job: FileJob,
        outcome: CopyResult | FileFailed | Canceled,
        options: TransferOptions,
        finished: datetime | None = None,
    ) -> str | None:
        """Buffer one file's outcome; ``finished``: when it was done (now if not given).
        A failure is counted here; a success is only reported ("done" or "unchanged") for
        ``_count_successes``, which a group calls once for all its files."""
        progress = self.progress
        if isinstance(outcome, Canceled):
            return None
        if isinstance(outcome, FileFailed):
            if outcome.quota and options.fail_on_quota_errors:
                self.fatal = (outcome.code, outcome.message)
                self.cancel.cancel("QUOTA")
            skipped = options.skip_source_errors and outcome.source_side and not outcome.quota
            progress.file_done(
                job,
                "skipped" if skipped else "failed",
                error_code=outcome.code,
                error_message=outcome.message,
                done_time=finished,
            )
            progress.add(
                subtasks_pending=-1,
                subtasks_skipped_errors=1 if skipped else 0,
                subtasks_failed=0 if skipped else 1,
            )
            progress.event(
                event_code(outcome.code), outcome.message, job.source_path, is_error=True
            )
            return None
        if outcome.status == "skipped":
            progress.file_done(job, "unchanged", done_time=finished)
            return "unchanged"
        progress.file_done(
            job,
            "done",
            checksum=outcome.checksum,
            checksum_algorithm=outcome.algorithm.upper() if outcome.algorithm else None,
            done_time=finished,
        )
        return "done"

    def _count_successes(self, copied: int, unchanged: int) -> None:
        """Count files copied, and files found current (the sync level), as succeeded."""
        if not (copied or unchanged):
            return
        progress = self.progress
        progress.add(
            subtasks_pending=-(copied + unchanged),
            subtasks_succeeded=copied + unchanged,
            files_transferred=copied,
            files_skipped=unchanged,
        )
        if progress.nice_status not in (None, "OK"):
            progress.nice_status = "OK"


# Small files per offloaded call: enough to make the hand-off negligible, few enough that a
# cancel waits for little (250 files of 4 KiB: about 15 ms in a helper). Each group costs the
# worker's event loop a round trip through the process pool; 250 instead of 100 took a
# 20,000-file copy from 1.65-1.67 s to 1.55-1.56 s (alternating runs, medians of 9-11).
GROUP_FILES = 250
GROUP_BYTES = 32 << 20


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
