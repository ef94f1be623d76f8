"""Endpoint administrators' pause rules; storage gateways' path restrictions and users'
own storage credentials

Revision ID: 0014_pause_rules_gateways
Revises: 0013_guest_collections_roles
Create Date: 2026-12-04 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0014_pause_rules_gateways"
down_revision: str | None = "0013_guest_collections_roles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPERATIONS = (
    "pause_ls",
    "pause_mkdir",
    "pause_rename",
    "pause_task_delete",
    "pause_task_transfer_write",
    "pause_task_transfer_read",
)


def upgrade() -> None:
    op.create_table(
        "pause_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("identity_id", sa.Uuid(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("start_time", arctern.db.base.UTCDateTime(timezone=True), nullable=True),
        *(sa.Column(name, sa.Boolean(), nullable=False) for name in OPERATIONS),
        sa.Column("modified_by_id", sa.Uuid(), nullable=False),
        sa.Column("modified_time", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pause_rules_target", "pause_rules", ["target_id"])
    op.create_table(
        "storage_gateways",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("connector", sa.String(length=20), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("restrict_paths", sa.JSON(), nullable=True),
        sa.Column("user_credentials_required", sa.Boolean(), nullable=False),
        sa.Column("modified_time", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_storage_gateways_endpoint_id", "storage_gateways", ["endpoint_id"])
    op.create_table(
        "user_credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("gateway_id", sa.Uuid(), nullable=False),
        sa.Column("identity_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_time", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_user_credentials_gateway_identity",
        "user_credentials",
        ["gateway_id", "identity_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("user_credentials")
    op.drop_table("storage_gateways")
    op.drop_table("pause_rules")
