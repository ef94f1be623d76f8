"""Tasks on the collections you administer or monitor (other users' included), with Cancel
for activity managers: the web side of the Transfer API's ``endpoint_manager`` calls."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from arctern.context import AppContext
from arctern.errors import ArcternError
from arctern.transfer.services import endpoint_manager
from arctern.web.pages import Pages, caller_of

SHOWN = 100


def create_managed_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/activity/managed")

    @router.get("", response_class=HTMLResponse)
    async def managed(request: Request, status: str = "ACTIVE") -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        me = caller_of(user)
        statuses = [status] if status in ("ACTIVE", "SUCCEEDED", "FAILED") else []
        views, total = await endpoint_manager.task_list(
            ctx, me, endpoints=[], statuses=statuses, limit=SHOWN, offset=0
        )
        monitored = await endpoint_manager.monitored_collections(ctx, me)
        return pages.render(
            request,
            "managed.html",
            user=user,
            active_nav="activity",
            views=views,
            total=total,
            status=status,
            monitored=monitored,
        )

    @router.post("/{task_id}/cancel", response_class=HTMLResponse)
    async def cancel(request: Request, task_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        message = str(form.get("message", "")).strip() or "Cancelled by an endpoint administrator"
        try:
            outcome = await endpoint_manager.cancel_tasks(ctx, caller_of(user), [task_id], message)
        except ArcternError as exc:
            pages.flash(request, exc.message, error=True)
            return pages.redirect("/activity/managed")
        if outcome.canceled:
            pages.flash(request, f"Task {task_id} is being cancelled; its owner sees your note.")
        else:
            pages.flash(
                request,
                "Not cancelled: the task has ended, or you are not an activity manager of "
                "its collections.",
                error=True,
            )
        return pages.redirect("/activity/managed")

    return router
