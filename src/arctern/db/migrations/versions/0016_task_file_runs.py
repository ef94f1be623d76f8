"""Files copied successfully are recorded as runs, one row per run instead of one per file

Revision ID: 0016_task_file_runs
Revises: 0015_batch_file_lists
Create Date: 2026-12-06 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import arctern.db.base

revision: str = "0016_task_file_runs"
down_revision: str | None = "0015_batch_file_lists"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows of files done before this revision stay as they are: readers take both.
    op.create_table(
        "task_file_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("checksum_algorithm", sa.String(length=40), nullable=True),
        sa.Column("checksums", sa.JSON(), nullable=False),
        sa.Column("done_time", arctern.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["work_batches.id"],
            name=op.f("fk_task_file_runs_batch_id_work_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_file_runs_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_file_runs")),
    )
    with op.batch_alter_table("task_file_runs", schema=None) as batch_op:
        batch_op.create_index("ix_task_file_runs_task", ["task_id", "id"], unique=False)
        batch_op.create_index("ix_task_file_runs_batch", ["batch_id"], unique=False)


def downgrade() -> None:
    op.drop_table("task_file_runs")
