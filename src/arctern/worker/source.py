"""Where a worker pool obtains its work and reports on it: the seam between engine and queue.

A job (``executor.PlanJob`` / ``BatchJob``) never touches the database itself: it reads its
task, plan and files, heartbeats, commits plan output and ends its task through a work
source. ``DatabaseWorkSource`` is the queue as ``arctern worker`` and the pool embedded in
``serve`` see it: statements on the shared database, restricted to the work their storage can
reach (``leases.Scope``). A Connect agent, which never sees the database, runs the very same
jobs through ``connect.agent.work_source.HttpWorkSource``, whose server side
(``connect.work``) is this class again, under the agent's lease owner name.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, select, update

from arctern.connectors.access import AccessGuard
from arctern.connectors.base import WriteState
from arctern.context import NEW_WORK_TOPIC, AppContext
from arctern.db.engine import mark_changed
from arctern.db.gateways import CredentialRequired, storage_options
from arctern.db.grants import access_guard, applicable_rules, guard_from_rules
from arctern.db.models.transfer import Collection, Task, TaskItem
from arctern.db.models.work import TaskFile, TaskPlan, WorkBatch
from arctern.engine.copier import Resume
from arctern.engine.errors import Canceled, FileFailed
from arctern.engine.options import FileJob, ItemSpec
from arctern.worker import batch_files, leases
from arctern.worker.finalize import (
    ConnectorFactory,
    fail_task,
    finalize_if_complete,
    finalize_stopped,
)
from arctern.worker.leases import Claim
from arctern.worker.progress import TaskProgress

FINISHED = ("SUCCEEDED", "FAILED")
# A job leased along with a plan commit is run if the pool claims within this long (a small
# share of any lease), else handed back.
NEXT_CLAIM_FRESH_SECONDS = 5.0
# Files of batches this process planned, kept for their first lease (``PlannedBatches``).
PLANNED_FILES_KEPT = 100_000


class PlannedBatches:
    """The files of the batches this process planned most recently, at most ``max_files``.

    A batch leased for the first time by this process's pool starts from them instead of
    reading its list back and decoding it (for 20,000 small files, a twentieth of the
    worker's time). Only a first lease may: after any other, a holder before may have
    copied files, and the rows say which. The oldest are dropped first; a batch another
    worker leased is simply never taken.
    """

    def __init__(self, max_files: int = PLANNED_FILES_KEPT) -> None:
        self.max_files = max_files
        self._batches: dict[int, list[FileJob]] = {}
        self._files = 0

    def keep(self, batch_id: int, jobs: list[FileJob]) -> None:
        self._batches[batch_id] = jobs
        self._files += len(jobs)
        while self._files > self.max_files:
            oldest = next(iter(self._batches))
            self._files -= len(self._batches.pop(oldest))

    def take(self, claim: Claim) -> list[FileJob] | None:
        """The files of ``claim``'s batch if kept and this is its first lease; either way
        they are kept no longer."""
        jobs = self.drop(claim.batch_id)
        return jobs if claim.first_lease else None

    def drop(self, batch_id: int | None) -> list[FileJob] | None:
        """Keep the files of ``batch_id`` no longer; those files, if they were kept."""
        jobs = self._batches.pop(batch_id or 0, None)
        if jobs is not None:
            self._files -= len(jobs)
        return jobs


class LeasedAhead:
    """The job a work source leased along with a plan commit, for the pool's next claim.

    At most one is kept. ``pop`` says whether it is still fresh: one the pool did not take up
    within ``NEXT_CLAIM_FRESH_SECONDS`` (it stayed full) is to be handed back rather than
    started on a lease that may be running out.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._kept: tuple[Claim, float] | None = None

    @property
    def kept(self) -> bool:
        return self._kept is not None

    def keep(self, claim: Claim) -> None:
        self._kept = (claim, self._monotonic())

    def pop(self) -> tuple[Claim, bool] | None:
        """The job kept, if any, and whether it is fresh; nothing is kept afterwards."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        claim, leased_at = kept
        return claim, self._monotonic() - leased_at < NEXT_CLAIM_FRESH_SECONDS


@dataclass(frozen=True)
class TaskView:
    """What a job needs to know of its task."""

    id: uuid.UUID
    type: str
    status: str
    options: dict[str, Any]
    owner_id: uuid.UUID
    source_endpoint_id: uuid.UUID
    destination_endpoint_id: uuid.UUID | None


@dataclass(frozen=True)
class PlanView:
    """Where planning stands (resumed from ``item_index``/``entries_done``) and the items."""

    item_index: int
    entries_done: int
    attempts: int
    items: list[ItemSpec]


@dataclass(frozen=True)
class CollectionView:
    id: uuid.UUID
    connector: str
    root: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Collections:
    """The task's collections and, where its owner is not theirs, the owner's grants."""

    source: CollectionView
    destination: CollectionView | None
    source_guard: AccessGuard | None
    destination_guard: AccessGuard | None


@dataclass(frozen=True)
class Beat:
    """A heartbeat's answer: whether the job must stop, and its owner's grants as they are."""

    finished: bool = False
    cancel_requested: bool = False
    expired: bool = False
    lease_kept: bool = True
    grants: dict[uuid.UUID, AccessGuard] = field(default_factory=dict)

    @property
    def stop_reason(self) -> str | None:
        if self.finished:
            return "FINISHED"
        if not self.lease_kept:  # another worker owns the outcome now
            return "LEASE_LOST"
        if self.cancel_requested:
            return "CANCELED"
        if self.expired:
            return "EXPIRED"
        return None


@dataclass(frozen=True)
class PlanErrorRow:
    """A path the planner could not handle, recorded as a failed (or skipped) file."""

    source_path: str
    destination_path: str
    code: str
    message: str
    is_directory: bool
    skipped: bool


@dataclass
class PlanCommit:
    """Planner output made durable at once, with the position to resume from."""

    item_index: int
    entries_done: int
    final: bool
    batches: list[list[FileJob]] = field(default_factory=list)
    errors: list[PlanErrorRow] = field(default_factory=list)
    # What its entries add to the task's counters and events: they travel with the commit
    # (``worker.executor.PlanJob``), never with a heartbeat that might reach the deployment
    # after the final commit has handed the plan's lease in, and be dropped there.
    counted: TaskProgress | None = field(default=None, compare=False, repr=False)


class WorkSource(Protocol):
    async def claim(self) -> Claim | None:
        """The next job leased to this worker (planning first), or None when there is none."""

    async def release(self, claim: Claim) -> None:
        """Hand a lease back at once (drain): another worker need not wait for its expiry."""

    async def hand_back_ahead(self) -> None:
        """The pool is stopping: hand back what was leased ahead and not claimed yet."""

    async def load_task(self, claim: Claim) -> TaskView | None: ...

    async def load_plan(self, claim: Claim) -> PlanView | None: ...

    async def load_batch(self, claim: Claim) -> list[tuple[FileJob, Resume | None]]:
        """The batch's files still to copy, with their resume points."""

    async def collections(self, claim: Claim, task: TaskView) -> Collections:
        """Raises ``FileFailed`` (ENDPOINT_ERROR) when a collection no longer exists."""

    async def beat(
        self,
        claim: Claim,
        progress: TaskProgress | None,
        *,
        extend: bool,
        guarded: Sequence[uuid.UUID],
    ) -> Beat:
        """Write ``progress`` (dropped if the task is finished), extend the lease if asked, and
        read cancel/deadline and the owner's grants on the ``guarded`` collections."""

    async def commit_plan(
        self,
        claim: Claim,
        commit: PlanCommit,
        progress: TaskProgress | None,
        *,
        lease_next: bool = False,
    ) -> None:
        """Raises ``Canceled`` (FINISHED / LEASE_LOST) when the plan is no longer ours.

        ``lease_next``: the caller's pool has room for another job. A source may lease it in
        the same call (its next ``claim`` returns it): for an agent a round trip less, for
        the database a claim less and, when it is a batch just planned, no rows read back."""

    async def finish_batch(
        self, claim: Claim, progress: TaskProgress | None, *, lease_next: bool = False
    ) -> None:
        """The batch is copied: write its last progress, mark it done, finalize if complete.

        ``lease_next``: as for ``commit_plan``; the job's place in its pool frees with this
        call, so a source may lease the pool's next job in the same call."""

    async def finalize(self, claim: Claim) -> None:
        """SUCCEEDED/FAILED if nothing of the task is outstanding."""

    async def fail(self, claim: Claim, code: str, message: str) -> None: ...

    async def stop(self, claim: Claim, reason: str) -> None:
        """Cancel or expiry seen by a job: hand in the lease; the last one out finalizes."""

    async def crashed(self, claim: Claim, message: str) -> None:
        """The job crashed (a bug, not a storage error): retry soon, or fail the task."""


# How a worker opens collections other than the deployment's own (set for central workers:
# an agent's collection through the data channel).
PeerViews = Callable[[TaskView, Collections], Awaitable[Collections]]


class DatabaseWorkSource:
    """Leases from, and reports to, the shared database within ``scope``."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        worker: str,
        lease: timedelta,
        limits: leases.Limits,
        factory: ConnectorFactory | None = None,
        scope: leases.Scope = leases.CENTRAL,
        crash_retry_delay: float = 2.0,
        max_job_attempts: int = 5,
        peer_views: PeerViews | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.worker = worker
        self.lease = lease
        self.limits = limits
        self.factory = factory
        self.scope = scope
        self.crash_retry_delay = crash_retry_delay
        self.max_job_attempts = max_job_attempts
        self.peer_views = peer_views
        # A batch leased with a plan commit: the next ``claim`` returns it.
        self._ahead = LeasedAhead(monotonic)
        # The files of batches planned here: a first lease takes them from here instead of
        # reading its batch back.
        self._planned = PlannedBatches()

    # -- leases ---------------------------------------------------------------------------

    async def claim(self) -> Claim | None:
        ahead = self._ahead.pop()
        if ahead is not None:
            leased, fresh = ahead
            if fresh:
                return leased
            await self.release(leased)  # the pool was full for a while: not this lease
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            await leases.adopt_new_tasks(session, now)
        async with self.ctx.db.session() as session:
            claim = await leases.claim_plan(session, self.worker, now, self.lease, self.scope)
            if claim is None:
                claim = await leases.claim_batch(
                    session, self.worker, now, self.lease, self.limits, self.scope
                )
        return claim

    async def release(self, claim: Claim) -> None:
        # Whoever takes the batch next may have copied part of it: its rows are the truth.
        self._planned.drop(claim.batch_id)
        async with self.ctx.db.session() as session:
            await leases.release(session, claim, self.worker)
            mark_changed(session, NEW_WORK_TOPIC)

    async def hand_back_ahead(self) -> None:
        ahead = self._ahead.pop()
        if ahead is not None:
            await self.release(ahead[0])

    async def holds(self, claim: Claim) -> bool:
        """Whether this worker holds ``claim``'s lease now (the agent API checks every call)."""
        statement: Any
        if claim.kind == "plan":
            statement = select(TaskPlan.lease_owner, TaskPlan.lease_expires).where(
                TaskPlan.task_id == claim.task_id
            )
        else:
            statement = select(WorkBatch.lease_owner, WorkBatch.lease_expires).where(
                WorkBatch.id == claim.batch_id, WorkBatch.task_id == claim.task_id
            )
        async with self.ctx.db.session() as session:
            row = (await session.execute(statement)).first()
        return (
            row is not None
            and row.lease_owner == self.worker
            and row.lease_expires is not None
            and row.lease_expires > self.ctx.clock.now()
        )

    # -- reading ----------------------------------------------------------------------------

    async def load_task(self, claim: Claim) -> TaskView | None:
        async with self.ctx.db.session() as session:
            task = await session.get(Task, claim.task_id)
        if task is None:
            return None
        return TaskView(
            id=task.id,
            type=task.type,
            status=task.status,
            options=dict(task.options or {}),
            owner_id=task.owner_id,
            source_endpoint_id=task.source_endpoint_id,
            destination_endpoint_id=task.destination_endpoint_id,
        )

    async def load_plan(self, claim: Claim) -> PlanView | None:
        async with self.ctx.db.session() as session:
            plan = await session.get(TaskPlan, claim.task_id)
            rows = list(
                await session.scalars(
                    select(TaskItem)
                    .where(TaskItem.task_id == claim.task_id)
                    .order_by(TaskItem.position)
                )
            )
        if plan is None:
            return None
        items = [
            ItemSpec(
                source_path=row.source_path,
                destination_path=row.destination_path or row.source_path,
                recursive=row.recursive,
                external_checksum=row.external_checksum,
                checksum_algorithm=row.checksum_algorithm,
            )
            for row in rows
        ]
        return PlanView(plan.item_index, plan.entries_done, plan.attempts, items)

    async def load_batch(self, claim: Claim) -> list[tuple[FileJob, Resume | None]]:
        planned = self._planned.take(claim)
        if planned is not None:
            return [(job, None) for job in planned]
        assert claim.batch_id is not None
        async with self.ctx.db.session() as session:
            listed = await batch_files.jobs_with_rows(session, claim.batch_id)
        files: list[tuple[FileJob, Resume | None]] = []
        for job, row in listed:
            if row is None:
                files.append((job, None))
            elif row.state == "pending":  # a large file's resume point
                state = row.write_state
                resume = Resume(row.bytes_done or 0, WriteState(**state)) if state else None
                files.append((job, resume))
        return files

    async def collections(self, claim: Claim, task: TaskView) -> Collections:
        now = self.ctx.clock.now()
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

            async def view(collection: Collection) -> CollectionView:
                # The owner's own storage credential where the gateway requires one.
                try:
                    options = await storage_options(session, collection, task.owner_id)
                except CredentialRequired as exc:
                    raise FileFailed("PERMISSION_DENIED", exc.message) from None
                return CollectionView(collection.id, collection.connector, collection.root, options)

            found = Collections(
                await view(src), await view(dst) if dst else None, src_guard, dst_guard
            )
        return await self.peer_views(task, found) if self.peer_views else found

    # -- reporting --------------------------------------------------------------------------

    async def beat(
        self,
        claim: Claim,
        progress: TaskProgress | None,
        *,
        extend: bool,
        guarded: Sequence[uuid.UUID],
    ) -> Beat:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            alive = await progress.write(session) if progress is not None else True
            row = (
                await session.execute(
                    select(Task.status, Task.cancel_requested, Task.deadline, Task.owner_id).where(
                        Task.id == claim.task_id
                    )
                )
            ).first()
            if not alive or row is None or row.status in FINISHED:
                return Beat(finished=True)
            grants = {}
            for collection_id in guarded:
                rules = await applicable_rules(session, row.owner_id, collection_id, now)
                grants[collection_id] = guard_from_rules(rules)
            kept = True
            if extend:
                kept = await leases.extend(session, claim, self.worker, now, self.lease)
        return Beat(
            cancel_requested=bool(row.cancel_requested),
            expired=row.deadline is not None and row.deadline <= now,
            lease_kept=kept,
            grants=grants,
        )

    async def commit_plan(
        self,
        claim: Claim,
        commit: PlanCommit,
        progress: TaskProgress | None,
        *,
        lease_next: bool = False,
    ) -> None:
        """Make ``commit`` durable. ``lease_next``: also claim the next batch for this worker
        (the pool has room) in the same transaction. The files of the batches planned stay in
        memory for their first lease here (``PlannedBatches``)."""
        now = self.ctx.clock.now()
        task_id = claim.task_id
        planned: dict[int, list[FileJob]] = {}
        leased: Claim | None = None
        async with self.ctx.db.session() as session:
            status = await session.scalar(select(Task.status).where(Task.id == task_id))
            if status in FINISHED:
                raise Canceled("FINISHED")
            if not await leases.extend(session, claim, self.worker, now, self.lease):
                raise Canceled("LEASE_LOST")
            for group in commit.batches:
                batch_id = await _insert_batch(session, task_id, group)
                planned[batch_id] = batch_files.assign_keys(batch_id, group)
            if commit.batches:
                mark_changed(session, NEW_WORK_TOPIC)
            if commit.errors:
                await _insert_errors(session, task_id, commit.errors, now)
            values: dict[str, Any] = {
                "item_index": commit.item_index,
                "entries_done": commit.entries_done,
            }
            if commit.final:
                values.update(done=True, lease_owner=None, lease_expires=None)
            await session.execute(
                update(TaskPlan).where(TaskPlan.task_id == task_id).values(**values)
            )
            if commit.final:
                await session.execute(update(Task).where(Task.id == task_id).values(planned=True))
            if progress is not None:
                await progress.write(session)
            if lease_next and planned and not self._ahead.kept:
                # Claimed as ``claim`` would (limits and order included), for the pool's
                # next ``claim``.
                leased = await leases.claim_batch(
                    session, self.worker, now, self.lease, self.limits, self.scope
                )
        # Only once durable: a batch id of a transaction rolled back may be given again.
        for batch_id, jobs in planned.items():
            self._planned.keep(batch_id, jobs)
        if leased is not None:
            self._ahead.keep(leased)

    async def finish_batch(
        self, claim: Claim, progress: TaskProgress | None, *, lease_next: bool = False
    ) -> None:
        # ``lease_next`` is not taken up: a claim on the database costs no round trip.
        async with self.ctx.db.session() as session:
            if progress is not None:
                await progress.write(session)
            await session.execute(
                update(WorkBatch)
                .where(WorkBatch.id == claim.batch_id)
                .values(state="done", lease_owner=None, lease_expires=None)
            )
        await finalize_if_complete(self.ctx, claim.task_id)

    async def finalize(self, claim: Claim) -> None:
        await finalize_if_complete(self.ctx, claim.task_id)

    async def fail(self, claim: Claim, code: str, message: str) -> None:
        await fail_task(self.ctx, claim.task_id, code, message, factory=self.factory)

    async def stop(self, claim: Claim, reason: str) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            await leases.finish(session, claim, self.worker)
        async with self.ctx.db.session() as session:
            busy = await leases.live_lease_exists(session, claim.task_id, now)
        if not busy:
            await finalize_stopped(self.ctx, claim.task_id, reason, self.factory)

    async def crashed(self, claim: Claim, message: str) -> None:
        model: Any = TaskPlan if claim.kind == "plan" else WorkBatch
        key = TaskPlan.task_id if claim.kind == "plan" else WorkBatch.id
        ident = claim.task_id if claim.kind == "plan" else claim.batch_id
        async with self.ctx.db.session() as session:
            attempts = await session.scalar(select(model.attempts).where(key == ident))
            if (attempts or 0) < self.max_job_attempts:
                await session.execute(
                    update(model)
                    .where(key == ident, model.lease_owner == self.worker)
                    .values(
                        lease_expires=self.ctx.clock.now()
                        + timedelta(seconds=self.crash_retry_delay)
                    )
                )
                return
        await fail_task(
            self.ctx,
            claim.task_id,
            "UNKNOWN",
            f"the task failed {attempts} times with an internal error: {message}",
            factory=self.factory,
        )


async def _insert_batch(session: Any, task_id: uuid.UUID, group: list[FileJob]) -> int:
    """Insert a work batch listing ``group``; the batch's id."""
    batch_id: int = (
        await session.execute(
            insert(WorkBatch)
            .values(
                task_id=task_id,
                state="pending",
                file_count=len(group),
                byte_count=sum(j.size for j in group),
                attempts=0,
                files=batch_files.files_doc(group),
            )
            .returning(WorkBatch.id)
        )
    ).scalar_one()
    return batch_id


async def _insert_errors(
    session: Any, task_id: uuid.UUID, errors: list[PlanErrorRow], now: datetime
) -> None:
    """Record the planner's ``errors`` as failed (or skipped) files, under ids of a batch of
    their own that is done at once."""
    batch_id: int = (
        await session.execute(
            insert(WorkBatch)
            .values(task_id=task_id, state="done", file_count=0, byte_count=0, attempts=0)
            .returning(WorkBatch.id)
        )
    ).scalar_one()
    await session.execute(
        insert(TaskFile),
        [
            {
                "id": batch_files.file_id(batch_id, index),
                "task_id": task_id,
                "batch_id": None,
                "source_path": e.source_path,
                "destination_path": e.destination_path,
                "size": 0,
                "mtime": 0.0,
                "state": "skipped" if e.skipped else "failed",
                "is_directory": e.is_directory,
                "error_code": e.code,
                "error_message": e.message,
                "done_time": now,
                "bytes_done": 0,
            }
            for index, e in enumerate(errors)
        ],
    )
