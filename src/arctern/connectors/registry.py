"""Opens the connector for a collection from its stored kind, root and options."""

from __future__ import annotations

from typing import Any

from arctern.connectors.base import Connector
from arctern.connectors.errors import ConnectorError


class UnknownConnector(ConnectorError):
    code = "ENDPOINT_ERROR"


KINDS = ("posix", "memory", "s3")


def open_connector(
    kind: str,
    root: str,
    options: dict[str, Any] | None = None,
    *,
    fault_injection: str | None = None,
) -> Connector:
    """A ready connector; ``fault_injection`` (test-only) wraps it in a fault injector."""
    options = options or {}
    connector: Connector
    if kind == "posix":
        from arctern.connectors.posix.connector import PosixConnector

        connector = PosixConnector(root, create_root=bool(options.get("create_root", False)))
    elif kind == "memory":
        from arctern.connectors.memory.connector import MemoryConnector, named_store

        connector = MemoryConnector(named_store(root, quota_bytes=options.get("quota_bytes")))
    elif kind == "s3":
        try:
            from arctern.connectors.s3.connector import (  # type: ignore[import-not-found]
                open_s3_connector,
            )
        except ImportError as exc:
            raise UnknownConnector("the S3 connector is not available") from exc
        connector = open_s3_connector(root, options)
    else:
        raise UnknownConnector(f"unknown connector kind {kind!r}")
    if fault_injection:
        from arctern.connectors.faults import FaultInjectingConnector, parse_fault_spec

        connector = FaultInjectingConnector(connector, parse_fault_spec(fault_injection))
    return connector
