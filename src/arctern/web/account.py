"""The account page: the identities linked into your identity set, and linking another.

Linking proves you hold the other identity: you log in with it (any institution, including
one with its own login page), and come back here; the page then links it to the identity you
started from and puts you back in that one. The marker of a linking in progress lives in the
signed session cookie for ten minutes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from arctern.auth import identity_sets, sessions
from arctern.auth.pages import login_url
from arctern.auth.sessions import LINKING_KEY
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.web.pages import Pages

LINKING_SECONDS = 600


def create_account_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/account")

    @router.get("", response_class=HTMLResponse)
    async def account(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        async with ctx.db.session() as session:
            linked = await identity_sets.members(session, user.id)
        return pages.render(
            request, "account.html", user=user, active_nav="account", me=user, linked=linked
        )

    @router.post("/link", response_class=HTMLResponse)
    async def start_linking(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _ = posted
        request.session[LINKING_KEY] = {"id": str(user.id), "until": time.time() + LINKING_SECONDS}
        return pages.redirect(login_url("/account/linked"))

    @router.get("/linked", response_class=HTMLResponse)
    async def finish_linking(request: Request) -> Response:
        other = await pages.user(request)
        marker: Any = request.session.pop(LINKING_KEY, None)
        if other is None:
            return pages.login_redirect(request)
        if not isinstance(marker, dict) or float(marker.get("until", 0)) < time.time():
            pages.flash(request, "That linking took too long or did not start here.", error=True)
            return pages.redirect("/account")
        try:
            primary_id = uuid.UUID(str(marker.get("id")))
        except ValueError:
            return pages.redirect("/account")
        async with ctx.db.session() as session:
            primary = await session.get(Identity, primary_id)
            incoming = await session.get(Identity, other.id)
            if primary is None or incoming is None or not primary.active:
                pages.flash(request, "The identity you started from cannot be used.", error=True)
                return pages.redirect("/account")
            try:
                await identity_sets.link(session, primary, incoming)
            except identity_sets.LinkError as exc:
                pages.flash(request, str(exc), error=True)
                return pages.redirect("/account")
        # Back in the identity the linking started from, now with both in its set.
        await sessions.log_in(request, ctx, primary)
        pages.flash(request, f"Linked {other.username} to {primary.username}.")
        return pages.redirect("/account")

    @router.post("/unlink", response_class=HTMLResponse)
    async def unlink(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        try:
            other_id = uuid.UUID(str(form.get("identity_id", "")))
        except ValueError:
            return pages.redirect("/account")
        async with ctx.db.session() as session:
            me = await session.get(Identity, user.id)
            assert me is not None
            try:
                other = await identity_sets.unlink(session, me, other_id)
            except identity_sets.LinkError as exc:
                pages.flash(request, str(exc), error=True)
                return pages.redirect("/account")
        pages.flash(request, f"Unlinked {other.username}.")
        return pages.redirect("/account")

    return router
