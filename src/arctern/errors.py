"""Error families shared by every layer, each carrying its wire status and code.

Transfer renders them as Globus error documents (``code``, ``message``, ``request_id``,
``resource``); Auth renders its own OAuth errors. Lower layers raise these, never HTTP types.
"""

from __future__ import annotations


class ArcternError(Exception):
    """Root of every expected error. ``code`` is the Globus dotted error code."""

    status: int = 400
    code: str = "BadRequest"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidRequest(ArcternError):
    status = 400
    code = "BadRequest"


class Unauthorized(ArcternError):
    status = 401
    code = "AuthenticationFailed"


class PermissionDenied(ArcternError):
    status = 403
    code = "PermissionDenied"


class NotFound(ArcternError):
    status = 404
    code = "ClientError.NotFound"


class TooManyRequests(ArcternError):
    """A rate limit refused the call; ``retry_after`` seconds is sent as ``Retry-After``."""

    status = 429
    code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Conflict(ArcternError):
    status = 409
    code = "Conflict"


class RequestTooLarge(ArcternError):
    status = 413
    code = "RequestTooLarge"


class StorageError(ArcternError):
    """A storage backend failed. Not a 5xx the SDK would retry: it names an EndpointError."""

    status = 502
    code = "ExternalError.EndpointError"
