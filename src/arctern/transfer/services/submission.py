"""Task submission: validates transfer and delete documents and queues them as Task rows.

Submissions are idempotent per ``submission_id``: posting one again returns the original task
with ``duplicate=True``. The worker picks up ACTIVE tasks with ``planned=False``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.connect.datachannel import CENTRAL_SERVED_CONNECTORS
from arctern.connectors.access import AccessGuard
from arctern.connectors.errors import ConnectorError
from arctern.context import NEW_WORK_TOPIC, AppContext
from arctern.db.engine import mark_changed
from arctern.db.gateways import storage_options
from arctern.db.models.connect import CentralDataListener, Endpoint
from arctern.db.models.transfer import Collection, Task, TaskItem
from arctern.errors import ArcternError, Conflict, RequestTooLarge
from arctern.transfer.filters import bad_request, parse_datetime
from arctern.transfer.paths import is_within, normalize_path
from arctern.transfer.services.acl import caller_guard, check_access, visible_collection
from arctern.transfer.services.common import Caller, open_storage, parse_uuid

MAX_ITEMS = 100_000
MAX_FILTER_RULES = 1_000
MAX_LABEL = 128
DEFAULT_DEADLINE = timedelta(days=1)
# The latest deadline a task may ask for, unless ``Settings.max_task_deadline_days`` says
# otherwise: a task is retried, re-planned and re-checked against the access rules until its
# deadline, so "never" is not an option.
DEFAULT_MAX_DEADLINE = timedelta(days=30)
SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}
CHECKSUM_ALGORITHMS = ("MD5", "SHA1", "SHA256", "SHA512", "ADLER32", "CRC32", "CRC32C")
TRANSFER_BOOLS = (
    "verify_checksum",
    "preserve_timestamp",
    "encrypt_data",
    "delete_destination_extra",
    "skip_source_errors",
    "fail_on_quota_errors",
)
DELETE_BOOLS = ("recursive", "ignore_missing", "interpret_globs")
NOTIFY_BOOLS = ("notify_on_succeeded", "notify_on_failed", "notify_on_inactive")


@dataclass(frozen=True, slots=True)
class Submitted:
    task_id: uuid.UUID
    submission_id: uuid.UUID
    duplicate: bool


@dataclass(slots=True)
class _Item:
    source_path: str
    destination_path: str | None
    recursive: bool | None
    external_checksum: str | None = None
    checksum_algorithm: str | None = None


@dataclass(slots=True)
class _Plan:
    type: str
    submission_id: uuid.UUID
    label: str | None
    deadline: datetime | None
    options: dict[str, Any]
    items: list[_Item] = field(default_factory=list)


def new_submission_id() -> uuid.UUID:
    return uuid.uuid4()


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be a boolean")
    return value


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string")
    if required and not value:
        raise bad_request(f"'{name}' must not be empty")
    return value


def _deadline(raw: str | None, now: datetime, max_deadline: timedelta) -> datetime:
    """The task's deadline: a day from now by default, never past ``now + max_deadline``."""
    if not raw:
        return now + min(DEFAULT_DEADLINE, max_deadline)
    return parse_deadline(raw, now, now, max_deadline)


def parse_deadline(
    raw: str, now: datetime, request_time: datetime, max_deadline: timedelta
) -> datetime:
    """A client's deadline, in the future and at most ``max_deadline`` after the task's
    ``request_time`` (so updating the deadline cannot push a task on for ever)."""
    try:
        deadline = parse_datetime(raw)
    except (OverflowError, ValueError):
        # Dates at the edge of the calendar (year 9999 in a -14:00 zone) cannot be moved to
        # UTC; they are far beyond any allowed deadline anyway.
        raise bad_request(f"Invalid deadline '{raw}'") from None
    if deadline <= now:
        raise bad_request("The deadline is in the past")
    if deadline - request_time > max_deadline:
        raise bad_request(
            f"The deadline is too far in the future: at most {_days(max_deadline)} after "
            "the task was submitted"
        )
    return deadline


def _days(span: timedelta) -> str:
    days = span.total_seconds() / 86400
    return f"{days:g} day" + ("" if days == 1 else "s")


def _common(body: dict[str, Any], data_type: str, now: datetime, max_deadline: timedelta) -> _Plan:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    if "DATA_TYPE" in body and body["DATA_TYPE"] != data_type:
        raise bad_request(f"Invalid DATA_TYPE '{body['DATA_TYPE']}', expected '{data_type}'")
    raw_sid = body.get("submission_id")
    submission_id = new_submission_id() if raw_sid is None else parse_uuid(raw_sid, "submission_id")
    label = _string(body, "label")
    if label is not None:
        if len(label) > MAX_LABEL:
            raise bad_request(f"The label is longer than {MAX_LABEL} characters")
        if any(ch in label for ch in "\r\n\x00"):
            raise bad_request("The label must be a single line")
    deadline = _deadline(_string(body, "deadline"), now, max_deadline)
    # Globus sends mail about a task unless asked not to.
    options: dict[str, Any] = {name: _bool(body, name, True) for name in NOTIFY_BOOLS}
    data = body.get("DATA")
    if not isinstance(data, list):
        raise bad_request("'DATA' must be a list of items")
    if not data:
        raise ArcternError(
            f"A {data_type} requires at least one item",
            code="ClientError.BadRequest.NoTransferItems",
            status=400,
        )
    if len(data) > MAX_ITEMS:
        raise RequestTooLarge(
            f"A task may have at most {MAX_ITEMS} items", code="ClientError.RequestTooLarge"
        )
    return _Plan(
        type="TRANSFER" if data_type == "transfer" else "DELETE",
        submission_id=submission_id,
        label=label,
        deadline=deadline,
        options=options,
    )


def _filter_rules(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("'filter_rules' must be a list")
    if len(raw) > MAX_FILTER_RULES:
        raise bad_request(f"At most {MAX_FILTER_RULES} filter rules are allowed")
    rules = []
    for rule in raw:
        if not isinstance(rule, dict):
            raise bad_request("Each filter rule must be an object")
        if rule.get("DATA_TYPE", "filter_rule") != "filter_rule":
            raise bad_request("Filter rules must have DATA_TYPE 'filter_rule'")
        method = rule.get("method")
        if method not in ("include", "exclude"):
            raise bad_request("A filter rule's method must be 'include' or 'exclude'")
        name = rule.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise bad_request("A filter rule needs a 'name' pattern without '/'")
        kind = rule.get("type")
        if kind not in (None, "file", "dir"):
            raise bad_request("A filter rule's type must be 'file' or 'dir'")
        rules.append({"DATA_TYPE": "filter_rule", "method": method, "name": name, "type": kind})
    return rules


def _sync_level(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise bad_request("sync_level must be 0-3 or exists/size/mtime/checksum")
    if isinstance(raw, str):
        if raw.lower() in SYNC_LEVELS:
            return SYNC_LEVELS[raw.lower()]
        if raw.isdigit():
            raw = int(raw)
    if isinstance(raw, int) and 0 <= raw <= 3:
        return raw
    raise bad_request("sync_level must be 0-3 or exists/size/mtime/checksum")


def parse_transfer(
    body: dict[str, Any], now: datetime, *, max_deadline: timedelta = DEFAULT_MAX_DEADLINE
) -> tuple[_Plan, uuid.UUID, uuid.UUID]:
    """Validate a transfer document; returns the plan and the two endpoint ids."""
    plan = _common(body, "transfer", now, max_deadline)
    source = parse_uuid(body.get("source_endpoint"), "source_endpoint")
    destination = parse_uuid(body.get("destination_endpoint"), "destination_endpoint")
    plan.options.update({name: _bool(body, name, False) for name in TRANSFER_BOOLS})
    plan.options["sync_level"] = _sync_level(body.get("sync_level"))
    plan.options["filter_rules"] = _filter_rules(body.get("filter_rules"))
    symlinks = body.get("recursive_symlinks", "ignore") or "ignore"
    if symlinks not in ("ignore", "keep", "copy"):
        raise bad_request("recursive_symlinks must be 'ignore', 'keep' or 'copy'")
    plan.options["recursive_symlinks"] = symlinks
    for index, raw in enumerate(body["DATA"]):
        if not isinstance(raw, dict):
            raise bad_request(f"DATA[{index}] must be an object")
        if raw.get("DATA_TYPE", "transfer_item") != "transfer_item":
            raise bad_request(f"DATA[{index}] must have DATA_TYPE 'transfer_item'")
        src = _string(raw, "source_path", required=True)
        dst = _string(raw, "destination_path", required=True)
        assert src is not None and dst is not None
        recursive = raw.get("recursive")
        if recursive is not None and not isinstance(recursive, bool):
            raise bad_request(f"DATA[{index}].recursive must be a boolean")
        checksum = _string(raw, "external_checksum")
        algorithm = _string(raw, "checksum_algorithm")
        if checksum is not None and recursive:
            raise bad_request("external_checksum cannot be used with a recursive item")
        if algorithm is not None:
            algorithm = algorithm.upper()
            if algorithm not in CHECKSUM_ALGORITHMS:
                raise bad_request(
                    f"Unsupported checksum_algorithm; use one of {', '.join(CHECKSUM_ALGORITHMS)}"
                )
        elif checksum is not None:
            algorithm = "MD5"
        plan.items.append(
            _Item(normalize_path(src), normalize_path(dst), recursive, checksum, algorithm)
        )
    return plan, source, destination


def parse_delete(
    body: dict[str, Any], now: datetime, *, max_deadline: timedelta = DEFAULT_MAX_DEADLINE
) -> tuple[_Plan, uuid.UUID]:
    plan = _common(body, "delete", now, max_deadline)
    endpoint = parse_uuid(body.get("endpoint"), "endpoint")
    plan.options.update({name: _bool(body, name, False) for name in DELETE_BOOLS})
    recursive = plan.options["recursive"]
    for index, raw in enumerate(body["DATA"]):
        if not isinstance(raw, dict):
            raise bad_request(f"DATA[{index}] must be an object")
        if raw.get("DATA_TYPE", "delete_item") != "delete_item":
            raise bad_request(f"DATA[{index}] must have DATA_TYPE 'delete_item'")
        path = _string(raw, "path", required=True)
        assert path is not None
        canonical = normalize_path(path)
        if canonical == "/":
            raise bad_request("The collection root cannot be deleted")
        plan.items.append(_Item(canonical, None, recursive))
    return plan, endpoint


async def _existing(ctx: AppContext, caller: Caller, submission_id: uuid.UUID) -> Submitted | None:
    async with ctx.db.session() as session:
        task = await session.scalar(select(Task).where(Task.submission_id == submission_id))
    if task is None:
        return None
    if task.owner_id != caller.identity_id:
        raise Conflict(
            "This submission_id was already used by another user", code="ClientError.Conflict"
        )
    return Submitted(task.id, submission_id, duplicate=True)


async def _detect_recursion(
    ctx: AppContext,
    caller: Caller,
    collection: Collection,
    items: list[_Item],
    guard: AccessGuard | None,
) -> None:
    """Items without ``recursive`` are directories if their source is one (auto-detection).

    Under the caller's guard: a source that resolves outside their grant tells nothing here
    and fails at execution with PERMISSION_DENIED."""
    pending = [item for item in items if item.recursive is None]
    if not pending:
        return
    async with open_storage(ctx, collection, guard, identity_id=caller.identity_id) as storage:
        for item in pending:
            try:
                item.recursive = (await storage.stat(item.source_path)).type == "dir"
            except ConnectorError:
                # Missing or unreadable sources fail at execution, with a proper task event.
                item.recursive = False


async def _store(
    ctx: AppContext,
    caller: Caller,
    plan: _Plan,
    source: Collection,
    destination: Collection | None,
) -> Submitted:
    now = ctx.clock.now()
    task = Task(
        submission_id=plan.submission_id,
        owner_id=caller.identity_id,
        type=plan.type,
        status="ACTIVE",
        nice_status="Queued",
        label=plan.label,
        source_endpoint_id=source.id,
        destination_endpoint_id=destination.id if destination else None,
        options=plan.options,
        request_time=now,
        deadline=plan.deadline,
        planned=False,
    )
    try:
        async with ctx.db.session() as session:
            session.add(task)
            await session.flush()
            session.add_all(
                TaskItem(
                    task_id=task.id,
                    position=position,
                    source_path=item.source_path,
                    destination_path=item.destination_path,
                    recursive=bool(item.recursive),
                    external_checksum=item.external_checksum,
                    checksum_algorithm=item.checksum_algorithm,
                )
                for position, item in enumerate(plan.items)
            )
            # Idle workers (here and on other hosts) claim it now, not at their next poll.
            mark_changed(session, NEW_WORK_TOPIC)
    except IntegrityError:
        # A concurrent retry of the same submission won the race.
        again = await _existing(ctx, caller, plan.submission_id)
        if again is None:
            raise
        return again
    return Submitted(task.id, plan.submission_id, duplicate=False)


def deadline_limit(ctx: AppContext) -> timedelta:
    return timedelta(days=ctx.settings.max_task_deadline_days)


async def _refuse_unreachable(
    session: AsyncSession, source: Collection, destination: Collection
) -> None:
    """Accept only transfers some worker can run: between central collections (central
    workers), within one Connect agent (a local copy there), or across the data channel,
    which needs one side to accept connections: an agent run with --listen, or, with central
    POSIX storage, the deployment's workers when set up to listen (``ARCTERN_DATA_LISTEN``;
    a worker briefly restarting does not count as "not set up"). Refuse the rest now rather
    than accept a task nobody can run."""
    on_agent = [c for c in (source, destination) if c.connector == "agent"]
    if not on_agent:
        return
    if len(on_agent) == 2 and source.endpoint_id == destination.endpoint_id:
        return
    listening = await session.scalar(
        select(func.count())
        .select_from(Endpoint)
        .where(
            Endpoint.id.in_([c.endpoint_id for c in on_agent]),
            Endpoint.data_address.is_not(None),
        )
    )
    if listening:
        return
    if len(on_agent) == 1:
        central = destination if source.connector == "agent" else source
        served = central.connector in CENTRAL_SERVED_CONNECTORS and bool(
            await session.scalar(select(func.count()).select_from(CentralDataListener))
        )
        if served:
            return
        message = (
            f"Collection '{on_agent[0].display_name}' is on an Arctern Connect endpoint that "
            "does not accept data connections: transfers between it and "
            f"'{central.display_name}' need its agent to run with --listen"
            + (
                ", or the deployment's workers to accept data connections (ARCTERN_DATA_LISTEN)."
                if central.connector in CENTRAL_SERVED_CONNECTORS
                else "."
            )
        )
    else:
        message = (
            f"Neither '{source.display_name}' nor '{destination.display_name}' accepts data "
            "connections: one of the two Arctern Connect agents must run with --listen."
        )
    raise ArcternError(message, code="ClientError.NotSupported", status=409)


async def submit_transfer(ctx: AppContext, caller: Caller, body: dict[str, Any]) -> Submitted:
    now = ctx.clock.now()
    plan, source_id, destination_id = parse_transfer(body, now, max_deadline=deadline_limit(ctx))
    if (found := await _existing(ctx, caller, plan.submission_id)) is not None:
        return found
    async with ctx.db.session() as session:
        source = await visible_collection(session, caller, source_id, now)
        destination = await visible_collection(session, caller, destination_id, now)
        await _refuse_unreachable(session, source, destination)
        # The guards once per collection, every item checked against them.
        source_guard = await caller_guard(session, caller, source, now)
        destination_guard = await caller_guard(session, caller, destination, now)
        for item in plan.items:
            check_access(source_guard, source, item.source_path, "r")
            assert item.destination_path is not None
            check_access(destination_guard, destination, item.destination_path, "rw")
        # Refused now, not at run time, when the storage needs the user's own credential.
        for collection in (source, destination):
            await storage_options(session, collection, caller.identity_id)
    await _detect_recursion(ctx, caller, source, plan.items, source_guard)
    for item in plan.items:
        assert item.destination_path is not None
        if item.destination_path == "/" and not item.recursive:
            raise bad_request("A file cannot be written to the collection root itself")
        if source.id == destination.id and (
            item.source_path == item.destination_path
            or (item.recursive and is_within(item.destination_path, item.source_path))
        ):
            raise bad_request(
                f"Destination '{item.destination_path}' overlaps source '{item.source_path}'"
            )
        if (
            source.id == destination.id
            and item.recursive
            and plan.options["delete_destination_extra"]
            and is_within(item.source_path, item.destination_path)
        ):
            # Deleting the destination's extra files would delete the source itself.
            raise bad_request(
                f"delete_destination_extra with destination '{item.destination_path}' "
                f"would delete the source '{item.source_path}'"
            )
    if plan.options["delete_destination_extra"] and not any(i.recursive for i in plan.items):
        raise bad_request("delete_destination_extra requires a recursive item")
    return await _store(ctx, caller, plan, source, destination)


async def submit_delete(ctx: AppContext, caller: Caller, body: dict[str, Any]) -> Submitted:
    now = ctx.clock.now()
    plan, endpoint_id = parse_delete(body, now, max_deadline=deadline_limit(ctx))
    if (found := await _existing(ctx, caller, plan.submission_id)) is not None:
        return found
    async with ctx.db.session() as session:
        collection = await visible_collection(session, caller, endpoint_id, now)
        guard = await caller_guard(session, caller, collection, now)
        for item in plan.items:
            check_access(guard, collection, item.source_path, "rw")
        await storage_options(session, collection, caller.identity_id)
    return await _store(ctx, caller, plan, collection, None)
