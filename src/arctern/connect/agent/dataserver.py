"""The listening side of the data channel: serves this agent's collections to peer agents.

A peer (the agent running a transfer's job) connects over TLS with this agent's pinned
certificate and presents a task credential; the deployment tells this agent which of its
collections the credential opens and with what grants (``/agent/v1/data/verify``). Each
connection then carries connector operations (stat, list, read, writes, checksum, ...) on
that one collection, answered by the same POSIX connector and access guard as everything
else on this host: only the roots configured here are reachable.
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

from arctern.connect.agent.home import AgentHome
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
from arctern.connectors.access import AccessGuard, with_guard
from arctern.connectors.base import Connector, WriteState
from arctern.connectors.errors import ConnectorError, ObjectNotFound
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.local import read_small_many, write_small_many

CERT_FILE = "data-cert.pem"
KEY_FILE = "data-key.pem"

# Verifies a task credential with the deployment: (collection id, guard) or None if refused.
Verifier = Callable[[str], Awaitable[tuple[str, AccessGuard | None] | None]]


def ensure_certificate(home: AgentHome) -> tuple[Path, Path, str]:
    """This agent's data certificate and key (made once, mode 0600), and its fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = home.path / CERT_FILE, home.path / KEY_FILE
    if not cert_path.exists() or not key_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "arctern-connect data")])
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
        home.create()
        for path, data in (
            (
                key_path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            ),
            (cert_path, cert.public_bytes(serialization.Encoding.PEM)),
        ):
            path.write_bytes(data)
            path.chmod(0o600)
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text())
    return cert_path, key_path, fingerprint_of(der)


class DataServer:
    def __init__(self, home: AgentHome, verify: Verifier) -> None:
        self.home = home
        self.verify = verify
        self.server: asyncio.Server | None = None
        self.fingerprint = ""

    async def start(self, host: str, port: int) -> str:
        """Listen; returns the bound ``host:port``."""
        cert, key, self.fingerprint = ensure_certificate(self.home)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
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
            granted = await self.verify(str(hello.get("token", "")))
            root = self.home.load_config().root_of(granted[0]) if granted is not None else None
            if granted is None or root is None:
                await write_frame(
                    writer, {"error": {"kind": "PermissionDenied", "message": "refused"}}
                )
                return
            connector = with_guard(PosixConnector(root), granted[1])
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
    if op == "checksum":
        return await connector.checksum(path, str(request.get("algorithm"))), b""
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
