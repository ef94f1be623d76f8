"""Pause rules: an endpoint administrator holds operations on a collection, on every
collection of an endpoint, or on a mapped collection and its guest collections — for
everyone or one identity, now or from a start time — with a message for the users held.

A rule holds a transfer task reading from (``pause_task_transfer_read``) or writing to
(``pause_task_transfer_write``) a collection it covers, and a delete task on one
(``pause_task_delete``): workers and agents claim no work of a held task, so it waits,
ACTIVE, until the rule is changed or deleted (the task's deadline still runs). Held
``ls``, ``mkdir`` and ``rename`` calls are refused with the rule's message.

Creating, changing and deleting rules needs ``activity_manager`` or ``administrator`` on
the rule's collection or endpoint; seeing them, ``activity_monitor`` and up (``roles``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID, host_endpoint_named
from arctern.context import NEW_WORK_TOPIC, AppContext
from arctern.db.engine import mark_changed
from arctern.db.holds import UNFINISHED, holds, in_force
from arctern.db.models.auth import Identity
from arctern.db.models.transfer import (
    PAUSE_OPERATIONS,
    Collection,
    PauseRule,
    Task,
    TaskRecord,
)
from arctern.errors import Conflict, NotFound, PermissionDenied
from arctern.transfer.documents import iso
from arctern.transfer.filters import bad_request, parse_datetime
from arctern.transfer.services.common import Caller, load_collection
from arctern.transfer.services.roles import (
    MANAGE_ACTIVITY,
    MONITOR,
    host_of,
    monitored_collection_ids,
    roles_on,
    roles_on_endpoint,
)

MAX_MESSAGE = 2048


async def rules_holding(
    session: AsyncSession, task_id: uuid.UUID, now: datetime
) -> list[PauseRule]:
    return list(
        await session.scalars(
            select(PauseRule)
            .where(Task.id == task_id, *holds(Task, now))
            .order_by(PauseRule.modified_time)
        )
    )


def _targets_covering(collection: Collection) -> list[uuid.UUID]:
    """What a rule covering the collection is on: it, its mapped collection, its endpoint."""
    targets = [collection.id, host_of(collection)]
    if collection.mapped_collection_id is not None:
        targets.append(collection.mapped_collection_id)
    return targets


async def refuse_if_paused(
    session: AsyncSession, caller: Caller, collection: Collection, operation: str, now: datetime
) -> None:
    """Raise when a rule in force for the caller pauses ``operation`` (``pause_ls``,
    ``pause_mkdir``, ``pause_rename``) on the collection."""
    targets = _targets_covering(collection)
    rule = await session.scalar(
        select(PauseRule)
        .where(
            PauseRule.target_id.in_(targets),
            getattr(PauseRule, operation).is_(True),
            *in_force(now, caller.identity_id),
        )
        .limit(1)
    )
    if rule is not None:
        verb = operation.removeprefix("pause_")
        raise Conflict(
            f"'{verb}' on '{collection.display_name}' is paused by its administrators: "
            f"{rule.message}",
            code="EndpointPaused",
        )


# -- management ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleView:
    rule: PauseRule
    target_name: str
    editable: bool


def rule_not_found(rule_id: object) -> NotFound:
    return NotFound(f"No pause rule '{rule_id}'", code="PauseRuleNotFound")


async def _roles_on_target(
    ctx: AppContext, session: AsyncSession, caller: Caller, target: str
) -> tuple[uuid.UUID, str, set[str]] | None:
    """The rule target a request names (a collection, or a GCSv5 endpoint), its name, and
    the caller's roles on it; None when it names neither."""
    try:
        collection = await load_collection(session, target)
    except NotFound:
        host = await host_endpoint_named(ctx, target)
        if host is None:
            return None
        return host.id, host.display_name, await roles_on_endpoint(session, caller, host)
    return collection.id, collection.display_name, await roles_on(session, caller, collection)


def _denied(name: str, wanted: frozenset[str]) -> PermissionDenied:
    return PermissionDenied(
        f"You need one of the roles {', '.join(sorted(wanted))} on '{name}'",
        code="PermissionDenied",
    )


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false")
    return value


async def _apply(
    session: AsyncSession, row: PauseRule, body: dict[str, Any], *, creating: bool
) -> None:
    if creating or "message" in body:
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise bad_request("A pause rule needs a 'message' for the users it holds")
        row.message = message.strip()[:MAX_MESSAGE]
    if creating or "start_time" in body:
        raw = body.get("start_time")
        if raw is not None and not isinstance(raw, str):
            raise bad_request("'start_time' must be an ISO 8601 date and time, or null")
        row.start_time = parse_datetime(raw) if raw else None
    if creating or "identity_id" in body:
        raw = body.get("identity_id")
        identity = None
        if raw is not None:
            try:
                identity = uuid.UUID(str(raw))
            except ValueError:
                raise bad_request(f"Invalid identity_id '{raw}'") from None
            if await session.get(Identity, identity) is None:
                raise bad_request(f"No such identity '{raw}'")
        row.identity_id = identity
    for name in PAUSE_OPERATIONS:
        if creating or name in body:
            setattr(row, name, _flag(body, name, True))


async def create_rule(ctx: AppContext, caller: Caller, body: dict[str, Any]) -> RuleView:
    if body.get("DATA_TYPE", "pause_rule") != "pause_rule":
        raise bad_request("DATA_TYPE must be 'pause_rule'")
    target = body.get("endpoint_id")
    if not isinstance(target, str) or not target:
        raise bad_request("A pause rule needs the 'endpoint_id' of a collection or endpoint")
    async with ctx.db.session() as session:
        found = await _roles_on_target(ctx, session, caller, target)
        if found is None:
            raise NotFound(f"No endpoint or collection '{target}'", code="EndpointNotFound")
        target_id, name, held = found
        if not held & MANAGE_ACTIVITY:
            raise _denied(name, MANAGE_ACTIVITY)
        row = PauseRule(target_id=target_id, modified_by_id=caller.identity_id)
        await _apply(session, row, body, creating=True)
        row.modified_time = ctx.clock.now()
        session.add(row)
        await session.flush()
        return RuleView(row, name, True)


async def _view(
    ctx: AppContext,
    session: AsyncSession,
    caller: Caller,
    rule: PauseRule,
    *,
    wanted: frozenset[str] = MONITOR,
) -> RuleView:
    found = await _roles_on_target(ctx, session, caller, str(rule.target_id))
    name, held = (found[1], found[2]) if found else ("(deleted)", set())
    if not held & wanted:
        raise _denied(name, wanted)
    return RuleView(rule, name, bool(held & MANAGE_ACTIVITY))


async def _rule(session: AsyncSession, rule_id: object) -> PauseRule:
    try:
        key = uuid.UUID(str(rule_id))
    except ValueError:
        raise rule_not_found(rule_id) from None
    row = await session.get(PauseRule, key)
    if row is None:
        raise rule_not_found(rule_id)
    return row


async def get_rule(ctx: AppContext, caller: Caller, rule_id: object) -> RuleView:
    async with ctx.db.session() as session:
        return await _view(ctx, session, caller, await _rule(session, rule_id))


async def update_rule(
    ctx: AppContext, caller: Caller, rule_id: object, body: dict[str, Any]
) -> RuleView:
    async with ctx.db.session() as session:
        row = await _rule(session, rule_id)
        view = await _view(ctx, session, caller, row, wanted=MANAGE_ACTIVITY)
        if "endpoint_id" in body and str(body["endpoint_id"]) != str(row.target_id):
            raise bad_request("A pause rule's endpoint_id cannot be changed")
        await _apply(session, row, body, creating=False)
        row.modified_by_id = caller.identity_id
        row.modified_time = ctx.clock.now()
        mark_changed(session, NEW_WORK_TOPIC)  # tasks it let go are taken up at once
        return view


async def delete_rule(ctx: AppContext, caller: Caller, rule_id: object) -> None:
    async with ctx.db.session() as session:
        row = await _rule(session, rule_id)
        await _view(ctx, session, caller, row, wanted=MANAGE_ACTIVITY)
        await session.delete(row)
        mark_changed(session, NEW_WORK_TOPIC)


async def list_rules(
    ctx: AppContext, caller: Caller, *, endpoint: str | None, host_endpoint: str | None
) -> list[RuleView]:
    """Rules on what the caller monitors; ``endpoint``: only rules on that collection or
    endpoint; ``host_endpoint``: only rules on that endpoint or its collections."""
    async with ctx.db.session() as session:
        if not await monitored_collection_ids(session, caller):
            raise PermissionDenied(
                "Pause rules are for the administrators and activity monitors of endpoints",
                code="PermissionDenied",
            )
        query = select(PauseRule).order_by(PauseRule.modified_time)
        for raw in (endpoint, host_endpoint):
            if raw is not None:
                try:
                    uuid.UUID(raw)
                except ValueError:
                    raise bad_request(f"Invalid endpoint id '{raw}'") from None
        if endpoint:
            query = query.where(PauseRule.target_id == uuid.UUID(endpoint))
        if host_endpoint:
            host = uuid.UUID(host_endpoint)
            on_host = select(Collection.id).where(
                Collection.endpoint_id.is_(None)
                if host == BUILTIN_ENDPOINT_ID
                else Collection.endpoint_id == host
            )
            query = query.where(or_(PauseRule.target_id == host, PauseRule.target_id.in_(on_host)))
        views = []
        for rule in await session.scalars(query):
            try:
                views.append(await _view(ctx, session, caller, rule))
            except PermissionDenied:
                continue
        return views


async def effective_rules(
    ctx: AppContext, caller: Caller, collection: Collection
) -> list[RuleView]:
    """The rules that hold (or will, from their start time) the caller's work on a
    collection."""
    targets = _targets_covering(collection)
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(PauseRule)
            .where(
                PauseRule.target_id.in_(targets),
                or_(PauseRule.identity_id.is_(None), PauseRule.identity_id == caller.identity_id),
            )
            .order_by(PauseRule.modified_time)
        )
        return [RuleView(r, collection.display_name, False) for r in rows]


def rule_document(view: RuleView) -> dict[str, Any]:
    rule = view.rule
    return {
        **limited_rule_document(view),
        "DATA_TYPE": "pause_rule",
        "modified_by_id": str(rule.modified_by_id),
        "modified_time": iso(rule.modified_time),
        "editable": view.editable,
    }


def limited_rule_document(view: RuleView) -> dict[str, Any]:
    """What a held user sees: no word of who made the rule."""
    rule = view.rule
    return {
        "DATA_TYPE": "pause_rule_limited",
        "id": str(rule.id),
        "message": rule.message,
        "start_time": iso(rule.start_time),
        "endpoint_id": str(rule.target_id),
        "endpoint_display_name": view.target_name,
        "identity_id": str(rule.identity_id) if rule.identity_id else None,
        "created_by_host_manager": False,
        "editable": False,
        **{name: bool(getattr(rule, name)) for name in PAUSE_OPERATIONS},
    }


async def pause_info(ctx: AppContext, task: TaskRecord) -> dict[str, Any]:
    """Why a task is held: the rules holding it and an administrator's pause of the task."""
    rules: list[dict[str, Any]] = []
    if task.status in UNFINISHED:
        async with ctx.db.session() as session:
            holding = await rules_holding(session, task.id, ctx.clock.now())
            for rule in holding:
                found = await session.get(Collection, rule.target_id)
                name = found.display_name if found else ""
                if found is None:
                    host = await host_endpoint_named(ctx, str(rule.target_id))
                    name = host.display_name if host else ""
                rules.append(limited_rule_document(RuleView(rule, name, False)))
        if task.admin_pause_message:
            rules.append(
                {
                    "DATA_TYPE": "pause_rule_limited",
                    "id": None,
                    "message": task.admin_pause_message,
                    "start_time": None,
                    "endpoint_id": str(task.source_endpoint_id),
                    "endpoint_display_name": None,
                    "identity_id": str(task.owner_id),
                    "created_by_host_manager": False,
                    "editable": False,
                    **{name: name.startswith("pause_task") for name in PAUSE_OPERATIONS},
                }
            )
    return {
        "DATA_TYPE": "pause_info_limited",
        "pause_rules": rules,
        "source_pause_message": None,
        "source_pause_message_share": None,
        "destination_pause_message": None,
        "destination_pause_message_share": None,
    }
