"""The Groups API v2 as globus-sdk's ``GroupsClient`` and ``globus group …`` use it, at
``/groups`` (``GLOBUS_SDK_SERVICE_URL_GROUPS=<base>/groups/``).

A group has members with roles admin, manager and member; its creator is its first admin.
Admins change the group and anyone's membership; managers add, invite and remove members
(not admins); anyone leaves. Access rules with ``principal_type: group`` grant every active
member (``db/grants.py``); removing a member removes their access at the next check.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.auth.verifier import TokenVerifier
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.db.models.groups import Group, GroupMembership
from arctern.http_limits import BodyLimit
from arctern.transfer.app import too_large_response
from arctern.transfer.http import json_body
from arctern.transfer.security import bearer_token

GROUPS_RESOURCE_SERVER = "groups.api.globus.org"
GROUPS_ALL = "urn:globus:auth:scope:groups.api.globus.org:all"
GROUPS_VIEW = "urn:globus:auth:scope:groups.api.globus.org:view_my_groups_and_memberships"
ROLES = ("admin", "manager", "member")
VISIBILITY = ("private", "authenticated")
MEMBERS_VISIBILITY = ("members", "managers")


class GroupsError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _not_found(group_id: object) -> GroupsError:
    return GroupsError(404, "NOT_FOUND", f"No group {group_id} visible to you")


def _parse_id(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise GroupsError(400, "INVALID_ID", f"'{value}' is not a group id") from None


def _membership_doc(m: GroupMembership, username: str) -> dict[str, Any]:
    return {
        "group_id": str(m.group_id),
        "identity_id": str(m.identity_id),
        "username": username,
        "role": m.role,
        "status": m.status,
        "membership_fields": {},
        "invite_email_address": None,
        "status_reason": None,
        "updated": m.updated.isoformat(),
    }


class Groups:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def memberships(
        self, session: AsyncSession, group_id: uuid.UUID
    ) -> list[tuple[GroupMembership, str]]:
        rows = await session.execute(
            select(GroupMembership, Identity.username)
            .join(Identity, Identity.id == GroupMembership.identity_id)
            .where(GroupMembership.group_id == group_id)
            .order_by(Identity.username)
        )
        return [(m, name) for m, name in rows.tuples()]

    async def visible(
        self, session: AsyncSession, caller: uuid.UUID, group_id: uuid.UUID
    ) -> tuple[Group, GroupMembership | None]:
        group = await session.get(Group, group_id)
        if group is None:
            raise _not_found(group_id)
        mine = await session.scalar(
            select(GroupMembership).where(
                GroupMembership.group_id == group_id, GroupMembership.identity_id == caller
            )
        )
        active = mine is not None and mine.status in ("active", "invited")
        if not active and group.visibility != "authenticated":
            raise _not_found(group_id)
        return group, mine

    async def document(
        self, session: AsyncSession, group: Group, caller: uuid.UUID, include: set[str]
    ) -> dict[str, Any]:
        memberships = await self.memberships(session, group.id)
        mine = [(m, n) for m, n in memberships if m.identity_id == caller]
        doc: dict[str, Any] = {
            "id": str(group.id),
            "name": group.name,
            "description": group.description,
            "parent_id": None,
            "group_type": "regular",
            "enforce_session": False,
            "session_limit": 28800,
            "session_timeouts": {},
            "subscription_id": None,
            "subscription_info": None,
            "policies": self.policies(group),
            "my_memberships": [_membership_doc(m, n) for m, n in mine],
        }
        if "memberships" in include:
            my_role = mine[0][0].role if mine and mine[0][0].status == "active" else None
            may_see = my_role in ("admin", "manager") or (
                my_role == "member" and group.members_visibility == "members"
            )
            doc["memberships"] = [_membership_doc(m, n) for m, n in memberships] if may_see else []
        return doc

    # -- use cases shared by the API and the web pages ------------------------------------

    async def mine(
        self, session: AsyncSession, me: uuid.UUID
    ) -> list[tuple[Group, GroupMembership]]:
        """The groups ``me`` is an active member of, with that membership, by name."""
        rows = await session.execute(
            select(Group, GroupMembership)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .where(GroupMembership.identity_id == me, GroupMembership.status == "active")
            .order_by(Group.name)
        )
        return [(g, m) for g, m in rows.tuples()]

    async def create(
        self, session: AsyncSession, me: uuid.UUID, name: object, description: object
    ) -> Group:
        """A new group with ``me`` as its first admin."""
        if not isinstance(name, str) or not name.strip() or len(name) > 300:
            raise GroupsError(400, "INVALID_NAME", "'name' must be 1-300 characters")
        description = description or ""
        if not isinstance(description, str) or len(description) > 4000:
            raise GroupsError(400, "INVALID_DESCRIPTION", "'description' is too long")
        now = self.ctx.clock.now()
        group = Group(name=name.strip(), description=description, created_at=now)
        session.add(group)
        await session.flush()
        session.add(
            GroupMembership(
                group_id=group.id,
                group_key=str(group.id),
                identity_id=me,
                role="admin",
                status="active",
                updated=now,
            )
        )
        await session.flush()
        return group

    async def administered(self, session: AsyncSession, me: uuid.UUID, group_id: object) -> Group:
        """The group, if ``me`` is one of its active admins (else 403/404)."""
        group, mine = await self.visible(session, me, _parse_id(group_id))
        if mine is None or mine.status != "active" or mine.role != "admin":
            raise GroupsError(403, "FORBIDDEN", "Only a group's admins may change it")
        return group

    async def delete(self, session: AsyncSession, me: uuid.UUID, group_id: object) -> Group:
        group = await self.administered(session, me, group_id)
        await session.execute(delete(GroupMembership).where(GroupMembership.group_id == group.id))
        await session.delete(group)
        return group

    async def act(
        self,
        session: AsyncSession,
        me: uuid.UUID,
        group: Group,
        action: str,
        identity_id: uuid.UUID,
        entry: dict[str, Any],
    ) -> GroupMembership | str:
        """One membership action by ``me`` (add, invite, remove, leave, accept, decline,
        change_role); the membership, or why it was refused."""
        mine = await session.scalar(
            select(GroupMembership).where(
                GroupMembership.group_id == group.id, GroupMembership.identity_id == me
            )
        )
        my_role = mine.role if mine is not None and mine.status == "active" else None
        return await _apply(
            session, group, me, my_role, action, identity_id, entry, self.ctx.clock.now()
        )

    @staticmethod
    def policies(group: Group) -> dict[str, Any]:
        return {
            "is_high_assurance": False,
            "authentication_assurance_timeout": 28800,
            "group_visibility": group.visibility,
            "group_members_visibility": group.members_visibility,
            "join_requests": False,
            "signup_fields": [],
        }


def create_groups_app(ctx: AppContext, verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(title="Arctern Groups API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, render=too_large_response)
    groups = Groups(ctx)

    @app.exception_handler(GroupsError)
    async def handle(_request: Request, exc: GroupsError) -> JSONResponse:
        return JSONResponse(
            {"code": exc.code, "detail": exc.detail, "message": exc.detail},
            status_code=exc.status,
        )

    async def caller(request: Request, *, write: bool = False) -> uuid.UUID:
        token = bearer_token(request)
        grant = await verifier.verify(token) if token else None
        if grant is None or grant.resource_server != GROUPS_RESOURCE_SERVER:
            raise GroupsError(401, "UNAUTHORIZED", "A Groups API access token is required")
        allowed = {GROUPS_ALL} if write else {GROUPS_ALL, GROUPS_VIEW}
        if not grant.scopes & allowed:
            raise GroupsError(403, "FORBIDDEN", "The token's scope does not allow this call")
        if grant.identity_id is None:
            raise GroupsError(403, "FORBIDDEN", "Groups belong to users")
        return grant.identity_id

    def include_of(request: Request) -> set[str]:
        return set((request.query_params.get("include") or "").split(","))

    @app.get("/v2/groups/my_groups")
    async def my_groups(request: Request) -> list[dict[str, Any]]:
        me = await caller(request)
        async with ctx.db.session() as session:
            return [
                await groups.document(session, g, me, include_of(request))
                for g, _ in await groups.mine(session, me)
            ]

    @app.post("/v2/groups")
    async def create(request: Request) -> JSONResponse:
        me = await caller(request, write=True)
        body = await json_body(request)
        if body.get("parent_id"):
            raise GroupsError(400, "NOT_SUPPORTED", "Subgroups are not supported")
        async with ctx.db.session() as session:
            group = await groups.create(session, me, body.get("name"), body.get("description"))
            doc = await groups.document(session, group, me, {"memberships"})
        return JSONResponse(doc, status_code=201)

    @app.get("/v2/groups/{group_id}")
    async def show(group_id: str, request: Request) -> dict[str, Any]:
        me = await caller(request)
        async with ctx.db.session() as session:
            group, _ = await groups.visible(session, me, _parse_id(group_id))
            return await groups.document(session, group, me, include_of(request))

    @app.put("/v2/groups/{group_id}")
    async def update(group_id: str, request: Request) -> dict[str, Any]:
        me = await caller(request, write=True)
        body = await json_body(request)
        async with ctx.db.session() as session:
            group = await groups.administered(session, me, group_id)
            if isinstance(body.get("name"), str) and body["name"].strip():
                group.name = body["name"].strip()[:300]
            if isinstance(body.get("description"), str):
                group.description = body["description"][:4000]
            await session.flush()
            return await groups.document(session, group, me, set())

    @app.delete("/v2/groups/{group_id}")
    async def remove(group_id: str, request: Request) -> dict[str, Any]:
        me = await caller(request, write=True)
        async with ctx.db.session() as session:
            group = await groups.administered(session, me, group_id)
            doc = await groups.document(session, group, me, set())
            await groups.delete(session, me, group_id)
        return doc

    @app.get("/v2/groups/{group_id}/policies")
    async def get_policies(group_id: str, request: Request) -> dict[str, Any]:
        me = await caller(request)
        async with ctx.db.session() as session:
            group, _ = await groups.visible(session, me, _parse_id(group_id))
            return groups.policies(group)

    @app.put("/v2/groups/{group_id}/policies")
    async def set_policies(group_id: str, request: Request) -> dict[str, Any]:
        me = await caller(request, write=True)
        body = await json_body(request)
        async with ctx.db.session() as session:
            group = await groups.administered(session, me, group_id)
            visibility = body.get("group_visibility", group.visibility)
            members = body.get("group_members_visibility", group.members_visibility)
            if visibility not in VISIBILITY or members not in MEMBERS_VISIBILITY:
                raise GroupsError(400, "INVALID_POLICY", "Unknown visibility policy")
            group.visibility, group.members_visibility = visibility, members
            return groups.policies(group)

    @app.post("/v2/groups/{group_id}")
    async def batch(group_id: str, request: Request) -> dict[str, Any]:
        me = await caller(request, write=True)
        body = await json_body(request)
        now = ctx.clock.now()
        result: dict[str, Any] = {}
        errors: dict[str, list[dict[str, Any]]] = {}
        async with ctx.db.session() as session:
            group, mine = await groups.visible(session, me, _parse_id(group_id))
            my_role = mine.role if mine is not None and mine.status == "active" else None
            for action, entries in body.items():
                if not isinstance(entries, list):
                    raise GroupsError(400, "INVALID_ACTION", f"'{action}' must be a list")
                for entry in entries:
                    ident = _parse_id(entry.get("identity_id") if isinstance(entry, dict) else "")
                    outcome = await _apply(session, group, me, my_role, action, ident, entry, now)
                    if isinstance(outcome, str):
                        errors.setdefault(action, []).append(
                            {"identity_id": str(ident), "code": "FORBIDDEN", "detail": outcome}
                        )
                        continue
                    username = await session.scalar(
                        select(Identity.username).where(Identity.id == ident)
                    )
                    result.setdefault(action, []).append(_membership_doc(outcome, username or ""))
        if errors:
            result["errors"] = errors
        return result

    return app


async def _apply(
    session: AsyncSession,
    group: Group,
    me: uuid.UUID,
    my_role: str | None,
    action: str,
    ident: uuid.UUID,
    entry: dict[str, Any],
    now: Any,
) -> GroupMembership | str:
    """One membership action; the membership, or why it was refused."""
    if await session.get(Identity, ident) is None:
        return "No such identity"
    membership = await session.scalar(
        select(GroupMembership).where(
            GroupMembership.group_id == group.id, GroupMembership.identity_id == ident
        )
    )
    managing = my_role in ("admin", "manager")
    if action in ("add", "invite"):
        role = entry.get("role", "member")
        if role not in ROLES:
            return f"Unknown role '{role}'"
        if not managing or (role != "member" and my_role != "admin"):
            return "Only admins and managers add members (only admins add admins or managers)"
        status = "active" if action == "add" else "invited"
        if membership is None:
            membership = GroupMembership(
                group_id=group.id, group_key=str(group.id), identity_id=ident, updated=now
            )
            session.add(membership)
        membership.role, membership.status, membership.updated = role, status, now
    elif action in ("remove", "leave"):
        if membership is None:
            return "Not a member of this group"
        own = ident == me
        if not own and (not managing or (membership.role != "member" and my_role != "admin")):
            return "Only admins and managers remove members"
        membership.status, membership.updated = ("left" if own else "removed"), now
    elif action in ("accept", "decline"):
        if ident != me or membership is None or membership.status != "invited":
            return "Only an invited identity accepts or declines its own invitation"
        membership.status = "active" if action == "accept" else "declined"
        membership.updated = now
    elif action == "change_role":
        role = entry.get("role")
        if my_role != "admin" or role not in ROLES or membership is None:
            return "Only admins change roles, to admin, manager or member"
        membership.role, membership.updated = role, now
    else:
        return f"Unsupported action '{action}'"
    await session.flush()
    return membership
