"""The wall clock, injectable so tests can age authorization codes and deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path


class Clock:
    """Returns timezone-aware UTC now; a test-only offset file shifts it forward."""

    def __init__(self, offset_file: Path | None = None) -> None:
        self._offset_file = offset_file

    def offset(self) -> float:
        if self._offset_file is None:
            return 0.0
        try:
            return float(self._offset_file.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset())

    def timestamp(self) -> float:
        return self.now().timestamp()
