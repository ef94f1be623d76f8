"""The standalone ``arctern worker``: runs tasks from a shared database, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.migrate import upgrade
from tests.integration.test_worker import collection, owner, submit, wait_done

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def shared_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def ctx(tmp_path: Path, shared_url: str) -> AsyncIterator[AppContext]:
    context = AppContext.from_settings(Settings(home=tmp_path / "api", database_url=shared_url))
    yield context
    await context.db.dispose()


async def test_standalone_worker_runs_tasks_and_drains_on_sigterm(
    ctx: AppContext, shared_url: str, tmp_path: Path
) -> None:
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    dst_root.mkdir()
    (src_root / "a.txt").write_bytes(b"from another process")
    who = await owner(ctx)
    src = await collection(ctx, who, "posix", str(src_root))
    dst = await collection(ctx, who, "posix", str(dst_root))
    env = {**os.environ, "ARCTERN_HOME": str(tmp_path / "worker-home")}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "arctern"),
        "worker",
        "--database",
        shared_url,
        "--concurrency",
        "2",
        "--name",
        "standalone-1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        item = [{"source_path": "/a.txt", "destination_path": "/b.txt"}]
        task = await wait_done(ctx, await submit(ctx, who, src, dst, item), timeout=30)
        assert task.status == "SUCCEEDED", task.fatal_error
        assert (dst_root / "b.txt").read_bytes() == b"from another process"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=15)
        text = output.decode()
        assert proc.returncode == 0, text
        assert time.monotonic() - started < 10
        assert "standalone-1" in text and "Worker stopped." in text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
