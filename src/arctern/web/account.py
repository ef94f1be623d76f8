"""The account page: the identities linked into your identity set, and linking another.

Linking proves you hold the other identity: you log in with it (any institution, including
one with its own login page) and that login is added to your session, which stays yours;
back here, the page links the identity you just logged in with to your own. The marker of a
linking in progress lives in the signed session cookie for ten minutes.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from arctern.auth import identity_sets, sessions
from arctern.auth.pages import login_url
from arctern.auth.sessions import LINKING_KEY
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.notify.outbox import mail_enabled
from arctern.notify.webhooks import WebhookError, set_webhook
from arctern.web.pages import Pages

LINKING_SECONDS = 600


def create_account_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/account")

    async def account_page(
        request: Request, login: sessions.Login, *, no_store: bool = False, **extra: Any
    ) -> Response:
        user = login.identity
        async with ctx.db.session() as session:
            linked = await identity_sets.members(session, user.id)
            me = await session.get(Identity, user.id)
        # When each identity logged in during this session (``globus session show``).
        in_session = {
            uuid.UUID(key): datetime.fromtimestamp(when, UTC)
            for key, when in login.authentications.items()
        }
        return pages.render(
            request,
            "account.html",
            user=user,
            active_nav="account",
            me=me or user,
            linked=linked,
            in_session=in_session,
            mail_enabled=mail_enabled(ctx.settings),
            no_store=no_store,
            **extra,
        )

    @router.get("", response_class=HTMLResponse)
    async def account(request: Request) -> Response:
        login = await sessions.current_login(request, ctx)
        if login is None:
            return pages.login_redirect(request)
        return await account_page(request, login)

    @router.post("/webhook", response_class=HTMLResponse)
    async def webhook(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        login = await sessions.current_login(request, ctx)
        assert login is not None
        try:
            async with ctx.db.session() as session:
                me = await session.get(Identity, user.id)
                assert me is not None
                secret = set_webhook(me, str(form.get("webhook_url", "")), ctx.settings)
        except WebhookError as exc:
            return await account_page(request, login, error=str(exc))
        if secret is None:
            pages.flash(request, "Webhook removed.")
            return pages.redirect("/account")
        # Shown once, on this page only: never in the session cookie nor a cached page.
        return await account_page(
            request,
            login,
            no_store=True,
            notice="Webhook saved. Copy its signing secret now: it is not shown again.",
            webhook_secret=secret,
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
        # The login with the other identity was added to this session (``sessions.log_in``):
        # the newest authentication from outside the set is the identity to link.
        login = await sessions.current_login(request, ctx)
        marker: Any = request.session.pop(LINKING_KEY, None)
        if login is None:
            return pages.login_redirect(request)
        primary = login.identity
        if (
            not isinstance(marker, dict)
            or marker.get("id") != str(primary.id)
            or float(marker.get("until", 0)) < time.time()
        ):
            pages.flash(request, "That linking took too long or did not start here.", error=True)
            return pages.redirect("/account")
        async with ctx.db.session() as session:
            in_set = set(await identity_sets.member_ids(session, primary.id))
            newest = sorted(
                (when, uuid.UUID(key))
                for key, when in login.authentications.items()
                if uuid.UUID(key) not in in_set
            )
            incoming = await session.get(Identity, newest[-1][1]) if newest else None
            if incoming is None:
                pages.flash(
                    request,
                    "You logged in with an identity that is already in your set: log in with "
                    "the one you want to link.",
                    error=True,
                )
                return pages.redirect("/account")
            me = await session.get(Identity, primary.id)
            assert me is not None
            try:
                await identity_sets.link(session, me, incoming)
            except identity_sets.LinkError as exc:
                pages.flash(request, str(exc), error=True)
                return pages.redirect("/account")
            username = incoming.username
        pages.flash(request, f"Linked {username} to {primary.username}.")
        return pages.redirect("/account")

    @router.post("/task-mail", response_class=HTMLResponse)
    async def task_mail(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        wanted = form.get("task_mail") == "on"
        async with ctx.db.session() as session:
            me = await session.get(Identity, user.id)
            assert me is not None
            me.task_mail = wanted
        pages.flash(
            request,
            "You will get mail when your tasks end."
            if wanted
            else "You will no longer get mail about your tasks.",
        )
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
