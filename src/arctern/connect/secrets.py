"""Setup keys and endpoint credentials: random secrets stored only as hashes.

They are 32 random bytes, so a plain SHA-256 is enough (no password stretching needed) and
lets the agent API find the endpoint by an indexed look-up of the hash.
"""

from __future__ import annotations

import hashlib
import secrets

SETUP_KEY_PREFIX = "acs_"  # Arctern Connect setup key
CREDENTIAL_PREFIX = "acc_"  # Arctern Connect credential


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
