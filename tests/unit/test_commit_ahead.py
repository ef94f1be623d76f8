"""The planner commits one batch of entries while it walks the next (``_CommitAhead``):
commits stay in order, one at a time, and a failed commit stops the walk."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from arctern.worker.executor import _CommitAhead
from arctern.worker.source import PlanCommit


def commit(index: int) -> PlanCommit:
    return PlanCommit(index, 0, final=False)


async def test_commits_run_one_at_a_time_in_order_while_the_caller_goes_on() -> None:
    events: list[str] = []
    gates = {i: asyncio.Event() for i in range(3)}

    async def send(c: PlanCommit) -> None:
        events.append(f"start {c.item_index}")
        await gates[c.item_index].wait()
        events.append(f"end {c.item_index}")

    commits = _CommitAhead(send)
    await commits.send(commit(0))
    await asyncio.sleep(0)
    events.append("walking")  # the caller goes on while commit 0 is in flight
    second = asyncio.create_task(commits.send(commit(1)))
    await asyncio.sleep(0.01)
    assert events == ["start 0", "walking"]  # commit 1 waits for commit 0
    gates[0].set()
    await second
    await asyncio.sleep(0)
    assert events == ["start 0", "walking", "end 0", "start 1"]
    gates[1].set()
    await commits.wait()
    assert events[-1] == "end 1"


async def test_a_failed_commit_is_raised_before_the_next_one_starts() -> None:
    sent: list[int] = []

    async def send(c: PlanCommit) -> None:
        sent.append(c.item_index)
        if c.item_index == 0:
            raise RuntimeError("database gone")

    commits = _CommitAhead(send)
    await commits.send(commit(0))
    with pytest.raises(RuntimeError, match="database gone"):
        await commits.send(commit(1))
    assert sent == [0]


async def test_settle_waits_for_the_commit_in_flight_and_keeps_the_walks_error() -> None:
    finished = asyncio.Event()

    async def send(c: PlanCommit) -> None:
        await asyncio.sleep(0.01)
        finished.set()
        raise RuntimeError("also failed")

    commits = _CommitAhead(send)
    await commits.send(commit(0))
    await commits.settle()  # does not raise: the caller re-raises its own error
    assert finished.is_set()


async def test_a_commit_carries_what_its_entries_counted() -> None:
    """The counts of a commit's entries travel in the commit itself (``PlanJob`` sends them
    in the commit's own report, never in a heartbeat that might reach the deployment after
    the final commit handed the plan in, and be dropped there)."""
    from arctern.engine.options import TransferOptions
    from arctern.worker.executor import WorkerConfig, _PlanBuffer
    from arctern.worker.progress import TaskProgress

    buffer = _PlanBuffer(TransferOptions())
    buffer.counts["directories"] = 3
    buffer.add_error("/a", "/b", "PERMISSION_DENIED", "denied", False, source_side=True)
    counted = TaskProgress(uuid.uuid4(), lambda: None)
    commit = buffer.take(WorkerConfig("w", timedelta(seconds=30)), counted, 1, 0, True)
    assert commit.counted is counted
    assert counted.deltas["directories"] == 3 and counted.deltas["subtasks_failed"] == 1
    assert [event.code for event in counted.events] == ["PERMISSION_DENIED"]
    assert buffer.counts["directories"] == 0  # the next commit starts from nothing
