"""SIGKILL of ``arctern serve`` in the middle of a large + many-small-files task: the restarted
server resumes the large file from its last persisted chunk and the task succeeds."""

from __future__ import annotations

import asyncio
import hashlib
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
from tests.reliability.conftest import database_url, login, part_files
from tests.support.server import LiveServer

# 512 MiB, sparse except for a distinct 64 KiB random island every 4 MiB: cheap to create on
# a shared disk, yet any misplaced or skipped chunk changes the destination's digest.
BIG_SIZE = 512 << 20
ISLAND_EVERY = 4 << 20
ISLAND = 64 << 10
SMALL_FILES = 5000
CHUNK = 8 << 20  # WorkerConfig.chunk_size
WINDOW = 4 * CHUNK  # parallel_chunks chunks in flight per file
KILL_AFTER = 64 << 20


def make_big(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(BIG_SIZE)
        for offset in range(0, BIG_SIZE, ISLAND_EVERY):
            f.seek(offset)
            f.write(os.urandom(ISLAND))


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


async def _rows(server: LiveServer, task_id: str) -> tuple[list[TaskFile], Task]:
    ctx = AppContext.from_settings(Settings(home=server.home, database_url=database_url(server)))
    try:
        async with ctx.db.session() as session:
            rows = list(
                (
                    await session.scalars(
                        select(TaskFile).where(TaskFile.task_id == uuid.UUID(task_id))
                    )
                ).all()
            )
            task = await session.get(Task, uuid.UUID(task_id))
            assert task is not None
            return rows, task
    finally:
        await ctx.db.dispose()


def rows_of(server: LiveServer, task_id: str) -> tuple[list[TaskFile], Task]:
    return asyncio.run(_rows(server, task_id))


@pytest.mark.slow
def test_sigkill_mid_task_resumes_from_last_chunk(server_factory) -> None:  # type: ignore[no-untyped-def]
    live = server_factory(extra_env={"ARCTERN_LEASE_SECONDS": "3"})
    me = login(live)
    src = me.c1_root / "crash"
    (src / "small").mkdir(parents=True)
    make_big(src / "big.bin")
    for i in range(SMALL_FILES):
        (src / "small" / f"{i:04}.txt").write_bytes(b"%d " % i * (1 + i % 50))
    small_bytes = sum(p.stat().st_size for p in (src / "small").iterdir())

    task_id = me.transfer(
        me.c1, me.c2, [("/crash/", "/crash/", True)], verify_checksum=True, label="crash test"
    )

    # Kill once the large file has a persisted resume point well inside it.
    persisted = 0
    end = time.monotonic() + 120
    while time.monotonic() < end:
        rows, _task = rows_of(live, task_id)
        big = [r for r in rows if r.source_path == "/crash/big.bin"]
        if big and KILL_AFTER <= big[0].bytes_done < BIG_SIZE - WINDOW:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no resume point to kill at: {big}")
    live.kill()
    rows, task_at_kill = rows_of(live, task_id)
    big_row = next(r for r in rows if r.source_path == "/crash/big.bin")
    persisted = big_row.bytes_done
    assert big_row.write_state is not None
    temp = live.home / "demo" / "collection2" / big_row.write_state["temp_path"].lstrip("/")
    on_disk = temp.stat().st_size if temp.exists() else 0
    counted_at_kill = task_at_kill.bytes_transferred
    small_done_at_kill = sum(1 for r in rows if r.state == "done" and "/small/" in r.source_path)
    assert task_at_kill.status == "ACTIVE"

    restart = time.monotonic()
    live.start()
    doc = me.wait(task_id, timeout=240)
    resumed_in = time.monotonic() - restart
    assert doc["status"] == "SUCCEEDED", (doc, live.log()[-3000:])

    # Byte-identical results and no temporary files.
    dst = me.c2_root / "crash"
    assert digest(dst / "big.bin") == digest(src / "big.bin")
    for i in range(SMALL_FILES):
        name = f"{i:04}.txt"
        assert (dst / "small" / name).read_bytes() == (src / "small" / name).read_bytes(), name
    # Temporary names derive from the file records, so files begun after the last progress
    # flush before the kill are found and reused by the restarted worker: nothing is left.
    orphans = part_files(me.c2_root)
    assert orphans == [], orphans
    assert doc["files_transferred"] == SMALL_FILES + 1

    # Re-sent bytes. Counters and resume points are flushed together (once a second), so
    # every byte counted beyond the data's size was sent twice after a persisted resume point:
    # had the large file restarted from 0, that excess would be >= its persisted prefix.
    total = BIG_SIZE + small_bytes
    resent = doc["bytes_transferred"] - total
    # The large file's tail written after its last persisted resume point (up to one flush
    # interval of data plus the chunks in flight) is written again after the restart.
    tail = max(0, on_disk - persisted)
    print(
        f"\nRELIABILITY crash: big={BIG_SIZE >> 20} MiB small={SMALL_FILES} "
        f"persisted_at_kill={persisted >> 20} MiB on_disk_at_kill={on_disk >> 20} MiB "
        f"rewritten_tail={tail >> 20} MiB counted_at_kill={counted_at_kill} "
        f"small_done_at_kill={small_done_at_kill} resent_beyond_resume_points={resent} "
        f"orphans={len(orphans)} restart_to_success={resumed_in:.1f}s"
    )
    assert 0 <= resent <= CHUNK + 4 * 2500, resent
    assert resent < persisted
    rows, _task = rows_of(live, task_id)
    assert {r.state for r in rows if not r.is_directory} == {"done"}
