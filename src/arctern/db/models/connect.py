"""Arctern Connect: endpoints on other hosts and the file operations relayed to them.

An ``Endpoint`` is one agent installation (``arctern connect``), owned by an identity. It
authenticates to the agent API with a credential whose hash is stored here; a one-time setup
key (also stored hashed) is exchanged for that credential. Collections whose ``endpoint_id``
names an endpoint are served by that agent.

``AgentRequest`` rows carry relayed file operations: the API process answering a Transfer
request inserts one, whichever API process holds the agent's long poll hands it over, and
the agent's answer is written back to the same row. Going through the database is what lets
several API processes share agents.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from arctern.db.base import Base, UTCDateTime, new_uuid


class Endpoint(Base):
    __tablename__ = "connect_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    display_name: Mapped[str] = mapped_column(String(300), unique=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id"))
    # sha256 hex of the current credential secret; None until the setup key is used.
    credential_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # sha256 hex of the one-time setup key; None once used (or after it expired unused).
    setup_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    setup_key_expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The agent counts as connected while a long poll of it is held (refreshed at each poll).
    connected_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    agent_version: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Where the agent accepts data connections (``host:port``; None: it does not listen),
    # and the SHA-256 of its TLS certificate, which peers pin.
    data_address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    data_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Parallel TCP connections of a transfer with this endpoint (Globus's preferred
    # parallelism); None: the deployment's ``connect_data_streams``.
    data_streams: Mapped[int | None] = mapped_column(nullable=True)


class AgentRequest(Base):
    """One relayed file operation: ``pending`` → ``taken`` (by the agent) → ``done``."""

    __tablename__ = "connect_agent_requests"
    __table_args__ = (Index("ix_connect_agent_requests_endpoint_state", "endpoint_id", "state"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connect_endpoints.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(10), default="pending")
    # {"op", "collection_id", "path", ..., "guard": {"readable": [...], "writable": [...]}|null}
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"ok": ...} or {"error": {"code", "message"}}
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The requester gives up after this; stale rows are removed by later requests.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CentralDataListener(Base):
    """A deployment worker that accepts data connections (``ARCTERN_DATA_LISTEN``).

    Connect agents that do not listen themselves exchange data with central storage by
    connecting to one of these. Each worker renews its row while it runs and ends it when it
    stops; a row is kept after that, because it records that the deployment is set up to
    accept such transfers (a worker restarting must not make submissions fail meanwhile).
    """

    __tablename__ = "connect_central_listeners"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    address: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Live while in the future: renewed every few seconds by the worker.
    live_until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
