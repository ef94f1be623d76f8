"""The browser login session, kept server side in ``auth_web_sessions``.

The signed session cookie carries a random session id (plus per-browser state that grants
nothing by itself: the CSRF token and one-shot notices); the database holds its SHA-256
digest, the identity, and when it was created and last used. So a logout, a password change
or disabling the account ends the session on every API host at once, and a copied cookie is
worth nothing afterwards. A session ends ``web_session_idle_seconds`` after its last request
and ``web_session_lifetime_seconds`` after the password was typed, whichever comes first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from arctern.auth import identity_sets
from arctern.auth.hashing import digest, new_secret
from arctern.context import AppContext
from arctern.db.models.auth import Identity, WebSession

SESSION_ID_KEY = "sid"
# Refreshing ``last_seen`` is a write; once a minute is precise enough for an idle timeout
# measured in hours, and keeps page views read-only otherwise.
TOUCH_INTERVAL = timedelta(seconds=60)
_SCOPE_KEY = "arctern.login"


@dataclass(frozen=True)
class Login:
    """A live browser login: who (the primary identity of the set of whoever logged in, as
    with Globus), and every identity of the set that authenticated in this session, each
    with when its password was typed (Globus's ``session update`` adds more)."""

    identity: Identity
    # The latest authentication of the session.
    auth_time: datetime
    # {identity id: auth time in epoch seconds}
    authentications: dict[str, int]


async def current_login(request: Request, ctx: AppContext) -> Login | None:
    """This browser's live login, or None (also when ended, expired, idle or disabled)."""
    if _SCOPE_KEY in request.scope:
        cached: Login | None = request.scope[_SCOPE_KEY]
        return cached
    login = await _load_login(request, ctx)
    request.scope[_SCOPE_KEY] = login
    return login


async def current_identity(request: Request, ctx: AppContext) -> Identity | None:
    """The logged-in identity, or None (also when the account is gone or disabled)."""
    login = await current_login(request, ctx)
    return login.identity if login is not None else None


async def _load_login(request: Request, ctx: AppContext) -> Login | None:
    session_id = request.session.get(SESSION_ID_KEY)
    if not isinstance(session_id, str) or not session_id:
        return None
    settings = ctx.settings
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        found = (
            await session.execute(
                select(WebSession, Identity)
                .join(Identity, Identity.id == WebSession.identity_id)
                .where(WebSession.session_hash == digest(session_id))
            )
        ).first()
        if found is None:
            request.session.pop(SESSION_ID_KEY, None)
            return None
        row, identity = found
        idle_limit = row.last_seen + timedelta(seconds=settings.web_session_idle_seconds)
        if now >= row.expires_at or now >= idle_limit or not identity.active:
            await session.delete(row)
            request.session.pop(SESSION_ID_KEY, None)
            return None
        if now - row.last_seen >= TOUCH_INTERVAL:
            row.last_seen = now
    return _login(identity, row.authentications or {str(identity.id): epoch(row.created_at)})


def _login(identity: Identity, authentications: dict[str, int]) -> Login:
    latest = datetime.fromtimestamp(max(authentications.values()), UTC)
    return Login(identity=identity, auth_time=latest, authentications=authentications)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# The identity a browser is linking another one to (``web/account.py``), kept across the
# login with the other: that login is added to the session being linked from.
LINKING_KEY = "linking_for"


async def log_in(request: Request, ctx: AppContext, identity: Identity) -> None:
    """Record that this browser just authenticated as ``identity``.

    The session belongs to the primary identity of ``identity``'s set (itself when it is
    not linked), as Globus logs any linked identity in as the account's primary one. When
    the browser is already logged in to that account (or is linking another identity to
    its own), the login is added to that session: Globus's session update, asked for by an
    application with ``session_required_identities``. Otherwise a fresh session replaces
    whatever the browser had. Either way the session id (and the CSRF token) are new, against
    fixation.
    """
    now = ctx.clock.now()
    current = await current_login(request, ctx)
    linking = request.session.get(LINKING_KEY)
    async with ctx.db.session() as session:
        owner = await identity_sets.primary(session, identity)
    authentications = {str(identity.id): epoch(now)}
    if current is not None and (
        current.identity.id == owner.id or _is_linking_from(linking, current.identity)
    ):
        owner = current.identity
        authentications = {**current.authentications, **authentications}
    session_id = new_secret()
    previous = request.session.get(SESSION_ID_KEY)
    async with ctx.db.session() as session:
        if isinstance(previous, str) and previous:
            await session.execute(
                delete(WebSession).where(WebSession.session_hash == digest(previous))
            )
        # Sessions nobody logged out of would otherwise stay forever; the index makes this
        # cheap, and logins are rare.
        await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        session.add(
            WebSession(
                session_hash=digest(session_id),
                identity_id=owner.id,
                created_at=now,
                last_seen=now,
                expires_at=now + timedelta(seconds=ctx.settings.web_session_lifetime_seconds),
                authentications=authentications,
            )
        )
    request.session.clear()
    if linking is not None:
        request.session[LINKING_KEY] = linking
    request.session[SESSION_ID_KEY] = session_id
    request.scope[_SCOPE_KEY] = _login(owner, authentications)


def _is_linking_from(marker: object, identity: Identity) -> bool:
    return isinstance(marker, dict) and marker.get("id") == str(identity.id)


async def log_out(request: Request, ctx: AppContext) -> None:
    """End this browser's session everywhere (the row goes, so a copied cookie is dead)."""
    session_id = request.session.get(SESSION_ID_KEY)
    if isinstance(session_id, str) and session_id:
        async with ctx.db.session() as session:
            await session.execute(
                delete(WebSession).where(WebSession.session_hash == digest(session_id))
            )
    request.session.clear()
    request.scope[_SCOPE_KEY] = None


async def end_sessions_of(session: AsyncSession, identity_id: uuid.UUID) -> int:
    """End every browser session one identity logged in to (password change, account
    disabled): its own, and those of its set's primary identity it authenticated in."""
    identity = await session.get(Identity, identity_id)
    owners = {identity_id}
    if identity is not None:
        owners.add((await identity_sets.primary(session, identity)).id)
    ended = 0
    for row in await session.scalars(select(WebSession).where(WebSession.identity_id.in_(owners))):
        if row.identity_id == identity_id or str(identity_id) in (row.authentications or {}):
            await session.delete(row)
            ended += 1
    return ended
