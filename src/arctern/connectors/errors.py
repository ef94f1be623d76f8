"""The errors connectors raise. Each says whether a retry can help."""

from __future__ import annotations

import re
from typing import Any

_UNDECODABLE = re.compile("[\udc80-\udcff]")


def safe_text(text: str) -> str:
    """``text`` with any undecodable byte (the lone surrogate ``os`` functions use for it)
    written ``\\xHH``, as in ``arctern.connectors.names``: a last defence so that a raw
    file name in a message never reaches JSON, the database or a page."""
    if text.isascii():
        return text
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


class ConnectorError(Exception):
    retryable: bool = False
    # Globus-style error code shown in task events and API errors.
    code: str = "ENDPOINT_ERROR"

    def __init__(self, *args: Any) -> None:
        super().__init__(*(safe_text(a) if isinstance(a, str) else a for a in args))


class ObjectNotFound(ConnectorError):
    code = "FILE_NOT_FOUND"


class NotADirectory(ConnectorError):
    code = "NOT_A_DIRECTORY"


class IsADirectory(ConnectorError):
    code = "IS_A_DIRECTORY"


class AlreadyExists(ConnectorError):
    code = "EXISTS"


class PermissionDenied(ConnectorError):
    code = "PERMISSION_DENIED"


class PathOutsideRoot(ConnectorError):
    """The path would leave the collection root (``..``, NUL, symlink escape, …)."""

    code = "PERMISSION_DENIED"


class QuotaExceeded(ConnectorError):
    code = "QUOTA_EXCEEDED"


class TransientError(ConnectorError):
    """A failure that may go away: I/O hiccup, timeout, throttling."""

    retryable = True
    code = "TRANSIENT"


class InvalidPath(PathOutsideRoot):
    """The path is malformed (NUL byte, over-long name, relative) and is refused outright."""

    code = "INVALID_PATH_NAME"


class DirectoryNotEmpty(ConnectorError):
    code = "DIRECTORY_NOT_EMPTY"


class NotARegularFile(ConnectorError):
    """A named pipe, socket or device: never opened for data (a FIFO blocks its reader
    forever, a device may never end or act on being opened). Permanent."""

    code = "NOT_A_REGULAR_FILE"
