"""The Auth ASGI application mounted at ``/auth``."""

from __future__ import annotations

from fastapi import FastAPI

from arctern.context import AppContext


def create_auth_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(title="Arctern Auth", docs_url=None, redoc_url=None)
    return app
