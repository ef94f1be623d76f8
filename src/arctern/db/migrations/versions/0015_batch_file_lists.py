"""A work batch lists its planned files; a file gets its row when it has an outcome

Revision ID: 0015_batch_file_lists
Revises: 0014_pause_rules_gateways
Create Date: 2026-12-05 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_batch_file_lists"
down_revision: str | None = "0014_pause_rules_gateways"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ``arctern.worker.batch_files.FILE_ID_BITS``, as it was when this revision was written.
FILE_ID_BITS = 20

_batches = sa.table(
    "work_batches",
    sa.column("id", sa.BigInteger()),
    sa.column("state", sa.String()),
    sa.column("file_count", sa.Integer()),
    sa.column("files", sa.JSON()),
)
_files = sa.table(
    "task_files",
    sa.column("id", sa.BigInteger()),
    sa.column("batch_id", sa.BigInteger()),
    sa.column("source_path", sa.Text()),
    sa.column("destination_path", sa.Text()),
    sa.column("size", sa.BigInteger()),
    sa.column("mtime", sa.Float()),
    sa.column("state", sa.String()),
    sa.column("external_checksum", sa.String()),
    sa.column("checksum_algorithm", sa.String()),
    sa.column("write_state", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("work_batches") as batch:
        batch.add_column(sa.Column("files", sa.JSON(), nullable=True))
    # Batches still to copy: their pending rows become the batch's list. A row holding a
    # large file's resume point moves to the id its place in the list gives it; the others
    # go (a file gets its row again when it has an outcome). Rows of files done keep their
    # ids; a batch's list numbers its files from its own id up, far above them.
    bind = op.get_bind()
    pending_batches = bind.execute(
        sa.select(_batches.c.id).where(_batches.c.state == "pending")
    ).scalars()
    for batch_id in list(pending_batches):
        rows = bind.execute(
            sa.select(_files)
            .where(_files.c.batch_id == batch_id, _files.c.state == "pending")
            .order_by(_files.c.id)
        ).all()
        listed = [
            [
                row.source_path,
                row.destination_path,
                row.size,
                row.mtime,
                row.external_checksum,
                row.checksum_algorithm,
            ]
            for row in rows
        ]
        for index, row in enumerate(rows):
            if row.write_state:
                bind.execute(
                    sa.update(_files)
                    .where(_files.c.id == row.id)
                    .values(id=(batch_id << FILE_ID_BITS) | index)
                )
            else:
                bind.execute(sa.delete(_files).where(_files.c.id == row.id))
        # The batch's files done already keep their rows, outside its list.
        bind.execute(
            sa.update(_files)
            .where(_files.c.batch_id == batch_id, _files.c.state != "pending")
            .values(batch_id=None)
        )
        bind.execute(
            sa.update(_batches)
            .where(_batches.c.id == batch_id)
            .values(files=listed, file_count=len(listed))
        )


def downgrade() -> None:
    with op.batch_alter_table("work_batches") as batch:
        batch.drop_column("files")
