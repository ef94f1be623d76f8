"""Routes of the browser UI."""

from __future__ import annotations

from fastapi import APIRouter

from arctern.auth.verifier import TokenVerifier
from arctern.context import AppContext


def create_web_router(ctx: AppContext, verifier: TokenVerifier) -> APIRouter:
    router = APIRouter()
    return router
