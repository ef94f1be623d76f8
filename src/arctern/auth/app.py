"""The Auth ASGI application mounted at ``/auth``: pages, OAuth2/OIDC endpoints, /v2/api.

Every error leaves as an OAuth/Globus error document (JSON) or, for browser pages, an HTML
error page; never FastAPI's default ``{"detail": ...}`` body and never a bare 500.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from arctern.auth.api import create_api_router
from arctern.auth.endpoints import create_endpoints_router, globus_error
from arctern.auth.pages import create_pages_router
from arctern.auth.service import AuthService
from arctern.auth.verifier import TokenVerifier
from arctern.context import AppContext
from arctern.errors import ArcternError, TooManyRequests
from arctern.http_limits import BodyLimit, too_large_message

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}


def create_auth_app(ctx: AppContext) -> FastAPI:
    service = AuthService(ctx)
    verifier = TokenVerifier(ctx)
    app = FastAPI(title="Arctern Auth", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.include_router(create_pages_router(service))
    app.include_router(create_endpoints_router(service, verifier))
    app.include_router(create_api_router(service, verifier))
    app.add_middleware(BodyLimit, render=_too_large)
    install_error_handlers(app)
    return app


def _too_large(_request: Request, limit: int) -> Response:
    return globus_error(413, "REQUEST_TOO_LARGE", too_large_message(limit))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArcternError)
    async def arctern_error(_request: Request, exc: ArcternError) -> Response:
        code = exc.code if exc.code.isupper() else _HTTP_CODES.get(exc.status, "BAD_REQUEST")
        response = globus_error(exc.status, code, exc.message)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        )
        return globus_error(400, "INVALID_PARAMETERS", problems or "Invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        return globus_error(exc.status_code, _HTTP_CODES.get(exc.status_code, "ERROR"), detail)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error in the auth service", exc_info=exc)
        return globus_error(500, "UNEXPECTED_ERROR", "An unexpected error occurred")
