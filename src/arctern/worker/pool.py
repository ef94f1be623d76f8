"""A pool of worker loops inside one process (embedded in serve, or ``arctern worker``).

One dispatcher claims leased work (planning first, so new tasks start at once, then file
batches) whenever a slot is free and polls every ``poll_interval`` when idle; a reaper
finalizes tasks nobody holds: canceled, expired, or complete but not yet marked so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select

from arctern.clock import Clock
from arctern.config import Settings
from arctern.connect.central_data import DataListener
from arctern.connect.endpoints import mark_agent_presence
from arctern.connect.work import central_peer_views
from arctern.connectors.base import Connector
from arctern.connectors.registry import open_connector
from arctern.context import NEW_WORK_TOPIC, TASKS_STOPPING_TOPIC, AppContext
from arctern.db.models.transfer import Task
from arctern.db.models.work import TaskPlan, WorkBatch
from arctern.engine.errors import CancelToken
from arctern.engine.offload import ThreadOffload
from arctern.worker import leases
from arctern.worker.executor import BatchJob, ConnectorFactory, Job, PlanJob, WorkerConfig
from arctern.worker.finalize import finalize_if_complete, finalize_stopped
from arctern.worker.group_slots import GroupSlots
from arctern.worker.leases import Claim
from arctern.worker.processes import ProcessOffload
from arctern.worker.scheduled import ScheduledWork
from arctern.worker.source import DatabaseWorkSource, WorkSource

log = logging.getLogger("arctern.worker")

# The longest idle pause of a pool that may not hear of new work (a stand-alone worker on
# SQLite: announcements do not cross processes there).
UNHEARD_IDLE_SECONDS = 2.0

# A job that crashed this often (not a storage error: a bug or a poisoned record) fails its task.
MAX_JOB_ATTEMPTS = 5


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def connector_factory_for(ctx: AppContext) -> ConnectorFactory:
    """Opens collections' connectors: stored secrets decrypted, faults injected if configured."""
    settings = ctx.settings

    def factory(kind: str, root: str, options: dict[str, Any]) -> Connector:
        if kind == "remote":  # a Connect agent's collection, over the data channel
            from arctern.connect.remote_connector import RemoteConnector

            return RemoteConnector.from_options(options)
        if kind == "agent":
            # A Connect agent's collection (root is the collection id): relayed operations.
            from arctern.connect.agent_connector import AgentConnector

            return AgentConnector(ctx, uuid.UUID(root))
        if kind == "s3":
            from arctern.connectors.s3.secrets import decrypt_options

            options = decrypt_options(options, settings.secret_key or "")
        return open_connector(kind, root, options, fault_injection=settings.fault_injection)

    return factory


class WorkerPool:
    """Runs up to ``concurrency`` leased jobs at a time until stopped."""

    def __init__(
        self,
        ctx: AppContext | None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        concurrency: int | None = None,
        name: str | None = None,
        connector_factory: ConnectorFactory | None = None,
        poll_interval: float = 0.2,
        reaper_interval: float = 0.5,
        idle_interval: float | None = None,
        config: WorkerConfig | None = None,
        crash_retry_delay: float = 2.0,
        source: WorkSource | None = None,
    ) -> None:
        # Without ``ctx`` (a Connect agent: no database) the pool runs what ``source``
        # leases, with ``settings`` and ``clock``, and has no reaper: the deployment's own
        # workers finalize the tasks nobody holds.
        if ctx is not None:
            settings, clock = ctx.settings, ctx.clock
        if settings is None or clock is None:
            raise ValueError("a pool without a context needs settings and a clock")
        if ctx is None and (source is None or connector_factory is None):
            raise ValueError("a pool without a context needs a work source and connectors")
        self.ctx = ctx
        self.clock = clock
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        worker_name = name or settings.worker_name or default_worker_name()
        self.config = config or WorkerConfig(
            name=worker_name,
            lease=timedelta(seconds=settings.lease_seconds),
            flush_seconds=settings.progress_flush_seconds,
            batch_files=settings.worker_batch_files,
            limits=leases.Limits(
                per_user=settings.max_active_batches_per_user,
                per_collection=settings.max_active_batches_per_collection,
            ),
        )
        self.name = self.config.name
        if connector_factory is None:
            assert ctx is not None
            connector_factory = connector_factory_for(ctx)
        self.factory = connector_factory
        if source is None:
            assert ctx is not None
            source = DatabaseWorkSource(
                ctx,
                worker=self.name,
                lease=self.config.lease,
                limits=self.config.limits,
                factory=self.factory,
                crash_retry_delay=crash_retry_delay,
                max_job_attempts=MAX_JOB_ATTEMPTS,
                peer_views=central_peer_views(ctx),
            )
        self.source: WorkSource = source
        self.poll_interval = poll_interval
        # An idle pool asks less and less often, up to ``idle_interval``: an idle worker
        # costs next to no CPU, and a wake-up (work announced to this process) or any work
        # found brings the pace back at once. Only a pool that hears every announcement can
        # afford a long pause: by default a pool on PostgreSQL (NOTIFY reaches every
        # process); the API passes the long pause to its embedded pool, where work is
        # submitted, on SQLite too.
        if idle_interval is None:
            idle_interval = (
                settings.worker_idle_seconds
                if ctx is not None and not ctx.db.is_sqlite
                else min(settings.worker_idle_seconds, UNHEARD_IDLE_SECONDS)
            )
        self.idle_interval = max(idle_interval, poll_interval, reaper_interval)
        self.reaper_interval = reaper_interval
        self.crash_retry_delay = crash_retry_delay
        self._running: dict[asyncio.Task[None], CancelToken] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._reap_now = asyncio.Event()
        processes = settings.worker_copy_processes
        self._offload: ProcessOffload | ThreadOffload = (
            ProcessOffload(processes) if processes > 0 else ThreadOffload()
        )
        # As many groups of small files at once as there are helpers to copy them.
        self._group_slots = GroupSlots(processes)
        # Agents that do not listen connect here for their transfers with central storage.
        self.data_listener = (
            DataListener(ctx, self.factory, self.name, settings.data_listen)
            if ctx is not None and settings.data_listen
            else None
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        self._tasks = [asyncio.create_task(self._dispatch(), name=f"{self.name}-dispatch")]
        if self.ctx is not None:
            self.ctx.db.subscribe(NEW_WORK_TOPIC, self.wake)
            self.ctx.db.subscribe(TASKS_STOPPING_TOPIC, self.reap_soon)
            self._tasks.append(asyncio.create_task(self._reap(), name=f"{self.name}-reaper"))
            scheduled = ScheduledWork(self.ctx, self._stopping)
            self._tasks.append(asyncio.create_task(scheduled.run(), name=f"{self.name}-scheduled"))
        if self.data_listener is not None:
            await self.data_listener.start()

    def wake(self) -> None:
        """Claim now instead of at the next poll (e.g. right after a submission)."""
        self._wake.set()

    def reap_soon(self) -> None:
        """Run the reaper now (a task was asked to stop)."""
        self._reap_now.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Drain: stop claiming, let jobs persist progress and hand their leases back."""
        if self.ctx is not None:
            self.ctx.db.unsubscribe(NEW_WORK_TOPIC, self.wake)
            self.ctx.db.unsubscribe(TASKS_STOPPING_TOPIC, self.reap_soon)
        self._stopping.set()
        self._wake.set()
        for token in self._running.values():
            token.cancel("SHUTDOWN")
        jobs = list(self._running)
        if jobs:
            _done, pending = await asyncio.wait(jobs, timeout=timeout)
            for job in pending:
                job.cancel()
        await self._cancel_loops()
        with contextlib.suppress(Exception):  # else the lease runs out, as after a crash
            await self.source.hand_back_ahead()
        await self._stop_helpers()
        if self.data_listener is not None:
            await self.data_listener.stop()

    async def _stop_helpers(self) -> None:
        if isinstance(self._offload, ProcessOffload):
            await asyncio.to_thread(self._offload.shutdown)

    async def abort(self) -> None:
        """Stop dead, as a crash would: no flush, no lease release (tests of takeover)."""
        self._stopping.set()
        for job in list(self._running):
            job.cancel()
        for job in list(self._running):
            with contextlib.suppress(BaseException):
                await job
        await self._cancel_loops()
        await self._stop_helpers()
        if self.data_listener is not None:
            await self.data_listener.close()

    async def _cancel_loops(self) -> None:
        for loop_task in self._tasks:
            loop_task.cancel()
        for loop_task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
        self._tasks = []

    @property
    def busy(self) -> int:
        return len(self._running)

    # -- dispatching ----------------------------------------------------------------------

    async def _dispatch(self) -> None:
        pause = self.poll_interval
        while not self._stopping.is_set():
            if not self._has_room():
                await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
                continue
            # Cleared before claiming: a wake-up that arrives during the claim is kept.
            self._wake.clear()
            try:
                claim = await self._claim()
            except Exception:
                log.exception("claiming work failed")
                claim = None
            if claim is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)
                woken = self._wake.is_set()
                pause = self.poll_interval if woken else min(pause * 2, self.idle_interval)
                continue
            pause = self.poll_interval
            if self._stopping.is_set():  # stop() began while claiming: hand it back
                await self.source.release(claim)
                return
            self._launch(claim)

    def _has_room(self) -> bool:
        """Whether another job may run now."""
        return len(self._running) < self.concurrency

    async def _claim(self) -> Claim | None:
        return await self.source.claim()

    def _launch(self, claim: Claim) -> None:
        token = CancelToken()
        job: Job
        if claim.kind == "plan":
            # Its batches will want the helpers: start them while the plan walks.
            self._offload.warm()
            job = PlanJob(self.clock, self.config, claim, self.source, self.factory, token)
            job.on_new_work = self.wake
            job.has_room = self._has_room
        else:
            job = BatchJob(
                self.clock,
                self.config,
                claim,
                self.source,
                self.factory,
                token,
                group_slots=self._group_slots,
                offload=self._offload,
            )
            job.lease_next_on_finish = not self._stopping.is_set()
        runner = asyncio.create_task(self._run_job(job), name=f"{self.name}-{claim.kind}")
        self._running[runner] = token
        runner.add_done_callback(self._finished)

    def _finished(self, runner: asyncio.Task[None]) -> None:
        self._running.pop(runner, None)
        self._wake.set()  # a slot is free, and the job may have produced more work

    async def _run_job(self, job: Job) -> None:
        try:
            await job.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s of task %s failed", job.claim.kind, job.claim.task_id)
            try:
                await self.source.crashed(job.claim, str(exc))
            except Exception:
                log.exception("could not record the failure of task %s", job.claim.task_id)

    # -- reaping --------------------------------------------------------------------------

    async def _reap(self) -> None:
        pause = self.reaper_interval
        while not self._stopping.is_set():
            self._reap_now.clear()  # before the pass: a wake-up during it is kept
            busy = True
            try:
                busy = await self.reap_once() or bool(self._running)
            except Exception:
                log.exception("reaper pass failed")
            pause = self.reaper_interval if busy else min(pause * 2, self.idle_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reap_now.wait(), pause)
            if self._reap_now.is_set():
                pause = self.reaper_interval

    async def reap_once(self) -> bool:
        """One pass; whether it found anything to do (the reaper slows down while not)."""
        assert self.ctx is not None
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            stopping = list(
                (
                    await session.execute(
                        select(Task.id, Task.cancel_requested).where(
                            Task.status.in_(("ACTIVE", "INACTIVE")),
                            or_(Task.cancel_requested.is_(True), Task.deadline <= now),
                        )
                    )
                ).all()
            )
            stalled = list(
                await session.scalars(
                    select(Task.id)
                    .where(Task.status == "ACTIVE", Task.planned.is_(True))
                    .where(
                        ~select(WorkBatch.id)
                        .where(WorkBatch.task_id == Task.id, WorkBatch.state != "done")
                        .exists()
                    )
                    .where(
                        ~select(TaskPlan.task_id)
                        .where(TaskPlan.task_id == Task.id, TaskPlan.done.is_(False))
                        .exists()
                    )
                    .limit(50)
                )
            )
        async with self.ctx.db.session() as session:
            marked = await mark_agent_presence(session, now)
        for task_id, cancel_requested in stopping:
            async with self.ctx.db.session() as session:
                held = await leases.live_lease_exists(session, task_id, now)
            if not held:
                reason = "CANCELED" if cancel_requested else "EXPIRED"
                await finalize_stopped(self.ctx, task_id, reason, self.factory)
        for task_id in stalled:
            await finalize_if_complete(self.ctx, task_id)
        return bool(stopping or stalled or marked)
