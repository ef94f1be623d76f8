"""Work records the transfer engine owns: per-file state, file batches and leases.

A task is planned into ``TaskFile`` rows grouped into ``WorkBatch`` rows; workers lease a
``TaskPlan`` (to walk the source tree) or a batch (to copy its files), extend the lease by
heartbeat, and persist enough progress that another worker can take over an expired lease.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from arctern.db.base import Base, BigIntPK, UTCDateTime


class TaskPlan(Base):
    """The planning lease of a task and the cursor that lets an interrupted plan resume."""

    __tablename__ = "task_plans"
    __table_args__ = (Index("ix_task_plans_done_lease", "done", "lease_expires"),)

    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Items before ``item_index`` are fully planned; of that item, the first
    # ``entries_done`` plan entries are committed (the walk is deterministic).
    item_index: Mapped[int] = mapped_column(Integer, default=0)
    entries_done: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkBatch(Base):
    """A group of files copied by one worker under one lease.

    ``files`` lists the planned files (``worker/batch_files.py``); a file has a
    ``TaskFile`` row, with an id computed from the batch's, once it has an outcome or a
    resume point. A batch of the planner's errors lists nothing and is done at once."""

    __tablename__ = "work_batches"
    __table_args__ = (Index("ix_work_batches_state_lease", "state", "lease_expires"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    byte_count: Mapped[int] = mapped_column(BigInteger, default=0)
    files: Mapped[list[list[Any]] | None] = mapped_column(JSON, nullable=True)


class TaskFile(Base):
    """One file of a task with an outcome or a resume point (or one error found while
    planning, e.g. a missing source). Its id is ``batch_files.file_id`` of its batch."""

    __tablename__ = "task_files"
    __table_args__ = (
        Index("ix_task_files_task_state", "task_id", "state"),
        Index("ix_task_files_batch", "batch_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_batches.id", ondelete="CASCADE"), nullable=True
    )
    source_path: Mapped[str] = mapped_column(Text)
    destination_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime: Mapped[float] = mapped_column(Float, default=0.0)
    # pending | done | failed | skipped (error skipped by skip_source_errors) | canceled |
    # unchanged (the sync level found the destination current; not a "successful transfer")
    state: Mapped[str] = mapped_column(String(10), default="pending")
    is_directory: Mapped[bool] = mapped_column(Boolean, default=False)
    external_checksum: Mapped[str | None] = mapped_column(String(200), nullable=True)
    checksum_algorithm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    done_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Resume point of a large file: bytes durably in the temporary object described by
    # ``write_state`` (``WriteState`` as JSON).
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    write_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class TaskFileRun(Base):
    """Files copied successfully, as one row: ``count`` consecutive files of one batch from
    the file id ``id`` on, their checksums in order (``batch_files.py``).

    A file's path and size are in its batch's list already, and a group of small files
    ends together: one row per run instead of one per file keeps a transfer's records (and
    their writing) proportional to its groups, not its files. A file with anything else to
    record (an error, a resume point, found unchanged) has a ``TaskFile`` row instead."""

    __tablename__ = "task_file_runs"
    __table_args__ = (
        Index("ix_task_file_runs_task", "task_id", "id"),
        Index("ix_task_file_runs_batch", "batch_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("work_batches.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer)
    checksum_algorithm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    checksums: Mapped[list[str | None]] = mapped_column(JSON)
    done_time: Mapped[datetime] = mapped_column(UTCDateTime())
