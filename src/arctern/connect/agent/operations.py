"""Runs one relayed file operation on a local collection root, with the POSIX connector.

Confinement is the POSIX connector's own (no ``..``, no symlink escape, resolved beneath the
root). A request from a caller who is not the collection's owner carries that caller's
grants (``guard``); the connector enforces them on the location each path resolves to.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from arctern.connect.agent.home import AgentConfig
from arctern.connect.relay import error_answer
from arctern.connectors.access import AccessGuard, with_guard
from arctern.connectors.errors import ConnectorError, InvalidPath, ObjectNotFound
from arctern.connectors.posix.connector import PosixConnector

OPERATIONS = ("stat", "list", "mkdir", "rename", "delete")


def _text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str):
        raise InvalidPath(f"'{name}' must be a path")
    return value


def _guard(raw: Any) -> AccessGuard | None:
    if raw is None:
        return None
    try:
        return AccessGuard.from_doc(raw)
    except ValueError as exc:
        raise ConnectorError(f"malformed access guard: {exc}") from None


async def execute(config: AgentConfig, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request: ``{"ok": ...}`` or ``{"error": {...}}``."""
    try:
        root = config.root_of(str(request.get("collection_id")))
        if root is None:
            raise ObjectNotFound("this agent does not serve that collection")
        op = request.get("op")
        if op not in OPERATIONS:
            raise ConnectorError(f"unsupported operation {op!r}")
        connector = with_guard(PosixConnector(root), _guard(request.get("guard")))
        try:
            return {"ok": await _run(connector, str(op), request)}
        finally:
            await connector.close()
    except ConnectorError as exc:
        return error_answer(exc)


async def _run(connector: Any, op: str, request: dict[str, Any]) -> Any:
    if op == "stat":
        return dataclasses.asdict(await connector.stat(_text(request, "path")))
    if op == "list":
        return [dataclasses.asdict(info) async for info in connector.list(_text(request, "path"))]
    if op == "mkdir":
        await connector.mkdir(
            _text(request, "path"),
            parents=bool(request.get("parents")),
            exist_ok=bool(request.get("exist_ok")),
        )
        return None
    if op == "rename":
        await connector.rename(_text(request, "old"), _text(request, "new"))
        return None
    await connector.delete(_text(request, "path"), recursive=bool(request.get("recursive")))
    return None
