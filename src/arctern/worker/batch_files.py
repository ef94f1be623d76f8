"""A work batch's planned files: one list on the batch row, a file row only once it has one.

A planned file used to be a ``task_files`` row inserted when planned and updated when copied.
For small files that write-then-rewrite was the largest per-file cost of a copy. Now the
planner stores each batch's files as one list (``WorkBatch.files``), and a file gets its row
when something durable is known about it: its outcome, or a large file's resume point. A
row's id is computed from its batch and its place in the list, so writing an outcome needs no
row read back, the same file always lands on the same row (an insert, or an update if a
resume point made the row earlier), and rows list in plan order. Errors found while planning
get ids the same way, from a batch of their own that is done at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.db.models.work import TaskFile, WorkBatch
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


async def jobs_with_rows(
    session: AsyncSession, batch_id: int
) -> list[tuple[FileJob, Row[Any] | None]]:
    """Every file batch ``batch_id`` lists, with its row (``state``, ``bytes_done``,
    ``write_state``) if it has one."""
    jobs = await batch_jobs(session, batch_id)
    first, last = id_range(batch_id, len(jobs))
    rows = await session.execute(
        select(TaskFile.id, TaskFile.state, TaskFile.bytes_done, TaskFile.write_state).where(
            TaskFile.id.between(first, last)
        )
    )
    recorded = {row.id: row for row in rows}
    return [(job, recorded.get(job.key)) for job in jobs]
