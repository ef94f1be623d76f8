"""Where the engine runs blocking work that must not hold up the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Offload(Protocol):
    """Runs a blocking, picklable call somewhere other than the event loop's thread."""

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...

    def warm(self) -> None:
        """Get ready for calls soon to come (start helpers), without waiting."""


class ThreadOffload:
    """A worker thread of the event loop's default executor (shares the GIL)."""

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    def warm(self) -> None:
        """Nothing to start: the default executor's threads are cheap."""
