"""Session authentications: every identity a login session authenticated, with its time

Revision ID: 0011_session_authentications
Revises: 0010_identity_sets
Create Date: 2026-12-04 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_session_authentications"
down_revision: str | None = "0010_identity_sets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("auth_web_sessions", "oauth_authorization_codes", "oauth_tokens")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("authentications", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("authentications")
