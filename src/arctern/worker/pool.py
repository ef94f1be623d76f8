"""A pool of worker loops inside one process (embedded in serve, or ``arctern worker``)."""

from __future__ import annotations

from arctern.context import AppContext


class WorkerPool:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
