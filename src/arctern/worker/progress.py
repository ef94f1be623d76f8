"""In-memory accounting for one leased job, flushed to the database about once a second.

Counter deltas, file outcomes, resume checkpoints and events are buffered here and written in
one transaction, so the hot path never commits per file and a crash loses at most the last
second (whose files are simply copied again by whoever takes the lease over). The exception
is a large file's resume point, made durable after each window (``persist_checkpoint``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, false, insert, literal_column, null, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

from arctern.connectors.base import WriteState
from arctern.db.bulk import BulkStatement
from arctern.db.models.transfer import Task, TaskEvent
from arctern.db.models.work import TaskFile, TaskFileRun
from arctern.engine.options import FileJob
from arctern.worker.batch_files import batch_of

COUNTERS = (
    "files",
    "directories",
    "symlinks",
    "files_skipped",
    "files_transferred",
    "bytes_transferred",
    "bytes_checksummed",
    "subtasks_total",
    "subtasks_pending",
    "subtasks_succeeded",
    "subtasks_failed",
    "subtasks_canceled",
    "subtasks_expired",
    "subtasks_skipped_errors",
    "faults",
)

# Connector codes that are not Globus event codes.
EVENT_CODES = {"TRANSIENT": "ENDPOINT_ERROR", "DIRECTORY_NOT_EMPTY": "ENDPOINT_ERROR"}
# A storm of one kind of fault is summarised, but per code, so that a rare kind (a checksum
# mismatch among hundreds of I/O errors) is always recorded.
MAX_EVENTS_PER_CODE_PER_FLUSH = 10

_FILES = cast(Table, TaskFile.__table__)
_RUNS = cast(Table, TaskFileRun.__table__)
# What a file's row is made of when its outcome or resume point creates it.
_PLANNED_COLUMNS = [
    "id",
    "task_id",
    "batch_id",
    "source_path",
    "destination_path",
    "size",
    "mtime",
    "external_checksum",
]
# The columns ``file_done`` sets.
_OUTCOME_COLUMNS = [
    "state",
    "checksum_algorithm",
    "error_code",
    "error_message",
    "checksum",
    "done_time",
    "bytes_done",
    "write_state",
]


def _upsert(
    dialect: str, updated: list[str], *, only_pending: bool, plain: bool = False
) -> UpdateBase:
    """A file's row inserted, or ``updated`` if a resume point or an earlier holder of the
    batch made it already (``only_pending``: and only while it has no outcome).
    Constants are written in the statement, not bound per row (binding a value costs SQLite
    about as much as storing it): a planned file is never a directory, and ``plain``: the
    columns a plain outcome leaves at their defaults."""
    insert_of = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_of(_FILES).values(is_directory=false())
    if plain:
        statement = statement.values(
            error_code=null(),
            error_message=null(),
            bytes_done=literal_column("0"),
            write_state=null(),
        )
    return statement.on_conflict_do_update(
        index_elements=[_FILES.c.id],
        set_={name: statement.excluded[name] for name in updated},
        where=_FILES.c.state == literal_column("'pending'") if only_pending else None,
    )


# A file's outcome, and a large file's resume point (its row says "pending" until done).
_FILE_DONE = BulkStatement(
    lambda dialect: _upsert(dialect, _OUTCOME_COLUMNS, only_pending=False),
    _PLANNED_COLUMNS + _OUTCOME_COLUMNS,
)
# An outcome without an error or a resume point other than a copy (a file found current by
# a sync, most files of a sync run again); files copied go into runs (``succeeded_runs``).
_PLAIN_COLUMNS = ["state", "checksum_algorithm", "checksum", "done_time"]
_PLAIN_OUTCOME = BulkStatement(
    lambda dialect: _upsert(dialect, _OUTCOME_COLUMNS, only_pending=False, plain=True),
    _PLANNED_COLUMNS + _PLAIN_COLUMNS,
)
_CHECKPOINT = BulkStatement(
    lambda dialect: _upsert(dialect, ["bytes_done", "write_state"], only_pending=True),
    [*_PLANNED_COLUMNS, "checksum_algorithm", "state", "bytes_done", "write_state"],
)


# A file recorded in a run had, at most, a resume point's row (a large file): it goes, so
# that the file is not listed twice or its finished upload cleaned up as abandoned.
_SUPERSEDED_RESUME_POINTS = (
    delete(_FILES)
    .where(_FILES.c.id.between(bindparam("first"), bindparam("last")))
    .where(_FILES.c.state == literal_column("'pending'"))
)


@functools.cache
def _insert_runs(dialect: str) -> UpdateBase:
    """Runs inserted; one already there (the same files, recorded by an earlier holder of
    the batch whose report arrived late) is kept."""
    insert_of = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert_of(_RUNS).on_conflict_do_nothing(index_elements=[_RUNS.c.id])


def succeeded_runs(
    task_id: uuid.UUID, succeeded: list[tuple[int, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Files copied successfully (``file_done`` records by file id) as runs: consecutive
    ids of one batch with the same checksum algorithm."""
    runs: list[dict[str, Any]] = []
    run: dict[str, Any] | None = None
    following = -1
    for key, record in sorted(succeeded, key=itemgetter(0)):
        algorithm = record["checksum_algorithm"]
        if (
            run is None
            or key != following
            or batch_of(key) != run["batch_id"]
            or algorithm != run["checksum_algorithm"]
        ):
            run = {
                "id": key,
                "task_id": task_id,
                "batch_id": batch_of(key),
                "count": 0,
                "checksum_algorithm": algorithm,
                "checksums": [],
                "done_time": record["done_time"],
            }
            runs.append(run)
        run["count"] += 1
        run["checksums"].append(record["checksum"])
        run["done_time"] = max(run["done_time"], record["done_time"])
        following = key + 1
    return runs


def _is_plain(record: dict[str, Any]) -> bool:
    """Whether ``record`` leaves every column ``_PLAIN_OUTCOME`` does not bind at its default."""
    return (
        record["error_code"] is None
        and record["error_message"] is None
        and record["write_state"] is None
        and not record["bytes_done"]
    )


def event_code(code: str) -> str:
    return EVENT_CODES.get(code, code)


@dataclass
class PendingEvent:
    code: str
    description: str
    details: str
    is_error: bool
    time: datetime


@dataclass
class TaskProgress:
    """Buffered changes to one task. Also the engine's ``ProgressSink``."""

    task_id: uuid.UUID
    clock_now: Any  # () -> datetime
    deltas: dict[str, int] = field(default_factory=dict)
    active_seconds: float = 0.0
    nice_status: str | None = None
    file_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[int, tuple[int, dict[str, Any] | None]] = field(default_factory=dict)
    # The planned file of each key of ``file_updates`` and ``checkpoints``: its row may not
    # exist yet (``worker/batch_files.py``).
    files: dict[int, FileJob] = field(default_factory=dict)
    events: list[PendingEvent] = field(default_factory=list)
    dropped_events: int = 0
    # Set by the owning job: flushes what is buffered now (coalescing concurrent calls).
    persist: Callable[[], Awaitable[None]] | None = None

    # -- ProgressSink ----------------------------------------------------------------------

    def count(
        self, *, bytes_transferred: int = 0, bytes_checksummed: int = 0, faults: int = 0
    ) -> None:
        self.add(
            bytes_transferred=bytes_transferred,
            bytes_checksummed=bytes_checksummed,
            faults=faults,
        )

    def fault(self, code: str, message: str) -> None:
        self.add(faults=1)
        self.nice_status = event_code(code)
        self.event(event_code(code), "a fault occurred; retrying", message, is_error=True)

    def checkpoint(self, job: FileJob, bytes_done: int, state: WriteState | None) -> None:
        if job.key is not None:
            self.checkpoints[job.key] = (bytes_done, asdict(state) if state else None)
            self.files[job.key] = job

    async def persist_checkpoint(
        self, job: FileJob, bytes_done: int, state: WriteState | None
    ) -> None:
        """Buffer the checkpoint, then have the job flush now (``persist``): a large file's
        resume point must not wait for the periodic flush, or a crash re-sends up to a
        flush interval of data. Small files never come here."""
        self.checkpoint(job, bytes_done, state)
        if self.persist is not None and job.key is not None:
            await self.persist()

    # -- recording ----------------------------------------------------------------------

    def add(self, **deltas: int) -> None:
        for name, value in deltas.items():
            if value:
                self.deltas[name] = self.deltas.get(name, 0) + value

    def event(self, code: str, description: str, details: str = "", *, is_error: bool) -> None:
        if sum(e.code == code for e in self.events) >= MAX_EVENTS_PER_CODE_PER_FLUSH:
            self.dropped_events += 1
            return
        self.events.append(PendingEvent(code, description, details, is_error, self.clock_now()))

    def file_done(
        self, job: FileJob, state: str, *, done_time: datetime | None = None, **values: Any
    ) -> None:
        """Buffer a file's outcome; ``values``: other columns ``_FILE_DONE`` writes."""
        file_id = job.key
        assert file_id is not None, "a file's outcome needs the file's row id"
        self.files[file_id] = job
        record = {
            "state": state,
            "error_code": None,
            "error_message": None,
            "checksum": None,
            "checksum_algorithm": None,
            "done_time": done_time or self.clock_now(),
            "bytes_done": 0,
            "write_state": None,
        }
        record.update(values)
        self.file_updates[file_id] = record
        self.checkpoints.pop(file_id, None)

    def has_news(self) -> bool:
        """Anything worth a write besides the active time."""
        return bool(
            self.deltas
            or self.file_updates
            or self.checkpoints
            or self.events
            or self.dropped_events
            or self.nice_status
        )

    def empty(self) -> bool:
        return not (
            self.deltas
            or self.file_updates
            or self.checkpoints
            or self.events
            or self.nice_status
            or self.active_seconds
        )

    # -- persistence --------------------------------------------------------------------

    async def flush(self, session: AsyncSession) -> bool:
        """Write everything buffered; False (and nothing written) if the task is finished.

        The buffer is swapped out before the first await, so concurrent flushes (heartbeat
        and job) never write the same deltas twice; on failure it is merged back.
        """
        snapshot = self.take()
        try:
            return await snapshot.write(session)
        except BaseException:
            self.merge(snapshot)
            raise

    def take(self) -> TaskProgress:
        snapshot = TaskProgress(self.task_id, self.clock_now)
        for name in (
            "deltas",
            "active_seconds",
            "nice_status",
            "file_updates",
            "checkpoints",
            "files",
            "events",
            "dropped_events",
        ):
            setattr(snapshot, name, getattr(self, name))
        self._reset()
        return snapshot

    def merge(self, other: TaskProgress) -> None:
        for name, value in other.deltas.items():
            self.deltas[name] = self.deltas.get(name, 0) + value
        self.active_seconds += other.active_seconds
        self.nice_status = self.nice_status or other.nice_status
        for key, record in other.file_updates.items():
            self.file_updates.setdefault(key, record)
        for key, point in other.checkpoints.items():
            if key not in self.file_updates:
                self.checkpoints.setdefault(key, point)
        for key, job in other.files.items():
            self.files.setdefault(key, job)
        self.events = other.events + self.events
        self.dropped_events += other.dropped_events

    async def write(self, session: AsyncSession) -> bool:
        status = await session.scalar(select(Task.status).where(Task.id == self.task_id))
        if status not in ("ACTIVE", "INACTIVE"):
            return False
        values: dict[str, Any] = {
            name: getattr(Task, name) + delta for name, delta in self.deltas.items() if delta
        }
        if self.active_seconds:
            values["active_seconds"] = Task.active_seconds + self.active_seconds
        if self.nice_status:
            # "Queued" is the API's; once a worker touches the task it is at least "OK".
            values["nice_status"] = self.nice_status
        if values:
            await session.execute(
                update(Task)
                .where(Task.id == self.task_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        # One driver executemany each: a batch flushes a thousand rows at a time.
        if self.file_updates:
            outcome = itemgetter(*_OUTCOME_COLUMNS)
            plain_outcome = itemgetter(*_PLAIN_COLUMNS)
            plain: list[tuple[Any, ...]] = []
            other: list[tuple[Any, ...]] = []
            succeeded: list[tuple[int, dict[str, Any]]] = []
            for key, record in self.file_updates.items():
                if not _is_plain(record):
                    other.append(self._planned(key) + outcome(record))
                elif record["state"] == "done":
                    succeeded.append((key, record))
                else:
                    plain.append(self._planned(key) + plain_outcome(record))
            await _PLAIN_OUTCOME.run(session, plain)
            await _FILE_DONE.run(session, other)
            await self._write_runs(session, succeeded)
        if self.checkpoints:
            await _CHECKPOINT.run(
                session,
                [
                    (
                        *self._planned(key),
                        self.files[key].checksum_algorithm,
                        "pending",
                        done,
                        state,
                    )
                    for key, (done, state) in self.checkpoints.items()
                ],
            )
        if self.events or self.dropped_events:
            rows = [
                {
                    "task_id": self.task_id,
                    "time": e.time,
                    "code": e.code,
                    "description": e.description,
                    "details": e.details,
                    "is_error": e.is_error,
                }
                for e in self.events
            ]
            if self.dropped_events:
                rows.append(
                    {
                        "task_id": self.task_id,
                        "time": self.clock_now(),
                        "code": "PROGRESS",
                        "description": "events suppressed",
                        "details": f"{self.dropped_events} similar events were not recorded",
                        "is_error": False,
                    }
                )
            await session.execute(insert(TaskEvent), rows)
        return True

    async def _write_runs(
        self, session: AsyncSession, succeeded: list[tuple[int, dict[str, Any]]]
    ) -> None:
        if not succeeded:
            return
        runs = succeeded_runs(self.task_id, succeeded)
        await session.execute(
            _SUPERSEDED_RESUME_POINTS,
            [{"first": run["id"], "last": run["id"] + run["count"] - 1} for run in runs],
        )
        dialect = (await session.connection()).dialect.name
        await session.execute(_insert_runs(dialect), runs)

    def _planned(self, key: int) -> tuple[Any, ...]:
        """The planned columns (``_PLANNED_COLUMNS``) of the row of file ``key``."""
        job = self.files[key]
        return (
            key,
            self.task_id,
            batch_of(key),
            job.source_path,
            job.destination_path,
            job.size,
            job.mtime,
            job.external_checksum,
        )

    def _reset(self) -> None:
        self.deltas = {}
        self.active_seconds = 0.0
        self.nice_status = None
        self.file_updates = {}
        self.checkpoints = {}
        self.files = {}
        self.events = []
        self.dropped_events = 0
