"""Where a worker pool obtains its work: the seam between the engine and its queue.

The pool asks its work source for the next leased job and hands leases back through it when
it drains. ``DatabaseWorkSource`` is the queue as ``arctern worker`` and the pool embedded in
``serve`` see it: lease statements on the shared database, restricted to the work their
storage can reach (``leases.Scope``). A Connect agent, which never sees the database, is meant
to obtain the same jobs through an HTTP implementation of this protocol.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from arctern.context import AppContext
from arctern.worker import leases
from arctern.worker.leases import Claim


class WorkSource(Protocol):
    async def claim(self) -> Claim | None:
        """The next job leased to this worker (planning first), or None when there is none."""

    async def release(self, claim: Claim) -> None:
        """Hand a lease back at once (drain): another worker need not wait for its expiry."""


class DatabaseWorkSource:
    """Leases from the shared database, within ``scope``."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        worker: str,
        lease: timedelta,
        limits: leases.Limits,
        scope: leases.Scope = leases.CENTRAL,
    ) -> None:
        self.ctx = ctx
        self.worker = worker
        self.lease = lease
        self.limits = limits
        self.scope = scope

    async def claim(self) -> Claim | None:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            await leases.adopt_new_tasks(session, now)
        async with self.ctx.db.session() as session:
            claim = await leases.claim_plan(session, self.worker, now, self.lease, self.scope)
            if claim is None:
                claim = await leases.claim_batch(
                    session, self.worker, now, self.lease, self.limits, self.scope
                )
        return claim

    async def release(self, claim: Claim) -> None:
        async with self.ctx.db.session() as session:
            await leases.release(session, claim, self.worker)
