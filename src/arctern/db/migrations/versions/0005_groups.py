"""Groups and their memberships (Globus Groups API v2)

Revision ID: 0005_groups
Revises: 0004_connect_data_channel
Create Date: 2026-12-03 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0005_groups"
down_revision: str | None = "0004_connect_data_channel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.String(length=4000), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("members_visibility", sa.String(length=20), nullable=False),
        sa.Column("created_at", arctern.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "group_memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("group_key", sa.String(length=36), nullable=False),
        sa.Column("identity_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("updated", arctern.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "identity_id"),
    )
    op.create_index(
        "ix_group_memberships_identity_status",
        "group_memberships",
        ["identity_id", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_group_memberships_identity_status", table_name="group_memberships")
    op.drop_table("group_memberships")
    op.drop_table("groups")
