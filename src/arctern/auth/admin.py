"""Administrative operations on providers, users and clients (CLI, demo seeding, tests)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

import arctern.auth.registry as registry
from arctern.auth.client_identities import CLIENTS_KIND
from arctern.auth.hashing import hash_password
from arctern.auth.sessions import end_sessions_of
from arctern.auth.verifier import TOKENS_REVOKED
from arctern.context import AppContext
from arctern.db.engine import mark_changed
from arctern.db.models.auth import (
    AuthorizationCode,
    Identity,
    IdentityProvider,
    OAuthClient,
    OAuthToken,
)
from arctern.errors import Conflict, InvalidRequest, NotFound

# Globus's identity status for an account that can no longer be used.
DISABLED = "closed"


async def create_identity_provider(
    ctx: AppContext,
    name: str,
    domain: str,
    *,
    kind: str = "local",
    settings: dict[str, Any] | None = None,
) -> IdentityProvider:
    """Register an institution: local accounts, or (``kind`` "ldap") passwords checked by a
    directory (``settings``); Conflict if the name or domain exists."""
    name, domain = name.strip(), domain.strip().lower()
    if not name or not domain or "@" in domain:
        raise InvalidRequest("An identity provider needs a name and a domain like example.edu")
    async with ctx.db.session() as session:
        clash = await session.scalar(
            select(IdentityProvider).where(
                (IdentityProvider.name == name) | (IdentityProvider.domain == domain)
            )
        )
        if clash is not None:
            raise Conflict(f"Identity provider {clash.name} ({clash.domain}) already exists")
        provider = IdentityProvider(
            name=name, domain=domain, kind=kind, settings=settings, created_at=ctx.clock.now()
        )
        session.add(provider)
    return provider


async def _provider_for(
    session: AsyncSession, username: str, idp_name: str | None
) -> IdentityProvider:
    if idp_name is not None:
        provider = await session.scalar(
            select(IdentityProvider).where(IdentityProvider.name == idp_name)
        )
        if provider is None:
            raise NotFound(f"No identity provider named {idp_name!r}")
        return provider
    if "@" in username:
        domain = username.rsplit("@", 1)[1].lower()
        provider = await session.scalar(
            select(IdentityProvider).where(IdentityProvider.domain == domain)
        )
        if provider is None:
            raise NotFound(f"No identity provider for the domain {domain!r}")
        return provider
    providers = list(await session.scalars(select(IdentityProvider)))
    if len(providers) != 1:
        raise InvalidRequest("Say which identity provider the user belongs to (--idp)")
    return providers[0]


async def create_user(
    ctx: AppContext,
    username: str,
    password: str,
    *,
    idp_name: str | None = None,
    name: str = "",
    email: str | None = None,
) -> Identity:
    """Create a local account; a bare username gets the provider's domain appended."""
    username = username.strip()
    if not username or not password:
        raise InvalidRequest("A user needs a username and a non-empty password")
    password_hash = hash_password(ctx.settings, password)
    async with ctx.db.session() as session:
        provider = await _provider_for(session, username, idp_name)
        if "@" not in username:
            username = f"{username}@{provider.domain}"
        elif username.rsplit("@", 1)[1].lower() != provider.domain:
            raise InvalidRequest(f"{username} is not in the domain {provider.domain}")
        existing = await session.scalar(select(Identity).where(Identity.username == username))
        if existing is not None and existing.status == "unused":
            # Provisioned earlier by an identity lookup (e.g. for an ACL): claim it.
            existing.password_hash = password_hash
            existing.name = name or username.split("@", 1)[0]
            existing.email = email if email is not None else username
            existing.status = "used"
            return existing
        if existing is not None:
            raise Conflict(f"User {username} already exists")
        identity = Identity(
            provider_id=provider.id,
            username=username,
            name=name or username.split("@", 1)[0],
            email=email if email is not None else username,
            password_hash=password_hash,
            status="used",
            created_at=ctx.clock.now(),
        )
        session.add(identity)
        await session.flush()
        identity.provider = provider
    return identity


async def set_password(ctx: AppContext, username: str, password: str) -> None:
    """Change a password; every browser session of the user ends (on every host at once),
    so whoever learnt the old password or copied a session cookie is out."""
    if not password:
        raise InvalidRequest("The password must not be empty")
    password_hash = hash_password(ctx.settings, password)
    async with ctx.db.session() as session:
        identity = await _identity_named(session, username)
        identity.password_hash = password_hash
        await end_sessions_of(session, identity.id)


async def set_provider_enabled(ctx: AppContext, name: str, enabled: bool) -> IdentityProvider:
    """Disable (or re-enable) an identity provider by name or domain. Disabling takes it off
    the login page and ends what its identities hold: browser sessions, access and refresh
    tokens and unused codes; logins, refreshes and code exchanges refuse them until it is
    enabled again (identities disabled one by one stay disabled)."""
    async with ctx.db.session() as session:
        provider = await session.scalar(
            select(IdentityProvider).where(
                (IdentityProvider.name == name) | (IdentityProvider.domain == name.lower())
            )
        )
        if provider is None or provider.kind == CLIENTS_KIND:
            raise NotFound(f"No identity provider '{name}'")
        provider.enabled = enabled
        if not enabled:
            await _revoke_everything_of(
                session,
                list(
                    await session.scalars(
                        select(Identity.id).where(Identity.provider_id == provider.id)
                    )
                ),
            )
    return provider


async def _revoke_everything_of(session: AsyncSession, identity_ids: list[uuid.UUID]) -> None:
    """End the identities' browser sessions, revoke their tokens and unused codes."""
    for identity_id in identity_ids:
        await end_sessions_of(session, identity_id)
    if not identity_ids:
        return
    await session.execute(
        update(OAuthToken)
        .where(OAuthToken.identity_id.in_(identity_ids))
        .values(access_revoked=True, refresh_revoked=True)
    )
    # Tokens of an identity set's primary from a session one of them logged in to.
    for token in await session.scalars(
        select(OAuthToken).where(
            OAuthToken.identity_id.in_(
                select(Identity.set_id).where(
                    Identity.id.in_(identity_ids), Identity.set_id.is_not(None)
                )
            ),
            OAuthToken.refresh_revoked.is_(False) | OAuthToken.access_revoked.is_(False),
        )
    ):
        if any(str(i) in (token.authentications or {}) for i in identity_ids):
            token.access_revoked = token.refresh_revoked = True
    await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.identity_id.in_(identity_ids))
        .values(used=True)
    )
    mark_changed(session, TOKENS_REVOKED)


async def set_disabled(ctx: AppContext, username: str, disabled: bool) -> None:
    """Disable (or re-enable) an account. Disabling ends its browser sessions and revokes
    its access and refresh tokens and unused authorization codes, so nothing issued before
    keeps working; logging in, refreshing and code exchange refuse a disabled identity."""
    async with ctx.db.session() as session:
        identity = await _identity_named(session, username)
        if not disabled:
            if identity.status == DISABLED:
                identity.status = "used"
            return
        identity.status = DISABLED
        await _revoke_everything_of(session, [identity.id])


async def _identity_named(session: AsyncSession, username: str) -> Identity:
    identity = await session.scalar(select(Identity).where(Identity.username == username))
    if identity is None:
        raise NotFound(f"No user {username}")
    return identity


async def get_identity_by_username(ctx: AppContext, username: str) -> Identity | None:
    async with ctx.db.session() as session:
        return await session.scalar(select(Identity).where(Identity.username == username))


async def create_client(
    ctx: AppContext,
    *,
    name: str,
    owner_username: str,
    native: bool,
    redirect_uris: list[str],
    project_id: uuid.UUID | None = None,
) -> tuple[OAuthClient, str | None]:
    """Register an app owned by a user; returns the client and its secret (confidential only)."""
    async with ctx.db.session() as session:
        owner = await session.scalar(select(Identity).where(Identity.username == owner_username))
        if owner is None:
            raise NotFound(f"No user {owner_username}")
        return await registry.create_client(
            session,
            ctx.clock.now(),
            name=name,
            owner_id=owner.id,
            public_client=native,
            redirect_uris=redirect_uris,
            project_id=project_id,
        )
