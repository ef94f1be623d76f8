"""The Transfer ASGI application mounted at ``/transfer``: routes, body limits, error rendering.

Every response that is not a success is a Globus error document; FastAPI's own error bodies
(``{"detail": …}``) never leave this app, and nothing answers a client mistake with a 5xx.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from arctern.auth.verifier import TokenVerifier
from arctern.connectors.errors import ConnectorError
from arctern.context import AppContext
from arctern.errors import ArcternError
from arctern.http_limits import MIB, BodyLimit, RouteLimit, too_large_message
from arctern.transfer.errors import error_response, globus_code, storage_error
from arctern.transfer.http import resource
from arctern.transfer.routes import admin, bookmarks, endpoints, operations, tasks
from arctern.transfer.security import make_authenticator

log = logging.getLogger(__name__)

# A submission of 100,000 items is about 20 MiB; everything else is small.
MAX_SUBMISSION_BYTES = 100 * MIB
API_PREFIX = "/v0.10"
SUBMISSION_ROUTES = (
    RouteLimit(
        "POST", re.compile(re.escape(API_PREFIX) + r"/(transfer|delete)/?"), MAX_SUBMISSION_BYTES
    ),
)


def too_large_response(request: Request, limit: int) -> Response:
    """A 413 in the Transfer API's error format (also used by the agent API)."""
    return error_response(
        413, "ClientError.RequestTooLarge", too_large_message(limit), resource(request)
    )


def body_error_response(request: Request, status: int, message: str) -> Response:
    """A refused request body (bad or unsupported encoding), in the Transfer API's format."""
    code = "ClientError.UnsupportedMediaType" if status == 415 else "ClientError.BadRequest"
    return error_response(status, code, message, resource(request))


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
    app.add_middleware(BodyLimit, render=too_large_response, routes=SUBMISSION_ROUTES)
    install_error_handlers(app)
    authenticate = make_authenticator(verifier)
    # Routes are matched in order, and status polls are the most frequent request.
    for module in (tasks, endpoints, operations, bookmarks, admin):
        app.include_router(module.create_router(ctx, authenticate), prefix=API_PREFIX)
    return app
