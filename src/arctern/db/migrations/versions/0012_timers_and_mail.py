"""Timers, their runs, the outbox (mail, webhooks), per-identity task mail and webhook

Revision ID: 0012_timers_and_mail
Revises: 0011_session_authentications
Create Date: 2026-12-04 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0012_timers_and_mail"
down_revision: str | None = "0011_session_authentications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Moment = arctern.db.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "timers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("timer_type", sa.String(length=20), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("inactive_reason", sa.JSON(), nullable=True),
        sa.Column("next_run", Moment(timezone=True), nullable=True),
        sa.Column("last_ran_at", Moment(timezone=True), nullable=True),
        sa.Column("n_runs", sa.Integer(), nullable=False),
        sa.Column("n_errors", sa.Integer(), nullable=False),
        sa.Column("submitted_at", Moment(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["identities.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_timers_owner_id", "timers", ["owner_id"])
    op.create_index("ix_timers_due", "timers", ["status", "next_run"])
    op.create_table(
        "timer_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("timer_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("scheduled_for", Moment(timezone=True), nullable=False),
        sa.Column("ran_at", Moment(timezone=True), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["timer_id"], ["timers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_id"),
        sa.UniqueConstraint("timer_id", "number"),
    )
    op.create_index("ix_timer_runs_timer_id", "timer_runs", ["timer_id"])
    op.create_index("ix_timer_runs_state", "timer_runs", ["state"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("created_at", Moment(timezone=True), nullable=False),
        sa.Column("next_attempt_at", Moment(timezone=True), nullable=False),
        sa.Column("claimed_until", Moment(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["sent", "next_attempt_at"])
    with op.batch_alter_table("identities") as batch:
        batch.add_column(
            sa.Column("task_mail", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("webhook_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("webhook_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
        batch.drop_column("task_mail")
    op.drop_table("outbox")
    op.drop_table("timer_runs")
    op.drop_table("timers")
