"""Firing due timers, from every worker, exactly once per scheduled run.

A worker claims a run by moving the timer's ``next_run`` past it with a conditional UPDATE
(``WHERE next_run = <the time it read>``) in the transaction that records the run: of
several workers on several hosts, one UPDATE matches and the others change nothing. The
run's transfer is then submitted with a submission id made from the run, so a worker that
dies between the two leaves a ``pending`` run that the next look submits, once (submission
ids are idempotent). A server down across a scheduled time fires that run when it is back;
several missed intervals fire once, then the schedule goes on from now.

A run acts for the timer's owner with the access the owner has when it runs: the same
checks as a submission through the Transfer API. A run the owner can no longer do is
recorded with the reason (``globus timer show`` lists it, the timer counts an error) and
the timer keeps its schedule (access may come back); an owner who can no longer log in
makes the timer inactive. Nothing needs storing to act for the owner: the timer service is
part of the deployment and checks the owner's access at run time, as a token would.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from arctern.context import AppContext
from arctern.db.models.auth import Identity
from arctern.db.models.timers import Timer, TimerRun
from arctern.errors import ArcternError
from arctern.timers.schedule import Schedule
from arctern.transfer.services.common import Caller
from arctern.transfer.services.submission import submit_transfer

log = logging.getLogger(__name__)

SCHEDULED = ("new", "loaded")
# A run still pending this long after it was claimed lost its worker: submit it again.
PENDING_GRACE = timedelta(seconds=30)
BATCH = 20


async def run_due_timers(ctx: AppContext) -> int:
    """Claim and submit the runs that are due; how many runs were handled."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        due = (
            await session.execute(
                select(Timer.id, Timer.next_run)
                .where(Timer.status.in_(SCHEDULED), Timer.next_run <= now)
                .order_by(Timer.next_run)
                .limit(BATCH)
            )
        ).all()
        stuck = list(
            await session.scalars(
                select(TimerRun.id)
                .where(TimerRun.state == "pending", TimerRun.ran_at <= now - PENDING_GRACE)
                .limit(BATCH)
            )
        )
    runs = [run for timer_id, at in due if at and (run := await _claim(ctx, timer_id, at, now))]
    for run_id in runs + stuck:
        try:
            await _submit(ctx, run_id)
        except Exception:
            # Left pending: the next look (here or on another host) tries again.
            log.exception("submitting timer run %s failed", run_id)
    return len(runs) + len(stuck)


async def _claim(
    ctx: AppContext, timer_id: uuid.UUID, scheduled: datetime, now: datetime
) -> int | None:
    async with ctx.db.session() as session:
        timer = await session.get(Timer, timer_id)
        if timer is None:
            return None
        number = timer.n_runs + 1
        following = Schedule.of_document(timer.schedule).following(scheduled, number, now)
        values: dict[str, Any] = {
            "next_run": following,
            "n_runs": Timer.n_runs + 1,
            "last_ran_at": now,
            "status": "loaded" if following is not None else "inactive",
        }
        if following is None:
            values["inactive_reason"] = {
                "cause": "completed",
                "detail": "The schedule is over: the timer ran its last run.",
            }
        claimed = await session.execute(
            update(Timer)
            .where(
                Timer.id == timer_id,
                Timer.next_run == scheduled,
                Timer.status.in_(SCHEDULED),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None  # another worker ran it, or it was paused meanwhile
        run = TimerRun(
            timer_id=timer_id,
            number=number,
            scheduled_for=scheduled,
            ran_at=now,
            submission_id=uuid.uuid5(timer_id, f"run-{number}"),
            state="pending",
        )
        session.add(run)
        await session.flush()
        return run.id


async def _submit(ctx: AppContext, run_id: int) -> None:
    async with ctx.db.session() as session:
        run = await session.get(TimerRun, run_id)
        if run is None or run.state != "pending":
            return
        timer = await session.get(Timer, run.timer_id)
        if timer is None:
            return
        owner = await session.get(Identity, timer.owner_id)
        body = {
            **timer.body,
            "submission_id": str(run.submission_id),
            "label": timer.body.get("label") or f"{timer.name}, run {run.number}"[:128],
        }
        number, timer_id = run.number, timer.id
    if owner is None or not owner.active:
        await _failed(
            ctx,
            run_id,
            "OwnerUnavailable",
            "The timer's owner can no longer log in (the account or its institution was disabled).",
            deactivate=True,
        )
        return
    try:
        submitted = await submit_transfer(ctx, Caller(owner.id, owner.username), body)
    except ArcternError as exc:
        log.info("timer %s run %s refused: %s", timer_id, number, exc.message)
        await _failed(ctx, run_id, exc.code.split(".")[-1], exc.message, deactivate=False)
        return
    async with ctx.db.session() as session:
        await session.execute(
            update(TimerRun)
            .where(TimerRun.id == run_id)
            .values(state="submitted", task_id=submitted.task_id)
        )


async def _failed(
    ctx: AppContext, run_id: int, code: str, message: str, *, deactivate: bool
) -> None:
    async with ctx.db.session() as session:
        run = await session.get(TimerRun, run_id)
        if run is None or run.state != "pending":
            return
        run.state, run.error_code, run.error_message = "failed", code, message
        values: dict[str, Any] = {"n_errors": Timer.n_errors + 1}
        if deactivate:
            values.update(status="inactive", inactive_reason={"cause": "user", "detail": message})
        await session.execute(update(Timer).where(Timer.id == run.timer_id).values(**values))
