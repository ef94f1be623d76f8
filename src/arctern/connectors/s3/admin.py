"""Turns an administrator's S3 collection settings into the root and options to store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arctern.connectors.errors import ConnectorError
from arctern.connectors.s3.connector import S3Connector, parse_root
from arctern.connectors.s3.secrets import clean_options, encrypt_options
from arctern.errors import InvalidRequest


def normalize_root(root: str) -> str:
    """``bucket[/prefix]`` in canonical form (no scheme, no empty or ``.`` components)."""
    bucket, prefix = parse_root(root)
    return f"{bucket}/{prefix.rstrip('/')}" if prefix else bucket


async def prepare_s3_collection(
    root: str, options: Mapping[str, Any], secret_key: str, *, probe: bool = True
) -> tuple[str, dict[str, Any]]:
    """The root and the options (credentials encrypted) to store for a new S3 collection.

    With ``probe`` the bucket is contacted once with the given credentials, so a typo in
    the endpoint, bucket or keys is reported now rather than in a user's first transfer.
    Raises ``InvalidRequest`` with a message fit for the administrator.
    """
    try:
        canonical = normalize_root(root)
        cleaned = clean_options(options)
    except (ValueError, ConnectorError) as exc:
        raise InvalidRequest(str(exc)) from exc
    if probe:
        try:
            connector = S3Connector(canonical, cleaned)
        except ConnectorError as exc:
            raise InvalidRequest(str(exc)) from exc
        try:
            await connector.stat("/")
        except ConnectorError as exc:
            raise InvalidRequest(f"Cannot use S3 bucket of {canonical}: {exc}") from exc
        finally:
            await connector.close()
    return canonical, encrypt_options(cleaned, secret_key)
