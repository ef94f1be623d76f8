"""The Transfer ASGI application mounted at ``/transfer``."""

from __future__ import annotations

from fastapi import FastAPI

from arctern.auth.verifier import TokenVerifier
from arctern.context import AppContext


def create_transfer_app(ctx: AppContext, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(title="Arctern Transfer", docs_url=None, redoc_url=None)
    return app
