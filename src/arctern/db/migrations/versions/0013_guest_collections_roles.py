"""Guest collections (a mapped collection's folder, shared by its creator), endpoint roles,
and tasks held by an endpoint administrator

Revision ID: 0013_guest_collections_roles
Revises: 0012_timers_and_mail
Create Date: 2026-12-04 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0013_guest_collections_roles"
down_revision: str | None = "0012_timers_and_mail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("mapped_collection_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("guest_base_path", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("deleted_at", arctern.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_collections_mapped_collection_id", ["mapped_collection_id"])
        batch.create_foreign_key(
            "fk_collections_mapped_collection_id",
            "collections",
            ["mapped_collection_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("admin_pause_message", sa.Text(), nullable=True))
    op.create_table(
        "endpoint_roles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("principal_type", sa.String(length=20), nullable=False),
        sa.Column("principal", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.Column("created_at", arctern.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_endpoint_roles_target", "endpoint_roles", ["target_id"])


def downgrade() -> None:
    op.drop_table("endpoint_roles")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("admin_pause_message")
    with op.batch_alter_table("collections") as batch:
        batch.drop_constraint("fk_collections_mapped_collection_id", type_="foreignkey")
        batch.drop_index("ix_collections_mapped_collection_id")
        batch.drop_column("deleted_at")
        batch.drop_column("guest_base_path")
        batch.drop_column("mapped_collection_id")
