"""Outcomes of engine work that are not plain connector errors."""

from __future__ import annotations

import functools
from typing import Any


class FileFailed(Exception):
    """A file could not be transferred; ``code`` is a Globus event code."""

    def __init__(
        self, code: str, message: str, *, quota: bool = False, source_side: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.quota = quota
        # The source could not be read (what skip_source_errors may skip); destination
        # failures always count.
        self.source_side = source_side

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in helper processes too: pickle with the keyword arguments.
        return (
            functools.partial(FileFailed, quota=self.quota, source_side=self.source_side),
            (self.code, self.message),
        )


def mark_source_side(exc: BaseException) -> BaseException:
    """Tag a connector error raised by the source connector."""
    exc.source_side = True  # type: ignore[attr-defined]
    return exc


def is_source_side(exc: BaseException) -> bool:
    return bool(getattr(exc, "source_side", False))


class Canceled(Exception):
    """The task was canceled (or expired) while this work was in progress."""


class CancelToken:
    """Set by whoever supervises the task; checked by the engine between chunks."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def cancel(self, reason: str = "CANCELED") -> None:
        if self.reason is None:
            self.reason = reason

    @property
    def keep_partial(self) -> bool:
        """Stopping for a hand-over (shutdown, lost lease): the next worker resumes the temp."""
        return self.reason in ("SHUTDOWN", "LEASE_LOST")

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def check(self) -> None:
        if self.reason is not None:
            raise Canceled(self.reason)


class ChecksumMismatch(Exception):
    """The destination's checksum differs from the source's; the file is sent again."""
