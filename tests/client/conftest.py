"""Fakes at the HTTP boundary for arctern_client unit tests (``responses`` intercepts requests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from arctern_client.deployment import Deployment

BASE = "https://arctern.test"
AUTH = f"{BASE}/auth/"
TRANSFER = f"{BASE}/transfer/"
TRANSFER_API = f"{TRANSFER}v0.10"
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def deployment() -> Deployment:
    return Deployment(auth_url=AUTH, transfer_url=TRANSFER, base_url=BASE)


def token_response(access: str = "access-1", refresh: str | None = "refresh-1") -> dict[str, Any]:
    transfer: dict[str, Any] = {
        "access_token": access,
        "scope": TRANSFER_SCOPE,
        "resource_server": "transfer.api.globus.org",
        "expires_in": 3600,
        "token_type": "Bearer",
    }
    if refresh:
        transfer["refresh_token"] = refresh
    auth = {
        "access_token": f"auth-{access}",
        "scope": "openid profile email",
        "resource_server": "auth.globus.org",
        "expires_in": 3600,
        "token_type": "Bearer",
        "refresh_token": f"auth-{refresh}" if refresh else None,
    }
    return {**auth, "other_tokens": [transfer]}


def task_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "DATA_TYPE": "task",
        "task_id": "3a4b5c6d-0000-4000-8000-000000000001",
        "type": "TRANSFER",
        "status": "ACTIVE",
        "label": None,
        "nice_status": "OK",
        "fatal_error": None,
        "request_time": "2026-11-26T00:00:00+00:00",
        "completion_time": None,
        "source_endpoint_id": "11111111-1111-4111-8111-111111111111",
        "source_endpoint_display_name": "Demo Collection 1",
        "destination_endpoint_id": "22222222-2222-4222-8222-222222222222",
        "destination_endpoint_display_name": "Demo Collection 2",
        "files": 0,
        "files_transferred": 0,
        "files_skipped": 0,
        "directories": 0,
        "bytes_transferred": 0,
        "effective_bytes_per_second": 0,
        "faults": 0,
    }
    doc.update(fields)
    return doc
