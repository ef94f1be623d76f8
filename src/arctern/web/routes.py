"""Routes of the browser UI: landing page, logout, and the console / file manager routers."""

from __future__ import annotations

import html

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from arctern.auth import sessions
from arctern.auth.verifier import TokenVerifier
from arctern.context import AppContext
from arctern.http_limits import too_large_message
from arctern.web.account import create_account_router
from arctern.web.activity import create_activity_router
from arctern.web.collections import create_collections_router
from arctern.web.console import create_console_router
from arctern.web.files import create_files_router
from arctern.web.groups import create_groups_router
from arctern.web.managed import create_managed_router
from arctern.web.pages import Pages
from arctern.web.templating import STATIC_DIR
from arctern.web.timers import create_timers_router


def create_web_router(ctx: AppContext, verifier: TokenVerifier) -> APIRouter:
    # The browser UI authenticates with the login session, not bearer tokens; ``verifier``
    # stays in the signature because the composition root hands every front end the same parts.
    del verifier
    pages = Pages(ctx)
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    async def landing(request: Request) -> Response:
        user = await pages.user(request)
        return pages.render(request, "index.html", user=user)

    @router.get("/logout", response_class=HTMLResponse)
    async def logout_page(request: Request) -> Response:
        # A GET never logs out: a link or an <img> on another site must not end the
        # session. Old bookmarks land on a page with the (CSRF-protected) button.
        user = await pages.user(request)
        if user is None:
            return pages.redirect("/")
        return pages.render(request, "logout.html", user=user)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        if (denied := pages.csrf_failure(request, form)) is not None:
            return denied
        await sessions.log_out(request, ctx)
        pages.flash(request, "You are logged out.")
        return pages.redirect("/")

    router.include_router(create_console_router(ctx, pages))
    router.include_router(create_files_router(ctx, pages))
    # Before the activity pages, whose /activity/{task_id} would take "managed".
    router.include_router(create_managed_router(ctx, pages))
    router.include_router(create_activity_router(ctx, pages))
    router.include_router(create_groups_router(ctx, pages))
    router.include_router(create_timers_router(ctx, pages))
    router.include_router(create_collections_router(ctx, pages))
    router.include_router(create_account_router(ctx, pages))
    return router


def install_error_pages(app: FastAPI, ctx: AppContext) -> None:
    """Unknown URLs outside /auth and /transfer: a page for browsers, JSON for programs."""
    pages = Pages(ctx)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            user = await pages.user(request) if exc.status_code == 404 else None
            if exc.status_code == 404:
                return pages.not_found(request, user, "Page")
            return pages.render(
                request,
                "message.html",
                user=user,
                status_code=exc.status_code,
                title="Error",
                heading=f"Error {exc.status_code}",
                message=str(exc.detail),
            )
        code = "ClientError.NotFound" if exc.status_code == 404 else "ClientError"
        return JSONResponse(
            {"code": code, "message": str(exc.detail), "resource": request.url.path},
            status_code=exc.status_code,
            headers=exc.headers,
        )


def too_large_page(_request: Request, limit: int) -> Response:
    """The 413 for browser forms; static, so it needs neither the session nor a database."""
    message = html.escape(too_large_message(limit))
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Request too large</title></head><body><h1>Request too large</h1>"
        f'<p>{message}.</p><p><a href="/">Back to Arctern</a></p></body></html>'
    )
    return HTMLResponse(body, status_code=413)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
