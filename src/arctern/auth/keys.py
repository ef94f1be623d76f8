"""The id_token signing key: an RSA key published as keys[0] of the JWKS.

Each process reads it from ``<home>/auth-signing-key.pem``. Before serving, ``share_signing_key``
makes that file hold the key stored (encrypted) in the database, so every API process of a
deployment signs id_tokens with the same key and any of them can answer for the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken
from joserfc.jwk import RSAKey
from sqlalchemy.exc import IntegrityError

from arctern.context import AppContext
from arctern.db.models.auth import SigningKeyRecord
from arctern.secretbox import fernet_for

KEY_FILE = "auth-signing-key.pem"
ALGORITHM = "RS256"
_PURPOSE = b"arctern auth signing key v1"
_RECORD_ID = 1


@dataclass(frozen=True)
class SigningKey:
    key: RSAKey
    kid: str

    def jwks(self) -> dict[str, Any]:
        """The public key set; the SDK takes ``keys[0]`` without looking at ``kid``."""
        public = dict(self.key.as_dict(private=False))
        public.update(kid=self.kid, use="sig", alg=ALGORITHM)
        return {"keys": [public]}


def _write_key_file(path: Path, pem: bytes, *, replace: bool) -> None:
    # Written under a temporary name then renamed, so two processes starting at once never
    # read a half-written key.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    if replace or not path.exists():
        tmp.replace(path)
    else:
        tmp.unlink()


def load_or_create_signing_key(home: Path) -> SigningKey:
    """Read ``<home>/auth-signing-key.pem``; create it (mode 600) on first start."""
    path = home / KEY_FILE
    if not path.exists():
        pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
        _write_key_file(path, pem, replace=False)
    key = RSAKey.import_key(path.read_bytes())
    return SigningKey(key=key, kid=key.thumbprint())


async def share_signing_key(ctx: AppContext) -> SigningKey:
    """Make the home's key file hold the deployment's key from the database.

    The first process to get here stores its key (encrypted with the secret key); every other
    process, on any host, adopts that one.
    """
    settings = ctx.settings
    box = fernet_for(settings.secret_key or "", _PURPOSE)
    async with ctx.db.session() as session:
        record = await session.get(SigningKeyRecord, _RECORD_ID)
    if record is None:
        local = load_or_create_signing_key(settings.home)
        pem = (settings.home / KEY_FILE).read_bytes()
        try:
            async with ctx.db.session() as session:
                session.add(
                    SigningKeyRecord(
                        id=_RECORD_ID,
                        kid=local.kid,
                        private_pem=box.encrypt(pem).decode("ascii"),
                        created_at=ctx.clock.now(),
                    )
                )
            return local
        except IntegrityError:
            pass  # another process stored its key first: adopt that one
        async with ctx.db.session() as session:
            record = await session.get(SigningKeyRecord, _RECORD_ID)
        assert record is not None
    try:
        pem = box.decrypt(record.private_pem.encode("ascii"))
    except InvalidToken:
        raise RuntimeError(
            "the id_token signing key in the database cannot be decrypted: this host's secret "
            "key (ARCTERN_SECRET_KEY) differs from the one the other hosts use"
        ) from None
    path = settings.home / KEY_FILE
    if not path.exists() or path.read_bytes() != pem:
        _write_key_file(path, pem, replace=True)
    return load_or_create_signing_key(settings.home)
