"""Identity sets: identities linked into one person's set

Revision ID: 0010_identity_sets
Revises: 0009_client_scopes
Create Date: 2026-12-04 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_identity_sets"
down_revision: str | None = "0009_client_scopes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("set_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_identities_set_id", ["set_id"])


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_index("ix_identities_set_id")
        batch.drop_column("set_id")
