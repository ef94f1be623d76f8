"""Turns for groups of small files prefer a directory nobody is writing into."""

from __future__ import annotations

import asyncio

import pytest

from arctern.worker.group_slots import GroupSlots


async def run_groups(slots: GroupSlots, directories: list[str]) -> list[tuple[str, ...]]:
    """Start one group per directory, in order; record which directories ran together."""
    running: set[str] = set()
    together: list[tuple[str, ...]] = []
    release: dict[int, asyncio.Event] = {i: asyncio.Event() for i in range(len(directories))}

    async def group(index: int, directory: str) -> None:
        async with slots.turn(directory):
            running.add(f"{index}:{directory}")
            together.append(tuple(sorted(running)))
            await release[index].wait()
            running.discard(f"{index}:{directory}")

    tasks = [asyncio.create_task(group(i, d)) for i, d in enumerate(directories)]
    for index in range(len(directories)):
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        release[index].set()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return together


async def test_a_free_turn_goes_to_another_directory_first() -> None:
    slots = GroupSlots(2)
    together = await run_groups(slots, ["a", "a", "a", "b", "b"])
    # Free turns are never left idle: a's first two groups start together.
    assert together[:2] == [("0:a",), ("0:a", "1:a")]
    # The next turn skips a's third group for b's first one, and the one after that goes
    # to a again rather than to b's second group.
    assert together[2] == ("1:a", "3:b")
    assert together[3] == ("2:a", "3:b")


async def test_one_directory_still_uses_every_turn() -> None:
    slots = GroupSlots(2)
    together = await run_groups(slots, ["a", "a", "a"])
    assert ("0:a", "1:a") in together


async def test_a_cancelled_waiter_gives_nothing_away() -> None:
    slots = GroupSlots(1)
    held = asyncio.Event()
    done = asyncio.Event()

    async def holder() -> None:
        async with slots.turn("a"):
            held.set()
            await done.wait()

    async def waiter() -> None:
        async with slots.turn("b"):
            pass

    first = asyncio.create_task(holder())
    await held.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    done.set()
    await first
    # The turn came back: the next group starts at once.
    async with asyncio.timeout(1):
        async with slots.turn("c"):
            pass
