"""Identity providers checked against an LDAP directory: their settings

Revision ID: 0006_directory_providers
Revises: 0005_groups
Create Date: 2026-12-03 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_directory_providers"
down_revision: str | None = "0005_groups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_providers") as batch:
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identity_providers") as batch:
        batch.drop_column("settings")
