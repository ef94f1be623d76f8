"""Junk in, Globus errors out: malformed queries, bodies and ids never produce a 500 or a
framework error body on any Transfer route."""

from __future__ import annotations

import json
import random
import uuid

import httpx
import pytest

from tests.integration.test_transfer_api import Account, login
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

JUNK_STRINGS = [
    "",
    " ",
    "/",
    "..",
    "/../..",
    "~",
    "\u00e9t\u00e9",
    "%00",
    "a" * 5000,
    "name:",
    ":x",
    "a:b/c",
    "status:ACTIVE,,",
    "request_time:x,y",
    "last_modified:2020-01-01",
    "size:>abc",
    "-1",
    "0",
    "99999999999999999999",
    "true",
    "null",
    "DESC",
    "name WRONG",
    "type ASC, name DESC, size",
    "*",
    "[",
]
JUNK_VALUES: list[object] = [
    None,
    True,
    0,
    -5,
    1.5,
    "",
    "x",
    [],
    {},
    [1, "a"],
    {"DATA_TYPE": "nope"},
    "/~/",
    "/../../etc",
    str(uuid.uuid4()),
]


def _routes(c1: str, task: str) -> list[tuple[str, str]]:
    return [
        ("GET", "/endpoint_search"),
        ("GET", f"/endpoint/{c1}"),
        ("GET", f"/endpoint/{c1}/access_list"),
        ("POST", f"/endpoint/{c1}/access"),
        ("PUT", f"/endpoint/{c1}/access/{uuid.uuid4()}"),
        ("GET", f"/endpoint/{c1}/role_list"),
        ("GET", f"/operation/endpoint/{c1}/ls"),
        ("GET", f"/operation/endpoint/{c1}/stat"),
        ("POST", f"/operation/endpoint/{c1}/mkdir"),
        ("POST", f"/operation/endpoint/{c1}/rename"),
        ("GET", "/submission_id"),
        ("POST", "/transfer"),
        ("POST", "/delete"),
        ("GET", "/task_list"),
        ("GET", f"/task/{task}"),
        ("PUT", f"/task/{task}"),
        ("GET", f"/task/{task}/event_list"),
        ("GET", f"/task/{task}/successful_transfers"),
        ("GET", f"/task/{task}/skipped_errors"),
        ("GET", "/bookmark_list"),
        ("POST", "/bookmark"),
        ("PUT", f"/bookmark/{uuid.uuid4()}"),
    ]


QUERY_NAMES = [
    "path",
    "filter",
    "orderby",
    "limit",
    "offset",
    "show_hidden",
    "marker",
    "filter_scope",
    "filter_fulltext",
    "filter_owner_id",
    "filter_non_functional",
    "fields",
]
BODY_FIELDS = [
    "DATA_TYPE",
    "DATA",
    "path",
    "old_path",
    "new_path",
    "source_endpoint",
    "destination_endpoint",
    "endpoint",
    "submission_id",
    "label",
    "deadline",
    "sync_level",
    "verify_checksum",
    "filter_rules",
    "recursive",
    "principal_type",
    "principal",
    "permissions",
    "name",
    "endpoint_id",
    "pinned",
    "expiration_date",
]


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Account:
    return login(server, DEMO_USERNAME, DEMO_PASSWORD)


def test_random_junk_gets_globus_errors(
    server: LiveServer, owner: Account, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A private collection of its own: junk mkdirs and renames must not touch the demo data.
    root = tmp_path_factory.mktemp("junk-root")
    (root / "x").write_text("a file where junk may expect a directory")
    created = server.admin(
        "collection",
        "create",
        "--name",
        f"Junk {uuid.uuid4().hex[:6]}",
        "--posix",
        str(root),
        "--owner",
        DEMO_USERNAME,
        "--private",
    )
    assert created.returncode == 0, created.stderr
    c1 = created.stdout.strip()
    log_start = len(server.log())
    task = str(uuid.uuid4())
    rng = random.Random(20261126)
    base = f"{server.url}/transfer/v0.10"
    headers = {"Authorization": f"Bearer {owner.token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for _ in range(400):
            method, path = rng.choice(_routes(c1, task))
            params = {
                name: rng.choice(JUNK_STRINGS)
                for name in rng.sample(QUERY_NAMES, rng.randint(0, 4))
            }
            content: bytes | None = None
            if method in ("POST", "PUT"):
                shape = rng.random()
                if shape < 0.2:
                    content = rng.choice([b"", b"{", b"[]", b"null", b"\xff\xfe", b"42"])
                else:
                    body = {
                        name: rng.choice(JUNK_VALUES)
                        for name in rng.sample(BODY_FIELDS, rng.randint(0, 6))
                    }
                    if rng.random() < 0.5:
                        body["DATA"] = [
                            {
                                k: rng.choice(JUNK_VALUES)
                                for k in ("source_path", "path", "destination_path", "recursive")
                            }
                        ]
                    content = json.dumps(body).encode()
            response = http.request(method, path, params=params, content=content)
            described = f"{method} {path} {params} {content!r:.200}"
            assert response.status_code < 500 or (
                response.status_code == 502
                and (
                    "ExternalError" in response.json()["code"]
                    or "EndpointError" in response.json()["code"]
                )
            ), f"{described} -> {response.status_code} {response.text[:300]}"
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body.get("code"), str), described
                assert isinstance(body.get("message"), str), described
                assert "detail" not in body, described
    assert "Traceback" not in server.log()[log_start:]
