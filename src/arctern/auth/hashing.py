"""Random secrets, their stored SHA-256 digests, and argon2 password hashing."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from arctern.config import Settings


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` of entropy (codes, tokens, client secrets)."""
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """What the database stores instead of a high-entropy secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost
    )


def hash_password(settings: Settings, password: str) -> str:
    return password_hasher(settings).hash(password)


def check_password(settings: Settings, password: str, password_hash: str | None) -> bool:
    if not password_hash:
        return False
    try:
        return password_hasher(settings).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
