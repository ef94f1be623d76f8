"""Deployment workers that accept data connections from Connect agents that do not listen;
each endpoint's preferred parallelism

Revision ID: 0007_connect_data_peers
Revises: 0006_directory_providers
Create Date: 2026-12-04 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0007_connect_data_peers"
down_revision: str | None = "0006_directory_providers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connect_central_listeners",
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("live_until", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_connect_central_listeners")),
    )
    op.create_index(
        op.f("ix_connect_central_listeners_live_until"),
        "connect_central_listeners",
        ["live_until"],
    )
    with op.batch_alter_table("connect_endpoints") as batch:
        batch.add_column(sa.Column("data_streams", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connect_endpoints") as batch:
        batch.drop_column("data_streams")
    op.drop_index(
        op.f("ix_connect_central_listeners_live_until"), table_name="connect_central_listeners"
    )
    op.drop_table("connect_central_listeners")
