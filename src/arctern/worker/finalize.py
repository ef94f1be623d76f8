"""Ending tasks: success, failure, cancel and expiry, as conditional database updates.

Every status change is a conditional UPDATE on an ACTIVE/INACTIVE task, so concurrent
finalizers (the last job of a task, the reaper, a cancel) agree and finished tasks are never
touched again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, insert, select, update

from arctern.connectors.base import Connector, WriteState
from arctern.connectors.errors import ConnectorError
from arctern.context import AppContext
from arctern.db.models.transfer import Collection, Task, TaskEvent
from arctern.db.models.work import TaskFile, TaskPlan, WorkBatch
from arctern.notify.messages import task_ended
from arctern.worker.progress import event_code

ConnectorFactory = Callable[[str, str, dict[str, Any]], Connector]


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
        await task_ended(session, ctx.settings, task_id, now)
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
        # Files still to copy: most have no row (``worker/batch_files.py``), but every one is
        # counted pending, in the same transactions that plan and finish files.
        count = int(
            await session.scalar(select(Task.subtasks_pending).where(Task.id == task_id)) or 0
        )
        await session.execute(
            update(TaskFile)
            .where(TaskFile.task_id == task_id, TaskFile.state == "pending")
            .values(state="canceled", done_time=now, write_state=None, bytes_done=0)
            .execution_options(synchronize_session=False)
        )
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
        await task_ended(session, ctx.settings, task_id, now)
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
