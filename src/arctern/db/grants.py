"""An identity's access rules on one collection, as a connector access guard.

Shared by the API (file operations, submission) and the worker (planning, leasing and every
progress flush of a running task), so both read the same rules the same way. The owner of a
collection gets no guard: full access, unchanged behaviour and speed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connectors.access import AccessGuard
from arctern.db.gateways import gateway_limit
from arctern.db.models.auth import Identity
from arctern.db.models.groups import GroupMembership
from arctern.db.models.transfer import AclRule, Collection

# Rules that apply to every caller, whoever they are.
OPEN_PRINCIPALS = ("all_authenticated_users", "anonymous")


def principal_matches(identity_ids: list[uuid.UUID]) -> ColumnElement[bool]:
    """Rules granted to one of ``identity_ids`` (a person's identity set), to a group one of
    them is an active member of, or to everyone."""
    groups = select(GroupMembership.group_key).where(
        GroupMembership.identity_id.in_(identity_ids), GroupMembership.status == "active"
    )
    return or_(
        AclRule.principal_type.in_(OPEN_PRINCIPALS),
        (AclRule.principal_type == "identity")
        & AclRule.principal.in_([str(i) for i in identity_ids]),
        (AclRule.principal_type == "group") & AclRule.principal.in_(groups),
    )


async def identity_set_of(session: AsyncSession, identity_id: uuid.UUID) -> list[uuid.UUID]:
    """``identity_id`` and the identities linked to it (``auth/identity_sets.py``)."""
    own = select(func.coalesce(Identity.set_id, Identity.id)).where(Identity.id == identity_id)
    found = list(
        await session.scalars(
            select(Identity.id).where(
                func.coalesce(Identity.set_id, Identity.id) == own.scalar_subquery()
            )
        )
    )
    return found or [identity_id]


async def applicable_rules(
    session: AsyncSession, identity_id: uuid.UUID, collection_id: uuid.UUID, now: datetime
) -> list[AclRule]:
    """The unexpired rules on the collection that apply to ``identity_id`` or an identity
    linked to it."""
    ids = await identity_set_of(session, identity_id)
    rows = await session.scalars(
        select(AclRule).where(AclRule.collection_id == collection_id, principal_matches(ids))
    )
    return [rule for rule in rows if rule.expiration_date is None or rule.expiration_date > now]


def guard_from_rules(rules: list[AclRule]) -> AccessGuard:
    return AccessGuard(
        readable=[rule.path for rule in rules],
        writable=[rule.path for rule in rules if rule.permissions == "rw"],
    )


async def access_guard(
    session: AsyncSession, identity_id: uuid.UUID, collection: Collection, now: datetime
) -> AccessGuard | None:
    """What ``identity_id`` may touch on ``collection`` now; None: everything (its owner).

    On a guest collection, guests get what its rules grant them *and* its creator can
    still reach in the mapped collection; the creator, what they can reach there. The path
    restrictions of the collection's storage gateway bound everyone, its owner included."""
    granted = await _granted(session, identity_id, collection, now)
    limit = await gateway_limit(session, collection)
    if limit is None:
        return granted
    return limit if granted is None else intersect(granted, limit)


async def _granted(
    session: AsyncSession, identity_id: uuid.UUID, collection: Collection, now: datetime
) -> AccessGuard | None:
    if collection.mapped_collection_id is not None:
        reach = await creator_reach(session, collection, now)
        if collection.owner_id == identity_id:
            return reach
        own = guard_from_rules(await applicable_rules(session, identity_id, collection.id, now))
        return own if reach is None else intersect(own, reach)
    if collection.owner_id == identity_id:
        return None
    return guard_from_rules(await applicable_rules(session, identity_id, collection.id, now))


async def creator_reach(
    session: AsyncSession, guest: Collection, now: datetime
) -> AccessGuard | None:
    """What a guest collection's creator can reach in its mapped collection now, in the
    guest collection's paths; None: all of it. Nothing once the creator cannot log in."""
    mapped = await session.get(Collection, guest.mapped_collection_id)
    creator = await session.get(Identity, guest.owner_id)
    if mapped is None or creator is None or not creator.active:
        return AccessGuard()
    there = await access_guard(session, guest.owner_id, mapped, now)
    if there is None:
        return None
    base = (guest.guest_base_path or "/").rstrip("/") + "/"
    return AccessGuard(
        readable=[p for grant in there.readable if (p := seen_from(base, grant)) is not None],
        writable=[p for grant in there.writable if (p := seen_from(base, grant)) is not None],
        denied=[p for grant in there.denied if (p := seen_from(base, grant)) is not None],
    )


def seen_from(base: str, grant: str) -> str | None:
    """A grant on the mapped collection (a directory prefix) as a path of the guest
    collection rooted at ``base``: the part inside it, all of it, or nothing."""
    if grant.startswith(base):
        return "/" + grant[len(base) :]
    if base.startswith(grant):
        return "/"
    return None


def intersect(a: AccessGuard, b: AccessGuard) -> AccessGuard:
    """What both guards allow (prefix sets: the deeper of every pair that nests)."""

    def meet(xs: tuple[str, ...], ys: tuple[str, ...]) -> list[str]:
        return [
            x if x.startswith(y) else y
            for x in xs
            for y in ys
            if x.startswith(y) or y.startswith(x)
        ]

    return AccessGuard(
        readable=meet(a.readable, b.readable),
        writable=meet(a.writable, b.writable),
        denied=[*a.denied, *b.denied],
    )
