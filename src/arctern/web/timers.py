"""The Timers pages: your timers, one timer's runs, pause / resume / delete.

The same use cases as the Timers API (``arctern.timers.service``). Pages live at
``/my-timers``; ``/timers`` is the API that globus-sdk and globus-cli call. Timers are made
from the file manager ("Repeat" in the transfer settings) or with ``globus timer create``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from arctern.context import AppContext
from arctern.errors import ArcternError
from arctern.timers.schedule import Schedule
from arctern.timers.service import Timers
from arctern.web.pages import Pages, caller_of

STATUS_LABELS = {
    "new": "Waiting for its first run",
    "loaded": "Scheduled",
    "paused": "Paused",
    "inactive": "Finished",
}


def describe_schedule(stored: dict[str, object]) -> str:
    """``Every 1 day, 3 runs`` / ``Once`` for a table cell."""
    schedule = Schedule.of_document(stored)  # type: ignore[arg-type]
    if schedule.interval is None:
        return "Once"
    seconds = int(schedule.interval.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            text = f"Every {count} {unit}{'s' if count != 1 else ''}"
            break
    else:
        text = f"Every {seconds} seconds"
    if schedule.stop_after_runs:
        text += f", {schedule.stop_after_runs} runs"
    elif schedule.stop_after:
        text += f", until {schedule.stop_after:%Y-%m-%d %H:%M} UTC"
    return text


def create_timers_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/my-timers")
    timers = Timers(ctx)

    @router.get("", response_class=HTMLResponse)
    async def my_timers(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        async with ctx.db.session() as session:
            mine = await timers.mine(session, user.id)
        return pages.render(
            request,
            "timers.html",
            user=user,
            active_nav="timers",
            timers=mine,
            statuses=STATUS_LABELS,
            describe=describe_schedule,
        )

    @router.get("/{timer_id}", response_class=HTMLResponse)
    async def show(request: Request, timer_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        try:
            view = await timers.view(caller_of(user), timer_id)
        except ArcternError as exc:
            return pages.render(
                request,
                "message.html",
                user=user,
                status_code=exc.status,
                title="Timer not found",
                heading="Timer not found",
                message=exc.message,
            )
        return pages.render(
            request,
            "timer.html",
            user=user,
            active_nav="timers",
            timer=view.timer,
            runs=view.runs,
            statuses=STATUS_LABELS,
            describe=describe_schedule,
        )

    @router.post("/{timer_id}/{action}", response_class=HTMLResponse)
    async def act(request: Request, timer_id: str, action: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _ = posted
        me = caller_of(user)
        try:
            if action == "pause":
                timer = await timers.pause(me, timer_id)
                pages.flash(request, f"Timer “{timer.name}” paused.")
            elif action == "resume":
                timer = await timers.resume(me, timer_id)
                pages.flash(request, f"Timer “{timer.name}” resumed.")
            elif action == "delete":
                deleted = await timers.delete(me, timer_id)
                pages.flash(request, f"Timer “{deleted.timer.name}” deleted.")
                return pages.redirect("/my-timers")
            else:
                return pages.redirect("/my-timers")
        except ArcternError as exc:
            pages.flash(request, exc.message, error=True)
        return pages.redirect(f"/my-timers/{timer_id}")

    return router
