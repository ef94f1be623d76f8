"""Encryption at rest of the credentials inside an S3 collection's stored options.

Collections keep their connector options in the database. The secret ones are stored as
``"fernet:<token>"``, encrypted with a key derived from ``settings.secret_key``; everything
else (endpoint, region, access key id) stays readable. Connectors only ever see plain values:
whoever opens a connector from a stored collection calls ``decrypt_options`` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from arctern.connectors.errors import PermissionDenied
from arctern.secretbox import fernet_for

ENCRYPTED_PREFIX = "fernet:"
SECRET_OPTIONS = ("secret_access_key", "session_token")
# Every option the S3 connector understands; anything else is a typo worth refusing.
KNOWN_OPTIONS = frozenset(
    {
        "endpoint_url",
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "addressing_style",
        "part_size",
        "multipart_threshold",
        "copy_threshold",
        "copy_part_size",
        "concurrency",
        "page_size",
        "max_attempts",
        "connect_timeout",
        "read_timeout",
        "checksums",
    }
)
_HKDF_INFO = b"arctern s3 collection credentials v1"


class CredentialsUnreadable(PermissionDenied):
    """Stored credentials cannot be decrypted (the server's secret key changed)."""

    code = "ENDPOINT_ERROR"


def _fernet(secret_key: str) -> Fernet:
    return fernet_for(secret_key, _HKDF_INFO)


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX)


def clean_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validated options for storage: known keys only, blanks dropped, credentials paired."""
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise ValueError(f"unknown S3 option(s): {', '.join(unknown)}")
    cleaned = {k: v for k, v in options.items() if v not in (None, "")}
    if bool(cleaned.get("access_key_id")) != bool(cleaned.get("secret_access_key")):
        raise ValueError("give both an access key id and a secret access key, or neither")
    endpoint = cleaned.get("endpoint_url")
    if endpoint is not None and not str(endpoint).startswith(("http://", "https://")):
        raise ValueError(f"endpoint URL must start with http:// or https://: {endpoint}")
    return cleaned


def encrypt_options(options: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A copy of ``options`` with the secret values encrypted (already encrypted ones kept)."""
    fernet = _fernet(key)
    result = dict(options)
    for name in SECRET_OPTIONS:
        value = result.get(name)
        if isinstance(value, str) and value and not is_encrypted(value):
            token = fernet.encrypt(value.encode("utf-8")).decode("ascii")
            result[name] = ENCRYPTED_PREFIX + token
    return result


def decrypt_options(options: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A copy of ``options`` with plain secret values, ready for the connector.

    Plain values pass through unchanged, so this is safe to apply to any stored options.
    """
    result = dict(options)
    encrypted = [n for n in SECRET_OPTIONS if is_encrypted(result.get(n))]
    if not encrypted:
        return result
    fernet = _fernet(key)
    for name in encrypted:
        token = str(result[name])[len(ENCRYPTED_PREFIX) :]
        try:
            result[name] = fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise CredentialsUnreadable(
                "the stored S3 credentials cannot be decrypted; was the server's secret "
                "key changed? Set them again with the collection admin command"
            ) from exc
    return result


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options fit for display and logs: secrets replaced by a placeholder."""
    return {k: ("********" if k in SECRET_OPTIONS and v else v) for k, v in options.items()}
