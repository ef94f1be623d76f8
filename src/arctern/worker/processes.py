"""Helper processes for the engine's blocking work (``arctern.engine.offload.Offload``).

Copying a group of small local files is a tight loop of system calls. In a thread of the
worker process every call releases the GIL and must win it back from the event loop, which
is busy planning, flushing progress and serving the API; in a helper process it has a GIL of
its own and the worker's two jobs run on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


class ProcessOffload:
    """Runs calls in up to ``processes`` helper processes, started on first use.

    Helpers are spawned (never forked from a threaded event loop) and exit by themselves
    when the worker process goes away, even when it was killed.
    """

    def __init__(self, processes: int) -> None:
        self.processes = max(1, processes)
        self._executor: ProcessPoolExecutor | None = None

    def _started(self) -> ProcessPoolExecutor:
        executor = self._executor
        if executor is None:
            executor = self._executor = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_helper,
                initargs=(os.getpid(),),
            )
        return executor

    def warm(self) -> None:
        """Start the helpers now, if they are not running: a spawned helper takes 0.15 to
        0.3 s to be ready (``_start_helper``), which the first group of a transfer would
        otherwise wait for. Returns at once."""
        if self._executor is not None:
            return
        executor = self._started()
        with contextlib.suppress(RuntimeError):  # shut down meanwhile
            for _ in range(self.processes):
                executor.submit(_ready)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        executor = self._started()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))
        except BrokenProcessPool:
            # A helper died (killed, out of memory): start afresh next time.
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise

    def shutdown(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _ready() -> None:
    """Nothing: submitting it makes the pool start its helpers (``_start_helper``)."""


def _start_helper(parent: int) -> None:
    """In a new helper, before its first call: tie it to the worker process, import what
    copying groups of small files needs, and settle its heap as the worker's (a helper
    allocates per file too)."""
    _exit_with_parent(parent)
    import arctern.engine.local  # noqa: F401
    from arctern.heap import settle_heap

    settle_heap()


def _exit_with_parent(parent: int) -> None:
    """In a helper: leave as soon as the worker process that started it is gone.

    A helper outliving a killed worker could still be copying when the restarted worker
    copies the same file again, so Linux kills it with the parent (``PR_SET_PDEATHSIG``);
    a watchdog thread covers other platforms and a parent that died before that was set.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="arctern-parent-watch", daemon=True).start()
