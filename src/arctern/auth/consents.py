"""Consents: which scope trees an identity has granted to a client (and the consents API view)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from arctern.auth.scopes import ScopeNode, scope_uuid
from arctern.db.models.auth import Consent


def _load(session: Session, identity_id: uuid.UUID, client_id: uuid.UUID) -> list[Consent]:
    return list(
        session.scalars(
            select(Consent).where(
                Consent.identity_id == identity_id,
                Consent.client_id == client_id,
                Consent.status == "approved",
            )
        )
    )


def _find(rows: list[Consent], parent_id: int | None, name: str) -> Consent | None:
    for row in rows:
        if row.parent_id == parent_id and row.scope_name == name:
            return row
    return None


def has_consented(
    session: Session, identity_id: uuid.UUID, client_id: uuid.UUID, nodes: list[ScopeNode]
) -> bool:
    """True when every requested scope (and dependency) was already granted to the client."""
    rows = _load(session, identity_id, client_id)

    def covered(node: ScopeNode, parent_id: int | None) -> bool:
        row = _find(rows, parent_id, node.name)
        return row is not None and all(covered(dep, row.id) for dep in node.dependencies)

    return all(covered(node, None) for node in nodes)


def record_consents(
    session: Session,
    identity_id: uuid.UUID,
    client_id: uuid.UUID,
    nodes: list[ScopeNode],
    now: datetime,
) -> None:
    rows = _load(session, identity_id, client_id)

    def record(node: ScopeNode, parent_id: int | None) -> None:
        row = _find(rows, parent_id, node.name)
        if row is None:
            row = Consent(
                identity_id=identity_id,
                client_id=client_id,
                parent_id=parent_id,
                scope_name=node.name,
                status="approved",
                created=now,
                updated=now,
                last_used=now,
            )
            session.add(row)
            session.flush()
            rows.append(row)
        else:
            row.updated = now
            row.last_used = now
        for dep in node.dependencies:
            record(dep, row.id)

    for node in nodes:
        record(node, None)
    session.flush()


def consent_documents(rows: list[Consent], identity_id: uuid.UUID) -> list[dict[str, Any]]:
    """Globus consent documents; ``dependency_path`` runs from the root to each consent."""
    by_id = {row.id: row for row in rows}

    def path(row: Consent) -> list[int]:
        chain = [row.id]
        current = row
        while current.parent_id is not None and current.parent_id in by_id:
            current = by_id[current.parent_id]
            chain.append(current.id)
        return list(reversed(chain))

    return [
        {
            "id": row.id,
            "client": str(row.client_id),
            "scope": str(scope_uuid(row.scope_name)),
            "scope_name": row.scope_name,
            "effective_identity": str(identity_id),
            "dependency_path": path(row),
            "created": row.created.isoformat(),
            "updated": row.updated.isoformat(),
            "last_used": row.last_used.isoformat(),
            "status": row.status,
            "allows_refresh": True,
            "auto_approved": False,
            "atomically_revocable": row.parent_id is None,
        }
        for row in rows
    ]
