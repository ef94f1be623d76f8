"""Symmetric encryption of secrets at rest, keyed by the deployment's secret key.

Each purpose derives its own Fernet key (HKDF), so a value encrypted for one use can never be
decrypted as another.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def fernet_for(secret_key: str, purpose: bytes) -> Fernet:
    if not secret_key:
        raise ValueError("a secret key is needed to protect stored secrets")
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(raw))
