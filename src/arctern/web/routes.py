"""Routes of the browser UI."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from arctern.auth.verifier import TokenVerifier
from arctern.context import AppContext
from arctern.web.templating import STATIC_DIR


def create_web_router(ctx: AppContext, verifier: TokenVerifier) -> APIRouter:
    router = APIRouter()
    return router


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
