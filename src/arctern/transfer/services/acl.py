"""Access rules on collections: who may read or write which path, and their management.

The owner of a collection has full access. Anyone else needs a rule granting ``r`` or ``rw``
on the path or one of its ancestors, to them or to all authenticated users. Only the owner
manages rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connectors.access import AccessGuard
from arctern.context import AppContext
from arctern.db.grants import (
    access_guard,
    applicable_rules,
    identity_set_of,
    principal_matches,
)
from arctern.db.models.auth import Identity
from arctern.db.models.groups import Group
from arctern.db.models.transfer import AclRule, Collection
from arctern.errors import ArcternError, NotFound, PermissionDenied
from arctern.notify.messages import sharing_invitation
from arctern.transfer.filters import bad_request, parse_datetime
from arctern.transfer.paths import dir_prefix, normalize_path
from arctern.transfer.services.common import Caller, endpoint_not_found, load_collection

Access = Literal["", "r", "rw"]
PRINCIPAL_TYPES = ("group", "identity", "all_authenticated_users", "anonymous")


async def shared_collection_ids(
    session: AsyncSession, caller: Caller, now: datetime
) -> set[uuid.UUID]:
    """Collections where at least one unexpired rule applies to the caller."""
    ids = await identity_set_of(session, caller.identity_id)
    rows = await session.execute(
        select(AclRule.collection_id, AclRule.expiration_date).where(principal_matches(ids))
    )
    return {cid for cid, expires in rows if expires is None or expires > now}


async def caller_rules(
    session: AsyncSession, caller: Caller, collection_id: uuid.UUID, now: datetime
) -> list[AclRule]:
    """The unexpired rules on the collection that apply to the caller."""
    return await applicable_rules(session, caller.identity_id, collection_id, now)


async def caller_guard(
    session: AsyncSession, caller: Caller, collection: Collection, now: datetime
) -> AccessGuard | None:
    """The caller's grants for the connector to enforce on resolved paths (None: owner).

    ``require_access`` checks the path the client named; this guard is checked by the
    connector again at the location that path actually resolves to (symlinks)."""
    return await access_guard(session, caller.identity_id, collection, now)


def check_access(
    guard: AccessGuard | None, collection: Collection, path: str, need: Literal["r", "rw"]
) -> None:
    """Raise unless ``guard`` (``caller_guard``'s; None: everything) allows ``need`` at
    ``path`` (canonical) and beneath it."""
    if guard is None or guard.allows(path, need):
        return
    verb = "read" if need == "r" else "write"
    raise PermissionDenied(
        f"You do not have permission to {verb} '{path}' on '{collection.display_name}'",
        code="PermissionDenied",
    )


async def require_access(
    session: AsyncSession,
    caller: Caller,
    collection: Collection,
    path: str,
    need: Literal["r", "rw"],
    now: datetime,
) -> AccessGuard | None:
    """Check the caller may do ``need`` at ``path``: the access rules (on a guest
    collection, bounded by what its creator can still reach) within the storage gateway's
    path restrictions (``db/grants``). Returns the caller's guard, for the connector to
    enforce again where paths resolve; several paths are checked with ``check_access``."""
    guard = await caller_guard(session, caller, collection, now)
    check_access(guard, collection, path, need)
    return guard


async def can_see(
    session: AsyncSession, caller: Caller, collection: Collection, now: datetime
) -> bool:
    """Whether the collection shows up for the caller (public, owned, or shared with them)."""
    if collection.public or collection.owner_id == caller.identity_id:
        return True
    return bool(await caller_rules(session, caller, collection.id, now))


async def visible_collection(
    session: AsyncSession, caller: Caller, endpoint_id: object, now: datetime
) -> Collection:
    collection = await load_collection(session, endpoint_id)
    if not await can_see(session, caller, collection, now):
        raise endpoint_not_found(endpoint_id)
    return collection


# -- rule management ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleInput:
    principal_type: str
    principal: str
    path: str
    permissions: str
    expiration_date: datetime | None


async def _may_manage_rules(session: AsyncSession, collection: Collection, caller: Caller) -> None:
    """Its owner, an administrator or an access manager (``roles``) manages its rules."""
    if collection.owner_id == caller.identity_id:
        return
    from arctern.transfer.services.roles import MANAGE_ACCESS, roles_on

    if not (await roles_on(session, caller, collection)) & MANAGE_ACCESS:
        raise PermissionDenied(
            f"You are not allowed to manage access rules on '{collection.display_name}'",
            code="PermissionDenied",
        )


async def _parse_rule(
    session: AsyncSession, body: dict[str, Any], *, partial: RuleInput | None = None
) -> RuleInput:
    data_type = body.get("DATA_TYPE", "access")
    if data_type != "access":
        raise bad_request(f"Invalid DATA_TYPE '{data_type}', expected 'access'")
    principal_type = body.get("principal_type", partial.principal_type if partial else None)
    if principal_type not in PRINCIPAL_TYPES:
        raise bad_request(f"principal_type must be one of {', '.join(PRINCIPAL_TYPES)}")
    principal = body.get("principal", partial.principal if partial else "")
    if principal is None:
        principal = ""
    if not isinstance(principal, str):
        raise bad_request("principal must be a string")
    if principal_type == "identity":
        try:
            identity_id = uuid.UUID(principal)
        except ValueError:
            raise bad_request(f"Invalid identity principal '{principal}'") from None
        if await session.get(Identity, identity_id) is None:
            raise bad_request(f"No such identity '{principal}'")
        principal = str(identity_id)
    elif principal_type == "group":
        try:
            group_id = uuid.UUID(principal)
        except ValueError:
            raise bad_request(f"Invalid group principal '{principal}'") from None
        if await session.get(Group, group_id) is None:
            raise bad_request(f"No such group '{principal}'")
        principal = str(group_id)
    else:
        principal = ""
    raw_path = body.get("path", partial.path if partial else None)
    if not isinstance(raw_path, str) or not raw_path:
        raise bad_request("An access rule needs a 'path'")
    path = dir_prefix(normalize_path(raw_path))
    permissions = body.get("permissions", partial.permissions if partial else None)
    if permissions not in ("r", "rw"):
        raise bad_request("permissions must be 'r' or 'rw'")
    expiration: datetime | None = partial.expiration_date if partial else None
    if "expiration_date" in body:
        raw_exp = body["expiration_date"]
        if raw_exp is None or raw_exp == "":
            expiration = None
        elif isinstance(raw_exp, str):
            expiration = parse_datetime(raw_exp)
        else:
            raise bad_request("expiration_date must be a date string")
    return RuleInput(principal_type, principal, path, permissions, expiration)


async def list_rules(ctx: AppContext, caller: Caller, endpoint_id: object) -> list[AclRule]:
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        await _may_manage_rules(session, collection, caller)
        rows = await session.scalars(
            select(AclRule)
            .where(AclRule.collection_id == collection.id)
            .order_by(AclRule.created_at, AclRule.path)
        )
        return list(rows)


async def create_rule(
    ctx: AppContext, caller: Caller, endpoint_id: object, body: dict[str, Any]
) -> AclRule:
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        await _may_manage_rules(session, collection, caller)
        spec = await _parse_rule(session, body)
        existing = await session.scalar(
            select(AclRule).where(
                AclRule.collection_id == collection.id,
                AclRule.principal_type == spec.principal_type,
                AclRule.principal == spec.principal,
                AclRule.path == spec.path,
            )
        )
        if existing is not None:
            raise ArcternError(
                f"An access rule for this principal on '{spec.path}' already exists",
                code="Exists",
                status=409,
            )
        rule = AclRule(
            collection_id=collection.id,
            principal_type=spec.principal_type,
            principal=spec.principal,
            path=spec.path,
            permissions=spec.permissions,
            expiration_date=spec.expiration_date,
            created_at=ctx.clock.now(),
        )
        session.add(rule)
        await session.flush()
        await _invite(ctx, session, caller, collection, rule, body)
        return rule


MAX_NOTIFY_MESSAGE = 2000


async def _invite(
    ctx: AppContext,
    session: AsyncSession,
    caller: Caller,
    collection: Collection,
    rule: AclRule,
    body: dict[str, Any],
) -> None:
    """The invitation ``notify_email`` asks for, queued with the rule (nothing without mail
    set up)."""
    address, message = body.get("notify_email"), body.get("notify_message")
    if address is None:
        return
    if not isinstance(address, str) or "@" not in address or len(address) > 300:
        raise bad_request("notify_email must be an email address")
    if message is not None and (not isinstance(message, str) or len(message) > MAX_NOTIFY_MESSAGE):
        raise bad_request(f"notify_message must be text of at most {MAX_NOTIFY_MESSAGE} characters")
    sharer = await session.get(Identity, caller.identity_id)
    if sharer is None:
        return
    await sharing_invitation(
        session,
        ctx.settings,
        recipient=address.strip(),
        sharer=sharer,
        collection=collection,
        path=rule.path,
        permissions=rule.permissions,
        message=message,
        now=ctx.clock.now(),
    )


async def _load_rule(session: AsyncSession, collection: Collection, rule_id: str) -> AclRule:
    try:
        key = uuid.UUID(rule_id)
    except ValueError:
        raise NotFound(f"No access rule '{rule_id}'", code="AccessRuleNotFound") from None
    rule = await session.get(AclRule, key)
    if rule is None or rule.collection_id != collection.id:
        raise NotFound(f"No access rule '{rule_id}'", code="AccessRuleNotFound")
    return rule


async def get_rule(ctx: AppContext, caller: Caller, endpoint_id: object, rule_id: str) -> AclRule:
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        await _may_manage_rules(session, collection, caller)
        return await _load_rule(session, collection, rule_id)


async def update_rule(
    ctx: AppContext, caller: Caller, endpoint_id: object, rule_id: str, body: dict[str, Any]
) -> AclRule:
    """Only ``permissions`` and ``expiration_date`` change, as in Globus."""
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        await _may_manage_rules(session, collection, caller)
        rule = await _load_rule(session, collection, rule_id)
        current = RuleInput(
            rule.principal_type, rule.principal, rule.path, rule.permissions, rule.expiration_date
        )
        allowed = {
            "DATA_TYPE",
            "permissions",
            "expiration_date",
            "id",
            "principal_type",
            "principal",
            "path",
            "role_id",
            "role_type",
            "create_time",
        }
        unknown = set(body) - allowed
        if unknown:
            raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}")
        for fixed in ("principal_type", "principal", "path"):
            if fixed in body and body[fixed] != getattr(rule, fixed):
                raise bad_request(f"'{fixed}' of an access rule cannot be changed")
        spec = await _parse_rule(
            session,
            {k: v for k, v in body.items() if k in ("DATA_TYPE", "permissions", "expiration_date")},
            partial=current,
        )
        rule.permissions = spec.permissions
        rule.expiration_date = spec.expiration_date
        return rule


async def delete_rule(ctx: AppContext, caller: Caller, endpoint_id: object, rule_id: str) -> None:
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        await _may_manage_rules(session, collection, caller)
        rule = await _load_rule(session, collection, rule_id)
        await session.delete(rule)
