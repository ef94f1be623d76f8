"""Activity pages: the user's tasks with live progress, a task's details and events, cancel."""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from arctern.context import AppContext
from arctern.db.models.transfer import TaskItem, TaskRecord
from arctern.errors import ArcternError, NotFound
from arctern.transfer.services import tasks as task_service
from arctern.transfer.services.common import Caller
from arctern.web.pages import Pages, caller_of
from arctern.web.viewfmt import Progress, human_size, short_when, task_progress, when

PAGE_SIZE = 25
EVENTS_SHOWN = 50
FILES_PAGE = 20
MAX_LABEL_QUERY = 128
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

    task: TaskRecord
    title: str
    source_name: str
    destination_name: str
    status_label: str  # the badge: Globus's status, but "Cancelled" for a cancelled task
    status_text: str  # the detail under the badge ("Queued", "Canceling", "Failed (CODE)")
    progress: Progress
    bytes_per_second: float

    @property
    def active(self) -> bool:
        return self.task.status in ("ACTIVE", "INACTIVE")

    @property
    def canceled(self) -> bool:
        return self.task.status == "FAILED" and (self.task.fatal_error or {}).get("code") == (
            "CANCELED"
        )

    @property
    def percent(self) -> int | None:
        return self.progress.percent

    def live_fields(self) -> dict[str, object]:
        """The values the pages update in place while the task runs."""
        return {
            "status": self.task.status,
            "status_label": self.status_label,
            "status_text": self.status_text
            if self.status_text.upper() != self.status_label.upper()
            else "",
            "active": self.active,
            "cancel_requested": self.task.cancel_requested,
            **self.progress.as_dict(),
            "bytes_verified": human_size(self.task.bytes_checksummed),
            "faults": self.task.faults,
            "completed": short_when(self.task.completion_time),
        }


def describe_task(view: task_service.TaskView, bytes_total: int | None = None) -> TaskRow:
    """``bytes_total``: what the task's planned files add up to (None: not known yet)."""
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
    status_label = task.status
    if task.status == "SUCCEEDED":
        status_text = "Succeeded"
    elif task.status == "FAILED":
        code = (task.fatal_error or {}).get("code", "")
        if code == "CANCELED":
            # Globus reports a cancelled task as FAILED/CANCELED (the API keeps that);
            # people read it as what they did.
            status_label = status_text = "Cancelled"
        else:
            status_text = f"Failed{f' ({code})' if code else ''}"
    else:
        status_text = task.nice_status or ("Paused" if task.status == "INACTIVE" else "Active")
        if task.admin_pause_message is not None or view.held_by_rule:
            status_text = "Paused by an administrator"
        if task.cancel_requested:
            status_text = "Canceling"
    seconds = task.active_seconds
    if seconds <= 0 and task.completion_time is not None:
        seconds = (task.completion_time - task.request_time).total_seconds()
    speed = task.bytes_transferred / seconds if seconds > 0 else 0.0
    planned = task.planned or task.status == "SUCCEEDED"
    progress = task_progress(
        bytes_done=task.bytes_transferred,
        bytes_total=bytes_total if planned else None,
        files_done=task.files_transferred + task.files_skipped,
        files_total=task.files if planned else None,
        bytes_per_second=speed,
        finished=task.status in ("SUCCEEDED", "FAILED"),
        succeeded=task.status == "SUCCEEDED",
    )
    return TaskRow(task, title, source, destination, status_label, status_text, progress, speed)


async def describe_tasks(
    ctx: AppContext, caller: Caller, views: list[task_service.TaskView]
) -> list[TaskRow]:
    totals = await task_service.bytes_totals(ctx, caller, [v.task.id for v in views])
    return [describe_task(v, totals.get(v.task.id, 0)) for v in views]


def label_filter(query: str) -> list[str]:
    """A case-insensitive "label contains" pattern for the task filter (``*`` and ``?`` stay
    wildcards, as in ``globus task list --filter-label``)."""
    return [f"~*{query}*"]


def manager_link(view: task_service.TaskView, items: list[TaskItem]) -> str | None:
    """The File Manager showing the first item's source and destination folders."""
    task = view.task
    if not items or task.type != "TRANSFER" or task.destination_endpoint_id is None:
        return None
    first = items[0]

    def folder(path: str, is_dir: bool) -> str:
        base = path if is_dir else posixpath.dirname(path.rstrip("/") or "/")
        return base.rstrip("/") + "/"

    query = {
        "origin_id": str(task.source_endpoint_id),
        "origin_path": folder(first.source_path, first.recursive),
        "destination_id": str(task.destination_endpoint_id),
        "destination_path": folder(first.destination_path or "/", first.recursive),
    }
    return "/files?" + urlencode(query)


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(1_000_000, int(raw or "1")))
    except ValueError:
        return 1


def create_activity_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/activity")

    @router.get("", response_class=HTMLResponse)
    async def activity(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        tab = request.query_params.get("status", "")
        statuses = next((s for value, _, s in TABS if value == tab), "")
        query = request.query_params.get("q", "").strip()[:MAX_LABEL_QUERY]
        page = _page_number(request.query_params.get("page"))
        clauses: dict[str, list[str]] = {}
        if statuses:
            clauses["status"] = statuses.split(",")
        if query:
            clauses["label"] = label_filter(query)
        caller = caller_of(user)
        views, total = await task_service.list_tasks(
            ctx,
            caller,
            filters=[clauses] if clauses else None,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        rows = await describe_tasks(ctx, caller, views)
        pages_total = max(1, -(-total // PAGE_SIZE))

        def page_link(number: int) -> str:
            params = {"status": tab, "q": query, "page": str(number)}
            return "/activity?" + urlencode({k: v for k, v in params.items() if v})

        def tab_link(value: str) -> str:
            params = {"status": value, "q": query}
            encoded = urlencode({k: v for k, v in params.items() if v})
            return "/activity" + (f"?{encoded}" if encoded else "")

        return pages.render(
            request,
            "activity.html",
            user=user,
            active_nav="activity",
            rows=rows,
            total=total,
            tab=tab,
            tabs=TABS,
            query=query,
            page=page,
            pages_total=pages_total,
            page_link=page_link,
            tab_link=tab_link,
            live=any(r.active for r in rows),
            refreshed=ctx.clock.now(),
        )

    @router.get("/live.json")
    async def live_values(request: Request) -> Response:
        """Progress of the listed tasks, for the pages' in-place updates (no re-render)."""
        user = await pages.user(request)
        if user is None:
            return JSONResponse(
                {"code": "AuthenticationFailed", "message": "Log in again."}, status_code=401
            )
        ids: list[str] = []
        for raw in request.query_params.getlist("id")[:PAGE_SIZE]:
            try:
                ids.append(str(uuid.UUID(raw)))
            except ValueError:
                continue
        caller = caller_of(user)
        rows: list[TaskRow] = []
        if ids:
            views, _ = await task_service.list_tasks(
                ctx, caller, filters=[{"task_id": ids}], limit=PAGE_SIZE
            )
            rows = await describe_tasks(ctx, caller, views)
        response = JSONResponse(
            {
                "as_of": when(ctx.clock.now()),
                "tasks": {str(r.task.id): r.live_fields() for r in rows},
            }
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/{task_id}", response_class=HTMLResponse)
    async def task_detail(request: Request, task_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        caller = caller_of(user)
        files_page = _page_number(request.query_params.get("files"))
        try:
            view = await task_service.get_task(ctx, caller, task_id)
            events, event_total = await task_service.task_events(
                ctx, caller, task_id, limit=EVENTS_SHOWN
            )
            items = await task_service.task_items(ctx, caller, task_id)
            files, files_total = await task_service.task_file_page(
                ctx, caller, task_id, limit=FILES_PAGE, offset=(files_page - 1) * FILES_PAGE
            )
        except NotFound:
            return pages.not_found(request, user, "Task")
        totals = await task_service.bytes_totals(ctx, caller, [view.task.id])
        row = describe_task(view, totals.get(view.task.id, 0))

        def files_link(number: int) -> str:
            return f"/activity/{view.task.id}?files={number}#files"

        return pages.render(
            request,
            "task.html",
            user=user,
            active_nav="activity",
            row=row,
            task=view.task,
            items=items,
            files=files,
            files_total=files_total,
            files_page=files_page,
            files_pages=max(1, -(-files_total // FILES_PAGE)),
            files_link=files_link,
            manager_link=manager_link(view, items),
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

    @router.post("/{task_id}/rerun", response_class=HTMLResponse)
    async def rerun(request: Request, task_id: str) -> Response:
        """Submit the same items and options again as a new task, and show that task."""
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _form = posted
        try:
            submitted = await task_service.rerun_task(ctx, caller_of(user), task_id)
        except NotFound:
            return pages.not_found(request, user, "Task")
        except ArcternError as exc:
            pages.flash(
                request, f"The task could not be submitted again: {exc.message}", error=True
            )
            return pages.redirect(f"/activity/{task_id}")
        pages.flash(request, "Submitted again as a new task.")
        return pages.redirect(f"/activity/{submitted.task_id}")

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
