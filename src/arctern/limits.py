"""Upper bounds on what clients may store or ask for, in one place (no schema depends on them).

Every value a client can make the server store is bounded at the API boundary, so one request
cannot grow the database by more than a few KiB per row: names fit the ``String(300)`` columns
with room to spare, and lists (redirect URIs, admins, lookups) have a small maximum count.
"""

from __future__ import annotations

from collections.abc import Sized

from arctern.errors import InvalidRequest

MAX_NAME = 255  # client, project, credential and display names
MAX_EMAIL = 254  # RFC 5321 path limit
MAX_DESCRIPTION = 4096
MAX_URI = 2048  # redirect URIs and links
MAX_REDIRECT_URIS = 32
MAX_ADMINS = 100  # admin ids / admin group ids of a project
MAX_LABEL = 128  # Globus task labels
MAX_USERNAME = 255
MAX_IDENTITY_LOOKUP = 100  # ids or usernames in one GET /v2/api/identities
MAX_OAUTH_PARAMETER = 4096  # any one /authorize or /token parameter (scope, state, ...)
MAX_NONCE = 255  # stored with the authorization code


def bounded_text(value: str, field: str, maximum: int, *, code: str = "INVALID_PARAMETERS") -> str:
    """``value`` when it has at most ``maximum`` characters; else a 400 naming the field."""
    if len(value) > maximum:
        raise InvalidRequest(f"{field} must be at most {maximum} characters", code=code)
    return value


def bounded_count(
    values: Sized, field: str, maximum: int, *, code: str = "INVALID_PARAMETERS"
) -> None:
    if len(values) > maximum:
        raise InvalidRequest(f"{field} may have at most {maximum} entries", code=code)
