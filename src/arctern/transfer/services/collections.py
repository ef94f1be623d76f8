"""Collections: creation by administrators, look-up, and endpoint search for users."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlalchemy.exc import IntegrityError

from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID
from arctern.connectors.registry import KINDS
from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.db.models.transfer import AclRule, Collection, Task
from arctern.errors import Conflict, InvalidRequest, NotFound
from arctern.transfer.filters import bad_request
from arctern.transfer.services.acl import shared_collection_ids, visible_collection
from arctern.transfer.services.common import Caller, usernames
from arctern.transfer.services.guests import entity_type_of

SEARCH_SCOPES = (
    "all",
    "my-endpoints",
    "my-gcp-endpoints",
    "recently-used",
    "in-use",
    "shared-by-me",
    "shared-with-me",
    "administered-by-me",
)
# Every collection is a Globus Connect Server v5 mapped collection (of an Arctern Connect
# endpoint, an agent, or of the built-in endpoint that stands for the deployment's own
# storage) or a guest collection made in one (``guests.entity_type_of``).


@dataclass(frozen=True, slots=True)
class CollectionView:
    """A collection with what its endpoint document needs besides the row."""

    collection: Collection
    owner_username: str


async def create_collection(
    ctx: AppContext,
    *,
    name: str,
    root: str,
    owner_username: str,
    connector: str = "posix",
    description: str = "",
    options: dict[str, Any] | None = None,
    public: bool = True,
) -> Collection:
    """Register a storage root as a collection owned by ``owner_username``."""
    name = name.strip()
    if not name:
        raise InvalidRequest("A collection needs a name")
    if connector not in (*KINDS, "s3"):
        raise InvalidRequest(f"Unknown connector kind '{connector}'")
    if connector == "posix":
        if not os.path.isabs(root):
            raise InvalidRequest(f"A POSIX collection root must be an absolute path: {root}")
        os.makedirs(root, exist_ok=True)
        root = os.path.realpath(root)
    async with ctx.db.session() as session:
        owner = await session.scalar(select(Identity).where(Identity.username == owner_username))
        if owner is None:
            raise NotFound(f"No such user '{owner_username}'")
        if await session.scalar(select(Collection).where(Collection.display_name == name)):
            raise Conflict(f"A collection named '{name}' already exists")
        collection = Collection(
            display_name=name,
            description=description,
            owner_id=owner.id,
            connector=connector,
            root=root,
            options=options or {},
            public=public,
            created_at=ctx.clock.now(),
        )
        session.add(collection)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"A collection named '{name}' already exists") from exc
        return collection


async def list_collections(ctx: AppContext) -> list[CollectionView]:
    """Every collection (administrators' view)."""
    async with ctx.db.session() as session:
        rows = list(await session.scalars(select(Collection).order_by(Collection.display_name)))
        names = await usernames(session, {c.owner_id for c in rows})
        return [CollectionView(c, names.get(c.owner_id, "")) for c in rows]


async def find_collection_by_name(ctx: AppContext, name: str) -> Collection | None:
    async with ctx.db.session() as session:
        return await session.scalar(select(Collection).where(Collection.display_name == name))


async def get_collection(ctx: AppContext, caller: Caller, endpoint_id: object) -> CollectionView:
    """The collection if the caller may see it; EndpointNotFound otherwise."""
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        names = await usernames(session, {collection.owner_id})
        return CollectionView(collection, names.get(collection.owner_id, ""))


async def mapped_name(ctx: AppContext, collection: Collection) -> str | None:
    """The display name of a guest collection's mapped collection."""
    if collection.mapped_collection_id is None:
        return None
    async with ctx.db.session() as session:
        mapped = await session.get(Collection, collection.mapped_collection_id)
    return mapped.display_name if mapped is not None else None


def _matches_fulltext(view: CollectionView, terms: list[str]) -> bool:
    c = view.collection
    haystack = " ".join(
        [
            c.display_name,
            c.description or "",
            c.keywords or "",
            c.organization or "",
            c.department or "",
            view.owner_username,
            str(c.id),
        ]
    ).lower()
    return all(term in haystack for term in terms)


async def search_collections(
    ctx: AppContext,
    caller: Caller,
    *,
    fulltext: str | None = None,
    scope: str = "all",
    owner_id: str | None = None,
    entity_type: str | None = None,
    non_functional: bool | None = None,
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[CollectionView], bool]:
    """One page of the collections the caller may see that match; and whether more exist."""
    if scope not in SEARCH_SCOPES:
        raise bad_request(f"Invalid filter_scope '{scope}'; one of {', '.join(SEARCH_SCOPES)}")
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        # Collections of a deleted Connect endpoint that tasks still name are kept for the
        # tasks' history only.
        query = select(Collection).where(
            ~((Collection.connector == "agent") & Collection.endpoint_id.is_(None)),
            Collection.deleted_at.is_(None),
        )
        if scope in ("my-endpoints", "my-gcp-endpoints", "administered-by-me"):
            query = query.where(Collection.owner_id == caller.identity_id)
        elif scope == "shared-by-me":
            query = query.where(
                Collection.owner_id == caller.identity_id,
                Collection.id.in_(select(AclRule.collection_id)),
            )
        elif scope in ("recently-used", "in-use"):
            used = select(Task.source_endpoint_id).where(Task.owner_id == caller.identity_id)
            used_dst = select(Task.destination_endpoint_id).where(
                Task.owner_id == caller.identity_id
            )
            if scope == "in-use":
                used = used.where(Task.status.in_(("ACTIVE", "INACTIVE")))
                used_dst = used_dst.where(Task.status.in_(("ACTIVE", "INACTIVE")))
            query = query.where(Collection.id.in_(used.union(used_dst).subquery().select()))
        if owner_id:
            try:
                key = uuid.UUID(owner_id)
            except ValueError:
                raise bad_request(f"Invalid filter_owner_id '{owner_id}'") from None
            # The person administering it, or (its owner_id in documents) its endpoint.
            query = query.where(
                or_(
                    Collection.owner_id == key,
                    Collection.endpoint_id == key,
                    Collection.endpoint_id.is_(None) if key == BUILTIN_ENDPOINT_ID else false(),
                )
            )
        rows = list(await session.scalars(query.order_by(Collection.display_name, Collection.id)))
        if entity_type:
            rows = [c for c in rows if entity_type_of(c) == entity_type]
        if non_functional:
            rows = []
        shared = await shared_collection_ids(session, caller, now)
        if scope == "shared-with-me":
            rows = [c for c in rows if c.owner_id != caller.identity_id and c.id in shared]
        else:
            rows = [
                c for c in rows if c.public or c.owner_id == caller.identity_id or c.id in shared
            ]
        names = await usernames(session, {c.owner_id for c in rows})
        views = [CollectionView(c, names.get(c.owner_id, "")) for c in rows]
        terms = (fulltext or "").lower().split()
        if terms:
            views = [v for v in views if _matches_fulltext(v, terms)]
        if scope == "recently-used":
            recent = await session.execute(
                select(
                    Task.source_endpoint_id,
                    Task.destination_endpoint_id,
                    func.max(Task.request_time),
                )
                .where(Task.owner_id == caller.identity_id)
                .group_by(Task.source_endpoint_id, Task.destination_endpoint_id)
            )
            last_used: dict[uuid.UUID, Any] = {}
            for src, dst, when in recent:
                for cid in (src, dst):
                    if cid is not None and (cid not in last_used or last_used[cid] < when):
                        last_used[cid] = when
            views.sort(key=lambda v: last_used.get(v.collection.id, now), reverse=True)
        page = views[offset : offset + limit]
        return page, offset + limit < len(views)


UPDATABLE_TEXT = {
    "display_name": 300,
    "description": 4000,
    "organization": 300,
    "department": 300,
    "keywords": 1000,
    "contact_email": 300,
    "info_link": 1000,
    "default_directory": 1000,
}


async def update_collection(
    ctx: AppContext, caller: Caller, endpoint_id: object, body: dict[str, Any]
) -> Collection:
    """``update_endpoint``: an administrator of the collection changes what it shows
    (names, descriptions, contact, visibility, default directory); its storage is an
    administrator's command-line matter."""
    from arctern.transfer.services.roles import require_role

    unknown = set(body) - set(UPDATABLE_TEXT) - {"public", "DATA_TYPE", "id"}
    if unknown:
        raise bad_request(f"These fields cannot be changed here: {', '.join(sorted(unknown))}")
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, ctx.clock.now())
        await require_role(session, caller, collection, {"administrator"})
        for name, limit in UPDATABLE_TEXT.items():
            if name not in body:
                continue
            value = body[name]
            if isinstance(value, list) and name == "keywords":
                value = ",".join(str(v) for v in value)
            if value is not None and not isinstance(value, str):
                raise bad_request(f"{name} must be text")
            value = (value or "").strip()
            if len(value) > limit:
                raise bad_request(f"{name} is longer than {limit} characters")
            if name == "display_name":
                if not value:
                    raise bad_request("display_name cannot be empty")
                taken = await session.scalar(
                    select(Collection.id).where(
                        Collection.display_name == value, Collection.id != collection.id
                    )
                )
                if taken is not None:
                    raise Conflict(f"A collection named '{value}' already exists")
            setattr(collection, name, value)
        if "public" in body:
            if not isinstance(body["public"], bool):
                raise bad_request("public must be true or false")
            collection.public = body["public"]
        return collection
