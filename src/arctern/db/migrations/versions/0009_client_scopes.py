"""Scopes that clients define for themselves, with their dependent scopes

Revision ID: 0009_client_scopes
Revises: 0008_upstream_identity
Create Date: 2026-12-04 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0009_client_scopes"
down_revision: str | None = "0008_upstream_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_client_scopes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("suffix", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("advertised", sa.Boolean(), nullable=False),
        sa.Column("allows_refresh_token", sa.Boolean(), nullable=False),
        sa.Column("required_domains", sa.JSON(), nullable=False),
        sa.Column("dependent_scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.id"],
            name=op.f("fk_auth_client_scopes_client_id_oauth_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_client_scopes")),
        sa.UniqueConstraint("client_id", "suffix", name=op.f("uq_auth_client_scopes_client_id")),
    )
    op.create_index(op.f("ix_auth_client_scopes_client_id"), "auth_client_scopes", ["client_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_client_scopes_client_id"), table_name="auth_client_scopes")
    op.drop_table("auth_client_scopes")
