"""Timers (scheduled and recurring transfers) and the outbox of mail and webhooks.

A timer's next run is claimed by moving ``next_run`` forward in the same transaction that
records the run (``arctern.timers.runner``), so several workers on several hosts never fire
one run twice; the run's transfer is submitted with a submission id derived from the run,
so a worker dying between the two is made good by whoever looks next.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from arctern.db.base import Base, BigIntPK, UTCDateTime, new_uuid


class Timer(Base):
    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "status", "next_run"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id"), index=True)
    # The OAuth client the timer was made through (its runs stop if the client is deleted).
    client_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    name: Mapped[str] = mapped_column(String(300))
    timer_type: Mapped[str] = mapped_column(String(20), default="transfer")
    # The transfer document each run submits (without submission_id).
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"type": "once", "datetime"} or {"type": "recurring", "interval_seconds", "start",
    # "end": {"condition": "iterations", "count"} | {"condition": "time", "datetime"}}
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    # new (not run yet), loaded (has run, runs again), paused, inactive (will not run).
    status: Mapped[str] = mapped_column(String(20), default="new")
    inactive_reason: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    next_run: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_ran_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    n_runs: Mapped[int] = mapped_column(Integer, default=0)
    n_errors: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TimerRun(Base):
    """One run of a timer: when, the task it submitted, or why it could not."""

    __tablename__ = "timer_runs"
    __table_args__ = (UniqueConstraint("timer_id", "number"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    timer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("timers.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime())
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submission_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    # pending (claimed, not submitted yet), submitted, failed.
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class OutboxMessage(Base):
    """A message waiting to go out (or gone, kept for the record): a mail for the SMTP
    server, or a webhook POST (``body`` is then the JSON sent, ``headers`` its signature)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(10), default="mail")  # mail, webhook
    recipient: Mapped[str] = mapped_column(Text)  # an address, or the webhook URL
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A sender holds a message until this time (one sender per message, on any host).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
