"""Timer use cases (the Timers API and the web pages both call these): create, list, show,
pause, resume, delete, and the document the Timers API returns for a timer.

A user sees and changes only their own timers; another user's timer id is answered as an
unknown one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.context import SCHEDULE_TOPIC, AppContext
from arctern.db.engine import mark_changed
from arctern.db.models.timers import Timer, TimerRun
from arctern.db.models.transfer import Task
from arctern.errors import ArcternError
from arctern.timers.schedule import Schedule, ScheduleError, iso
from arctern.transfer.services.acl import visible_collection
from arctern.transfer.services.common import Caller
from arctern.transfer.services.submission import deadline_limit, parse_transfer

MAX_NAME = 300
# What a transfer submitted by a timer may not carry: each run has its own.
RUN_SPECIFIC_FIELDS = ("submission_id", "deadline", "skip_activation_check")
# How the Globus CLI recognizes a transfer timer (``globus timer show``'s "Type").
TRANSFER_CALLBACK_URL = "https://transfer.actions.globus.org/transfer/run"
RUNS_SHOWN = 50


class TimerError(ArcternError):
    """An error in the Timers API's own format (``{"error": {code, detail, status}}``)."""


def timer_not_found(timer_id: object) -> TimerError:
    return TimerError(f"No timer {timer_id} for you", code="NOT_FOUND", status=404)


@dataclass(frozen=True)
class TimerView:
    timer: Timer
    runs: list[tuple[TimerRun, Task | None]]


class Timers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def create(
        self,
        caller: Caller,
        name: Any,
        schedule: Any,
        body: Any,
        *,
        client_id: uuid.UUID | None = None,
    ) -> Timer:
        """A transfer timer; the transfer is checked now as a submission would be (the
        caller must see both collections), and again with the owner's access at each run."""
        now = self.ctx.clock.now()
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise TimerError(f"'name' must be 1-{MAX_NAME} characters", code="INVALID_NAME")
        try:
            parsed = Schedule.parse(schedule, now, self.ctx.settings.timer_min_interval_seconds)
        except ScheduleError as exc:
            raise TimerError(str(exc), code="INVALID_SCHEDULE", status=422) from None
        if not isinstance(body, dict):
            raise TimerError("'body' must be a transfer document", code="INVALID_BODY", status=422)
        transfer = {k: v for k, v in body.items() if k not in RUN_SPECIFIC_FIELDS}
        _, source_id, destination_id = parse_transfer(
            transfer, now, max_deadline=deadline_limit(self.ctx)
        )
        async with self.ctx.db.session() as session:
            await visible_collection(session, caller, source_id, now)
            await visible_collection(session, caller, destination_id, now)
            timer = Timer(
                owner_id=caller.identity_id,
                client_id=client_id,
                name=name.strip(),
                timer_type="transfer",
                body=transfer,
                schedule=parsed.document(),
                status="new",
                next_run=parsed.start,
                submitted_at=now,
            )
            session.add(timer)
            mark_changed(session, SCHEDULE_TOPIC)
        return timer

    async def mine(self, session: AsyncSession, owner_id: uuid.UUID) -> list[Timer]:
        return list(
            await session.scalars(
                select(Timer).where(Timer.owner_id == owner_id).order_by(Timer.submitted_at)
            )
        )

    async def own(self, session: AsyncSession, caller: Caller, timer_id: object) -> Timer:
        try:
            key = uuid.UUID(str(timer_id))
        except ValueError:
            raise TimerError(
                f"'{str(timer_id)[:60]}' is not a timer id", code="INVALID_ID", status=422
            ) from None
        timer = await session.get(Timer, key)
        if timer is None or timer.owner_id != caller.identity_id:
            raise timer_not_found(timer_id)
        return timer

    async def view(self, caller: Caller, timer_id: object) -> TimerView:
        async with self.ctx.db.session() as session:
            timer = await self.own(session, caller, timer_id)
            return TimerView(timer, await runs_of(session, timer.id))

    async def pause(self, caller: Caller, timer_id: object) -> Timer:
        async with self.ctx.db.session() as session:
            timer = await self.own(session, caller, timer_id)
            if timer.status == "inactive":
                raise TimerError(
                    "This timer is no longer active; it cannot be paused",
                    code="CONFLICT",
                    status=409,
                )
            timer.status = "paused"
        return timer

    async def resume(self, caller: Caller, timer_id: object) -> Timer:
        """Runs again from the next scheduled time after now (runs missed while paused are
        skipped, as with Globus); an owner who regained access resumes a timer that went
        inactive for lack of it."""
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            timer = await self.own(session, caller, timer_id)
            if timer.status not in ("paused", "inactive"):
                return timer
            schedule = Schedule.of_document(timer.schedule)
            due = timer.next_run
            if due is None or due < now:
                due = schedule.following(due or schedule.start, timer.n_runs, now)
                if timer.n_runs == 0 and schedule.interval is None:
                    due = now
            if due is None:
                raise TimerError(
                    "This timer's schedule is over; it has nothing left to run",
                    code="CONFLICT",
                    status=409,
                )
            timer.next_run = due
            timer.status = "loaded" if timer.n_runs else "new"
            timer.inactive_reason = None
            mark_changed(session, SCHEDULE_TOPIC)
        return timer

    async def delete(self, caller: Caller, timer_id: object) -> TimerView:
        async with self.ctx.db.session() as session:
            timer = await self.own(session, caller, timer_id)
            view = TimerView(timer, await runs_of(session, timer.id))
            await session.execute(delete(TimerRun).where(TimerRun.timer_id == timer.id))
            await session.delete(timer)
        timer.status = "deleted"
        timer.next_run = None
        return view


async def runs_of(session: AsyncSession, timer_id: uuid.UUID) -> list[tuple[TimerRun, Task | None]]:
    """The latest runs first, each with its task (if it submitted one)."""
    rows = await session.execute(
        select(TimerRun, Task)
        .outerjoin(Task, Task.id == TimerRun.task_id)
        .where(TimerRun.timer_id == timer_id)
        .order_by(TimerRun.number.desc())
        .limit(RUNS_SHOWN)
    )
    return [(run, task) for run, task in rows.tuples()]


def _when(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def run_document(run: TimerRun, task: Task | None) -> dict[str, Any]:
    """One run as the Timers API's ``results`` list it."""
    if run.state == "failed":
        return {
            "ran_at": _when(run.ran_at),
            "status": 403 if run.error_code == "PermissionDenied" else 400,
            "errors": {"code": run.error_code, "message": run.error_message},
            "data": None,
        }
    details = (
        {
            "task_id": str(task.id),
            "status": task.status,
            "label": task.label,
            "request_time": _when(task.request_time),
            "completion_time": _when(task.completion_time),
            "files_transferred": task.files_transferred,
            "bytes_transferred": task.bytes_transferred,
        }
        if task is not None
        else None
    )
    return {
        "ran_at": _when(run.ran_at),
        "status": 202,
        "errors": None,
        "data": {
            "action_id": str(run.task_id) if run.task_id else None,
            "status": task.status if task is not None else "PENDING",
            "display_status": task.status if task is not None else "PENDING",
            "details": details,
        },
    }


def timer_document(view: TimerView) -> dict[str, Any]:
    """A timer as both ``/v2/timer`` and ``/jobs/`` answer (the fields of either
    generation of the API, which globus-sdk and globus-cli read)."""
    timer = view.timer
    schedule = Schedule.of_document(timer.schedule)
    end = timer.schedule.get("end") or {}
    if timer.status == "paused":
        activity: dict[str, Any] | None = {"code": "paused", "start_timestamp": None}
    elif timer.status in ("new", "loaded"):
        activity = {"code": "awaiting_next_run", "start_timestamp": None}
    else:
        activity = None
    latest = view.runs[0] if view.runs else None
    running = latest is not None and latest[1] is not None and latest[1].status == "ACTIVE"
    if latest is not None and running and timer.status in ("new", "loaded"):
        activity = {"code": "run_in_progress", "start_timestamp": _when(latest[0].ran_at)}
    return {
        "job_id": str(timer.id),
        "name": timer.name,
        "timer_type": timer.timer_type,
        "status": timer.status,
        "inactive_reason": timer.inactive_reason,
        "submitted_at": _when(timer.submitted_at),
        "schedule": timer.schedule,
        "start": _when(schedule.start),
        "interval": schedule.interval.total_seconds() if schedule.interval else None,
        "stop_after": {"date": end.get("datetime"), "n_runs": end.get("count")}
        if schedule.interval
        else {"date": None, "n_runs": 1},
        "body": timer.body,
        "callback_url": TRANSFER_CALLBACK_URL,
        "callback_body": {"body": timer.body},
        "scope": None,
        "last_ran_at": _when(timer.last_ran_at),
        "next_run": _when(timer.next_run) if timer.status in ("new", "loaded") else None,
        "n_runs": timer.n_runs,
        "n_errors": timer.n_errors,
        "number_of_runs": timer.n_runs,
        "number_of_errors": timer.n_errors,
        "activity": activity,
        "results": {"data": [run_document(r, t) for r, t in view.runs], "page_next": None},
    }
