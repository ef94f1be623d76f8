"""Exceptions raised by arctern_client, each with a message a notebook user can act on."""

from __future__ import annotations


class ArcternClientError(Exception):
    """Base class for every error arctern_client raises itself."""


class ConnectError(ArcternClientError):
    """The server URL given to ``connect`` could not be reached or is not an Arctern server."""


class LoginError(ArcternClientError):
    """Logging in failed: the code was rejected, missing, or the login is not finished yet."""


class CollectionNotFound(ArcternClientError):
    """No collection matches the display name or ID that was given."""


class AmbiguousCollection(ArcternClientError):
    """Several collections match a display name; the message lists them with their IDs."""
