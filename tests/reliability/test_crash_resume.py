"""SIGKILL of ``arctern serve`` in the middle of a large + many-small-files task: the restarted
server resumes the large file from its last persisted chunk and the task succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.transfer import Task
from arctern.db.models.work import TaskFile
from arctern.worker import batch_files
from arctern.worker.executor import WorkerConfig
from tests.reliability.conftest import Session, database_url, login, part_files
from tests.support.server import LiveServer

# 2 GiB, sparse except for a distinct 64 KiB random island every 4 MiB: cheap to create on a
# shared disk (and the holes read as zeros at page-cache speed), yet any misplaced or skipped
# chunk changes the destination's content.
BIG_SIZE = 2 << 30
ISLAND_EVERY = 4 << 20
ISLAND = 64 << 10
SMALL_FILES = 5000
# The server's workers run with WorkerConfig's defaults (the pool sets neither): a large file
# is copied in windows of ``parallel_chunks`` chunks, each window's resume point made durable
# before the next window starts.
CHUNK = WorkerConfig.chunk_size
PARALLEL = WorkerConfig.parallel_chunks
WINDOW = CHUNK * PARALLEL
RESENT_LIMIT = CHUNK * (PARALLEL + 1)  # the issue: one chunk plus what was in flight
KILL_AFTER = BIG_SIZE // 2  # the fallback kill point should the small files be done first


def make_big(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(BIG_SIZE)
        for offset in range(0, BIG_SIZE, ISLAND_EVERY):
            f.seek(offset)
            f.write(os.urandom(ISLAND))


def temp_size(directory: Path) -> int:
    """Size of the largest temporary file directly in ``directory`` (the large file's)."""
    sizes = [0]
    for path in directory.glob(".arctern-*"):
        with contextlib.suppress(FileNotFoundError):
            sizes.append(path.stat().st_size)
    return max(sizes)


def same_content(a: Path, b: Path) -> bool:
    """Byte-for-byte comparison (8 MiB blocks; cheaper than hashing both)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while block := fa.read(8 << 20):
            if block != fb.read(len(block)):
                return False
    return True


async def _rows(server: LiveServer, task_id: str) -> tuple[list[TaskFile], Task]:
    ctx = AppContext.from_settings(Settings(home=server.home, database_url=database_url(server)))
    try:
        async with ctx.db.session() as session:
            rows = await batch_files.recorded_files(session, uuid.UUID(task_id))
            task = await session.get(Task, uuid.UUID(task_id))
            assert task is not None
            return rows, task
    finally:
        await ctx.db.dispose()


def rows_of(server: LiveServer, task_id: str) -> tuple[list[TaskFile], Task]:
    return asyncio.run(_rows(server, task_id))


async def _progress(server: LiveServer, task_id: str) -> tuple[int, int]:
    ctx = AppContext.from_settings(Settings(home=server.home, database_url=database_url(server)))
    try:
        async with ctx.db.session() as session:
            mine = TaskFile.task_id == uuid.UUID(task_id)
            big = await session.scalar(
                select(TaskFile.bytes_done).where(mine, TaskFile.source_path == "/crash/big.bin")
            )
            recorded = await batch_files.recorded_files(session, uuid.UUID(task_id))
            small = sum(
                row.state == "done" and row.source_path.startswith("/crash/small/")
                for row in recorded
            )
            return big or 0, small
    finally:
        await ctx.db.dispose()


def progress_of(server: LiveServer, task_id: str) -> tuple[int, int]:
    """The large file's persisted resume point and the number of small files done."""
    return asyncio.run(_progress(server, task_id))


@pytest.mark.slow
def test_sigkill_mid_task_resumes_from_last_chunk(server_factory) -> None:  # type: ignore[no-untyped-def]
    live = server_factory(extra_env={"ARCTERN_LEASE_SECONDS": "3"})
    me = login(live)
    src = me.c1_root / "crash"
    dst = me.c2_root / "crash"
    (src / "small").mkdir(parents=True)
    try:
        make_big(src / "big.bin")
        for i in range(SMALL_FILES):
            (src / "small" / f"{i:04}.txt").write_bytes(b"%d " % i * (1 + i % 50))
        small_bytes = sum(p.stat().st_size for p in (src / "small").iterdir())
        _crash_and_resume(live, me, src, dst, small_bytes)
    finally:
        # Two GiB of destination data (and the sparse source) need not outlive the test.
        for big in (src / "big.bin", dst / "big.bin"):
            big.unlink(missing_ok=True)


def _crash_and_resume(
    live: LiveServer, me: Session, src: Path, dst: Path, small_bytes: int
) -> None:
    task_id = me.transfer(
        me.c1, me.c2, [("/crash/", "/crash/", True)], verify_checksum=True, label="crash test"
    )

    # Kill while both are under way: the large file well inside its copy, small files being
    # copied (should those be all done first, once the large file is KILL_AFTER in). The
    # moment is taken from the large file's temporary file on disk, not from its persisted
    # resume point: killing just after a progress flush was seen would hide a resume point
    # that lags behind the data.
    written = small_done = 0
    end = time.monotonic() + 120
    while time.monotonic() < end:
        written = temp_size(dst)
        _big_done, small_done = progress_of(live, task_id)
        if 2 * WINDOW <= written < BIG_SIZE - 2 * WINDOW and (
            0 < small_done < SMALL_FILES or written >= KILL_AFTER
        ):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"no point to kill at: {written} B written, {small_done} small files done")
    # Then wait for the large file's persisted point to move (a flush landed) and kill 0.3 s
    # later, just before the next periodic progress flush (every 0.5 s): a resume point written
    # only by those would lag 0.3 s of copying behind the data (> 40 MiB here).
    seen = progress_of(live, task_id)[0]
    while progress_of(live, task_id)[0] == seen and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.3)
    live.kill()
    rows, task_at_kill = rows_of(live, task_id)
    big_row = next(r for r in rows if r.source_path == "/crash/big.bin")
    persisted = big_row.bytes_done
    assert big_row.write_state is not None
    temp = live.home / "demo" / "collection2" / big_row.write_state["temp_path"].lstrip("/")
    # Bytes of the large file written past its persisted resume point: the restarted worker
    # writes them again (the file's chunks are written at their offsets, so the temporary
    # file's size is the end of the furthest chunk written).
    on_disk = temp.stat().st_size
    rewritten = on_disk - persisted
    counted_at_kill = task_at_kill.bytes_transferred
    small_done_at_kill = sum(1 for r in rows if r.state == "done" and "/small/" in r.source_path)
    assert task_at_kill.status == "ACTIVE"

    restart = time.monotonic()
    live.start()
    doc = me.wait(task_id, timeout=240)
    resumed_in = time.monotonic() - restart
    assert doc["status"] == "SUCCEEDED", (doc, live.log()[-3000:])

    # Byte-identical results and no temporary files.
    assert same_content(src / "big.bin", dst / "big.bin")
    for i in range(SMALL_FILES):
        name = f"{i:04}.txt"
        assert (dst / "small" / name).read_bytes() == (src / "small" / name).read_bytes(), name
    # Temporary names derive from the file records, so files begun after the last progress
    # flush before the kill are found and reused by the restarted worker: nothing is left.
    orphans = part_files(me.c2_root)
    assert orphans == [], orphans
    assert doc["files_transferred"] == SMALL_FILES + 1

    # Counters and resume points are persisted together (a large file's with each window,
    # the rest once a second), so bytes counted beyond the data's size were sent twice after
    # a persisted resume point: small files in flight. Had the large file restarted from 0,
    # the excess would be >= its persisted prefix.
    total = BIG_SIZE + small_bytes
    counted_twice = doc["bytes_transferred"] - total
    print(
        f"\nRELIABILITY crash: big={BIG_SIZE >> 20} MiB small={SMALL_FILES} "
        f"chunk={CHUNK >> 20} MiB x {PARALLEL} in flight "
        f"persisted_at_kill={persisted / 2**20:.0f} MiB on_disk_at_kill={on_disk / 2**20:.1f} MiB "
        f"large_file_resent={rewritten} B ({rewritten / 2**20:.1f} MiB, limit "
        f"{RESENT_LIMIT >> 20} MiB) prefix_reread_for_checksum={persisted >> 20} MiB "
        f"counted_at_kill={counted_at_kill} small_done_at_kill={small_done_at_kill} "
        f"small_bytes_counted_twice={counted_twice} orphans={len(orphans)} "
        f"restart_to_success={resumed_in:.1f}s"
    )
    # The large file continued from its last persisted chunk: what it sends again is at most
    # the window that was in flight, within one chunk plus the chunks in flight.
    assert 0 <= rewritten <= RESENT_LIMIT, rewritten
    assert 0 <= counted_twice <= CHUNK, counted_twice
    assert counted_twice < persisted
    rows, _task = rows_of(live, task_id)
    assert {r.state for r in rows if not r.is_directory} == {"done"}
