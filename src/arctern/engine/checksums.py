"""Checksum algorithms offered to clients, with one incremental interface.

MD5 is the Globus compatibility default; the CRC family is rendered as 8 hex digits.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from typing import Protocol

import google_crc32c

DEFAULT_ALGORITHM = "md5"
ALGORITHMS = ("md5", "sha1", "sha256", "sha512", "adler32", "crc32", "crc32c")

# Hashing a buffer this large releases the GIL for long enough to be worth a thread hop.
THREAD_THRESHOLD = 1 << 20


class Hasher(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...

    def hexdigest(self) -> str: ...


async def hash_into(hasher: Hasher, data: bytes) -> None:
    """``hasher.update(data)``, in a worker thread when ``data`` is large enough."""
    if len(data) >= THREAD_THRESHOLD:
        await asyncio.to_thread(hasher.update, data)
    else:
        hasher.update(data)


# The named constructors: ``hashlib.new(name)`` looks the name up on every call, a visible
# cost when every one of thousands of 4 KiB files gets its own hasher.
_HASHLIB = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}


class _HashlibHasher:
    def __init__(self, name: str) -> None:
        self._h = _HASHLIB[name]()

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class _ZlibHasher:
    def __init__(self, adler: bool) -> None:
        self._adler = adler
        self._value = 1 if adler else 0

    def update(self, data: bytes | memoryview) -> None:
        if self._adler:
            self._value = zlib.adler32(data, self._value)
        else:
            self._value = zlib.crc32(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value & 0xFFFFFFFF:08x}"


class _Crc32cHasher:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | memoryview) -> None:
        # google-crc32c's C extension wants bytes, not a memoryview.
        raw = data if isinstance(data, bytes) else bytes(data)
        self._value = google_crc32c.extend(self._value, raw)

    def hexdigest(self) -> str:
        return f"{self._value & 0xFFFFFFFF:08x}"


class UnsupportedAlgorithm(ValueError):
    pass


def normalize_algorithm(name: str | None) -> str:
    """Canonical lower-case name (``SHA-256`` → ``sha256``); default MD5."""
    if not name:
        return DEFAULT_ALGORITHM
    canonical = name.strip().lower().replace("-", "").replace("_", "")
    if canonical not in ALGORITHMS:
        raise UnsupportedAlgorithm(f"unsupported checksum algorithm {name!r}")
    return canonical


def new_hasher(algorithm: str | None) -> Hasher:
    name = normalize_algorithm(algorithm)
    if name == "adler32":
        return _ZlibHasher(adler=True)
    if name == "crc32":
        return _ZlibHasher(adler=False)
    if name == "crc32c":
        return _Crc32cHasher()
    return _HashlibHasher(name)


def digest(algorithm: str | None, data: bytes) -> str:
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return hasher.hexdigest()


def same_checksum(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()
