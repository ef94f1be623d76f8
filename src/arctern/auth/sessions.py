"""The browser login session: who is logged in, read from the signed session cookie."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from arctern.context import AppContext
from arctern.db.models.auth import Identity

IDENTITY_KEY = "identity_id"
AUTH_TIME_KEY = "auth_time"


def session_identity_id(request: Request) -> uuid.UUID | None:
    raw = request.session.get(IDENTITY_KEY)
    if not isinstance(raw, str):
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def current_identity(request: Request, ctx: AppContext) -> Identity | None:
    """The logged-in identity, or None (also when the account is gone or disabled)."""
    identity_id = session_identity_id(request)
    if identity_id is None:
        return None
    async with ctx.db.session() as session:
        identity = await session.get(Identity, identity_id)
    if identity is None or identity.status != "used":
        return None
    return identity


def log_in(request: Request, identity: Identity, auth_time: int) -> None:
    """Start a fresh session for ``identity`` (a new CSRF token too, against fixation)."""
    request.session.clear()
    request.session[IDENTITY_KEY] = str(identity.id)
    request.session[AUTH_TIME_KEY] = auth_time


def log_out(request: Request) -> None:
    request.session.clear()
