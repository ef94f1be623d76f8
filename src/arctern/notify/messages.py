"""What the mail says: a task that ended, a folder shared with someone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.config import Settings
from arctern.db.models.auth import Identity
from arctern.db.models.transfer import Collection, Task, TaskItem
from arctern.notify.outbox import enqueue_mail, enqueue_webhook, mail_enabled
from arctern.notify.webhooks import secret_of
from arctern.web.viewfmt import human_size

ITEMS_LISTED = 5
# Which notify_on_* flag covers a task that ended so (Globus's names).
FLAG_OF_STATUS = {
    "SUCCEEDED": "notify_on_succeeded",
    "FAILED": "notify_on_failed",
    "INACTIVE": "notify_on_inactive",
}


async def task_ended(
    session: AsyncSession, settings: Settings, task_id: uuid.UUID, now: datetime
) -> bool:
    """Queue what the owner asked to hear about a task that just ended (in the transaction
    that ended it): the mail, if the task asked for it and the owner wants task mail, and the
    owner's webhook, for every task. Whether a mail was queued."""
    # Fresh from the database: the caller ended the task with an UPDATE statement.
    task = await session.get(Task, task_id, populate_existing=True)
    if task is None:
        return False
    owner = await session.get(Identity, task.owner_id)
    if owner is None:
        return False
    secret = secret_of(owner, settings)
    if owner.webhook_url and secret:
        enqueue_webhook(
            session, owner.webhook_url, secret, f"task.{task.status.lower()}",
            {"task": _task_summary(task, settings)}, now,
        )  # fmt: skip
    flag = FLAG_OF_STATUS.get(task.status)
    if not mail_enabled(settings) or flag is None or not (task.options or {}).get(flag, True):
        return False
    if not owner.email or not owner.task_mail:
        return False
    source = await session.get(Collection, task.source_endpoint_id)
    destination = (
        await session.get(Collection, task.destination_endpoint_id)
        if task.destination_endpoint_id
        else None
    )
    items = list(
        await session.scalars(
            select(TaskItem)
            .where(TaskItem.task_id == task.id)
            .order_by(TaskItem.position)
            .limit(ITEMS_LISTED + 1)
        )
    )
    kind = "Transfer" if task.type == "TRANSFER" else "Delete"
    outcome = {"SUCCEEDED": "succeeded", "FAILED": "failed"}.get(task.status, "needs attention")
    name = task.label or f"{kind} {task.id}"
    lines = [
        f"Your {kind.lower()} task “{name}” {outcome}.",
        "",
        f"Task ID:      {task.id}",
        f"Status:       {task.status}",
        f"From:         {source.display_name if source else task.source_endpoint_id}",
    ]
    if destination is not None:
        lines.append(f"To:           {destination.display_name}")
    lines += [
        f"Requested:    {task.request_time:%Y-%m-%d %H:%M:%S} UTC",
        f"Duration:     {_duration(task, now)}",
        f"Files:        {task.files_transferred} transferred"
        + (f", {task.files_skipped} skipped" if task.files_skipped else ""),
        f"Size:         {human_size(task.bytes_transferred)}",
    ]
    if task.fatal_error:
        lines += [
            "",
            f"Error:        {task.fatal_error.get('code')}: {task.fatal_error.get('description')}",
        ]
    lines += ["", "Items:"]
    for item in items[:ITEMS_LISTED]:
        target = f" -> {item.destination_path}" if item.destination_path else ""
        lines.append(f"  {item.source_path}{target}")
    if len(items) > ITEMS_LISTED:
        lines.append("  …")
    lines += [
        "",
        f"Details: {settings.base_url}/activity/{task.id}",
        "",
        "You get this mail because the task asked for it. Turn task mail off on your account "
        f"page: {settings.base_url}/account",
    ]
    subject = f"[Arctern] {kind} {outcome}: {name}"
    return enqueue_mail(session, settings, owner.email, subject, "\n".join(lines) + "\n", now)


def _task_summary(task: Task, settings: Settings) -> dict[str, Any]:
    return {
        "task_id": str(task.id),
        "type": task.type,
        "status": task.status,
        "label": task.label,
        "source_endpoint_id": str(task.source_endpoint_id),
        "destination_endpoint_id": str(task.destination_endpoint_id)
        if task.destination_endpoint_id
        else None,
        "request_time": task.request_time.isoformat(),
        "completion_time": task.completion_time.isoformat() if task.completion_time else None,
        "files_transferred": task.files_transferred,
        "bytes_transferred": task.bytes_transferred,
        "fatal_error": task.fatal_error,
        "url": f"{settings.base_url}/activity/{task.id}",
    }


def _duration(task: Task, now: datetime) -> str:
    seconds = int(((task.completion_time or now) - task.request_time).total_seconds())
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


async def sharing_invitation(
    session: AsyncSession,
    settings: Settings,
    *,
    recipient: str,
    sharer: Identity,
    collection: Collection,
    path: str,
    permissions: str,
    message: str | None,
    now: datetime,
) -> bool:
    """The mail an access rule's ``notify_email`` asks for."""
    access = "read and write" if "w" in permissions else "read"
    lines = [
        f"{sharer.name or sharer.username} ({sharer.username}) shared a folder with you on "
        "Arctern.",
        "",
        f"Collection:   {collection.display_name}",
        f"Folder:       {path}",
        f"Access:       {access}",
    ]
    if message:
        lines += ["", f"{sharer.username} wrote:", "", message.strip()]
    lines += [
        "",
        f"Open it: {settings.base_url}/files?origin_id={collection.id}&origin_path={path}",
    ]
    subject = f"[Arctern] {sharer.username} shared {collection.display_name}{path} with you"
    return enqueue_mail(session, settings, recipient, subject, "\n".join(lines) + "\n", now)
