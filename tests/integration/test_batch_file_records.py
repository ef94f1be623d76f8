"""Planned files live in their batch's list until they have an outcome: what the worker,
the task page, cancel and the byte totals make of files with and without rows."""

from __future__ import annotations

import uuid

from arctern.connectors.base import WriteState
from arctern.context import AppContext
from arctern.db.models.transfer import Task
from arctern.db.models.work import TaskFile
from arctern.engine.copier import Resume
from arctern.transfer.services import tasks as task_service
from arctern.transfer.services.common import Caller
from arctern.worker import batch_files
from arctern.worker.finalize import finalize_stopped
from arctern.worker.progress import TaskProgress
from arctern.worker.source import PlanCommit, PlanErrorRow
from tests.integration import test_connect_work
from tests.integration.test_worker_lease_ahead import _jobs, _planning

database_url = test_connect_work.database_url
ctx = test_connect_work.ctx


def listed(rows: list[TaskFile]) -> list[tuple[str, str]]:
    return [(row.source_path, row.state) for row in rows]


async def test_files_without_rows_are_copied_listed_counted_and_canceled(
    ctx: AppContext,
) -> None:
    source, plan, task_id = await _planning(ctx, lambda: 0.0)
    async with ctx.db.session() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        caller = Caller(task.owner_id, "owner")
    planned = TaskProgress(task_id, ctx.clock.now)
    planned.add(files=5, subtasks_total=6, subtasks_pending=5, subtasks_failed=1)
    missing = PlanErrorRow("/src/gone", "/dst/gone", "FILE_NOT_FOUND", "gone", False, False)
    commit = PlanCommit(1, 0, True, batches=[_jobs("a", 3), _jobs("b", 2)], errors=[missing])
    await source.commit_plan(plan, commit, planned)

    page, total = await task_service.task_file_page(ctx, caller, task_id, limit=10, offset=0)
    assert total == 6
    assert listed(page) == [
        ("/src/gone", "failed"),
        *((f"/src/{name}", "pending") for name in ("a0", "a1", "a2", "b0", "b1")),
    ]
    totals = await task_service.bytes_totals(ctx, caller, [task_id])
    assert totals == {task_id: (100 + 101 + 102) + (100 + 101)}

    # A worker copies a1 (recorded in a run) and buffers a resume point of a2 (a row).
    claim = await source.claim()
    assert claim is not None and claim.kind == "batch"
    jobs = [job for job, _ in await source.load_batch(claim)]
    assert [job.source_path for job in jobs] == ["/src/a0", "/src/a1", "/src/a2"]
    progress = TaskProgress(task_id, ctx.clock.now)
    progress.file_done(jobs[1], "done", checksum="c1", checksum_algorithm="MD5")
    progress.add(subtasks_pending=-1, subtasks_succeeded=1)
    point = WriteState(temp_path="/dst/.a2.part")
    progress.checkpoint(jobs[2], 50, point)
    await source.beat(claim, progress, extend=False, guarded=[])

    # Rows first (errors first, then in plan order), then the runs' files, then the files
    # without a record; pages cut across all three.
    first, total = await task_service.task_file_page(ctx, caller, task_id, limit=2, offset=0)
    middle, _ = await task_service.task_file_page(ctx, caller, task_id, limit=2, offset=2)
    rest, _ = await task_service.task_file_page(ctx, caller, task_id, limit=10, offset=4)
    assert total == 6
    assert listed(first) == [("/src/gone", "failed"), ("/src/a2", "pending")]
    assert listed(middle) == [("/src/a1", "done"), ("/src/a0", "pending")]
    assert listed(rest) == [("/src/b0", "pending"), ("/src/b1", "pending")]
    done = await task_service.task_file_records(ctx, caller, task_id, state="done", marker=None)
    assert [(r.source_path, r.checksum) for r in done[0]] == [("/src/a1", "c1")]

    # Whoever takes the batch over copies a0 afresh and resumes a2; a1 is done.
    again = await source.load_batch(claim)
    assert [(job.source_path, resume) for job, resume in again] == [
        ("/src/a0", None),
        ("/src/a2", Resume(50, point)),
    ]
    assert [job.key for job, _ in again] == [jobs[0].key, jobs[2].key]

    # A cancel counts every file still pending, with a row or without.
    assert await finalize_stopped(ctx, task_id, "CANCELED", None)
    async with ctx.db.session() as session:
        ended = await session.get(Task, task_id)
        assert ended is not None
        assert (ended.subtasks_canceled, ended.subtasks_pending) == (4, 0)
    page, total = await task_service.task_file_page(ctx, caller, task_id, limit=10, offset=0)
    assert total == 6
    assert listed(page) == [
        ("/src/gone", "failed"),
        ("/src/a2", "canceled"),
        ("/src/a1", "done"),
        *((f"/src/{name}", "canceled") for name in ("a0", "b0", "b1")),
    ]
    other = Caller(uuid.uuid4(), "someone else")
    assert await task_service.bytes_totals(ctx, other, [task_id]) == {}


async def test_an_outcome_replaces_a_resume_point_whole(ctx: AppContext) -> None:
    """A file copied after its resume point was recorded has one record, with the outcome's
    columns and the resume point gone: a run's place (its row deleted) when it succeeded,
    its row rewritten otherwise."""
    source, plan, task_id = await _planning(ctx, lambda: 0.0)
    await source.commit_plan(plan, PlanCommit(1, 0, True, batches=[_jobs("a", 3)]), None)
    claim = await source.claim()
    assert claim is not None and claim.kind == "batch"
    jobs = [job for job, _ in await source.load_batch(claim)]
    progress = TaskProgress(task_id, ctx.clock.now)
    for job in jobs[:2]:
        progress.checkpoint(job, 50, WriteState(temp_path=f"/dst/.{job.key}.part"))
    await source.beat(claim, progress, extend=False, guarded=[])

    progress.file_done(jobs[0], "done", checksum="c0", checksum_algorithm="MD5")
    progress.file_done(jobs[1], "failed", error_code="PERMISSION_DENIED", error_message="no")
    progress.file_done(jobs[2], "unchanged")
    await source.beat(claim, progress, extend=False, guarded=[])

    async with ctx.db.session() as session:
        assert await session.get(TaskFile, jobs[0].key) is None
        rows = await batch_files.recorded_files(session, task_id)
    assert [
        (r.source_path, r.state, r.checksum, r.error_code, r.bytes_done, r.write_state)
        for r in rows
    ] == [
        ("/src/a0", "done", "c0", None, 0, None),
        ("/src/a1", "failed", None, "PERMISSION_DENIED", 0, None),
        ("/src/a2", "unchanged", None, None, 0, None),
    ]
    assert all(not r.is_directory and r.batch_id == claim.batch_id for r in rows)
    assert [r.id for r in rows] == [job.key for job in jobs]


async def test_successful_files_page_through_runs_and_rows_in_id_order(
    ctx: AppContext,
) -> None:
    """Files done are listed by id whether a run or a row (a file done before runs existed)
    records them, every page starting after the marker, none twice, directories never."""
    source, plan, task_id = await _planning(ctx, lambda: 0.0)
    commit = PlanCommit(1, 0, True, batches=[_jobs("a", 6), _jobs("b", 2)])
    await source.commit_plan(plan, commit, None)
    first = await source.claim()
    assert first is not None and first.batch_id is not None
    jobs = [job for job, _ in await source.load_batch(first)]
    progress = TaskProgress(task_id, ctx.clock.now)
    for index in (0, 1, 3, 4):
        progress.file_done(jobs[index], "done", checksum=f"c{index}", checksum_algorithm="MD5")
    progress.file_done(jobs[2], "failed", error_code="PERMISSION_DENIED", error_message="no")
    await source.beat(first, progress, extend=False, guarded=[])
    second = await source.claim()
    assert second is not None and second.batch_id is not None
    later = [job for job, _ in await source.load_batch(second)]
    async with ctx.db.session() as session:
        legacy = TaskFile(
            id=later[1].key,
            task_id=task_id,
            batch_id=second.batch_id,
            source_path=later[1].source_path,
            destination_path=later[1].destination_path,
            size=later[1].size,
            state="done",
            checksum="legacy",
            checksum_algorithm="MD5",
        )
        directory = TaskFile(
            id=batch_files.file_id(second.batch_id, 5),
            task_id=task_id,
            source_path="/src/d/",
            destination_path="/dst/d/",
            state="done",
            is_directory=True,
        )
        session.add_all([legacy, directory])
    async with ctx.db.session() as session:
        runs = await batch_files.run_counts(session, task_id)
        assert runs == {first.batch_id: 4}  # two runs: files 0-1 and 3-4
        listed_ids: list[int] = []
        marker: int | None = None
        while True:
            page = await batch_files.succeeded_files(session, task_id, after=marker, limit=2)
            if not page:
                break
            listed_ids += [row.id for row in page]
            marker = page[-1].id
        everything = await batch_files.succeeded_files(session, task_id, after=None, limit=100)
        # Pages that cut through a run: by marker, and by position in the runs' files.
        cut = await batch_files.succeeded_files(session, task_id, after=jobs[0].key, limit=2)
        middle = await batch_files.run_files_page(session, task_id, skip=1, limit=2)
        tail = await batch_files.run_files_page(session, task_id, skip=3, limit=5)
        beyond = await batch_files.run_files_page(session, task_id, skip=4, limit=5)
    expected = [jobs[i].key for i in (0, 1, 3, 4)] + [later[1].key]
    assert listed_ids == expected
    assert [(r.source_path, r.checksum) for r in everything] == [
        ("/src/a0", "c0"),
        ("/src/a1", "c1"),
        ("/src/a3", "c3"),
        ("/src/a4", "c4"),
        ("/src/b1", "legacy"),
    ]
    assert [r.source_path for r in cut] == ["/src/a1", "/src/a3"]
    assert [r.source_path for r in middle] == ["/src/a1", "/src/a3"]
    assert [r.source_path for r in tail] == ["/src/a4"]
    assert beyond == []
    # The files without a record are still the batch's to copy.
    again = await source.load_batch(first)
    assert [job.source_path for job, _ in again] == ["/src/a5"]
