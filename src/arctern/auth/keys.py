"""The id_token signing key: an RSA key persisted in the home, published as keys[0] of the JWKS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

KEY_FILE = "auth-signing-key.pem"
ALGORITHM = "RS256"


@dataclass(frozen=True)
class SigningKey:
    key: RSAKey
    kid: str

    def jwks(self) -> dict[str, Any]:
        """The public key set; the SDK takes ``keys[0]`` without looking at ``kid``."""
        public = dict(self.key.as_dict(private=False))
        public.update(kid=self.kid, use="sig", alg=ALGORITHM)
        return {"keys": [public]}


def load_or_create_signing_key(home: Path) -> SigningKey:
    """Read ``<home>/auth-signing-key.pem``; create it (mode 600) on first start."""
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
        # Written under a temporary name then renamed, so two processes starting at once
        # never read a half-written key.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        if not path.exists():
            tmp.replace(path)
        else:
            tmp.unlink()
    key = RSAKey.import_key(path.read_bytes())
    return SigningKey(key=key, kid=key.thumbprint())
