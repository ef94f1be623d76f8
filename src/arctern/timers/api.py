"""The Globus Timers API as globus-sdk's ``TimersClient`` and ``globus timer …`` use it, at
``/timers`` (``GLOBUS_SDK_SERVICE_URL_TIMER=http://HOST:PORT/timers/``).

``POST /v2/timer`` creates a transfer timer (``TransferTimer``); ``/jobs/`` lists, shows,
pauses, resumes and deletes. Tokens must be for the Timers resource server with its
``timer`` scope (globus-cli's login asks for it). Errors are the Timers API's
``{"error": {"code", "detail", "status"}}``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from arctern.auth.client_identities import client_identity
from arctern.auth.verifier import TokenVerifier
from arctern.context import AppContext
from arctern.errors import ArcternError
from arctern.http_limits import BodyLimit
from arctern.timers.service import TimerError, Timers, TimerView, runs_of, timer_document
from arctern.transfer.app import too_large_response
from arctern.transfer.http import json_body
from arctern.transfer.security import bearer_token
from arctern.transfer.services.common import Caller

log = logging.getLogger(__name__)

TIMERS_RESOURCE_SERVER = "524230d7-ea86-4a52-8312-86065a9e0417"
TIMER_SCOPE = f"https://auth.globus.org/scopes/{TIMERS_RESOURCE_SERVER}/timer"


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "detail": detail, "status": status}}, status_code=status
    )


def create_timers_app(ctx: AppContext, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(title="Arctern Timers API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, render=too_large_response)
    timers = Timers(ctx)

    @app.exception_handler(ArcternError)
    async def handle(_request: Request, exc: ArcternError) -> JSONResponse:
        code = exc.code if isinstance(exc, TimerError) else exc.code.split(".")[-1]
        return error_response(exc.status, code, exc.message)

    @app.exception_handler(HTTPException)
    async def handle_http(_request: Request, exc: HTTPException) -> JSONResponse:
        code = "NOT_FOUND" if exc.status_code == 404 else "METHOD_NOT_ALLOWED"
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def handle_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in the Timers API", exc_info=exc)
        return error_response(500, "ERROR", "An unexpected error occurred")

    async def caller(request: Request) -> tuple[Caller, uuid.UUID]:
        token = bearer_token(request)
        grant = await verifier.verify(token) if token else None
        if grant is None:
            raise TimerError(
                "A valid Timers access token is required", code="UNAUTHORIZED", status=401
            )
        if grant.resource_server != TIMERS_RESOURCE_SERVER or TIMER_SCOPE not in grant.scopes:
            raise TimerError(
                f"The access token is not for the Timers API (scope {TIMER_SCOPE})",
                code="FORBIDDEN",
                status=403,
            )
        if grant.identity_id is None:
            identity = await client_identity(ctx, grant.client_id)
            if identity is None:
                raise TimerError(
                    "The client of this token no longer exists", code="UNAUTHORIZED", status=401
                )
            return Caller(identity.id, identity.username), grant.client_id
        return Caller(grant.identity_id, grant.username or ""), grant.client_id

    async def document(timer_id: uuid.UUID, me: Caller) -> dict[str, Any]:
        return timer_document(await timers.view(me, timer_id))

    @app.post("/v2/timer")
    async def create(request: Request) -> JSONResponse:
        me, client_id = await caller(request)
        body = await json_body(request)
        spec = body.get("timer")
        if not isinstance(spec, dict):
            raise TimerError("The body must be {'timer': {...}}", code="INVALID_BODY", status=422)
        if spec.get("timer_type", "transfer") != "transfer":
            raise TimerError(
                "Only transfer timers are offered here (timer_type 'transfer')",
                code="NOT_SUPPORTED",
                status=422,
            )
        timer = await timers.create(
            me, spec.get("name"), spec.get("schedule"), spec.get("body"), client_id=client_id
        )
        return JSONResponse({"timer": await document(timer.id, me)}, status_code=201)

    @app.get("/jobs/")
    async def list_jobs(request: Request) -> dict[str, Any]:
        me, _ = await caller(request)
        async with ctx.db.session() as session:
            mine = await timers.mine(session, me.identity_id)
            jobs = [timer_document(TimerView(t, await runs_of(session, t.id))) for t in mine]
        return {"jobs": jobs}

    @app.get("/jobs/{timer_id}")
    async def show(timer_id: str, request: Request) -> dict[str, Any]:
        me, _ = await caller(request)
        return timer_document(await timers.view(me, timer_id))

    @app.post("/jobs/{timer_id}/pause")
    async def pause(timer_id: str, request: Request) -> dict[str, Any]:
        me, _ = await caller(request)
        timer = await timers.pause(me, timer_id)
        return {"message": f"Successfully paused job {timer.id}."}

    @app.post("/jobs/{timer_id}/resume")
    async def resume(timer_id: str, request: Request) -> dict[str, Any]:
        me, _ = await caller(request)
        timer = await timers.resume(me, timer_id)
        return {"message": f"Successfully resumed job {timer.id}."}

    @app.delete("/jobs/{timer_id}")
    async def delete(timer_id: str, request: Request) -> dict[str, Any]:
        me, _ = await caller(request)
        return timer_document(await timers.delete(me, timer_id))

    return app
