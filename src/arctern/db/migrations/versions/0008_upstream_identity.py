"""Identity providers that can be disabled; identities bound to an OpenID provider's subject

Revision ID: 0008_upstream_identity
Revises: 0007_connect_data_peers
Create Date: 2026-12-04 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_upstream_identity"
down_revision: str | None = "0007_connect_data_peers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_providers") as batch:
        batch.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("external_subject", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("external_subject")
    with op.batch_alter_table("identity_providers") as batch:
        batch.drop_column("enabled")
