"""The Transfer ASGI application mounted at ``/transfer``: routes, body limit, error rendering.

Every response that is not a success is a Globus error document; FastAPI's own error bodies
(``{"detail": …}``) never leave this app, and nothing answers a client mistake with a 5xx.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arctern.auth.verifier import TokenVerifier
from arctern.connectors.errors import ConnectorError
from arctern.context import AppContext
from arctern.errors import ArcternError, RequestTooLarge
from arctern.transfer.errors import error_response, globus_code, storage_error
from arctern.transfer.http import resource
from arctern.transfer.routes import bookmarks, endpoints, operations, tasks
from arctern.transfer.security import make_authenticator

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 100 * 1024 * 1024
API_PREFIX = "/v0.10"


class BodyLimit:
    """Refuses request bodies larger than ``limit`` bytes, announced or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self.limit:
                    response = error_response(
                        413,
                        "ClientError.RequestTooLarge",
                        f"The request body exceeds {self.limit} bytes",
                        scope.get("path", ""),
                    )
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise RequestTooLarge(
                        f"The request body exceeds {self.limit} bytes",
                        code="ClientError.RequestTooLarge",
                    )
            return message

        await self.app(scope, limited_receive, send)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArcternError)
    async def arctern_error(request: Request, exc: ArcternError) -> JSONResponse:
        return error_response(exc.status, globus_code(exc), exc.message, resource(request))

    @app.exception_handler(ConnectorError)
    async def connector_error(request: Request, exc: ConnectorError) -> JSONResponse:
        mapped = storage_error(exc, "Endpoint", resource(request))
        return error_response(mapped.status, mapped.code, mapped.message, resource(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in exc.errors()
        )
        return error_response(
            400, "ClientError.BadRequest", f"Invalid request: {problems}", resource(request)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            code, message = "ClientError.NotFound", f"No such resource '{resource(request)}'"
        elif exc.status_code == 405:
            code, message = "ClientError.MethodNotAllowed", f"{request.method} is not allowed here"
        elif exc.status_code < 500:
            code, message = "ClientError.BadRequest", str(exc.detail)
        else:
            code, message = "ServiceUnavailable", str(exc.detail)
        return error_response(exc.status_code, code, message, resource(request))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        # A 502 with an EndpointError code: a real fault, but one the SDK does not hammer
        # with five retries.
        return error_response(
            502,
            "EndpointError",
            "An internal error occurred; it has been logged.",
            resource(request),
        )


def create_transfer_app(ctx: AppContext, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(
        title="Arctern Transfer", docs_url=None, redoc_url=None, openapi_url="/openapi.json"
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    install_error_handlers(app)
    authenticate = make_authenticator(verifier)
    for module in (endpoints, operations, tasks, bookmarks):
        app.include_router(module.create_router(ctx, authenticate), prefix=API_PREFIX)
    return app
