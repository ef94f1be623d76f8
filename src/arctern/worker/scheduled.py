"""The worker's clock-driven work: due timer runs and outgoing mail and webhooks.

Both are claimed in the database (``timers.runner``, ``notify.outbox``), so every worker on
every host may look. An idle worker does not poll: it sleeps until the earliest moment
something is due (at most ``MAX_SLEEP``), and wakes at once when a transaction announces a
new or moved timer or a queued message (``SCHEDULE_TOPIC``, also across hosts on
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import func, select

from arctern.context import SCHEDULE_TOPIC, AppContext
from arctern.db.models.timers import OutboxMessage, Timer, TimerRun
from arctern.notify.outbox import send_due
from arctern.timers.runner import PENDING_GRACE, SCHEDULED, run_due_timers

log = logging.getLogger(__name__)

MAX_SLEEP = 60.0


async def next_due(ctx: AppContext) -> datetime | None:
    """The earliest time a timer run, a stalled run or an outgoing message is due."""
    async with ctx.db.session() as session:
        times = [
            await session.scalar(
                select(func.min(Timer.next_run)).where(Timer.status.in_(SCHEDULED))
            ),
            await session.scalar(
                select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.sent.is_(False))
            ),
        ]
        pending = await session.scalar(
            select(func.min(TimerRun.ran_at)).where(TimerRun.state == "pending")
        )
    if pending is not None:
        times.append(pending + PENDING_GRACE)
    found = [t for t in times if t is not None]
    return min(found) if found else None


class ScheduledWork:
    def __init__(self, ctx: AppContext, stopping: asyncio.Event) -> None:
        self.ctx = ctx
        self.stopping = stopping
        self.wake = asyncio.Event()

    async def run(self) -> None:
        self.ctx.db.subscribe(SCHEDULE_TOPIC, self.wake.set)
        try:
            while not self.stopping.is_set():
                self.wake.clear()
                for step in (run_due_timers, send_due):
                    try:
                        await step(self.ctx)
                    except Exception:
                        log.exception("%s failed", step.__name__)
                await self._sleep()
        finally:
            self.ctx.db.unsubscribe(SCHEDULE_TOPIC, self.wake.set)

    async def _sleep(self) -> None:
        floor = self.ctx.settings.scheduler_interval
        try:
            due = await next_due(self.ctx)
        except Exception:
            log.exception("looking for scheduled work failed")
            due = None
        pause = MAX_SLEEP
        if due is not None:
            pause = (due - self.ctx.clock.now()).total_seconds()
        pause = min(max(pause, floor), MAX_SLEEP)
        stop = asyncio.ensure_future(self.stopping.wait())
        wake = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({stop, wake}, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stop, wake):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
