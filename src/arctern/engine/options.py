"""The submission options and items the engine acts on, parsed from a task's stored JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arctern.engine.filters import FilterRule, parse_filter_rules

SYNC_NAMES = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}


def collection_path(raw: str) -> str:
    """Map the ``/~/`` home prefix onto the collection root; the connector validates the rest."""
    if raw in ("~", "/~"):
        return "/"
    if raw.startswith("/~/"):
        return raw[2:]
    if raw.startswith("~/"):
        return raw[1:]
    return raw


@dataclass(frozen=True)
class TransferOptions:
    sync_level: int | None = None
    verify_checksum: bool = False
    preserve_timestamp: bool = False
    skip_source_errors: bool = False
    fail_on_quota_errors: bool = False
    delete_destination_extra: bool = False
    recursive_symlinks: str = "ignore"
    filter_rules: list[FilterRule] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TransferOptions:
        data = data or {}
        level = data.get("sync_level")
        if isinstance(level, str):
            level = SYNC_NAMES.get(level.lower()) if not level.isdigit() else int(level)
        return cls(
            sync_level=int(level) if level is not None else None,
            verify_checksum=bool(data.get("verify_checksum", False)),
            preserve_timestamp=bool(data.get("preserve_timestamp", False)),
            skip_source_errors=bool(data.get("skip_source_errors", False)),
            fail_on_quota_errors=bool(data.get("fail_on_quota_errors", False)),
            delete_destination_extra=bool(data.get("delete_destination_extra", False)),
            recursive_symlinks=str(data.get("recursive_symlinks") or "ignore"),
            filter_rules=parse_filter_rules(data.get("filter_rules")),
        )


@dataclass(frozen=True)
class DeleteOptions:
    recursive: bool = False
    ignore_missing: bool = False
    interpret_globs: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DeleteOptions:
        data = data or {}
        return cls(
            recursive=bool(data.get("recursive", False)),
            ignore_missing=bool(data.get("ignore_missing", False)),
            interpret_globs=bool(data.get("interpret_globs", False)),
        )


@dataclass(frozen=True)
class ItemSpec:
    """One submitted transfer item."""

    source_path: str
    destination_path: str
    recursive: bool = False
    external_checksum: str | None = None
    checksum_algorithm: str | None = None


@dataclass(slots=True)
class FileJob:
    """One file to copy, as planned (and persisted by the worker).

    Not frozen: a frozen dataclass costs four times as much to make, and a transfer of small
    files makes one per file. Nothing changes a job once planned but its ``key``, given
    once, when the batch listing it is stored."""

    source_path: str
    destination_path: str
    size: int
    mtime: float
    external_checksum: str | None = None
    checksum_algorithm: str | None = None
    key: int | None = None  # the worker's TaskFile id, echoed back in checkpoints

    def fields(self) -> tuple[str, str, int, float, str | None, str | None, int | None]:
        """The job as a plain tuple (``FileJob(*fields)`` makes it again): what crosses a
        process boundary, pickled far faster than the object."""
        return (
            self.source_path,
            self.destination_path,
            self.size,
            self.mtime,
            self.external_checksum,
            self.checksum_algorithm,
            self.key,
        )

    @property
    def temp_key(self) -> str | None:
        """A temporary name tied to the persisted file record, so a crashed attempt's
        partial file is found and reused by whichever worker retries the file."""
        return None if self.key is None else f"file{self.key}"
