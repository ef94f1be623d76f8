"""server-side web sessions and atomic login counters

Browser logins move from a stateless signed cookie to ``auth_web_sessions`` (so logout, a
password change and disabling a user end the session on every API host), and the per-minute
login throttle moves from one row per failure (counted, then hashed, then recorded: racy) to
one counter per key and minute that an upsert increments atomically before hashing.

Revision ID: 0002_sessions_login_limits
Revises: 0001_initial
Create Date: 2026-12-03 07:02:19.769684
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0002_sessions_login_limits"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "auth_login_attempts",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=420), nullable=False),
        sa.Column("window_start", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_login_attempts")),
        sa.UniqueConstraint("key", "window_start", name=op.f("uq_auth_login_attempts_key")),
    )
    with op.batch_alter_table("auth_login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_login_attempts_window_start"), ["window_start"], unique=False
        )

    op.create_table(
        "auth_web_sessions",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("identity_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_auth_web_sessions_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_web_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_auth_web_sessions_session_hash")),
    )
    with op.batch_alter_table("auth_web_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_auth_web_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_auth_web_sessions_identity_id"), ["identity_id"], unique=False
        )

    # Failure rows only served the old one-minute window: nothing worth carrying over.
    with op.batch_alter_table("auth_login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_login_failures_key_time")
    op.drop_table("auth_login_failures")


def downgrade() -> None:
    op.create_table(
        "auth_login_failures",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=300), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("time", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_login_failures")),
    )
    with op.batch_alter_table("auth_login_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_auth_login_failures_key_time", ["username", "address", "time"], unique=False
        )

    with op.batch_alter_table("auth_web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_web_sessions_identity_id"))
        batch_op.drop_index(batch_op.f("ix_auth_web_sessions_expires_at"))
    op.drop_table("auth_web_sessions")

    with op.batch_alter_table("auth_login_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_login_attempts_window_start"))
    op.drop_table("auth_login_attempts")
