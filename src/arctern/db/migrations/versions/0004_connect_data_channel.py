"""Arctern Connect: where an agent accepts data connections, and its pinned certificate

Revision ID: 0004_connect_data_channel
Revises: 0003_connect_endpoints
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_connect_data_channel"
down_revision: str | None = "0003_connect_endpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connect_endpoints") as batch:
        batch.add_column(sa.Column("data_address", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("data_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connect_endpoints") as batch:
        batch.drop_column("data_fingerprint")
        batch.drop_column("data_address")
