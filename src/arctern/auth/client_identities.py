"""The identities of OAuth clients (service accounts), as Globus Auth gives them.

A confidential client that obtains tokens with ``client_credentials`` acts as itself: its
identity has the client's own id and the username ``<client id>@clients.auth.globus.org``. It
owns the tasks it submits and can be granted access rules like any user. The identity is made
the first time the client uses a service; its provider never appears on the login page.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.context import AppContext
from arctern.db.models.auth import Identity, IdentityProvider, OAuthClient

CLIENTS_DOMAIN = "clients.auth.globus.org"
CLIENTS_PROVIDER_NAME = "Globus Auth clients"
CLIENTS_KIND = "clients"


def client_username(client_id: uuid.UUID) -> str:
    return f"{client_id}@{CLIENTS_DOMAIN}"


async def client_identity(ctx: AppContext, client_id: uuid.UUID) -> Identity | None:
    """The identity of client ``client_id`` (created on first use); None for no such client."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        identity = await session.get(Identity, client_id)
        if identity is not None:
            return identity
        client = await session.get(OAuthClient, client_id)
        if client is None:
            return None
        provider = await _clients_provider(session, now)
        identity = Identity(
            id=client_id,
            provider_id=provider.id,
            username=client_username(client_id),
            name=client.name,
            email=None,
            password_hash=None,
            status="used",
            created_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(identity)
        except IntegrityError:  # a concurrent first use made it
            identity = await session.get(Identity, client_id)
        return identity


async def _clients_provider(session: AsyncSession, now: datetime) -> IdentityProvider:
    provider = await session.scalar(
        select(IdentityProvider).where(IdentityProvider.domain == CLIENTS_DOMAIN)
    )
    if provider is None:
        provider = IdentityProvider(
            name=CLIENTS_PROVIDER_NAME, domain=CLIENTS_DOMAIN, kind=CLIENTS_KIND, created_at=now
        )
        try:
            async with session.begin_nested():
                session.add(provider)
        except IntegrityError:
            provider = await session.scalar(
                select(IdentityProvider).where(IdentityProvider.domain == CLIENTS_DOMAIN)
            )
            assert provider is not None
    return provider
