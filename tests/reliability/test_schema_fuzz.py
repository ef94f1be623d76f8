"""Property-based fuzzing (schemathesis) of the Transfer and Auth APIs from their served OpenAPI
documents, with a valid token: never a 5xx, and responses match the schema where it documents
them."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.reliability.conftest import Session, create_collection

EXAMPLES = 100  # per operation and mode: the whole fuzz run stays well under two minutes
# Operations whose 5xx is documented Globus behaviour rather than a crash: storage refusals
# are 502 ``ExternalError.*`` (mkdir of an existing directory, rename onto an existing path).
STORAGE_502_PREFIX = "ExternalError."


def _fuzz(
    schema: Any, base_url: str, headers: dict[str, str], known: dict[str, str]
) -> dict[str, int]:
    """Run every operation of ``schema``; returns counts of requests and statuses."""
    stats = {"operations": 0, "requests": 0, "5xx": 0}
    failures: list[str] = []
    http = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        stats["operations"] += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=_strategy(operation, known))
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, session=http, headers=headers, timeout=30)
            stats["requests"] += 1
            status = response.status_code
            stats[f"{status // 100}xx"] = stats.get(f"{status // 100}xx", 0) + 1
            if status >= 500:
                code = _code(response)
                if not (status == 502 and code.startswith(STORAGE_502_PREFIX)):
                    stats["5xx"] += 1
                    failures.append(f"{case.method} {case.formatted_path}: {status} {code}")
                    return
            checks = [response_schema_conformance]
            if status < 500:
                checks.append(not_a_server_error)
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except Exception as exc:
                failures.append(f"{case.method} {case.formatted_path}: {status}: {exc}"[:600])

        run()
    assert failures == [], "\n".join(failures[:20])
    return stats


def _strategy(operation: Any, known: dict[str, str]) -> Any:
    """Valid and invalid inputs (wrong types, missing fields, out-of-range values); path
    parameters are also pinned to existing objects so that deeper code runs."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # nothing to negate in this operation
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    names = {p.name for p in operation.path_parameters}
    if names and names <= set(known):
        pinned = {name: known[name] for name in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned))
    return st.one_of(*strategies)


def _code(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", body.get("error", ""))) if isinstance(body, dict) else ""


@pytest.mark.slow
@pytest.mark.parametrize("service", ["transfer", "auth"])
def test_schemathesis_finds_no_server_errors(shared: Session, service: str, tmp_path: Path) -> None:
    url = f"{shared.server.url}/{service}/openapi.json"
    assert httpx.get(url).status_code == 200
    schema = schemathesis.openapi.from_url(url)
    started = time.monotonic()
    token = shared.token if service == "transfer" else shared.auth_token
    known = _known_objects(shared, tmp_path)
    stats = _fuzz(
        schema, f"{shared.server.url}/{service}", {"Authorization": f"Bearer {token}"}, known
    )
    took = time.monotonic() - started
    print(
        f"\nRELIABILITY fuzz {service}: {stats['operations']} operations, "
        f"{stats['requests']} requests, {took:.0f}s, statuses {stats}"
    )
    assert stats["operations"] > 5


def _known_objects(me: Session, tmp_path: Path) -> dict[str, str]:
    """Ids of real objects the fuzzer may aim at: a collection of its own (so nothing it does
    touches the shared demo data), a finished task, a bookmark, the user's identity."""
    root = tmp_path / "fuzz-root"
    root.mkdir()
    (root / "file.txt").write_bytes(b"fuzz")
    collection = create_collection(me.server, f"Fuzz {uuid.uuid4().hex[:6]}", root)
    task_id = me.transfer(collection, collection, [("/file.txt", "/copy.txt", False)])
    me.wait(task_id)
    bookmark = me.tc.create_bookmark({"endpoint_id": collection, "path": "/", "name": "fuzz"})
    return {
        "endpoint_id": collection,
        "task_id": task_id,
        "bookmark_id": bookmark["id"],
        "identity_id": me.identity_id,
        "id": me.identity_id,
    }
