"""When pause rules hold work: conditions shared by the API (task documents, pause info,
file operations) and the workers and agents (which claim no work of a held task), so both
read the rules the same way. The rules themselves are managed in
``transfer.services.pause_rules``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID
from arctern.db.models.transfer import Collection, PauseRule, Task

# The collection a rule is checked against. Made once: aliasing a mapped table copies its
# columns and foreign keys, and the workers' claim query, which includes these conditions,
# is built on every claim (it was an eighth of a busy server's samples).
_HELD = aliased(Collection, name="held_collection")


def _covers(collection_column: Any) -> ColumnElement[bool]:
    """The rule (``PauseRule``, correlated) covers the collection in ``collection_column``:
    it is on the collection, on the mapped collection a guest collection is in, or on the
    endpoint the collection belongs to."""
    held = _HELD
    return (
        exists()
        .where(
            held.id == collection_column,
            or_(
                PauseRule.target_id == held.id,
                PauseRule.target_id == held.mapped_collection_id,
                PauseRule.target_id == held.endpoint_id,
                and_(held.endpoint_id.is_(None), PauseRule.target_id == BUILTIN_ENDPOINT_ID),
            ),
        )
        .correlate_except(held)
    )


def in_force(now: Any, identity: Any) -> list[ColumnElement[bool]]:
    return [
        or_(PauseRule.start_time.is_(None), PauseRule.start_time <= now),
        or_(PauseRule.identity_id.is_(None), PauseRule.identity_id == identity),
    ]


def holds(task: Any, now: Any) -> list[ColumnElement[bool]]:
    """Conditions for a rule to hold ``task`` (``Task`` or an alias of it) at ``now``."""
    transfer = task.type == "TRANSFER"
    return [
        *in_force(now, task.owner_id),
        or_(
            and_(
                transfer,
                PauseRule.pause_task_transfer_read.is_(True),
                _covers(task.source_endpoint_id),
            ),
            and_(
                transfer,
                PauseRule.pause_task_transfer_write.is_(True),
                _covers(task.destination_endpoint_id),
            ),
            and_(
                task.type == "DELETE",
                PauseRule.pause_task_delete.is_(True),
                _covers(task.source_endpoint_id),
            ),
        ),
    ]


def task_held(now: Any, task: Any = Task) -> ColumnElement[bool]:
    """Condition on ``task``: a pause rule holds it at ``now`` (a datetime or a bind
    parameter)."""
    # Correlated with the enclosing query's task (two levels up from ``_covers``).
    return exists().where(*holds(task, now)).correlate_except(PauseRule)


UNFINISHED = ("ACTIVE", "INACTIVE")


async def held_tasks(session: AsyncSession, tasks: Iterable[Task], now: datetime) -> set[uuid.UUID]:
    """Which of these tasks a pause rule holds now."""
    ids = [t.id for t in tasks if t.status in UNFINISHED]
    if not ids:
        return set()
    return set(await session.scalars(select(Task.id).where(Task.id.in_(ids), task_held(now))))
