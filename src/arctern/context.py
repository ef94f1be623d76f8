"""The dependencies every service is built from, created once by the composition root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from arctern.clock import Clock
from arctern.config import Settings
from arctern.db.engine import Database
from arctern.ratelimit import RateLimiter


class ChangeSignal:
    """Wakes this process's coroutines waiting for a change to some shared rows.

    Changes committed by other processes are not announced: waiters also re-read the
    database at their own poll interval, so the signal only shortens the wait.
    """

    def __init__(self) -> None:
        self._events: set[asyncio.Event] = set()

    def notify(self) -> None:
        for event in list(self._events):
            event.set()

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[asyncio.Event]:
        """An event set by every ``notify`` from now on (register before reading, so a
        change between the read and the wait is not missed)."""
        event = asyncio.Event()
        self._events.add(event)
        try:
            yield event
        finally:
            self._events.discard(event)


# Topic marked (``db.mark_changed``) by transactions that add or answer relayed operations.
AGENT_REQUESTS_TOPIC = "connect.agent_requests"
# Topic marked by transactions that store work a worker can claim (a task, batches, a lease
# handed back): idle workers claim at once instead of at their next poll.
NEW_WORK_TOPIC = "work.new"
# Topic marked by transactions that ask a task to stop (cancels): the workers' reaper
# finalizes it at once if no worker holds it.
TASKS_STOPPING_TOPIC = "tasks.stopping"
# Topic marked by transactions that add or move a timer's next run or queue outgoing mail or
# webhooks: the workers' scheduled work (``worker/scheduled.py``) looks at once.
SCHEDULE_TOPIC = "schedule.changed"


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    # Anonymous globus-cli template clients per client address (in-process counts).
    template_clients: RateLimiter | None = None
    # Identities provisioned through the identities API per user (in-process counts).
    identity_provisions: RateLimiter | None = None
    agent_requests: ChangeSignal = field(default_factory=ChangeSignal)
    # New claimable work (``NEW_WORK_TOPIC``): agents' held polls pass it on (``relay.take``).
    new_work: ChangeSignal = field(default_factory=ChangeSignal)

    def __post_init__(self) -> None:
        self.db.subscribe(AGENT_REQUESTS_TOPIC, self.agent_requests.notify)
        self.db.subscribe(NEW_WORK_TOPIC, self.new_work.notify)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        clock = Clock(settings.clock_offset_file)
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            clock=clock,
            template_clients=RateLimiter(
                settings.template_clients_per_address_per_hour, 3600.0, clock.timestamp
            ),
            identity_provisions=RateLimiter(
                settings.identity_provisions_per_hour, 3600.0, clock.timestamp
            ),
        )
