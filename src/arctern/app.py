"""Composition root: settings → database → services → one ASGI application.

Auth is mounted under ``/auth``, Transfer under ``/transfer``, HTTPS access to collections
under ``/https`` (each with its own error format), the browser UI under ``/``.
``arctern serve`` also runs the embedded worker pool here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from arctern import __version__
from arctern.auth.app import create_auth_app
from arctern.auth.verifier import TokenVerifier
from arctern.config import Settings
from arctern.connect.api import create_agent_app
from arctern.context import AppContext
from arctern.gcs import create_gcs_app
from arctern.groups import create_groups_app
from arctern.heap import settle_heap
from arctern.http_limits import BodyLimit, RouteLimit
from arctern.https_access import create_https_app
from arctern.metrics import metrics_allowed
from arctern.security_headers import SecurityHeadersMiddleware
from arctern.timers.api import create_timers_app
from arctern.transfer.app import create_transfer_app
from arctern.web.routes import (
    create_web_router,
    install_error_pages,
    static_files,
    too_large_page,
)
from arctern.worker.pool import WorkerPool

# The APIs called with bearer tokens: they have no use for the browser session.
TOKEN_APIS = ("/transfer/", "/agent/", "/https/", "/groups/", "/timers/", "/gcs/")


class PageSessions(SessionMiddleware):
    """The browser session (signed cookie) for pages only: the token APIs skip decoding and
    re-signing it, a visible share of a ``get_task`` poll's time."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str,
        session_cookie: str,
        max_age: int,
        same_site: Literal["lax", "strict", "none"],
        https_only: bool,
        skip_prefixes: tuple[str, ...],
    ) -> None:
        super().__init__(
            app,
            secret_key=secret_key,
            session_cookie=session_cookie,
            max_age=max_age,
            same_site=same_site,
            https_only=https_only,
        )
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, run_worker: bool | None = None) -> FastAPI:
    ctx = AppContext.from_settings(settings)
    verifier = TokenVerifier(ctx)
    embedded = settings.embedded_worker if run_worker is None else run_worker
    # Work is submitted through this process, so the embedded pool hears of it at once
    # (and of other processes' work on PostgreSQL): it may idle for long.
    pool = WorkerPool(ctx, idle_interval=settings.worker_idle_seconds) if embedded else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Hear what other API hosts and workers commit: new work, revoked tokens, answers
        # of agents connected elsewhere.
        await ctx.db.listen()
        if pool is not None:
            await pool.start()
        settle_heap()
        try:
            yield
        finally:
            if pool is not None:
                await pool.stop()
            await ctx.db.dispose()

    app = FastAPI(title="Arctern", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(
        PageSessions,
        skip_prefixes=TOKEN_APIS,
        secret_key=settings.secret_key or "",
        session_cookie="arctern_session",
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
        # The login itself lives server side (arctern.auth.sessions) with its own idle and
        # absolute limits; the cookie need not outlive it.
        max_age=settings.web_session_lifetime_seconds,
    )
    # Browser posts over the limit are refused before the session is decoded; /auth,
    # /transfer and /agent enforce their own limits in their own error formats.
    app.add_middleware(
        BodyLimit,
        render=too_large_page,
        # HTTPS uploads bound their size themselves, as they stream to storage.
        routes=(
            RouteLimit("POST", re.compile(r"/files/upload/?"), settings.https_max_upload_bytes),
        ),
        skip_prefixes=("/auth/", *TOKEN_APIS),
    )
    # Outermost, so every answer carries the headers, refusals included.
    app.add_middleware(SecurityHeadersMiddleware, https=settings.base_url.startswith("https://"))
    app.mount("/auth", create_auth_app(ctx))
    app.mount("/transfer", create_transfer_app(ctx, verifier))
    app.mount("/agent", create_agent_app(ctx, verifier))
    app.mount("/https", create_https_app(ctx, verifier))
    app.mount("/groups", create_groups_app(ctx, verifier))
    app.mount("/timers", create_timers_app(ctx, verifier))
    app.mount("/gcs", create_gcs_app(ctx, verifier))
    app.mount("/static", static_files(), name="static")
    app.include_router(create_web_router(ctx, verifier))
    install_error_pages(app, ctx)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/.well-known/arctern.json", include_in_schema=False)
    async def discovery() -> JSONResponse:
        # Lets arctern_client.connect() find both services from the one URL a user knows.
        return JSONResponse(
            {
                "auth_url": settings.auth_url,
                "transfer_url": settings.transfer_url,
                "version": __version__,
            }
        )

    @app.get("/authv2/web/auth-code", include_in_schema=False)
    async def auth_code_without_slash(request: Request) -> RedirectResponse:
        # An auth URL configured without its trailing slash makes the SDK and CLI build
        # "<base>v2/web/auth-code"; send the browser to the real page.
        query = request.url.query
        return RedirectResponse("/auth/v2/web/auth-code" + (f"?{query}" if query else ""))

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not metrics_allowed(settings, request.headers.get("authorization")):
            # Off unless a token is configured; the same answer for a wrong token, so the
            # endpoint does not announce itself.
            return JSONResponse(
                {"code": "ClientError.NotFound", "message": "Not Found", "resource": "/metrics"},
                status_code=404,
            )
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
