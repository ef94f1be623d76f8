"""Wire documents of the Transfer API (``DATA_TYPE`` dicts) built from records.

Field names and shapes follow what globus-sdk and globus-cli read; fields that have no
meaning here are present with ``null``/``false`` because clients index them directly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from arctern import __version__
from arctern.connect.endpoints import BUILTIN_ENDPOINT_ID, BUILTIN_ENDPOINT_NAME
from arctern.connectors.base import SPECIAL_TYPES, FileInfo
from arctern.db.models.transfer import (
    AclRule,
    Bookmark,
    Collection,
    TaskEvent,
    TaskRecord,
)
from arctern.transfer.services.guests import GUEST_CONNECTORS, entity_type_of


def iso(value: datetime | None) -> str | None:
    """Task times: ``2021-09-02T18:04:47+00:00``."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def file_time(epoch: float) -> str:
    """File times: ``2023-12-18 16:52:50+00:00`` (space separator, as Globus sends)."""
    return datetime.fromtimestamp(int(epoch), UTC).isoformat(sep=" ")


# GCSv5 documents carry the server's version; ours says which Arctern serves the collection.
GCS_VERSION = f"5.4.0+arctern.{__version__}"
HOST_ENTITY_TYPE = "GCSv5_endpoint"


def https_server(base_url: str, collection_id: uuid.UUID) -> str:
    """Where a collection answers HTTPS GET and PUT (``arctern.https_access``)."""
    return f"{base_url.rstrip('/')}/https/{collection_id}"


def gcs_manager_url(base_url: str | None, endpoint_id: uuid.UUID) -> str | None:
    """Where an endpoint's GCS Manager API answers (``arctern.gcs``): only over HTTPS, as
    globus-sdk and globus-cli accept nothing else for it."""
    if not base_url or not base_url.startswith("https://"):
        return None
    return f"{base_url.rstrip('/')}/gcs/{endpoint_id}"


def endpoint_document(
    collection: Collection,
    owner_username: str,
    viewer_id: uuid.UUID | None = None,
    *,
    https_base: str | None = None,
    mapped_name: str | None = None,
) -> dict[str, Any]:
    """The endpoint document of a collection (a GCSv5 mapped collection of its host
    endpoint); ``viewer_id`` decides ``my_effective_roles``; ``https_base`` (the deployment's
    base URL) gives collections their ``https_server``."""
    host_id = collection.endpoint_id or BUILTIN_ENDPOINT_ID
    return {
        "DATA_TYPE": "endpoint",
        "id": str(collection.id),
        "display_name": collection.display_name,
        "canonical_name": None,
        "name": None,
        # As with Globus, a GCSv5 collection's owner_id is its endpoint's identity (clients
        # such as globus-cli find the endpoint, and its GCS Manager scopes, from it); the
        # person who administers it is in owner_string.
        "owner_id": str(host_id),
        "owner_string": owner_username,
        "username": owner_username,
        "entity_type": entity_type_of(collection),
        "description": collection.description or None,
        "organization": collection.organization or None,
        "department": collection.department or None,
        "keywords": collection.keywords or None,
        "contact_email": collection.contact_email or None,
        "contact_info": None,
        "info_link": collection.info_link or None,
        "user_message": None,
        "user_message_link": None,
        "public": collection.public,
        "force_encryption": False,
        "disable_verify": False,
        "force_verify": False,
        "mfa_required": False,
        "high_assurance": False,
        "non_functional": False,
        "non_functional_endpoint_display_name": None,
        "non_functional_endpoint_id": None,
        "subscription_id": None,
        "default_directory": collection.default_directory or "/~/",
        "is_globus_connect": False,
        "gcp_connected": None,
        "gcp_paused": None,
        "host_endpoint": str(host_id),
        "host_endpoint_id": str(host_id),
        "host_endpoint_display_name": (
            BUILTIN_ENDPOINT_NAME if collection.endpoint_id is None else None
        ),
        "host_path": collection.guest_base_path,
        "mapped_collection_id": (
            str(collection.mapped_collection_id) if collection.mapped_collection_id else None
        ),
        "mapped_collection_display_name": mapped_name,
        "gcs_manager_url": gcs_manager_url(https_base, host_id),
        "gcs_version": GCS_VERSION,
        "tlsftp_server": None,
        "https_server": (
            https_server(https_base, collection.id)
            # Not for a collection left behind by a deleted Connect endpoint.
            if https_base
            and (collection.endpoint_id is not None or collection.connector != "agent")
            else None
        ),
        "local_user_info_available": False,
        "acl_available": True,
        "acl_editable": True,
        "in_use": False,
        # Guest collections can be made in mapped collections of the deployment's own storage.
        "shareable": collection.connector in GUEST_CONNECTORS and not collection.is_guest,
        "activated": True,
        "expires_in": -1,
        "expire_time": None,
        "myproxy_server": None,
        "myproxy_dn": None,
        "oauth_server": None,
        "s3_url": None,
        "s3_owner_activated": False,
        "my_effective_roles": (
            ["administrator"] if viewer_id is not None and viewer_id == collection.owner_id else []
        ),
        "last_accessed_time": None,
        "location": None,
        "network_use": None,
        "max_concurrency": None,
        "preferred_concurrency": None,
        "max_parallelism": None,
        "preferred_parallelism": None,
        "authentication_assurance_timeout": None,
        "authentication_timeout_mins": None,
        "DATA": [],
    }


def globus_file_type(info: FileInfo) -> str:
    """The ``type`` of a file document: Globus's own vocabulary, which has names for special
    files (``pipe``, ``chr``, ``blk``, ``other`` for sockets) besides ``file``, ``dir`` and
    ``invalid_symlink`` (a symlink listed as itself is one whose target cannot be used)."""
    if info.type in ("file", "dir") or info.type in SPECIAL_TYPES:
        return info.type
    return "invalid_symlink"


def host_endpoint_document(
    endpoint_id: uuid.UUID,
    display_name: str,
    owner_id: uuid.UUID | None,
    owner_username: str,
    viewer_id: uuid.UUID | None = None,
    *,
    parallelism: int,
    https_base: str | None = None,
) -> dict[str, Any]:
    """The document of a GCSv5 endpoint: an Arctern Connect agent, or the built-in endpoint
    of the deployment's own storage (which has no owner). It holds no files itself;
    ``parallelism`` is the parallel connections its transfers use."""
    doc = endpoint_document(
        Collection(
            id=endpoint_id,
            display_name=display_name,
            owner_id=owner_id,
            public=True,
            default_directory="/~/",
        ),
        owner_username,
        viewer_id,
    )
    doc.update(
        {
            "entity_type": HOST_ENTITY_TYPE,
            "owner_id": str(owner_id) if owner_id else None,
            "host_endpoint": None,
            "host_endpoint_id": None,
            "host_endpoint_display_name": None,
            "default_directory": None,
            "acl_available": False,
            "acl_editable": False,
            "network_use": "custom",
            "preferred_parallelism": parallelism,
            "max_parallelism": parallelism,
            "shareable": False,
            "gcs_manager_url": gcs_manager_url(https_base, endpoint_id),
        }
    )
    return doc


def file_document(info: FileInfo) -> dict[str, Any]:
    # ``name`` is text: a name that is not valid UTF-8 is in the escaped form of
    # ``arctern.connectors.names``, which the API accepts back in paths.
    kind = globus_file_type(info)
    return {
        "DATA_TYPE": "file",
        "name": info.name,
        "type": kind,
        "link_target": info.link_target,
        "permissions": f"{info.permissions & 0o7777:04o}",
        "size": info.size,
        "user": info.user or None,
        "group": info.group or None,
        "last_modified": file_time(info.mtime),
        "link_group": None,
        "link_last_modified": None,
        "link_size": None,
        "link_user": None,
    }


def result_document(
    data_type: str, code: str, message: str, resource: str, request_id: str, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "DATA_TYPE": data_type,
        "code": code,
        "message": message,
        "request_id": request_id,
        "resource": resource,
    }
    doc.update(extra)
    return doc


def effective_rate(task: TaskRecord, now: datetime) -> int:
    """Bytes per second over the task's life so far (or until it completed)."""
    end = task.completion_time or now
    elapsed = (end - task.request_time).total_seconds()
    if task.bytes_transferred <= 0 or elapsed <= 0:
        return 0
    return int(task.bytes_transferred / elapsed)


def task_document(
    task: TaskRecord,
    *,
    owner_username: str,
    names: dict[uuid.UUID, str],
    now: datetime,
    held_by_rule: bool = False,
) -> dict[str, Any]:
    opts = task.options or {}
    is_transfer = task.type == "TRANSFER"
    finished = task.status in ("SUCCEEDED", "FAILED")
    src = task.source_endpoint_id
    dst = task.destination_endpoint_id
    paused = not finished and (task.admin_pause_message is not None or held_by_rule)
    nice = "PAUSED_BY_ADMIN" if paused else task.nice_status
    return {
        "DATA_TYPE": "task",
        "task_id": str(task.id),
        "type": task.type,
        "status": task.status,
        "label": task.label,
        "owner_id": str(task.owner_id),
        "username": owner_username,
        "request_time": iso(task.request_time),
        "completion_time": iso(task.completion_time),
        "deadline": iso(task.deadline),
        "fatal_error": task.fatal_error,
        "source_endpoint": str(src),
        "source_endpoint_id": str(src),
        "source_endpoint_display_name": names.get(src),
        "destination_endpoint": str(dst) if dst else None,
        "destination_endpoint_id": str(dst) if dst else None,
        "destination_endpoint_display_name": names.get(dst) if dst else None,
        "sync_level": opts.get("sync_level") if is_transfer else None,
        "verify_checksum": bool(opts.get("verify_checksum", False)),
        "encrypt_data": bool(opts.get("encrypt_data", False)),
        "preserve_timestamp": bool(opts.get("preserve_timestamp", False)),
        "delete_destination_extra": bool(opts.get("delete_destination_extra", False)),
        "skip_source_errors": bool(opts.get("skip_source_errors", False)),
        "fail_on_quota_errors": bool(opts.get("fail_on_quota_errors", False)),
        "recursive_symlinks": opts.get("recursive_symlinks") if is_transfer else None,
        "filter_rules": opts.get("filter_rules") or None,
        "command": "API 0.10",
        "history_deleted": False,
        "faults": task.faults,
        "files": task.files,
        "directories": task.directories,
        "symlinks": task.symlinks,
        "files_skipped": task.files_skipped,
        "files_transferred": task.files_transferred,
        "subtasks_total": task.subtasks_total,
        "subtasks_pending": task.subtasks_pending,
        "subtasks_retrying": task.subtasks_retrying,
        "subtasks_succeeded": task.subtasks_succeeded,
        "subtasks_failed": task.subtasks_failed,
        "subtasks_canceled": task.subtasks_canceled,
        "subtasks_expired": task.subtasks_expired,
        "subtasks_skipped_errors": task.subtasks_skipped_errors,
        "bytes_transferred": task.bytes_transferred,
        "bytes_checksummed": task.bytes_checksummed,
        "effective_bytes_per_second": effective_rate(task, now),
        "nice_status": None if finished else nice,
        "nice_status_short_description": None if finished else nice,
        "nice_status_details": None,
        "nice_status_expires_in": None if finished else -1,
        "is_ok": None if finished else task.status == "ACTIVE",
        "is_paused": paused,
        "canceled_by_admin": None,
        "canceled_by_admin_message": None,
        "source_local_user": None,
        "destination_local_user": None,
        "source_base_path": None,
        "destination_base_path": None,
    }


def event_document(event: TaskEvent) -> dict[str, Any]:
    return {
        "DATA_TYPE": "event",
        "code": event.code,
        "description": event.description,
        "details": event.details,
        "is_error": event.is_error,
        "time": iso(event.time),
    }


def owner_role_document(collection: Collection) -> dict[str, Any]:
    """The one role a collection has: its owner administers it."""
    return {
        "DATA_TYPE": "role",
        # Stable and unique per collection: the owner's role is not a stored row.
        "id": f"owner-{collection.id}",
        "principal_type": "identity",
        "principal": str(collection.owner_id),
        "role": "administrator",
    }


def access_document(rule: AclRule) -> dict[str, Any]:
    return {
        "DATA_TYPE": "access",
        "id": str(rule.id),
        "principal_type": rule.principal_type,
        "principal": rule.principal,
        "path": rule.path,
        "permissions": rule.permissions,
        "role_id": None,
        "role_type": None,
        "create_time": iso(rule.created_at),
        "expiration_date": iso(rule.expiration_date),
    }


def access_list_document(endpoint_id: str, rules: list[AclRule]) -> dict[str, Any]:
    return {
        "DATA_TYPE": "access_list",
        "endpoint": endpoint_id,
        "length": len(rules),
        "DATA": [access_document(r) for r in rules],
    }


def bookmark_document(bookmark: Bookmark) -> dict[str, Any]:
    return {
        "DATA_TYPE": "bookmark",
        "id": str(bookmark.id),
        "name": bookmark.name,
        "endpoint_id": str(bookmark.collection_id),
        "path": bookmark.path,
        "pinned": bookmark.pinned,
    }
