"""Collections, access rules, bookmarks and tasks (the transfer service owns these tables).

The worker updates a task's counters and status; the transfer API renders them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from arctern.db.base import Base, BigIntPK, UTCDateTime, new_uuid


class Collection(Base):
    """A storage root exposed as a Globus collection (endpoint)."""

    __tablename__ = "collections"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    display_name: Mapped[str] = mapped_column(String(300), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id"))
    # "posix", "s3", "memory", "agent"; ``root`` is a directory for posix, bucket[/prefix] for s3.
    connector: Mapped[str] = mapped_column(String(20), default="posix")
    root: Mapped[str] = mapped_column(Text)
    # Connector options; secrets inside are encrypted and never rendered by any API.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    default_directory: Mapped[str] = mapped_column(String(1000), default="/~/")
    organization: Mapped[str] = mapped_column(String(300), default="")
    department: Mapped[str] = mapped_column(String(300), default="")
    keywords: Mapped[str] = mapped_column(String(1000), default="")
    contact_email: Mapped[str] = mapped_column(String(300), default="")
    info_link: Mapped[str] = mapped_column(String(1000), default="")
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The Connect endpoint (agent) serving this collection; None: the deployment's own
    # storage, i.e. the built-in endpoint. Agent collections have connector "agent".
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # A guest collection: the mapped collection it was made in, and the folder there that
    # is its root (``root`` is that folder in storage terms). Its creator (``owner_id``)
    # shares it with access rules; guests get at most what the creator can still reach in
    # the mapped collection (``db/grants.py``).
    mapped_collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), nullable=True, index=True
    )
    guest_base_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A deleted guest collection stays for the history of the tasks that used it; nothing
    # finds it any more (``services.common.load_collection``).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def is_guest(self) -> bool:
        return self.mapped_collection_id is not None


class EndpointRole(Base):
    """A role on an endpoint or collection (``administrator``, ``access_manager``,
    ``activity_manager``, ``activity_monitor``) granted to an identity or a group."""

    __tablename__ = "endpoint_roles"
    __table_args__ = (Index("ix_endpoint_roles_target", "target_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    # A collection id, or an endpoint id (the built-in endpoint or a Connect endpoint).
    target_id: Mapped[uuid.UUID] = mapped_column()
    principal_type: Mapped[str] = mapped_column(String(20))  # identity, group
    principal: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


PAUSE_OPERATIONS = (
    "pause_ls",
    "pause_mkdir",
    "pause_rename",
    "pause_task_delete",
    "pause_task_transfer_write",
    "pause_task_transfer_read",
)


class PauseRule(Base):
    """An endpoint administrator's hold on operations touching a collection (or every
    collection of an endpoint, and a mapped collection's guest collections), for everyone or
    for one identity, from ``start_time`` on. Held tasks wait; held ``ls``/``mkdir``/
    ``rename`` calls are refused with the rule's message."""

    __tablename__ = "pause_rules"
    __table_args__ = (Index("ix_pause_rules_target", "target_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    # A collection id, or an endpoint id (the built-in endpoint or a Connect endpoint).
    target_id: Mapped[uuid.UUID] = mapped_column()
    identity_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pause_ls: Mapped[bool] = mapped_column(Boolean, default=True)
    pause_mkdir: Mapped[bool] = mapped_column(Boolean, default=True)
    pause_rename: Mapped[bool] = mapped_column(Boolean, default=True)
    pause_task_delete: Mapped[bool] = mapped_column(Boolean, default=True)
    pause_task_transfer_write: Mapped[bool] = mapped_column(Boolean, default=True)
    pause_task_transfer_read: Mapped[bool] = mapped_column(Boolean, default=True)
    modified_by_id: Mapped[uuid.UUID] = mapped_column()
    modified_time: Mapped[datetime] = mapped_column(UTCDateTime())


class StorageGateway(Base):
    """Policies of one storage gateway: the storage of one kind (POSIX, S3, …) of an
    endpoint, which all its collections of that kind are in. Without a row, a gateway has
    no restrictions. ``restrict_paths``: ``{"read": [...], "read_write": [...], "none":
    [...]}``, absolute paths in the storage's own terms (a host path for POSIX,
    ``/bucket/prefix`` for S3); nothing outside ``read``/``read_write`` is reachable in any
    collection, by anyone, and nothing under ``none``."""

    __tablename__ = "storage_gateways"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(index=True)
    connector: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(300))
    restrict_paths: Mapped[dict[str, list[str]] | None] = mapped_column(JSON, nullable=True)
    # S3: each user reaches the bucket with access keys of their own (``UserCredential``),
    # not the keys stored with the collection (GCS's ``s3_user_credential_required``).
    user_credentials_required: Mapped[bool] = mapped_column(Boolean, default=False)
    modified_time: Mapped[datetime] = mapped_column(UTCDateTime())


class UserCredential(Base):
    """A user's own storage credential on a gateway (S3 access keys; the secret encrypted
    with the server's secret key, never rendered)."""

    __tablename__ = "user_credentials"
    __table_args__ = (
        Index("ix_user_credentials_gateway_identity", "gateway_id", "identity_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    gateway_id: Mapped[uuid.UUID] = mapped_column()
    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(300), default="")
    # ``access_key_id`` and ``secret_access_key`` (encrypted), as S3 collection options.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    modified_time: Mapped[datetime] = mapped_column(UTCDateTime())


class AclRule(Base):
    """Grants ``r`` or ``rw`` on a path (and beneath it) to an identity or to everyone."""

    __tablename__ = "acl_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    # "identity", "all_authenticated_users" or "anonymous".
    principal_type: Mapped[str] = mapped_column(String(40))
    principal: Mapped[str] = mapped_column(String(100), default="")
    path: Mapped[str] = mapped_column(String(4000))  # absolute, ends with "/"
    permissions: Mapped[str] = mapped_column(String(2))  # "r" or "rw"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The rule stops applying after this instant (None: never expires).
    expiration_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Bookmark(Base):
    __tablename__ = "bookmarks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE")
    )
    path: Mapped[str] = mapped_column(String(4000))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Task(Base):
    """A transfer or delete task; its counters are the truth the task document shows."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_owner_request_time", "owner_id", "request_time"),
        Index("ix_tasks_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    submission_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id"))
    type: Mapped[str] = mapped_column(String(10))  # "TRANSFER" | "DELETE"
    # ACTIVE | INACTIVE | SUCCEEDED | FAILED, exactly as Globus reports them.
    status: Mapped[str] = mapped_column(String(10), default="ACTIVE")
    nice_status: Mapped[str | None] = mapped_column(String(60), nullable=True, default="Queued")
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    source_endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("collections.id"))
    destination_endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("collections.id"), nullable=True
    )
    # Submission options, validated by the API. TRANSFER: sync_level (int 0-3 or None),
    # verify_checksum, preserve_timestamp, encrypt_data, delete_destination_extra,
    # skip_source_errors, fail_on_quota_errors (bools), filter_rules (list of
    # {"method": "include"|"exclude", "name": glob, "type": "file"|"dir"|None}),
    # recursive_symlinks ("ignore"|"keep"|"copy"). DELETE: recursive, ignore_missing,
    # interpret_globs (bools). Both: notify_on_succeeded/failed/inactive.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_time: Mapped[datetime] = mapped_column(UTCDateTime())
    completion_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # {"code": "CANCELED" | "EXPIRED" | …, "description": "…"} once the task failed.
    fatal_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set while an endpoint administrator holds the task (``endpoint_manager`` admin_pause):
    # the administrator's message to the owner. Workers start no new batch of it meanwhile.
    admin_pause_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # True once the source tree is fully walked into work records.
    planned: Mapped[bool] = mapped_column(Boolean, default=False)

    files: Mapped[int] = mapped_column(BigInteger, default=0)
    directories: Mapped[int] = mapped_column(BigInteger, default=0)
    symlinks: Mapped[int] = mapped_column(BigInteger, default=0)
    files_skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    files_transferred: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_transferred: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_checksummed: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_total: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_retrying: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_succeeded: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_canceled: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_skipped_errors: Mapped[int] = mapped_column(BigInteger, default=0)
    faults: Mapped[int] = mapped_column(Integer, default=0)
    # Seconds the task spent actually moving data, for effective_bytes_per_second.
    active_seconds: Mapped[float] = mapped_column(default=0.0)


# A task as its documents and pages read it: the ORM object, or a result row with every
# column of ``tasks`` labelled by its attribute name. A status poll reads the row: building
# an ORM object from it cost more than the query.
TaskRecord = Task | Row[*tuple[Any, ...]]


class TaskItem(Base):
    """One submitted DATA item, in submission order."""

    __tablename__ = "task_items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    source_path: Mapped[str] = mapped_column(Text)  # delete tasks: the path to delete
    destination_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    recursive: Mapped[bool] = mapped_column(Boolean, default=False)
    external_checksum: Mapped[str | None] = mapped_column(String(200), nullable=True)
    checksum_algorithm: Mapped[str | None] = mapped_column(String(40), nullable=True)


class TaskEvent(Base):
    """An entry of the task's event list (progress, faults, errors)."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    code: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text, default="")
    is_error: Mapped[bool] = mapped_column(Boolean, default=False)
