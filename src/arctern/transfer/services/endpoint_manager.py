"""The Transfer API's ``endpoint_manager`` family: what endpoint administrators see and do
with other users' tasks on their endpoints and collections (``roles``): monitored
endpoints, the tasks touching them, a task and its events, and cancelling tasks.

A task is visible when its source or destination is a collection the caller monitors
(``activity_monitor`` and up); cancelling needs ``activity_manager`` or ``administrator``
on one of them. A task the caller may not see is answered as an unknown one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.context import NEW_WORK_TOPIC, TASKS_STOPPING_TOPIC, AppContext
from arctern.db.engine import mark_changed
from arctern.db.holds import held_tasks
from arctern.db.models.transfer import AclRule, Collection, Task, TaskEvent
from arctern.db.models.work import TaskFile
from arctern.errors import NotFound
from arctern.transfer.filters import bad_request
from arctern.transfer.services.common import Caller, endpoint_not_found, load_collection
from arctern.transfer.services.roles import (
    MANAGE_ACTIVITY,
    monitored_collection_ids,
    roles_on,
)
from arctern.transfer.services.tasks import (
    STATUSES,
    TaskView,
    event_page,
    file_record_page,
    task_names,
    task_not_found,
)

MAX_CANCEL = 1000


async def monitored_collections(ctx: AppContext, caller: Caller) -> list[Collection]:
    async with ctx.db.session() as session:
        ids = await monitored_collection_ids(session, caller)
        if not ids:
            return []
        return list(
            await session.scalars(
                select(Collection)
                .where(Collection.id.in_(ids), Collection.deleted_at.is_(None))
                .order_by(Collection.display_name)
            )
        )


def _touches(ids: set[uuid.UUID]) -> ColumnElement[bool]:
    return or_(Task.source_endpoint_id.in_(ids), Task.destination_endpoint_id.in_(ids))


async def task_list(
    ctx: AppContext,
    caller: Caller,
    *,
    endpoints: list[str],
    statuses: list[str],
    limit: int,
    offset: int,
) -> tuple[list[TaskView], int]:
    """Tasks on the caller's monitored collections, newest first."""
    for status in statuses:
        if status not in STATUSES:
            raise bad_request(f"Invalid filter_status '{status}'")
    async with ctx.db.session() as session:
        ids = await monitored_collection_ids(session, caller)
        if endpoints:
            wanted = set()
            for raw in endpoints:
                try:
                    wanted.add(uuid.UUID(raw))
                except ValueError:
                    raise bad_request(f"Invalid filter_endpoint '{raw}'") from None
            ids &= wanted
        if not ids:
            return [], 0
        condition = _touches(ids)
        if statuses:
            condition = condition & Task.status.in_(statuses)
        total = await session.scalar(select(func.count()).select_from(Task).where(condition))
        rows = list(
            await session.scalars(
                select(Task)
                .where(condition)
                .order_by(Task.request_time.desc(), Task.id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
        return await _views(session, rows, ctx.clock.now()), int(total or 0)


async def _views(session: AsyncSession, rows: list[Task], now: datetime) -> list[TaskView]:
    endpoint_names, owners = await task_names(session, rows)
    held = await held_tasks(session, rows, now)
    return [TaskView(t, owners.get(t.owner_id, ""), endpoint_names, t.id in held) for t in rows]


async def _monitored_task(
    session: AsyncSession,
    caller: Caller,
    task_id: object,
    monitored: set[uuid.UUID] | None = None,
) -> Task:
    """The task, when it touches a collection the caller monitors (``monitored``: those
    collections, when the caller looked them up already)."""
    try:
        key = uuid.UUID(str(task_id))
    except ValueError:
        raise task_not_found(task_id) from None
    task = await session.get(Task, key, populate_existing=True)
    if task is None:
        raise task_not_found(task_id)
    ids = monitored if monitored is not None else await monitored_collection_ids(session, caller)
    if task.source_endpoint_id not in ids and task.destination_endpoint_id not in ids:
        raise task_not_found(task_id)
    return task


async def task_file_records(
    ctx: AppContext, caller: Caller, task_id: object, *, state: str, marker: int | None
) -> tuple[list[TaskFile], int | None]:
    async with ctx.db.session() as session:
        task = await _monitored_task(session, caller, task_id)
        return await file_record_page(session, task, state=state, marker=marker)


async def monitored_collection(ctx: AppContext, caller: Caller, endpoint_id: str) -> Collection:
    """A collection the caller monitors, by id (as an unknown one otherwise)."""
    async with ctx.db.session() as session:
        try:
            collection = await load_collection(session, endpoint_id)
        except NotFound:
            raise endpoint_not_found(endpoint_id) from None
        if collection.id not in await monitored_collection_ids(session, caller):
            raise endpoint_not_found(endpoint_id)
        return collection


async def hosted_guests(ctx: AppContext, caller: Caller, endpoint_id: str) -> list[Collection]:
    """The guest collections in a mapped collection the caller monitors, whoever made them."""
    mapped = await monitored_collection(ctx, caller, endpoint_id)
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(Collection)
                .where(
                    Collection.mapped_collection_id == mapped.id, Collection.deleted_at.is_(None)
                )
                .order_by(Collection.display_name)
            )
        )


async def access_rules(ctx: AppContext, caller: Caller, endpoint_id: str) -> list[AclRule]:
    """A monitored collection's access rules (what its guests were given)."""
    collection = await monitored_collection(ctx, caller, endpoint_id)
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(AclRule)
                .where(AclRule.collection_id == collection.id)
                .order_by(AclRule.created_at, AclRule.path)
            )
        )


async def get_task(ctx: AppContext, caller: Caller, task_id: object) -> TaskView:
    async with ctx.db.session() as session:
        task = await _monitored_task(session, caller, task_id)
        return (await _views(session, [task], ctx.clock.now()))[0]


async def task_events(
    ctx: AppContext, caller: Caller, task_id: object, *, limit: int, offset: int
) -> tuple[list[TaskEvent], int]:
    async with ctx.db.session() as session:
        task = await _monitored_task(session, caller, task_id)
        return await event_page(session, TaskEvent.task_id == task.id, limit=limit, offset=offset)


@dataclass
class AdminCancel:
    id: uuid.UUID
    message: str
    task_ids: list[str]
    canceled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def document(self, now: str) -> dict[str, Any]:
        return {
            "DATA_TYPE": "admin_cancel",
            "id": str(self.id),
            "done": True,
            "start_time": now,
            "message": self.message,
            "task_id_list": self.task_ids,
            "processed_task_id_list": self.canceled + self.skipped,
            "canceled_task_id_list": self.canceled,
        }


async def cancel_tasks(
    ctx: AppContext, caller: Caller, task_ids: object, message: object
) -> AdminCancel:
    """Ask the workers to stop each task the caller manages the activity of (others, and
    tasks already finished, are skipped); the owners see the administrator's message."""
    if not isinstance(task_ids, list) or not task_ids or len(task_ids) > MAX_CANCEL:
        raise bad_request(f"task_id_list must list 1 to {MAX_CANCEL} task ids")
    if not isinstance(message, str) or not message.strip():
        raise bad_request("An admin cancel needs a message for the tasks' owners")
    outcome = AdminCancel(uuid.uuid4(), message.strip()[:2048], [str(t) for t in task_ids])
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        monitored = await monitored_collection_ids(session, caller)
        for raw in outcome.task_ids:
            task = await _monitored_task(session, caller, raw, monitored)
            allowed = await _manages(session, caller, task)
            if not allowed or task.status not in ("ACTIVE", "INACTIVE"):
                outcome.skipped.append(raw)
                continue
            task.cancel_requested = True
            mark_changed(session, TASKS_STOPPING_TOPIC)
            session.add(
                TaskEvent(
                    task_id=task.id,
                    time=now,
                    code="CANCELED_BY_ADMIN",
                    description=f"canceled by an administrator ({caller.username})",
                    details=outcome.message,
                    is_error=False,
                )
            )
            outcome.canceled.append(raw)
    return outcome


async def pause_tasks(
    ctx: AppContext, caller: Caller, task_ids: object, message: object | None, *, pause: bool
) -> tuple[list[str], list[str]]:
    """Hold (or release) tasks the caller manages the activity of: workers start no new
    batch of a held task; its owner sees the message in ``task_pause_info``. Returns the
    task ids changed and those skipped."""
    if not isinstance(task_ids, list) or not task_ids or len(task_ids) > MAX_CANCEL:
        raise bad_request(f"task_id_list must list 1 to {MAX_CANCEL} task ids")
    if pause and (not isinstance(message, str) or not message.strip()):
        raise bad_request("An admin pause needs a message for the tasks' owners")
    changed: list[str] = []
    skipped: list[str] = []
    async with ctx.db.session() as session:
        monitored = await monitored_collection_ids(session, caller)
        for raw in [str(t) for t in task_ids]:
            task = await _monitored_task(session, caller, raw, monitored)
            if task.status not in ("ACTIVE", "INACTIVE") or not await _manages(
                session, caller, task
            ):
                skipped.append(raw)
                continue
            task.admin_pause_message = str(message).strip()[:2048] if pause else None
            changed.append(raw)
        if changed and not pause:
            mark_changed(session, NEW_WORK_TOPIC)
    return changed, skipped


async def _manages(session: AsyncSession, caller: Caller, task: Task) -> bool:
    for collection_id in (task.source_endpoint_id, task.destination_endpoint_id):
        collection = await session.get(Collection, collection_id) if collection_id else None
        if collection is not None and (await roles_on(session, caller, collection)) & (
            MANAGE_ACTIVITY
        ):
            return True
    return False
