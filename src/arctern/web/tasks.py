"""Turning the file manager's transfer form into a Globus transfer document: submitted now, or
run on a schedule by a timer ("Repeat")."""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

from starlette.datastructures import FormData

from arctern.context import AppContext
from arctern.transfer.services.common import Caller
from arctern.transfer.services.submission import submit_transfer

# (value, label) for the "Repeat" picker: seconds between runs; "" runs the transfer once.
REPEATS: tuple[tuple[str, str], ...] = (
    ("", "No, once now"),
    ("3600", "Every hour"),
    ("86400", "Every day"),
    ("604800", "Every week"),
)
# (value, label) for the sync-level picker; "" transfers everything.
SYNC_LEVELS: tuple[tuple[str, str], ...] = (
    ("", "Transfer all files"),
    ("exists", "Only files missing at the destination"),
    ("size", "Files whose size differs"),
    ("mtime", "Files newer at the source"),
    ("checksum", "Files whose checksum differs"),
)


def transfer_document(
    *,
    source_id: str,
    destination_id: str,
    source_dir: str,
    destination_dir: str,
    items: list[tuple[str, bool]],
    form: FormData,
) -> dict[str, Any]:
    """The transfer copying ``items`` from ``source_dir`` into ``destination_dir`` with the
    form's settings."""
    label = str(form.get("label", "")).strip()
    sync_level = str(form.get("sync_level", ""))
    body: dict[str, Any] = {
        "DATA_TYPE": "transfer",
        "source_endpoint": source_id,
        "destination_endpoint": destination_id,
        "verify_checksum": form.get("verify_checksum") == "on",
        "preserve_timestamp": form.get("preserve_timestamp") == "on",
        "skip_source_errors": form.get("skip_source_errors") == "on",
        "delete_destination_extra": form.get("delete_destination_extra") == "on",
        "DATA": [
            {
                "DATA_TYPE": "transfer_item",
                "source_path": posixpath.join(source_dir, name),
                "destination_path": posixpath.join(destination_dir, name),
                "recursive": is_dir,
            }
            for name, is_dir in items
        ],
    }
    if label:
        body["label"] = label
    deadline = str(form.get("deadline", "")).strip()
    if deadline:
        # A day from the date picker: the task may run until the end of that day (UTC).
        body["deadline"] = f"{deadline} 23:59:59+00:00"
    if sync_level in {value for value, _ in SYNC_LEVELS if value}:
        body["sync_level"] = sync_level
    return body


async def submit_from_form(ctx: AppContext, caller: Caller, body: dict[str, Any]) -> uuid.UUID:
    """Submit the form's transfer now; the task id."""
    submitted = await submit_transfer(ctx, caller, body)
    return submitted.task_id


def repeat_schedule(form: FormData) -> dict[str, Any] | None:
    """The form's "Repeat" choice as a Timers schedule starting now, or None (run once)."""
    choice = str(form.get("repeat", ""))
    if choice not in {value for value, _ in REPEATS if value}:
        return None
    schedule: dict[str, Any] = {"type": "recurring", "interval_seconds": int(choice)}
    runs = str(form.get("repeat_runs", "")).strip()
    if runs.isdigit() and int(runs) >= 1:
        schedule["end"] = {"condition": "iterations", "count": int(runs)}
    return schedule
