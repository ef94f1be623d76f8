"""A work batch's planned files: one list on the batch row, a file row only once it has one.

A planned file used to be a ``task_files`` row inserted when planned and updated when copied.
For small files that write-then-rewrite was the largest per-file cost of a copy. Now the
planner stores each batch's files as one list (``WorkBatch.files``), and a file gets its row
when something durable is known about it: its outcome, or a large file's resume point. A
row's id is computed from its batch and its place in the list, so writing an outcome needs no
row read back, the same file always lands on the same row (an insert, or an update if a
resume point made the row earlier), and rows list in plan order. Errors found while planning
get ids the same way, from a batch of their own that is done at once.

Files copied successfully need no row of their own either: a run of consecutive files of a
batch is one ``TaskFileRun`` (the first file's id, how many, their checksums). Readers take
rows and runs together: ``jobs_with_rows`` for a batch taken over, ``succeeded_files`` and
``run_files_page`` for listings.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import Row, func, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.db.models.work import TaskFile, TaskFileRun, WorkBatch
from arctern.engine.options import FileJob

# Bits of a file id that number the file within its batch: a batch lists at most 2**20 files
# (``Settings.worker_batch_files`` is bounded by it), and ids stay below 2**53 (exact in
# JavaScript, for the web pages) until batch 2**33.
FILE_ID_BITS = 20
MAX_BATCH_FILES = 1 << FILE_ID_BITS

PlannedFiles = list[list[Any]]


def file_id(batch_id: int, index: int) -> int:
    """The id of the row of the ``index``-th file of batch ``batch_id``."""
    return (batch_id << FILE_ID_BITS) | index


def batch_of(file_id: int) -> int:
    """The batch of the file whose row id is ``file_id``."""
    return file_id >> FILE_ID_BITS


def id_range(batch_id: int, count: int) -> tuple[int, int]:
    """The first and last row id of a batch of ``count`` files."""
    first = batch_id << FILE_ID_BITS
    return first, first + max(count, 1) - 1


def files_doc(jobs: list[FileJob]) -> PlannedFiles:
    """``jobs`` as the batch row stores them."""
    if len(jobs) > MAX_BATCH_FILES:
        raise ValueError(f"a batch lists at most {MAX_BATCH_FILES} files")
    return [
        [
            job.source_path,
            job.destination_path,
            job.size,
            job.mtime,
            job.external_checksum,
            job.checksum_algorithm,
        ]
        for job in jobs
    ]


def planned_jobs(batch_id: int, doc: PlannedFiles | None) -> list[FileJob]:
    """The batch's files as stored, each keyed by its row id."""
    # Unpacked by name, so that a list of the wrong shape fails here, not in a copy.
    return [
        FileJob(source, destination, size, mtime, external, algorithm, file_id(batch_id, index))
        for index, (source, destination, size, mtime, external, algorithm) in enumerate(doc or [])
    ]


def assign_keys(batch_id: int, jobs: list[FileJob]) -> list[FileJob]:
    """Key ``jobs`` (in the order stored) by their row ids, in place; ``jobs``."""
    for index, job in enumerate(jobs):
        job.key = file_id(batch_id, index)
    return jobs


async def batch_jobs(session: AsyncSession, batch_id: int) -> list[FileJob]:
    """Every file batch ``batch_id`` lists, keyed by its row id."""
    listed = await session.scalar(select(WorkBatch.files).where(WorkBatch.id == batch_id))
    return planned_jobs(batch_id, listed)


class _Succeeded(NamedTuple):
    """What ``jobs_with_rows`` gives for a file recorded in a run (a row's columns)."""

    state: str = "done"
    bytes_done: int = 0
    write_state: None = None


async def jobs_with_rows(
    session: AsyncSession, batch_id: int
) -> list[tuple[FileJob, Row[Any] | _Succeeded | None]]:
    """Every file batch ``batch_id`` lists, with its record (``state``, ``bytes_done``,
    ``write_state``) if it has one: its row, or its run's."""
    jobs = await batch_jobs(session, batch_id)
    first, last = id_range(batch_id, len(jobs))
    # Rows and runs in one statement: a run reads as its first file's id, with its count. A
    # row is what a file has to say beyond "done" (a resume point, an outcome): it wins.
    rows = await session.execute(
        union_all(
            select(
                TaskFile.id,
                TaskFile.state,
                TaskFile.bytes_done,
                TaskFile.write_state,
                literal_column("1").label("count"),
                literal_column("0").label("in_run"),
            ).where(TaskFile.id.between(first, last)),
            select(
                TaskFileRun.id,
                literal_column("'done'"),
                literal_column("0"),
                null(),
                TaskFileRun.count,
                literal_column("1"),
            ).where(TaskFileRun.batch_id == batch_id),
        )
    )
    recorded: dict[int | None, Row[Any] | _Succeeded] = {}
    succeeded = _Succeeded()
    for row in rows:
        if row.in_run:
            for key in range(row.id, row.id + row.count):
                recorded.setdefault(key, succeeded)
        else:
            recorded[row.id] = row
    return [(job, recorded.get(job.key)) for job in jobs]


def run_files(run: TaskFileRun, jobs: list[FileJob]) -> list[TaskFile]:
    """The files of ``run`` as (unsaved) rows, from its batch's ``jobs``."""
    first = run.id - file_id(run.batch_id, 0)
    members = jobs[first : first + run.count]
    return [
        TaskFile(
            id=run.id + offset,
            task_id=run.task_id,
            batch_id=run.batch_id,
            source_path=job.source_path,
            destination_path=job.destination_path,
            size=job.size,
            mtime=job.mtime,
            state="done",
            is_directory=False,
            external_checksum=job.external_checksum,
            checksum_algorithm=run.checksum_algorithm,
            checksum=checksum,
            done_time=run.done_time,
            bytes_done=0,
        )
        for offset, (job, checksum) in enumerate(zip(members, run.checksums, strict=False))
    ]


async def succeeded_files(
    session: AsyncSession, task_id: uuid.UUID, *, after: int | None, limit: int
) -> list[TaskFile]:
    """Up to ``limit`` files of the task copied successfully, by id (from ``after`` on, not
    included): rows and runs together. Directories are never listed."""
    rows_query = select(TaskFile).where(
        TaskFile.task_id == task_id, TaskFile.state == "done", TaskFile.is_directory.is_(False)
    )
    spans_query = select(TaskFileRun.id, TaskFileRun.count).where(TaskFileRun.task_id == task_id)
    if after is not None:
        rows_query = rows_query.where(TaskFile.id > after)
        # A run lies within one batch: one that ends after ``after`` starts at most a
        # batch's width before it (the first condition is the index's).
        spans_query = spans_query.where(
            TaskFileRun.id > after - MAX_BATCH_FILES,
            TaskFileRun.id + TaskFileRun.count > after + 1,
        )
    rows = list(await session.scalars(rows_query.order_by(TaskFile.id).limit(limit)))
    spans = list(await session.execute(spans_query.order_by(TaskFileRun.id).limit(limit)))
    # The first run may begin at or before ``after``: its files up to there are skipped.
    skip = max(0, after + 1 - spans[0][0]) if after is not None and spans else 0
    in_runs = await _files_of_runs(session, task_id, spans, skip=skip, limit=limit)
    return _once_each(heapq.merge(rows, in_runs, key=attrgetter("id")))[:limit]


async def run_counts(session: AsyncSession, task_id: uuid.UUID) -> dict[int, int]:
    """How many files the task's runs record, per batch."""
    counted = await session.execute(
        select(TaskFileRun.batch_id, func.sum(TaskFileRun.count))
        .where(TaskFileRun.task_id == task_id)
        .group_by(TaskFileRun.batch_id)
    )
    return {batch_id: int(count) for batch_id, count in counted}


async def run_files_page(
    session: AsyncSession, task_id: uuid.UUID, *, skip: int, limit: int
) -> list[TaskFile]:
    """Files recorded in the task's runs, by id: ``limit`` of them after the first ``skip``."""
    spans = await session.execute(
        select(TaskFileRun.id, TaskFileRun.count)
        .where(TaskFileRun.task_id == task_id)
        .order_by(TaskFileRun.id)
    )
    return await _files_of_runs(session, task_id, spans, skip=skip, limit=limit)


async def _files_of_runs(
    session: AsyncSession,
    task_id: uuid.UUID,
    spans: Iterable[tuple[int, int]],
    *,
    skip: int,
    limit: int,
) -> list[TaskFile]:
    """``limit`` of the files that the runs ``spans`` ((id, count), by id) record, after the
    first ``skip``. Where the page starts and ends comes from the runs' sizes: only the runs
    that hold its files are read whole (with their checksums), and their batches' lists."""
    if limit <= 0:
        return []
    needed: list[int] = []
    first_skip = files = 0
    for run_id, count in spans:
        if not needed and skip >= count:
            skip -= count
            continue
        if not needed:
            first_skip, files = skip, count - skip
        else:
            files += count
        needed.append(run_id)
        if files >= limit:
            break
    if not needed:
        return []
    runs = await session.scalars(
        select(TaskFileRun)
        .where(TaskFileRun.task_id == task_id, TaskFileRun.id.between(needed[0], needed[-1]))
        .order_by(TaskFileRun.id)
    )
    found: list[TaskFile] = []
    lists: dict[int, list[FileJob]] = {}  # each batch's list read once
    for run in runs:
        if run.batch_id not in lists:
            lists[run.batch_id] = await batch_jobs(session, run.batch_id)
        found += run_files(run, lists[run.batch_id])[first_skip : first_skip + limit - len(found)]
        first_skip = 0
    return found


async def recorded_files(session: AsyncSession, task_id: uuid.UUID) -> list[TaskFile]:
    """Every file of the task with a record (a row or a place in a run), by id."""
    rows = await session.scalars(
        select(TaskFile).where(TaskFile.task_id == task_id).order_by(TaskFile.id)
    )
    in_runs = await run_files_page(session, task_id, skip=0, limit=1 << 62)
    return _once_each(heapq.merge(rows, in_runs, key=attrgetter("id")))


def _once_each(files: Iterable[TaskFile]) -> list[TaskFile]:
    """``files`` (by id) without repeats: a file recorded twice (a run written by a holder
    whose report arrived late, beside a later holder's) is listed once."""
    out: list[TaskFile] = []
    for row in files:
        if not out or row.id != out[-1].id:
            out.append(row)
    return out
