"""Activity pages: the user's tasks with live progress, a task's details and events, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from arctern.context import AppContext
from arctern.db.models.transfer import Task
from arctern.errors import ArcternError, NotFound
from arctern.transfer.services import tasks as task_service
from arctern.web.files import caller_of
from arctern.web.pages import Pages

PAGE_SIZE = 25
EVENTS_SHOWN = 50
# Filter tabs on the activity page: (query value, label, statuses).
TABS: tuple[tuple[str, str, str], ...] = (
    ("", "All", ""),
    ("active", "Active", "ACTIVE,INACTIVE"),
    ("succeeded", "Succeeded", "SUCCEEDED"),
    ("failed", "Failed", "FAILED"),
)


@dataclass
class TaskRow:
    """What the activity pages show about one task."""

    task: Task
    title: str
    source_name: str
    destination_name: str
    status_text: str
    percent: int | None  # None while the file count is not known yet
    bytes_per_second: float

    @property
    def active(self) -> bool:
        return self.task.status in ("ACTIVE", "INACTIVE")


def describe_task(view: task_service.TaskView) -> TaskRow:
    task = view.task
    source = view.endpoint_names.get(task.source_endpoint_id, str(task.source_endpoint_id))
    destination = ""
    if task.destination_endpoint_id is not None:
        destination = view.endpoint_names.get(
            task.destination_endpoint_id, str(task.destination_endpoint_id)
        )
    if task.type == "DELETE":
        title = task.label or f"Delete on {source}"
    else:
        title = task.label or f"{source} to {destination}"
    if task.status == "SUCCEEDED":
        status_text, percent = "Succeeded", 100
    elif task.status == "FAILED":
        code = (task.fatal_error or {}).get("code", "")
        status_text = "Canceled" if code == "CANCELED" else f"Failed{f' ({code})' if code else ''}"
        percent = None
    else:
        status_text = task.nice_status or ("Paused" if task.status == "INACTIVE" else "Active")
        done = task.files_transferred + task.files_skipped
        percent = round(100 * done / task.files) if task.planned and task.files else None
        if task.cancel_requested:
            status_text = "Canceling"
    seconds = task.active_seconds
    if seconds <= 0 and task.completion_time is not None:
        seconds = (task.completion_time - task.request_time).total_seconds()
    speed = task.bytes_transferred / seconds if seconds > 0 else 0.0
    return TaskRow(task, title, source, destination, status_text, percent, speed)


def create_activity_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/activity")

    @router.get("", response_class=HTMLResponse)
    async def activity(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        tab = request.query_params.get("status", "")
        statuses = next((s for value, _, s in TABS if value == tab), "")
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        filters = [{"status": statuses.split(",")}] if statuses else None
        views, total = await task_service.list_tasks(
            ctx,
            caller_of(user),
            filters=filters,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        rows = [describe_task(v) for v in views]
        pages_total = max(1, -(-total // PAGE_SIZE))

        def page_link(number: int) -> str:
            params = {"status": tab, "page": str(number)}
            return "/activity?" + urlencode({k: v for k, v in params.items() if v})

        return pages.render(
            request,
            "activity.html",
            user=user,
            active_nav="activity",
            rows=rows,
            total=total,
            tab=tab,
            tabs=TABS,
            page=page,
            pages_total=pages_total,
            page_link=page_link,
            live=any(r.active for r in rows),
            refreshed=ctx.clock.now(),
        )

    @router.get("/{task_id}", response_class=HTMLResponse)
    async def task_detail(request: Request, task_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        caller = caller_of(user)
        try:
            view = await task_service.get_task(ctx, caller, task_id)
            events, event_total = await task_service.task_events(
                ctx, caller, task_id, limit=EVENTS_SHOWN
            )
        except NotFound:
            return pages.not_found(request, user, "Task")
        row = describe_task(view)
        return pages.render(
            request,
            "task.html",
            user=user,
            active_nav="activity",
            row=row,
            task=view.task,
            events=events,
            event_total=event_total,
            events_shown=EVENTS_SHOWN,
            live=row.active,
            refreshed=ctx.clock.now(),
            duration=_duration(view.task.request_time, view.task.completion_time),
        )

    @router.post("/{task_id}/cancel", response_class=HTMLResponse)
    async def cancel(request: Request, task_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _form = posted
        try:
            outcome = await task_service.cancel_task(ctx, caller_of(user), task_id)
        except NotFound:
            return pages.not_found(request, user, "Task")
        except ArcternError as exc:
            pages.flash(request, exc.message, error=True)
            return pages.redirect(f"/activity/{task_id}")
        pages.flash(request, outcome.message, error=outcome.code == "TaskComplete")
        return pages.redirect(f"/activity/{task_id}")

    return router


def _duration(start: datetime, end: datetime | None) -> str:
    if end is None:
        return ""
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
