"""JSON forms of what a worker job and its work source exchange, for the agent's work API.

Both sides use these functions: the agent (``agent/work_source.py``) encodes progress and plan
output and decodes tasks, plans, files and heartbeats; the deployment (``work.py``) does the
reverse and validates everything it receives, since an agent is only trusted with the work it
holds a lease on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from arctern.connectors.access import AccessGuard
from arctern.connectors.base import WriteState
from arctern.engine.copier import Resume
from arctern.engine.options import FileJob, ItemSpec
from arctern.transfer.filters import bad_request
from arctern.worker.progress import COUNTERS, PendingEvent, TaskProgress
from arctern.worker.source import (
    Beat,
    Collections,
    CollectionView,
    PlanCommit,
    PlanErrorRow,
    PlanView,
    TaskView,
)

# What a job may set on one of its files when it finishes it.
FILE_STATES = ("done", "failed", "skipped", "unchanged")
MAX_TEXT = 4096


# -- tasks, plans, files, collections (deployment -> agent) -----------------------------------


def task_doc(task: TaskView) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "type": task.type,
        "status": task.status,
        "options": task.options,
        "owner_id": str(task.owner_id),
        "source_endpoint_id": str(task.source_endpoint_id),
        "destination_endpoint_id": (
            str(task.destination_endpoint_id) if task.destination_endpoint_id else None
        ),
    }


def task_of(doc: dict[str, Any]) -> TaskView:
    destination = doc.get("destination_endpoint_id")
    return TaskView(
        id=uuid.UUID(doc["id"]),
        type=str(doc["type"]),
        status=str(doc["status"]),
        options=dict(doc.get("options") or {}),
        owner_id=uuid.UUID(doc["owner_id"]),
        source_endpoint_id=uuid.UUID(doc["source_endpoint_id"]),
        destination_endpoint_id=uuid.UUID(destination) if destination else None,
    )


def item_doc(item: ItemSpec) -> dict[str, Any]:
    return {
        "source_path": item.source_path,
        "destination_path": item.destination_path,
        "recursive": item.recursive,
        "external_checksum": item.external_checksum,
        "checksum_algorithm": item.checksum_algorithm,
    }


def plan_doc(plan: PlanView) -> dict[str, Any]:
    return {
        "item_index": plan.item_index,
        "entries_done": plan.entries_done,
        "attempts": plan.attempts,
        "items": [item_doc(item) for item in plan.items],
    }


def plan_of(doc: dict[str, Any]) -> PlanView:
    return PlanView(
        int(doc["item_index"]),
        int(doc["entries_done"]),
        int(doc["attempts"]),
        [ItemSpec(**item) for item in doc["items"]],
    )


def file_doc(job: FileJob, resume: Resume | None) -> dict[str, Any]:
    return {
        "key": job.key,
        "source_path": job.source_path,
        "destination_path": job.destination_path,
        "size": job.size,
        "mtime": job.mtime,
        "external_checksum": job.external_checksum,
        "checksum_algorithm": job.checksum_algorithm,
        "resume": (
            None
            if resume is None
            else {
                "bytes_done": resume.bytes_done,
                "state": None if resume.state is None else _state_doc(resume.state),
            }
        ),
    }


def _state_doc(state: WriteState) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(state)


def file_of(doc: dict[str, Any]) -> tuple[FileJob, Resume | None]:
    job = FileJob(
        source_path=doc["source_path"],
        destination_path=doc["destination_path"],
        size=int(doc["size"]),
        mtime=float(doc["mtime"]),
        external_checksum=doc.get("external_checksum"),
        checksum_algorithm=doc.get("checksum_algorithm"),
        key=doc.get("key"),
    )
    raw = doc.get("resume")
    resume = None
    if raw:
        state = raw.get("state")
        resume = Resume(int(raw["bytes_done"]), WriteState(**state) if state else None)
    return job, resume


def collections_doc(found: Collections) -> dict[str, Any]:
    def view(collection: CollectionView | None) -> dict[str, Any] | None:
        if collection is None:
            return None
        # An agent opens only its own collections, from its own configuration: it needs to
        # know which collection, never a central root or stored credentials. A peer agent's
        # collection ("remote") comes with its data address, pinned certificate and a task
        # credential.
        doc: dict[str, Any] = {"id": str(collection.id), "connector": collection.connector}
        if collection.connector == "agent" and collection.root:
            doc["root"] = collection.root  # a guest collection: MAPPED_ID/folder
        if collection.connector == "remote":
            doc["options"] = collection.options
        return doc

    def guard(value: AccessGuard | None) -> dict[str, Any] | None:
        return None if value is None else guard_doc(value)

    return {
        "source": view(found.source),
        "destination": view(found.destination),
        "source_guard": guard(found.source_guard),
        "destination_guard": guard(found.destination_guard),
    }


def guard_doc(guard: AccessGuard) -> dict[str, Any]:
    return guard.to_doc()


def guard_of(doc: dict[str, Any] | None) -> AccessGuard | None:
    if doc is None:
        return None
    return AccessGuard.from_doc(doc)


def collections_of(doc: dict[str, Any]) -> Collections:
    def view(raw: dict[str, Any] | None) -> CollectionView | None:
        if raw is None:
            return None
        # The agent's connector factory maps an agent collection id to its local root.
        options = raw.get("options") if raw["connector"] == "remote" else None
        root = str(raw.get("root") or raw["id"])
        return CollectionView(uuid.UUID(raw["id"]), raw["connector"], root, options or {})

    source = view(doc["source"])
    assert source is not None
    return Collections(
        source,
        view(doc.get("destination")),
        guard_of(doc.get("source_guard")),
        guard_of(doc.get("destination_guard")),
    )


def beat_doc(beat: Beat) -> dict[str, Any]:
    return {
        "finished": beat.finished,
        "cancel_requested": beat.cancel_requested,
        "expired": beat.expired,
        "lease_kept": beat.lease_kept,
        "grants": {str(key): guard_doc(guard) for key, guard in beat.grants.items()},
    }


def beat_of(doc: dict[str, Any]) -> Beat:
    return Beat(
        finished=bool(doc.get("finished")),
        cancel_requested=bool(doc.get("cancel_requested")),
        expired=bool(doc.get("expired")),
        lease_kept=bool(doc.get("lease_kept", True)),
        grants={
            uuid.UUID(key): AccessGuard.from_doc(value)
            for key, value in (doc.get("grants") or {}).items()
        },
    )


# -- progress and plan output (agent -> deployment) -------------------------------------------


def progress_doc(progress: TaskProgress | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {
        "deltas": progress.deltas,
        "active_seconds": progress.active_seconds,
        "nice_status": progress.nice_status,
        "file_updates": {
            str(key): {**record, "done_time": record["done_time"].isoformat()}
            for key, record in progress.file_updates.items()
        },
        "checkpoints": {
            str(key): [done, state] for key, (done, state) in progress.checkpoints.items()
        },
        "events": [
            {
                "code": e.code,
                "description": e.description,
                "details": e.details,
                "is_error": e.is_error,
                "time": e.time.isoformat(),
            }
            for e in progress.events
        ],
        "dropped_events": progress.dropped_events,
    }


def _text(value: Any, name: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise bad_request(f"'{name}' must be a string of at most {MAX_TEXT} characters")
    return value


def _path(value: Any, name: str) -> str:
    text = _text(value, name, optional=False)
    assert text is not None
    return text


def _time(value: Any, clock_now: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise bad_request("a time is not an ISO 8601 date") from None
    return moment if moment.tzinfo is not None else clock_now()


def progress_of(
    doc: Any, task_id: uuid.UUID, clock_now: Any, files: dict[int, FileJob]
) -> TaskProgress | None:
    """The agent's progress report, checked: counters by name, only the files of the batch
    it holds (``files``, by row id), bounded strings."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise bad_request("'progress' must be an object")
    progress = TaskProgress(task_id, clock_now)
    deltas = doc.get("deltas") or {}
    if not isinstance(deltas, dict):
        raise bad_request("'progress.deltas' must be an object")
    for name, value in deltas.items():
        if name not in COUNTERS or not isinstance(value, int) or isinstance(value, bool):
            raise bad_request(f"unknown progress counter {name!r}")
        progress.add(**{name: value})
    seconds = doc.get("active_seconds") or 0.0
    if not isinstance(seconds, int | float) or seconds < 0:
        raise bad_request("'progress.active_seconds' must be a positive number")
    progress.active_seconds = float(seconds)
    progress.nice_status = _text(doc.get("nice_status"), "nice_status")

    def file_id(key: Any) -> int:
        try:
            ident = int(key)
        except (TypeError, ValueError):
            raise bad_request("a file key must be an integer") from None
        job = files.get(ident)
        if job is None:
            raise bad_request(f"file {ident} is not in the batch this worker holds")
        progress.files[ident] = job
        return ident

    for key, record in (doc.get("file_updates") or {}).items():
        if not isinstance(record, dict) or record.get("state") not in FILE_STATES:
            raise bad_request("a file update must have a state")
        write_state = record.get("write_state")
        progress.file_updates[file_id(key)] = {
            "state": record["state"],
            "error_code": _text(record.get("error_code"), "error_code"),
            "error_message": _text(record.get("error_message"), "error_message"),
            "checksum": _text(record.get("checksum"), "checksum"),
            "checksum_algorithm": _text(record.get("checksum_algorithm"), "checksum_algorithm"),
            "done_time": _time(record.get("done_time"), clock_now),
            "bytes_done": int(record.get("bytes_done") or 0),
            "write_state": write_state if isinstance(write_state, dict) else None,
        }
    for key, point in (doc.get("checkpoints") or {}).items():
        if not isinstance(point, list) or len(point) != 2 or not isinstance(point[0], int):
            raise bad_request("a checkpoint must be [bytes_done, write_state]")
        state = point[1] if isinstance(point[1], dict) else None
        progress.checkpoints[file_id(key)] = (point[0], state)
    for raw in (doc.get("events") or [])[:1000]:
        if not isinstance(raw, dict):
            raise bad_request("an event must be an object")
        progress.events.append(
            PendingEvent(
                code=_path(raw.get("code"), "code"),
                description=_text(raw.get("description"), "description") or "",
                details=_text(raw.get("details"), "details") or "",
                is_error=bool(raw.get("is_error")),
                time=_time(raw.get("time"), clock_now),
            )
        )
    dropped = doc.get("dropped_events") or 0
    progress.dropped_events = dropped if isinstance(dropped, int) and dropped > 0 else 0
    return progress


def commit_doc(commit: PlanCommit) -> dict[str, Any]:
    return {
        "item_index": commit.item_index,
        "entries_done": commit.entries_done,
        "final": commit.final,
        "batches": [
            [
                {
                    "source_path": j.source_path,
                    "destination_path": j.destination_path,
                    "size": j.size,
                    "mtime": j.mtime,
                    "external_checksum": j.external_checksum,
                    "checksum_algorithm": j.checksum_algorithm,
                }
                for j in group
            ]
            for group in commit.batches
        ],
        "errors": [
            {
                "source_path": e.source_path,
                "destination_path": e.destination_path,
                "code": e.code,
                "message": e.message,
                "is_directory": e.is_directory,
                "skipped": e.skipped,
            }
            for e in commit.errors
        ],
    }


def commit_of(doc: Any) -> PlanCommit:
    if not isinstance(doc, dict):
        raise bad_request("'commit' must be an object")
    try:
        batches = [
            [
                FileJob(
                    source_path=_path(j["source_path"], "source_path"),
                    destination_path=_path(j["destination_path"], "destination_path"),
                    size=int(j["size"]),
                    mtime=float(j["mtime"]),
                    external_checksum=_text(j.get("external_checksum"), "external_checksum"),
                    checksum_algorithm=_text(j.get("checksum_algorithm"), "checksum_algorithm"),
                )
                for j in group
            ]
            for group in doc.get("batches") or []
        ]
        errors = [
            PlanErrorRow(
                source_path=_path(e["source_path"], "source_path"),
                destination_path=_path(e["destination_path"], "destination_path"),
                code=_path(e["code"], "code"),
                message=_path(e["message"], "message"),
                is_directory=bool(e.get("is_directory")),
                skipped=bool(e.get("skipped")),
            )
            for e in doc.get("errors") or []
        ]
        return PlanCommit(
            item_index=int(doc["item_index"]),
            entries_done=int(doc["entries_done"]),
            final=bool(doc["final"]),
            batches=batches,
            errors=errors,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise bad_request(f"malformed plan commit: {exc}") from None
