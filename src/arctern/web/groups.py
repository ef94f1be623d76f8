"""The Groups pages: the groups you belong to, a new group, a group's members.

Same rules as the Groups API (``arctern.groups``, whose use cases these pages call): admins
change the group and anyone's membership, managers add and remove members, anyone leaves.
The pages live at ``/my-groups``; ``/groups`` is the Groups API that globus-sdk and
globus-cli call.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.groups import Groups, GroupsError
from arctern.web.pages import Pages

ROLE_LABELS = {"admin": "Administrator", "manager": "Manager", "member": "Member"}
SHOWN_STATUSES = ("active", "invited")


def create_groups_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/my-groups")
    groups = Groups(ctx)

    def render(request: Request, template: str, user: Identity, **context: Any) -> HTMLResponse:
        return pages.render(
            request, template, user=user, active_nav="groups", roles=ROLE_LABELS, **context
        )

    @router.get("", response_class=HTMLResponse)
    async def my_groups(request: Request) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        async with ctx.db.session() as session:
            mine = await groups.mine(session, user.id)
            counts = {
                group.id: len(
                    [m for m, _ in await groups.memberships(session, group.id)
                     if m.status == "active"]
                )
                for group, _ in mine
            }  # fmt: skip
        return render(request, "groups.html", user, mine=mine, counts=counts, values={})

    @router.post("", response_class=HTMLResponse)
    async def create(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        try:
            async with ctx.db.session() as session:
                group = await groups.create(
                    session, user.id, form.get("name"), form.get("description")
                )
        except GroupsError as exc:
            pages.flash(request, exc.detail.replace("'name'", "The name"), error=True)
            return pages.redirect("/my-groups")
        pages.flash(request, f"Group “{group.name}” created. Add its members below.")
        return pages.redirect(f"/my-groups/{group.id}")

    @router.get("/{group_id}", response_class=HTMLResponse)
    async def show(request: Request, group_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        try:
            async with ctx.db.session() as session:
                group, mine = await groups.visible(session, user.id, _uuid(group_id))
                members = [
                    (m, name)
                    for m, name in await groups.memberships(session, group.id)
                    if m.status in SHOWN_STATUSES
                ]
        except GroupsError:
            return pages.not_found(request, user, "Group")
        my_role = mine.role if mine is not None and mine.status == "active" else None
        may_see = my_role in ("admin", "manager") or (
            my_role == "member" and group.members_visibility == "members"
        )
        return render(
            request,
            "group.html",
            user,
            group=group,
            my_role=my_role,
            members=members if may_see else [],
            may_see=may_see,
            # Member first: the safe default of the form.
            assignable=("member", "manager", "admin") if my_role == "admin" else ("member",),
            current_user_id=user.id,
        )

    async def membership_action(
        request: Request, group_id: str, action: str, describe: str
    ) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        target = f"/my-groups/{group_id}"
        try:
            async with ctx.db.session() as session:
                group, _ = await groups.visible(session, user.id, _uuid(group_id))
                if action in ("add", "change_role"):
                    who = await _identity_named(session, str(form.get("username", "")))
                else:
                    who = _uuid(str(form.get("identity_id", "")))
                entry = {"role": str(form.get("role", "member"))}
                outcome = await groups.act(session, user.id, group, action, who, entry)
                name = await session.scalar(select(Identity.username).where(Identity.id == who))
        except GroupsError as exc:
            pages.flash(request, exc.detail, error=True)
            return pages.redirect(target if exc.status != 404 else "/my-groups")
        if isinstance(outcome, str):
            pages.flash(request, outcome, error=True)
        else:
            pages.flash(request, describe.format(name=name, role=ROLE_LABELS[outcome.role]))
        return pages.redirect("/my-groups" if action == "leave" else target)

    @router.post("/{group_id}/members", response_class=HTMLResponse)
    async def add_member(request: Request, group_id: str) -> Response:
        return await membership_action(request, group_id, "add", "{name} added as {role}.")

    @router.post("/{group_id}/role", response_class=HTMLResponse)
    async def change_role(request: Request, group_id: str) -> Response:
        return await membership_action(request, group_id, "change_role", "{name} is now {role}.")

    @router.post("/{group_id}/remove", response_class=HTMLResponse)
    async def remove_member(request: Request, group_id: str) -> Response:
        return await membership_action(request, group_id, "remove", "{name} removed.")

    @router.post("/{group_id}/leave", response_class=HTMLResponse)
    async def leave(request: Request, group_id: str) -> Response:
        return await membership_action(request, group_id, "leave", "You left the group.")

    @router.post("/{group_id}/delete", response_class=HTMLResponse)
    async def delete(request: Request, group_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _ = posted
        try:
            async with ctx.db.session() as session:
                group = await groups.delete(session, user.id, group_id)
        except GroupsError as exc:
            pages.flash(request, exc.detail, error=True)
            return pages.redirect(f"/my-groups/{group_id}")
        pages.flash(request, f"Group “{group.name}” deleted; its access rules grant no one.")
        return pages.redirect("/my-groups")

    return router


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise GroupsError(404, "NOT_FOUND", "No such group") from None


async def _identity_named(session: Any, username: str) -> uuid.UUID:
    username = username.strip()
    found = await session.scalar(select(Identity.id).where(Identity.username == username))
    if found is None:
        raise GroupsError(
            400,
            "NO_SUCH_IDENTITY",
            f"No one called '{username[:200]}' has an account here (use their full "
            "username, like jdoe@example.edu).",
        )
    return found
