"""The listening side of the data channel: serves collections to the peer running a job.

A peer (the worker running a transfer's job: a Connect agent, or one of the deployment's
workers) connects over TLS with this listener's pinned certificate and presents a task
credential. The listener's ``Opener`` turns the credential into the one collection it opens,
under the task owner's grants, or refuses it: a Connect agent asks the deployment
(``/agent/v1/data/verify``) and opens only the roots configured on its own host; the
deployment's workers check the credential themselves (``connect.central_data``). Each
connection then carries connector operations (stat, list, read, writes, checksum, ...) on
that one collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from arctern.connect.datachannel import (
    ChannelError,
    failure_to_wire,
    fingerprint_of,
    job_from_wire,
    read_frame,
    split_payload,
    use_congestion_control,
    write_frame,
)
from arctern.connect.relay import error_answer
from arctern.connectors.base import Connector, WriteState
from arctern.connectors.errors import ConnectorError, ObjectNotFound
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.checksums import UnsupportedAlgorithm, hash_into, new_hasher
from arctern.engine.copier import chunk_fingerprint
from arctern.engine.local import read_small_many, write_small_many

# A task credential -> the collection it opens (guarded), or None when it is refused.
Opener = Callable[[str], Awaitable[Connector | None]]


def make_certificate() -> tuple[bytes, bytes]:
    """A fresh self-signed certificate and its private key (PEM): peers pin its SHA-256
    fingerprint, announced over the control plane, so no name or authority is checked."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "arctern data channel")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_fingerprint(cert_path: Path) -> str:
    return fingerprint_of(ssl.PEM_cert_to_DER_cert(cert_path.read_text()))


class DataServer:
    def __init__(self, open_collection: Opener, cert_path: Path, key_path: Path) -> None:
        self.open_collection = open_collection
        self.cert_path, self.key_path = cert_path, key_path
        self.server: asyncio.Server | None = None
        self.fingerprint = ""

    async def start(self, host: str, port: int) -> str:
        """Listen; returns the bound ``host:port``."""
        self.fingerprint = certificate_fingerprint(self.cert_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        self.server = await asyncio.start_server(self._serve, host, port, ssl=context)
        bound = self.server.sockets[0].getsockname()
        return f"{host}:{bound[1]}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connector: Connector | None = None
        use_congestion_control(writer)  # this side sends when the peer pulls
        try:
            hello, _ = await read_frame(reader)
            connector = await self.open_collection(str(hello.get("token", "")))
            if connector is None:
                await write_frame(
                    writer, {"error": {"kind": "PermissionDenied", "message": "refused"}}
                )
                return
            await write_frame(writer, {"ok": True})
            while True:
                request, payload = await read_frame(reader)
                try:
                    result, data = await _run(connector, request, payload)
                    await write_frame(writer, {"ok": result}, data)
                except ConnectorError as exc:
                    await write_frame(writer, error_answer(exc))
        except (ChannelError, ConnectionError, ssl.SSLError):
            pass  # the peer went away; its job retries or resumes
        finally:
            if connector is not None:
                await connector.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _state(raw: Any) -> WriteState:
    if not isinstance(raw, dict):
        raise ConnectorError("malformed write state")
    try:
        return WriteState(**raw)
    except TypeError:
        raise ConnectorError("malformed write state") from None


async def _read_small(connector: Connector, request: dict[str, Any]) -> tuple[Any, bytes]:
    files = request.get("files")
    if not isinstance(connector, PosixConnector) or not isinstance(files, list):
        raise ConnectorError("malformed group of files")
    work = [job_from_wire(raw) for raw in files]
    outcomes = await asyncio.to_thread(read_small_many, connector, work)
    answers: list[dict[str, Any]] = []
    parts: list[bytes] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            answers.append({"error": failure_to_wire(outcome)})
        else:
            data, checksum = outcome
            answers.append({"size": len(data), "checksum": checksum})
            parts.append(data)
    return answers, b"".join(parts)


async def _write_small(
    connector: Connector, request: dict[str, Any], payload: bytes
) -> tuple[Any, bytes]:
    files = request.get("files")
    if not isinstance(connector, PosixConnector) or not isinstance(files, list):
        raise ConnectorError("malformed group of files")
    jobs = [job_from_wire(raw) for raw in files]
    contents = split_payload(payload, [job.size for job, _algorithm in jobs])
    work = [
        (job, data, algorithm, raw.get("checksum"))
        for (job, algorithm), data, raw in zip(jobs, contents, files, strict=True)
    ]
    outcomes = await asyncio.to_thread(
        write_small_many,
        connector,
        work,
        verify=bool(request.get("verify")),
        preserve_timestamp=bool(request.get("preserve_timestamp")),
        check_data=True,
    )
    return [
        None if outcome is None else {"error": failure_to_wire(outcome)} for outcome in outcomes
    ], b""


MAX_FINGERPRINT_SPAN = 64 << 20


async def _fingerprints(connector: Connector, path: str, spans: Any) -> list[str]:
    """Read written ranges back and fingerprint them here, for the peer's verification."""
    if not isinstance(spans, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) for v in s) for s in spans
    ):
        raise ConnectorError("malformed spans")
    found: list[str] = []
    for offset, length in spans:
        if offset < 0 or not 0 <= length <= MAX_FINGERPRINT_SPAN:
            raise ConnectorError("malformed spans")
        data = await connector.read(path, offset, length)
        found.append((await asyncio.to_thread(chunk_fingerprint, data)).hex())
    return found


# What a checksum computed here reads at a time.
CHECKSUM_READ = 8 << 20


async def _checksum(connector: Connector, path: str, algorithm: str) -> str:
    """The checksum of ``path`` computed here, where the file lies: the peer's sync check
    (level 3) does not bring the file across the link."""
    try:
        hasher = new_hasher(algorithm)
    except UnsupportedAlgorithm as exc:
        raise ConnectorError(str(exc)) from None
    native = await connector.checksum(path, algorithm)
    if native is not None:
        return native
    offset = 0
    while data := await connector.read(path, offset, CHECKSUM_READ):
        await hash_into(hasher, data)
        offset += len(data)
    return hasher.hexdigest()


async def _run(connector: Connector, request: dict[str, Any], payload: bytes) -> tuple[Any, bytes]:
    op = request.get("op")
    path = str(request.get("path", ""))
    if op == "read_small":
        return await _read_small(connector, request)
    if op == "write_small":
        return await _write_small(connector, request, payload)
    if op == "stat":
        return dataclasses.asdict(await connector.stat(path)), b""
    if op == "list":
        return [dataclasses.asdict(info) async for info in connector.list(path)], b""
    if op == "read":
        data = await connector.read(path, int(request["offset"]), int(request["length"]))
        return len(data), data
    if op == "begin_write":
        resume = request.get("resume")
        state = await connector.begin_write(
            path,
            int(request["size"]),
            resume=_state(resume) if resume else None,
            temp_key=request.get("temp_key"),
        )
        return dataclasses.asdict(state), b""
    if op == "write":
        await connector.write(_state(request.get("state")), int(request["offset"]), payload)
        return None, b""
    if op == "commit_write":
        mtime = request.get("mtime")
        await connector.commit_write(
            _state(request.get("state")), path, mtime=None if mtime is None else float(mtime)
        )
        return None, b""
    if op == "abort_write":
        await connector.abort_write(_state(request.get("state")))
        return None, b""
    if op == "fingerprints":
        return await _fingerprints(connector, path, request.get("spans")), b""
    if op == "checksum":
        return await _checksum(connector, path, str(request.get("algorithm"))), b""
    if op == "mkdir":
        await connector.mkdir(
            path, parents=bool(request.get("parents")), exist_ok=bool(request.get("exist_ok"))
        )
        return None, b""
    if op == "rename":
        await connector.rename(str(request.get("old")), str(request.get("new")))
        return None, b""
    if op == "delete":
        await connector.delete(path, recursive=bool(request.get("recursive")))
        return None, b""
    raise ObjectNotFound(f"unknown data channel operation {op!r}")
