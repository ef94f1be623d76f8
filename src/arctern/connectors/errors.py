"""The errors connectors raise. Each says whether a retry can help."""

from __future__ import annotations


class ConnectorError(Exception):
    retryable: bool = False
    # Globus-style error code shown in task events and API errors.
    code: str = "ENDPOINT_ERROR"


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
