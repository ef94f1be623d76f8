"""The host-to-host data channel of Arctern Connect: framing, errors and task credentials.

Bytes of a transfer between two agents go directly from one host to the other over TLS. The
agent that runs the job connects to the other one, which listens (``arctern connect run
--listen``); the listener's self-signed certificate is pinned by the SHA-256 fingerprint it
announced over the control channel, so no certificate authority is involved.

Every connection starts with a task credential: issued by the deployment for one task, one
collection and one serving endpoint, signed with the deployment's secret, and short-lived.
The serving agent cannot check the signature itself, so it asks the deployment
(``/agent/v1/data/verify``), which answers with the collection and the task owner's grants
there; the serving agent then enforces them on its own roots, as for relayed operations.

A frame is two big-endian 32-bit lengths (header, payload), a JSON header and raw payload
bytes: requests ``{"op": ..., ...}``, answers ``{"ok": ...}`` or ``{"error": {kind, message}}``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

from arctern.connectors.access import AccessGuard
from arctern.connectors.errors import ConnectorError
from arctern.engine.errors import ChecksumMismatch, FileFailed
from arctern.engine.options import FileJob

FRAME = struct.Struct(">II")
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 64 << 20
TOKEN_PREFIX = "adt_"
TOKEN_LIFETIME_SECONDS = 6 * 3600
# A credential for one relayed HTTPS request (a download may stream for a while).
REQUEST_TOKEN_LIFETIME_SECONDS = 3600

# Kinds of central collection the deployment's workers serve to agents that do not listen
# (``connect.central_data``): they take groups of small files and writes at any offset.
CENTRAL_SERVED_CONNECTORS = ("posix",)


# Congestion control of data connections. Across a lossy long link, loss-based cubic (the
# usual default) collapses: measured here through an emulated 50 ms, 0.1% loss link, see
# README "Connect a data host". BBR paces by measured bandwidth and round trip instead. Where
# the kernel lacks it or does not allow it to this user, the system default stays.
CONGESTION_CONTROL = "bbr"


def use_congestion_control(writer: asyncio.StreamWriter, name: str = CONGESTION_CONTROL) -> bool:
    """Ask for ``name`` on this connection's socket; whether the kernel agreed."""
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "TCP_CONGESTION", None)
    if sock is None or option is None or not name:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, name.encode())
    except OSError:
        return False
    return True


class ChannelError(Exception):
    """The peer broke the protocol, or the connection failed."""


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    try:
        head = await reader.readexactly(FRAME.size)
    except asyncio.IncompleteReadError as exc:
        raise ChannelError("the connection was closed") from exc
    header_size, payload_size = FRAME.unpack(head)
    if header_size > MAX_HEADER or payload_size > MAX_PAYLOAD:
        raise ChannelError("frame too large")
    try:
        header = json.loads(await reader.readexactly(header_size))
        payload = await reader.readexactly(payload_size) if payload_size else b""
    except asyncio.IncompleteReadError as exc:
        raise ChannelError("the connection was closed mid-frame") from exc
    except ValueError as exc:
        raise ChannelError("a frame header is not JSON") from exc
    if not isinstance(header, dict):
        raise ChannelError("a frame header is not an object")
    return header, payload


async def write_frame(
    writer: asyncio.StreamWriter, header: dict[str, Any], payload: bytes | memoryview = b""
) -> None:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    writer.write(FRAME.pack(len(encoded), len(payload)) + encoded)
    if payload:
        writer.write(payload)
    await writer.drain()


def fingerprint_of(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


# -- groups of small files -------------------------------------------------------------------
# ``read_small`` and ``write_small`` carry a group of files per frame: a list of jobs in the
# header, their bytes back to back in the payload, and one outcome per file in the answer.


def job_to_wire(job: FileJob, algorithm: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "source_path": job.source_path,
        "destination_path": job.destination_path,
        "size": job.size,
        "mtime": job.mtime,
        "external_checksum": job.external_checksum,
        "key": job.key,
        "algorithm": algorithm,
        **extra,
    }


def job_from_wire(raw: Any) -> tuple[FileJob, str | None]:
    if not isinstance(raw, dict):
        raise ChannelError("a file entry is not an object")
    try:
        key = raw.get("key")
        job = FileJob(
            source_path=str(raw["source_path"]),
            destination_path=str(raw["destination_path"]),
            size=int(raw["size"]),
            mtime=float(raw["mtime"]),
            external_checksum=raw.get("external_checksum"),
            key=None if key is None else int(key),
        )
    except (KeyError, TypeError, ValueError):
        raise ChannelError("a file entry is malformed") from None
    if job.size < 0:
        raise ChannelError("a file entry has a negative size")
    algorithm = raw.get("algorithm")
    return job, None if algorithm is None else str(algorithm)


def split_payload(payload: bytes, sizes: list[int]) -> list[bytes]:
    """The payload cut into the files' bytes; the sizes must add up exactly."""
    if sum(sizes) != len(payload):
        raise ChannelError("the payload does not match the files' sizes")
    parts, at = [], 0
    for size in sizes:
        parts.append(payload[at : at + size])
        at += size
    return parts


def failure_to_wire(exc: BaseException) -> dict[str, Any]:
    """One file's failure as the peer reports it (a fixed set of kinds, no tracebacks)."""
    if isinstance(exc, FileFailed):
        return {
            "kind": "FileFailed",
            "code": exc.code,
            "message": exc.message,
            "quota": exc.quota,
            "source_side": exc.source_side,
        }
    if isinstance(exc, ChecksumMismatch):
        return {"kind": "ChecksumMismatch", "message": str(exc)}
    if isinstance(exc, ConnectorError):
        return {"kind": type(exc).__name__, "message": str(exc)}
    return {"kind": "ConnectorError", "message": f"the peer agent failed: {type(exc).__name__}"}


def failure_from_wire(raw: Any, kinds: dict[str, type[ConnectorError]]) -> BaseException:
    error = raw if isinstance(raw, dict) else {}
    kind, message = str(error.get("kind")), str(error.get("message", ""))
    if kind == "FileFailed":
        return FileFailed(
            str(error.get("code", "FILE_FAILED")),
            message,
            quota=bool(error.get("quota")),
            source_side=bool(error.get("source_side")),
        )
    if kind == "ChecksumMismatch":
        return ChecksumMismatch(message)
    return kinds.get(kind, ConnectorError)(message)


# -- task credentials (deployment side) -------------------------------------------------------


@dataclass(frozen=True)
class DataGrant:
    """What a credential lets its bearer do on the serving side: for a task (``task_id``;
    valid while the task runs), or for one HTTPS request the deployment relays for a caller
    (``task_id`` None; valid for minutes)."""

    task_id: uuid.UUID | None
    collection_id: uuid.UUID
    endpoint_id: uuid.UUID  # the serving agent's endpoint
    guard: AccessGuard | None  # None: the task owner owns the collection
    expires: float


def _key(secret_key: str) -> bytes:
    return hashlib.sha256(b"arctern-connect-data-token\0" + secret_key.encode()).digest()


def issue_token(secret_key: str, grant: DataGrant) -> str:
    body = {
        "t": None if grant.task_id is None else str(grant.task_id),
        "c": str(grant.collection_id),
        "e": str(grant.endpoint_id),
        "g": None if grant.guard is None else grant.guard.to_doc(),
        "x": int(grant.expires),
    }
    raw = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=")
    mac = hmac.new(_key(secret_key), raw, hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=")
    return TOKEN_PREFIX + raw.decode() + "." + signature.decode()


def check_token(secret_key: str, token: str, now: float | None = None) -> DataGrant | None:
    """The grant of a genuine, unexpired token; None otherwise."""
    if not token.startswith(TOKEN_PREFIX) or "." not in token:
        return None
    raw, _, signature = token[len(TOKEN_PREFIX) :].partition(".")
    expected = base64.urlsafe_b64encode(
        hmac.new(_key(secret_key), raw.encode(), hashlib.sha256).digest()
    ).rstrip(b"=")
    if not hmac.compare_digest(expected, signature.encode()):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        grant = DataGrant(
            task_id=None if body["t"] is None else uuid.UUID(body["t"]),
            collection_id=uuid.UUID(body["c"]),
            endpoint_id=uuid.UUID(body["e"]),
            guard=None if body["g"] is None else AccessGuard.from_doc(body["g"]),
            expires=float(body["x"]),
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    if grant.expires <= (time.time() if now is None else now):
        return None
    return grant
