"""Identity sets: one person's identities at several institutions, linked together.

A person who logged in with identity A links identity B by logging in as B too (proving they
hold it); from then on A and B are one set: tokens, userinfo and introspection list the whole
set (``identity_set``), and access rules granted to any identity of the set apply to all
(``db/grants.py``). A set is named by ``set_id``, the id of the identity it was made from;
an identity that was never linked is a set of its own (``set_id`` None). Linking B whose own
set has other members brings them along; unlinking takes one identity out.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from arctern.db.models.auth import Identity


def set_key(identity: Identity) -> uuid.UUID:
    return identity.set_id or identity.id


async def primary(session: AsyncSession, identity: Identity) -> Identity:
    """The identity ``identity``'s set is named after (the one it was linked into first),
    which logins with any identity of the set act as; ``identity`` itself when it is not
    linked or that one can no longer log in."""
    if identity.set_id is None or identity.set_id == identity.id:
        return identity
    named = await session.get(Identity, identity.set_id)
    return named if named is not None and named.active else identity


def _members_query(identity_id: uuid.UUID):  # type: ignore[no-untyped-def]
    own = select(func.coalesce(Identity.set_id, Identity.id)).where(Identity.id == identity_id)
    return (
        select(Identity)
        .where(func.coalesce(Identity.set_id, Identity.id) == own.scalar_subquery())
        .order_by(Identity.username)
    )


def members_sync(session: Session, identity_id: uuid.UUID) -> list[Identity]:
    """The identities of ``identity_id``'s set (itself included), by username."""
    return list(session.scalars(_members_query(identity_id)))


async def members(session: AsyncSession, identity_id: uuid.UUID) -> list[Identity]:
    return list(await session.scalars(_members_query(identity_id)))


async def member_ids(session: AsyncSession, identity_id: uuid.UUID) -> list[uuid.UUID]:
    return [m.id for m in await members(session, identity_id)]


class LinkError(Exception):
    """Why two identities cannot be linked (in words for the person linking)."""


async def link(session: AsyncSession, primary: Identity, other: Identity) -> None:
    """Put ``other`` and the rest of its set into ``primary``'s set."""
    if other.id == primary.id:
        raise LinkError("That is the identity you are logged in with.")
    target, moving = set_key(primary), set_key(other)
    if target == moving:
        raise LinkError(f"{other.username} is already linked.")
    await session.execute(
        update(Identity)
        .where(func.coalesce(Identity.set_id, Identity.id) == moving)
        .values(set_id=target)
    )
    if primary.set_id is None:
        primary.set_id = target


async def unlink(session: AsyncSession, primary: Identity, other_id: uuid.UUID) -> Identity:
    """Take ``other_id`` out of ``primary``'s set (not ``primary`` itself)."""
    if other_id == primary.id:
        raise LinkError("You cannot unlink the identity you are logged in with.")
    other = await session.get(Identity, other_id)
    if other is None or set_key(other) != set_key(primary):
        raise LinkError("That identity is not linked to yours.")
    other.set_id = None
    if other.id == set_key(primary):
        # The set was named after the identity leaving: rename it after one who stays.
        await session.execute(
            update(Identity).where(Identity.set_id == other.id).values(set_id=primary.id)
        )
    return other
