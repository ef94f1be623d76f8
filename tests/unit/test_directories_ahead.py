"""A plan creates the destination's directories while it walks on (``_DirectoriesAhead``):
up to a limit at once, all of them ended before the next commit, the first error raised
once every one has ended, and those still running stopped when the walk fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from arctern.worker.executor import _DirectoriesAhead


async def test_up_to_the_limit_run_at_once_and_wait_ends_them_all() -> None:
    gate = asyncio.Event()
    running: list[int] = []
    done: list[int] = []

    def mkdir(index: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            running.append(index)
            await gate.wait()
            done.append(index)

        return run

    directories = _DirectoriesAhead(limit=3)
    for index in range(3):
        await directories.start(mkdir(index))  # returns at once: a slot was free
    fourth = asyncio.ensure_future(directories.start(mkdir(3)))
    await asyncio.sleep(0.01)
    assert sorted(running) == [0, 1, 2]
    assert not fourth.done()  # every slot is taken: the walk waits
    gate.set()
    await fourth
    await directories.wait()
    assert sorted(done) == [0, 1, 2, 3]
    await directories.wait()  # nothing left: returns at once


async def test_wait_raises_the_first_error_after_every_operation_ended() -> None:
    finished: list[str] = []

    async def fails() -> None:
        raise RuntimeError("the peer agent went away")

    async def slow() -> None:
        await asyncio.sleep(0.05)
        finished.append("slow")

    directories = _DirectoriesAhead(limit=4)
    await directories.start(fails)
    await directories.start(slow)
    with pytest.raises(RuntimeError, match="went away"):
        await directories.wait()
    assert finished == ["slow"]  # not left running behind the error
    await directories.start(slow)  # the slots of both were given back
    await directories.wait()


async def test_settle_stops_what_still_runs() -> None:
    started = asyncio.Event()
    stopped: list[str] = []

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append("cancelled")
            raise

    directories = _DirectoriesAhead(limit=2)
    await directories.start(forever)
    await started.wait()
    await directories.settle()
    assert stopped == ["cancelled"]
    await directories.wait()  # nothing left behind
