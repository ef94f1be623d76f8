"""Collections pages: find collections, yours and those shared with you; a collection's
details; sharing a folder as a guest collection and managing who may use it.

Same use cases as the Transfer API and the GCS Manager API (``transfer.services``): a guest
collection is made in a folder you can reach ("Share" in the file manager), and its access
rules are managed here by its creator (or an access manager).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.db.models.groups import Group
from arctern.errors import ArcternError
from arctern.transfer.services import acl, collections, guests, roles
from arctern.transfer.services.common import usernames
from arctern.web.pages import Pages, caller_of

TABS = (
    ("mine", "Your collections", "my-endpoints"),
    ("shared", "Shared with you", "shared-with-me"),
    ("all", "All you can see", "all"),
)


def create_collections_router(ctx: AppContext, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/collections")

    @router.get("", response_class=HTMLResponse)
    async def list_page(request: Request, tab: str = "mine", q: str = "") -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        scope = next((s for key, _, s in TABS if key == tab), "my-endpoints")
        views, _ = await collections.search_collections(
            ctx, caller_of(user), fulltext=q or None, scope=scope, limit=200
        )
        return pages.render(
            request,
            "collections.html",
            user=user,
            active_nav="collections",
            tabs=TABS,
            tab=tab,
            q=q,
            rows=views,
            entity_type=guests.entity_type_of,
        )

    @router.get("/share", response_class=HTMLResponse)
    async def share_form(request: Request, collection: str = "", path: str = "/") -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        try:
            view = await collections.get_collection(ctx, caller_of(user), collection)
        except ArcternError as exc:
            return message(request, user, "Collection not found", exc.message, exc.status)
        folder = path.rstrip("/").rsplit("/", 1)[-1] or view.collection.display_name
        return pages.render(
            request,
            "share.html",
            user=user,
            active_nav="collections",
            mapped=view.collection,
            path=path if path.endswith("/") else path + "/",
            suggested=f"{folder} (shared by {user.username.split('@')[0]})",
        )

    @router.post("/share", response_class=HTMLResponse)
    async def share(request: Request) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        back = "/collections/share?" + urlencode(
            {"collection": str(form.get("collection", "")), "path": str(form.get("path", "/"))}
        )
        try:
            guest = await guests.create_guest(
                ctx,
                caller_of(user),
                str(form.get("collection", "")),
                str(form.get("path", "")),
                str(form.get("display_name", "")),
                description=str(form.get("description", "")),
            )
        except ArcternError as exc:
            pages.flash(request, f"The folder was not shared: {exc.message}", error=True)
            return pages.redirect(back)
        pages.flash(
            request,
            f"Guest collection “{guest.display_name}” created. Now choose who may use it.",
        )
        return pages.redirect(f"/collections/{guest.id}")

    @router.get("/{collection_id}", response_class=HTMLResponse)
    async def details(request: Request, collection_id: str) -> Response:
        user = await pages.user(request)
        if user is None:
            return pages.login_redirect(request)
        me = caller_of(user)
        try:
            view = await collections.get_collection(ctx, me, collection_id)
        except ArcternError as exc:
            return message(request, user, "Collection not found", exc.message, exc.status)
        collection = view.collection
        async with ctx.db.session() as session:
            my_roles = await roles.roles_on(session, me, collection)
            mapped = (
                await session.get(type(collection), collection.mapped_collection_id)
                if collection.mapped_collection_id
                else None
            )
            my_guests = (
                await guests.guests_of(session, user.id, collection.id)
                if not collection.is_guest
                else []
            )
        rules: list[Any] = []
        names: dict[str, str] = {}
        if my_roles & roles.MANAGE_ACCESS:
            rules = await acl.list_rules(ctx, me, collection.id)
            names = await principal_names(rules)
        return pages.render(
            request,
            "collection.html",
            user=user,
            active_nav="collections",
            collection=collection,
            owner=view.owner_username,
            mapped=mapped,
            entity_type=guests.entity_type_of(collection),
            my_roles=sorted(my_roles),
            can_manage=bool(my_roles & roles.MANAGE_ACCESS),
            rules=rules,
            names=names,
            my_guests=my_guests,
        )

    async def principal_names(rules: list[Any]) -> dict[str, str]:
        ids = {uuid.UUID(r.principal) for r in rules if r.principal_type in ("identity", "group")}
        if not ids:
            return {}
        async with ctx.db.session() as session:
            people = await usernames(session, ids)
            teams = await session.execute(select(Group.id, Group.name).where(Group.id.in_(ids)))
            return {str(k): v for k, v in [*people.items(), *teams.tuples()]}

    @router.post("/{collection_id}/permissions", response_class=HTMLResponse)
    async def add_permission(request: Request, collection_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, form = posted
        who = str(form.get("who", "")).strip()
        kind = str(form.get("kind", "identity"))
        body: dict[str, Any] = {
            "DATA_TYPE": "access",
            "path": str(form.get("path", "/")) or "/",
            "permissions": "rw" if form.get("permissions") == "rw" else "r",
        }
        try:
            if kind == "all":
                body.update(principal_type="all_authenticated_users", principal="")
            elif kind == "group":
                body.update(principal_type="group", principal=await group_id(who))
            else:
                body.update(principal_type="identity", principal=await identity_id(who))
            if form.get("notify_email"):
                body["notify_email"] = str(form.get("notify_email"))
            await acl.create_rule(ctx, caller_of(user), collection_id, body)
        except ArcternError as exc:
            pages.flash(request, f"Not shared: {exc.message}", error=True)
            return pages.redirect(f"/collections/{collection_id}")
        pages.flash(request, f"Shared {body['path']} with {who or 'all logged-in users'}.")
        return pages.redirect(f"/collections/{collection_id}")

    async def identity_id(username: str) -> str:
        async with ctx.db.session() as session:
            found = await session.scalar(
                select(Identity.id).where(func.lower(Identity.username) == username.lower())
            )
        if found is None:
            raise ArcternError(f"No user '{username}' (use their full username)", code="BadRequest")
        return str(found)

    async def group_id(name: str) -> str:
        try:
            return str(uuid.UUID(name))
        except ValueError:
            pass
        async with ctx.db.session() as session:
            found = list(await session.scalars(select(Group.id).where(Group.name == name)))
        if len(found) != 1:
            raise ArcternError(
                f"No single group named '{name}' (use its ID from the Groups page)",
                code="BadRequest",
            )
        return str(found[0])

    @router.post("/{collection_id}/permissions/{rule_id}/delete", response_class=HTMLResponse)
    async def remove_permission(request: Request, collection_id: str, rule_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _ = posted
        try:
            await acl.delete_rule(ctx, caller_of(user), collection_id, rule_id)
        except ArcternError as exc:
            pages.flash(request, exc.message, error=True)
        else:
            pages.flash(request, "Access removed.")
        return pages.redirect(f"/collections/{collection_id}")

    @router.post("/{collection_id}/delete", response_class=HTMLResponse)
    async def delete(request: Request, collection_id: str) -> Response:
        posted = await pages.posted_form(request)
        if isinstance(posted, Response):
            return posted
        user, _ = posted
        try:
            await guests.delete_guest(ctx, caller_of(user), collection_id)
        except ArcternError as exc:
            pages.flash(request, exc.message, error=True)
            return pages.redirect(f"/collections/{collection_id}")
        pages.flash(request, "Guest collection deleted; its files stay where they were.")
        return pages.redirect("/collections")

    def message(request: Request, user: Identity, title: str, text: str, status: int) -> Response:
        return pages.render(
            request,
            "message.html",
            user=user,
            status_code=status,
            title=title,
            heading=title,
            message=text,
        )

    return router
