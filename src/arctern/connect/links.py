"""Data connections to a peer agent: pipelined, and shared by the jobs of a task.

A ``Link`` is one TLS connection that has said hello with a task credential. Requests on it
are pipelined: a call writes its frame at once, even while earlier calls on the link wait
for their answers, and the peer (``dataserver``) answers in order. Across a long link this
keeps the connection's window full instead of idling a round trip per call, and keeps a
warmed-up connection busy instead of opening another that starts in TCP slow start.

A ``LinkPool`` keeps a task's links from one job to the next, under the key of the grant
they were opened with (``link_key``: the task, the collection, the serving endpoint and the
access rules, not the credential's expiry), so a link is only ever used again with the same
authority. At most ``limit`` links are open per key (the endpoint's parallelism); the first
call that finds none opens all of them at once, one set-up time for all (TCP, TLS, the
credential's check by the peer: 0.2-0.4 s across a 50 ms link). A call takes an idle link,
else the least busy one. Links idle for ``idle_seconds`` close: the peer does not hold the
connections of finished tasks for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from arctern.connect.datachannel import ChannelError, read_frame, write_frame

CALL_TIMEOUT = 120.0

Answer = tuple[dict[str, Any], bytes]


class Link:
    """One open data connection; ``call`` may be used by several callers at once."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # Answers not yet read, in the order their requests were written.
        self._answers: deque[asyncio.Future[Answer]] = deque()
        self._receiver: asyncio.Task[None] | None = None
        self.broken: BaseException | None = None
        self.idle_since = time.monotonic()

    @property
    def waiting(self) -> int:
        """Calls written and not yet answered."""
        return len(self._answers)

    @property
    def usable(self) -> bool:
        return self.broken is None and not self.reader.at_eof() and not self.writer.is_closing()

    async def call(
        self, header: dict[str, Any], payload: bytes | memoryview = b"", *, timeout: float
    ) -> Answer:
        """Send one request and wait for its answer. Raises ``ChannelError`` when the
        connection fails (every call waiting on it fails with it); a caller cancelled while
        waiting leaves the link intact (its answer is read and dropped)."""
        if self.broken is not None:
            raise ChannelError(f"the data connection failed earlier: {self.broken}")
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._answers.append(answer)
        if self._receiver is None:
            self._receiver = asyncio.ensure_future(self._receive())
        try:
            # write_frame puts the whole frame in the buffer before its first await, so
            # frames of concurrent calls never interleave and go out in the answers' order.
            await write_frame(self.writer, header, payload)
            return await asyncio.wait_for(asyncio.shield(answer), timeout)
        except TimeoutError:
            self.fail(ChannelError(f"no answer from the peer agent in {timeout:.0f} s"))
            raise ChannelError("no answer from the peer agent") from None
        except OSError as exc:
            self.fail(exc)
            raise ChannelError(str(exc)) from None

    async def _receive(self) -> None:
        try:
            while self._answers:
                answer = await read_frame(self.reader)
                waiter = self._answers.popleft()
                if not waiter.done():
                    waiter.set_result(answer)
                if not self._answers:
                    self.idle_since = time.monotonic()
        except Exception as exc:  # closed, reset, a TLS error, a malformed frame
            self.fail(exc)
        finally:
            self._receiver = None

    def fail(self, reason: BaseException) -> None:
        """The connection is unusable: every waiting call fails, and it is closed."""
        if self.broken is None:
            self.broken = reason
        while self._answers:
            waiter = self._answers.popleft()
            if not waiter.done():
                waiter.set_exception(ChannelError(f"the data connection failed: {reason}"))
        self.writer.close()

    async def close(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
        self.fail(ChannelError("closed"))
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


class LinkPool:
    """A task's data connections, kept from one job to the next (see the module's text)."""

    def __init__(self, idle_seconds: float = 3.0) -> None:
        self.idle_seconds = idle_seconds
        self._links: dict[str, list[Link]] = {}
        self._opening: dict[str, set[asyncio.Task[Link]]] = {}
        self._failure: dict[str, BaseException] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def links(self, key: str) -> list[Link]:
        """The usable links under ``key`` (those that are not are closed and dropped)."""
        links = self._links.get(key, [])
        usable = [link for link in links if link.usable]
        for link in links:
            if not link.usable:
                link.writer.close()
        if usable:
            self._links[key] = usable
        else:
            self._links.pop(key, None)
        return usable

    async def acquire(
        self, key: str, open_link: Callable[[], Awaitable[Link]], *, limit: int
    ) -> Link:
        """An idle link under ``key``, else (while fewer than ``limit`` are open) opens up
        to ``limit`` and returns the least busy open one, or waits for the first that
        comes up. Raises what opening failed with, when no link could be opened."""
        started = False  # openings are started once per call: a refusal is not retried here
        while True:
            links = self.links(key)
            opening = self._opening.get(key, set())
            free = [link for link in links if link.waiting == 0]
            if not free and not started and len(links) + len(opening) < limit:
                started = True
                self._failure.pop(key, None)
                opening = self._opening.setdefault(key, set())
                for _ in range(limit - len(links) - len(opening)):
                    task = asyncio.ensure_future(open_link())
                    task.add_done_callback(functools.partial(self._opened, key))
                    opening.add(task)
            if free:
                return free[0]
            if links:
                return min(links, key=lambda link: link.waiting)
            if not opening:
                failure = self._failure.get(key)  # every caller waiting for it sees it
                raise failure if failure is not None else ChannelError("no data connection")
            # asyncio.wait does not cancel the openings if this caller is cancelled.
            await asyncio.wait(set(opening), return_when=asyncio.FIRST_COMPLETED)

    def _opened(self, key: str, task: asyncio.Task[Link]) -> None:
        opening = self._opening.get(key)
        if opening is not None:
            opening.discard(task)
            if not opening:
                del self._opening[key]
        if task.cancelled():
            return
        failure = task.exception()
        if failure is not None:
            self._failure[key] = failure
            return
        link = task.result()
        link.idle_since = time.monotonic()
        self._links.setdefault(key, []).append(link)
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self.idle_seconds, self._swept)

    def _swept(self) -> None:
        self._sweep = None
        self.expire()
        if self._links:
            self._sweep = asyncio.get_running_loop().call_later(self.idle_seconds, self._swept)

    def expire(self) -> None:
        """Close the links idle for ``idle_seconds`` or more."""
        limit = time.monotonic() - self.idle_seconds
        for key in list(self._links):
            for link in self._links[key]:
                if link.waiting == 0 and link.idle_since <= limit:
                    link.fail(ChannelError("idle"))
            self.links(key)
        # A failure is kept for the calls that waited on the openings; those have seen it.
        for key in [key for key in self._failure if key not in self._opening]:
            del self._failure[key]

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        opening = [task for tasks in self._opening.values() for task in tasks]
        self._opening.clear()
        for task in opening:
            task.cancel()
        links = [link for links in self._links.values() for link in links]
        self._links.clear()
        for task in opening:
            with contextlib.suppress(BaseException):
                links.append(await task)
        for link in links:
            await link.close()
