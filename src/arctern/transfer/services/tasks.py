"""The caller's tasks: listing, detail, label/deadline updates, cancel, events, file records.

A user only ever sees their own tasks; a foreign task id is indistinguishable from an unknown
one. Task counters and status are written by the worker; cancel sets ``cancel_requested`` and
waits briefly for the worker to finalize the task.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    case,
    false,
    func,
    lambda_stmt,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from arctern.context import TASKS_STOPPING_TOPIC, AppContext
from arctern.db.base import UTCDateTime
from arctern.db.engine import mark_changed
from arctern.db.holds import UNFINISHED, held_tasks, task_held
from arctern.db.models.auth import Identity
from arctern.db.models.transfer import Collection, Task, TaskEvent, TaskItem, TaskRecord
from arctern.db.models.work import TaskFile, WorkBatch
from arctern.errors import ArcternError, NotFound
from arctern.transfer.filters import (
    Clauses,
    bad_request,
    parse_pattern,
    parse_time_range,
)
from arctern.transfer.services.common import Caller, usernames
from arctern.transfer.services.submission import (
    DELETE_BOOLS,
    NOTIFY_BOOLS,
    TRANSFER_BOOLS,
    Submitted,
    deadline_limit,
    parse_deadline,
    submit_delete,
    submit_transfer,
)
from arctern.worker import batch_files

TASK_FILTER_FIELDS = frozenset(
    {"task_id", "type", "status", "label", "request_time", "completion_time"}
)
TASK_ORDER_FIELDS = frozenset(
    {"request_time", "completion_time", "label", "status", "type", "task_id", "deadline"}
)
EVENT_FILTER_FIELDS = frozenset({"is_error", "code"})
STATUSES = ("ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED")
CANCEL_WAIT_SECONDS = 5.0
RECORDS_PAGE = 1000


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task plus the names its document shows."""

    task: TaskRecord
    owner_username: str
    endpoint_names: dict[uuid.UUID, str]
    # A pause rule holds it (``db.holds``); an administrator's own pause is on the task.
    held_by_rule: bool = False


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    code: str  # "Canceled", "CancelAccepted" or "TaskComplete"
    message: str


def task_not_found(task_id: object) -> NotFound:
    return NotFound(f"No task found with id '{task_id}'", code="ClientError.NotFound")


def _label_condition(raw_values: list[str]) -> ColumnElement[bool]:
    positives: list[ColumnElement[bool]] = []
    negatives: list[ColumnElement[bool]] = []
    for raw in raw_values:
        pattern = parse_pattern(raw)
        if pattern.glob:
            like = (
                pattern.text.replace("\\", "\\\\")
                .replace("%", "\\%")
                .replace("_", "\\_")
                .replace("*", "%")
                .replace("?", "_")
            )
            cond: ColumnElement[bool] = Task.label.ilike(like, escape="\\")
        else:
            cond = Task.label == pattern.text
        if pattern.negated:
            negatives.append(or_(Task.label.is_(None), not_(cond)))
        else:
            positives.append(cond)
    parts: list[ColumnElement[bool]] = []
    if positives:
        parts.append(or_(*positives))
    parts.extend(negatives)
    return and_(*parts) if parts else true()


def _clauses_condition(clauses: Clauses) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    for field, values in clauses.items():
        cleaned = [v.strip() for v in values if v.strip()]
        if field == "task_id":
            ids = []
            for value in cleaned:
                try:
                    ids.append(uuid.UUID(value))
                except ValueError:
                    raise bad_request(f"Invalid task_id filter value '{value}'") from None
            parts.append(Task.id.in_(ids) if ids else false())
        elif field == "type":
            kinds = [v.upper() for v in cleaned]
            if any(k not in ("TRANSFER", "DELETE") for k in kinds):
                raise bad_request("type filter values are TRANSFER and DELETE")
            parts.append(Task.type.in_(kinds))
        elif field == "status":
            statuses = [v.upper() for v in cleaned]
            if any(s not in STATUSES for s in statuses):
                raise bad_request(f"status filter values are {', '.join(STATUSES)}")
            parts.append(Task.status.in_(statuses))
        elif field == "label":
            parts.append(_label_condition(values))
        else:
            column = Task.request_time if field == "request_time" else Task.completion_time
            start, end = parse_time_range(values, field)
            if start is not None:
                parts.append(column >= start)
            if end is not None:
                parts.append(column <= end)
            if field == "completion_time":
                parts.append(column.is_not(None))
    return and_(*parts) if parts else true()


async def task_names(session: AsyncSession, tasks: list[Task]) -> tuple[dict[uuid.UUID, str], ...]:
    """The names tasks' documents show: their collections' and their owners'."""
    ids: set[uuid.UUID] = set()
    for task in tasks:
        ids.add(task.source_endpoint_id)
        if task.destination_endpoint_id:
            ids.add(task.destination_endpoint_id)
    endpoint_names: dict[uuid.UUID, str] = {}
    if ids:
        rows = await session.execute(
            select(Collection.id, Collection.display_name).where(Collection.id.in_(ids))
        )
        endpoint_names = {row[0]: row[1] for row in rows}
    owners = await usernames(session, {t.owner_id for t in tasks})
    return endpoint_names, owners


async def list_tasks(
    ctx: AppContext,
    caller: Caller,
    *,
    filters: list[Clauses] | None = None,
    orderby: list[tuple[str, bool]] | None = None,
    limit: int = 10,
    offset: int = 0,
) -> tuple[list[TaskView], int]:
    """A page of the caller's tasks matching any filter alternative; and the total count."""
    condition: ColumnElement[bool] = Task.owner_id == caller.identity_id
    if filters:
        condition = and_(condition, or_(*(_clauses_condition(c) for c in filters)))
    order = []
    for field, descending in orderby or [("request_time", True)]:
        column = getattr(Task, "id" if field == "task_id" else field)
        order.append(column.desc() if descending else column.asc())
    order.append(Task.id.desc())
    async with ctx.db.session() as session:
        total = await session.scalar(select(func.count()).select_from(Task).where(condition))
        rows = list(
            await session.scalars(
                select(Task).where(condition).order_by(*order).limit(limit).offset(offset)
            )
        )
        endpoint_names, owners = await task_names(session, rows)
        held = await held_tasks(session, rows, ctx.clock.now())
    views = [
        TaskView(t, owners.get(t.owner_id, caller.username), endpoint_names, t.id in held)
        for t in rows
    ]
    return views, int(total or 0)


async def _own_task(session: AsyncSession, caller: Caller, task_id: object) -> Task:
    try:
        key = task_id if isinstance(task_id, uuid.UUID) else uuid.UUID(str(task_id))
    except ValueError:
        raise task_not_found(task_id) from None
    task = await session.get(Task, key, populate_existing=True)
    if task is None or task.owner_id != caller.identity_id:
        raise task_not_found(task_id)
    return task


_SOURCE = aliased(Collection)
_DESTINATION = aliased(Collection)
_TASK_ATTRIBUTES = tuple(attribute.key for attribute in Task.__mapper__.column_attrs)
# The task document in one statement: the task, its owner's name and both collection names.
_TASK_DOCUMENT_SELECT = (
    select(
        *(getattr(Task, key).label(key) for key in _TASK_ATTRIBUTES),
        Identity.username.label("owner_username"),
        _SOURCE.display_name.label("source_name"),
        _DESTINATION.display_name.label("destination_name"),
        task_held(bindparam("now", type_=UTCDateTime())).label("held_by_rule"),
    )
    .outerjoin(Identity, Identity.id == Task.owner_id)
    .outerjoin(_SOURCE, _SOURCE.id == Task.source_endpoint_id)
    .outerjoin(_DESTINATION, _DESTINATION.id == Task.destination_endpoint_id)
    .where(Task.id == bindparam("task_id"), Task.owner_id == bindparam("owner_id"))
)
# As a lambda statement its compiled form is found by the lambda's code. A plain statement's
# cache key (its whole structure: 38 columns, three joins, a subquery) is hashed again on
# every status poll, which cost a third of the query's time.
_TASK_DOCUMENT = lambda_stmt(lambda: _TASK_DOCUMENT_SELECT)


async def get_task(ctx: AppContext, caller: Caller, task_id: object) -> TaskView:
    """The caller's task with the names its document shows, read in one statement."""
    try:
        key = task_id if isinstance(task_id, uuid.UUID) else uuid.UUID(str(task_id))
    except ValueError:
        raise task_not_found(task_id) from None
    params = {"task_id": key, "owner_id": caller.identity_id, "now": ctx.clock.now()}

    def load(connection: Connection) -> Row[*tuple[Any, ...]] | None:
        return connection.execute(_TASK_DOCUMENT, params).first()

    row = await ctx.db.lookup(load)
    if row is None:
        raise task_not_found(task_id)
    names = {}
    if row.source_name is not None:
        names[row.source_endpoint_id] = row.source_name
    if row.destination_name is not None and row.destination_endpoint_id is not None:
        names[row.destination_endpoint_id] = row.destination_name
    held = bool(row.held_by_rule) and row.status in UNFINISHED
    return TaskView(row, row.owner_username or caller.username, names, held)


async def update_task(
    ctx: AppContext, caller: Caller, task_id: object, body: dict[str, Any]
) -> TaskView:
    """Change ``label`` and/or ``deadline`` of a running task."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    if body.get("DATA_TYPE", "task") != "task":
        raise bad_request("Invalid DATA_TYPE, expected 'task'")
    unknown = set(body) - {"DATA_TYPE", "label", "deadline", "task_id"}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise bad_request(f"Only label and deadline can be updated, not {names}")
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        task = await _own_task(session, caller, task_id)
        if task.status not in ("ACTIVE", "INACTIVE"):
            raise ArcternError(
                "The task has completed and can no longer be updated",
                code="ClientError.Conflict",
                status=409,
            )
        if "label" in body:
            label = body["label"]
            if label is not None and (not isinstance(label, str) or len(label) > 128):
                raise bad_request("label must be a string of at most 128 characters")
            task.label = label
        if "deadline" in body:
            raw = body["deadline"]
            if not isinstance(raw, str):
                raise bad_request("deadline must be a date string")
            task.deadline = parse_deadline(raw, now, task.request_time, deadline_limit(ctx))
        endpoint_names, owners = await task_names(session, [task])
    return TaskView(task, owners.get(task.owner_id, caller.username), endpoint_names)


async def cancel_task(
    ctx: AppContext, caller: Caller, task_id: object, *, wait_seconds: float = CANCEL_WAIT_SECONDS
) -> CancelOutcome:
    """Ask the worker to stop the task, and wait a little for it to be finalized."""
    async with ctx.db.session() as session:
        task = await _own_task(session, caller, task_id)
        if task.status in ("SUCCEEDED", "FAILED"):
            return CancelOutcome("TaskComplete", "The task completed before the cancel request.")
        task.cancel_requested = True
        mark_changed(session, TASKS_STOPPING_TOPIC)
        key = task.id
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        async with ctx.db.session() as session:
            row = (
                await session.execute(select(Task.status, Task.fatal_error).where(Task.id == key))
            ).one()
        status, fatal_error = row
        canceled = status == "FAILED" and (fatal_error or {}).get("code") == "CANCELED"
        if canceled:
            return CancelOutcome("Canceled", "The task has been cancelled successfully.")
        if status in ("SUCCEEDED", "FAILED"):
            # The task ended on its own while the worker was getting to the request.
            return CancelOutcome("TaskComplete", "The task completed before the cancel request.")
        if loop.time() >= deadline:
            return CancelOutcome(
                "CancelAccepted", "The cancel request has been accepted; the task is stopping."
            )
        await asyncio.sleep(0.1)


async def task_events(
    ctx: AppContext,
    caller: Caller,
    task_id: object,
    *,
    filters: list[Clauses] | None = None,
    limit: int = 10,
    offset: int = 0,
) -> tuple[list[TaskEvent], int]:
    """A page of the task's events, newest first; and their total count."""
    async with ctx.db.session() as session:
        task = await _own_task(session, caller, task_id)
        condition: ColumnElement[bool] = TaskEvent.task_id == task.id
        alternatives = []
        for clauses in filters or []:
            parts: list[ColumnElement[bool]] = []
            for field, values in clauses.items():
                cleaned = [v.strip() for v in values if v.strip()]
                if field == "is_error":
                    flags = []
                    for v in cleaned:
                        if v.lower() in ("1", "true"):
                            flags.append(True)
                        elif v.lower() in ("0", "false"):
                            flags.append(False)
                        else:
                            raise bad_request("is_error filter takes 1 or 0")
                    parts.append(TaskEvent.is_error.in_(flags))
                else:
                    parts.append(TaskEvent.code.in_(cleaned))
            alternatives.append(and_(*parts) if parts else true())
        if alternatives:
            condition = and_(condition, or_(*alternatives))
        return await event_page(session, condition, limit=limit, offset=offset)


async def event_page(
    session: AsyncSession, condition: ColumnElement[bool], *, limit: int, offset: int
) -> tuple[list[TaskEvent], int]:
    """Events matching ``condition``, newest first, one page; and their total count."""
    total = await session.scalar(select(func.count()).select_from(TaskEvent).where(condition))
    rows = await session.scalars(
        select(TaskEvent)
        .where(condition)
        .order_by(TaskEvent.time.desc(), TaskEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def task_file_records(
    ctx: AppContext, caller: Caller, task_id: object, *, state: str, marker: int | None
) -> tuple[list[TaskFile], int | None]:
    """A page of the task's per-file records in ``state``; and the next marker (or None)."""
    async with ctx.db.session() as session:
        task = await _own_task(session, caller, task_id)
        return await file_record_page(session, task, state=state, marker=marker)


async def file_record_page(
    session: AsyncSession, task: Task, *, state: str, marker: int | None
) -> tuple[list[TaskFile], int | None]:
    if state == "done":  # files only, never directories; most of them recorded in runs
        rows = await batch_files.succeeded_files(
            session, task.id, after=marker, limit=RECORDS_PAGE + 1
        )
    else:
        query = select(TaskFile).where(TaskFile.task_id == task.id, TaskFile.state == state)
        if marker is not None:
            query = query.where(TaskFile.id > marker)
        rows = list(await session.scalars(query.order_by(TaskFile.id).limit(RECORDS_PAGE + 1)))
    more = len(rows) > RECORDS_PAGE
    rows = rows[:RECORDS_PAGE]
    return rows, (int(rows[-1].id) if more and rows else None)


async def bytes_totals(
    ctx: AppContext, caller: Caller, task_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Bytes each task has to copy: what its work batches list, less the files found
    unchanged. Only the caller's tasks are counted; a task not planned yet has no entry."""
    if not task_ids:
        return {}
    async with ctx.db.session() as session:
        planned = await session.execute(
            select(WorkBatch.task_id, func.coalesce(func.sum(WorkBatch.byte_count), 0))
            .join(Task, Task.id == WorkBatch.task_id)
            .where(Task.owner_id == caller.identity_id, WorkBatch.task_id.in_(task_ids))
            .group_by(WorkBatch.task_id)
        )
        totals = {row[0]: int(row[1]) for row in planned}
        unchanged = await session.execute(
            select(TaskFile.task_id, func.coalesce(func.sum(TaskFile.size), 0))
            .where(
                TaskFile.task_id.in_(list(totals)),
                TaskFile.is_directory.is_(False),
                TaskFile.state == "unchanged",
            )
            .group_by(TaskFile.task_id)
        )
        for task_id, size in unchanged:
            totals[task_id] -= int(size)
        return totals


async def task_items(ctx: AppContext, caller: Caller, task_id: object) -> list[TaskItem]:
    """The task's submitted DATA items, in submission order."""
    async with ctx.db.session() as session:
        task = await _own_task(session, caller, task_id)
        return list(
            await session.scalars(
                select(TaskItem).where(TaskItem.task_id == task.id).order_by(TaskItem.position)
            )
        )


async def task_file_page(
    ctx: AppContext, caller: Caller, task_id: object, *, limit: int, offset: int
) -> tuple[list[TaskFile], int]:
    """A page of the task's files in every state, errors first; and their count.

    Files with an outcome have rows (errors first), or a place in a run of files copied
    successfully, listed after the rows; the others (pending, or canceled when the task
    ended first) are read from their work batches' lists, last."""
    errors_first = case((TaskFile.state.in_(("failed", "skipped")), 0), else_=1)
    async with ctx.db.session() as session:
        task = await _own_task(session, caller, task_id)
        condition = TaskFile.task_id == task.id
        recorded = int(
            await session.scalar(select(func.count()).select_from(TaskFile).where(condition)) or 0
        )
        rows = list(
            await session.scalars(
                select(TaskFile)
                .where(condition)
                .order_by(errors_first, TaskFile.id)
                .limit(limit)
                .offset(offset)
            )
        )
        in_runs = await batch_files.run_counts(session, task.id)
        if len(rows) < limit:
            rows += await batch_files.run_files_page(
                session, task.id, skip=max(0, offset - recorded), limit=limit - len(rows)
            )
        recorded += sum(in_runs.values())
        unlisted = await _files_without_rows(session, task, in_runs)
        if len(rows) < limit:
            rows += await unlisted.page(session, max(0, offset - recorded), limit - len(rows))
        return rows, recorded + unlisted.count


@dataclass
class _FilesWithoutRows:
    """A task's planned files that have no row yet, batch by batch."""

    task: Task
    batches: list[tuple[int, int]]  # (batch id, files it lists without a row)

    @property
    def count(self) -> int:
        return sum(n for _, n in self.batches)

    async def page(self, session: AsyncSession, skip: int, limit: int) -> list[TaskFile]:
        state = "pending" if self.task.status in ("ACTIVE", "INACTIVE") else "canceled"
        found: list[TaskFile] = []
        for batch_id, missing in self.batches:
            if len(found) >= limit:
                break
            if skip >= missing:
                skip -= missing
                continue
            for job, row in await batch_files.jobs_with_rows(session, batch_id):
                if row is not None:
                    continue
                if skip:
                    skip -= 1
                    continue
                found.append(
                    TaskFile(
                        id=job.key,
                        task_id=self.task.id,
                        batch_id=batch_id,
                        source_path=job.source_path,
                        destination_path=job.destination_path,
                        size=job.size,
                        mtime=job.mtime,
                        state=state,
                        is_directory=False,
                        external_checksum=job.external_checksum,
                        checksum_algorithm=job.checksum_algorithm,
                    )
                )
                if len(found) >= limit:
                    break
        return found


async def _files_without_rows(
    session: AsyncSession, task: Task, in_runs: dict[int, int]
) -> _FilesWithoutRows:
    """The task's planned files without a record; ``in_runs``: files its runs record, per
    batch (``batch_files.run_counts``)."""
    counted = await session.execute(
        select(TaskFile.batch_id, func.count())
        .where(TaskFile.task_id == task.id, TaskFile.batch_id.is_not(None))
        .group_by(TaskFile.batch_id)
    )
    with_rows: dict[int | None, int] = {batch_id: count for batch_id, count in counted}
    for batch_id, count in in_runs.items():
        with_rows[batch_id] = with_rows.get(batch_id, 0) + count
    listed = await session.execute(
        select(WorkBatch.id, WorkBatch.file_count)
        .where(WorkBatch.task_id == task.id, WorkBatch.file_count > 0)
        .order_by(WorkBatch.id)
    )
    batches = [
        (batch_id, count - with_rows.get(batch_id, 0))
        for batch_id, count in listed
        if count > with_rows.get(batch_id, 0)
    ]
    return _FilesWithoutRows(task, batches)


async def rerun_task(ctx: AppContext, caller: Caller, task_id: object) -> Submitted:
    """Submit the task's items and options again, as a new task (a fresh submission id).

    The document is rebuilt from what was stored and goes through the same validation and
    access checks as any submission, so a rerun cannot do what a new submission could not."""
    async with ctx.db.session() as session:
        task = await _own_task(session, caller, task_id)
        items = list(
            await session.scalars(
                select(TaskItem).where(TaskItem.task_id == task.id).order_by(TaskItem.position)
            )
        )
        options = dict(task.options or {})
        kind, label = task.type, task.label
        source_id, destination_id = task.source_endpoint_id, task.destination_endpoint_id
    body: dict[str, Any] = {"label": label} if label else {}
    body.update({name: options[name] for name in NOTIFY_BOOLS if name in options})
    if kind == "DELETE":
        body.update({name: options[name] for name in DELETE_BOOLS if name in options})
        body.update(
            DATA_TYPE="delete",
            endpoint=str(source_id),
            DATA=[{"DATA_TYPE": "delete_item", "path": item.source_path} for item in items],
        )
        return await submit_delete(ctx, caller, body)
    body.update({name: options[name] for name in TRANSFER_BOOLS if name in options})
    for name in ("sync_level", "filter_rules", "recursive_symlinks"):
        if options.get(name) is not None:
            body[name] = options[name]
    data = []
    for item in items:
        entry: dict[str, Any] = {
            "DATA_TYPE": "transfer_item",
            "source_path": item.source_path,
            "destination_path": item.destination_path,
            "recursive": item.recursive,
        }
        if item.external_checksum:
            entry["external_checksum"] = item.external_checksum
        if item.checksum_algorithm:
            entry["checksum_algorithm"] = item.checksum_algorithm
        data.append(entry)
    body.update(
        DATA_TYPE="transfer",
        source_endpoint=str(source_id),
        destination_endpoint=str(destination_id),
        DATA=data,
    )
    return await submit_transfer(ctx, caller, body)
