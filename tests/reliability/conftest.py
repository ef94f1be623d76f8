"""Reliability-suite helpers: a logged-in Transfer client on a live server, task waits."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import globus_sdk
import pytest

from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_IDP, LiveServer

TRANSFER_RS = "transfer.api.globus.org"


@dataclass
class Session:
    """A user logged in through the real native-app flow, with the demo collections' ids."""

    server: LiveServer
    token: str
    identity_id: str
    tc: globus_sdk.TransferClient
    c1: str
    c2: str
    auth_token: str = ""

    @property
    def c1_root(self) -> Path:
        return self.server.home / "demo" / "collection1"

    @property
    def c2_root(self) -> Path:
        return self.server.home / "demo" / "collection2"

    @property
    def api(self) -> str:
        return f"{self.server.url}/transfer/v0.10"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def transfer(
        self, source: str, destination: str, items: list[tuple[str, str, bool]], **options: Any
    ) -> str:
        data = globus_sdk.TransferData(
            source_endpoint=source, destination_endpoint=destination, **options
        )
        for src, dst, recursive in items:
            data.add_item(src, dst, recursive=recursive)
        return str(self.tc.submit_transfer(data)["task_id"])

    def wait(self, task_id: str, timeout: float = 60, *, until: Any = None) -> dict[str, Any]:
        """Poll the task document until it is finished (or ``until(doc)`` holds)."""
        end = time.monotonic() + timeout
        while True:
            doc = self.tc.get_task(task_id).data
            if until(doc) if until else doc["status"] in ("SUCCEEDED", "FAILED"):
                return dict(doc)
            if time.monotonic() > end:
                raise AssertionError(f"task {task_id} still {doc['status']}: {doc}")
            time.sleep(0.2)

    def event_codes(self, task_id: str) -> list[str]:
        return [e["code"] for e in self.tc.task_event_list(task_id, limit=1000)]


def login(server: LiveServer, username: str | None = None, password: str | None = None) -> Session:
    if username and password:
        tokens = native_tokens(server, username=username, password=password)
    else:
        tokens = native_tokens(server)
    token = tokens.by_resource_server[TRANSFER_RS]["access_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(token), base_url=f"{server.url}/transfer/"
    )
    found = {e["display_name"]: e["id"] for e in tc.endpoint_search("Demo Collection")}
    return Session(
        server,
        token,
        tokens.decode_id_token()["sub"],
        tc,
        found["Demo Collection 1"],
        found["Demo Collection 2"],
        tokens.by_resource_server["auth.globus.org"]["access_token"],
    )


def make_user(server: LiveServer, prefix: str) -> tuple[str, str]:
    username = f"{prefix}-{uuid.uuid4().hex[:8]}@example.edu"
    password = "pw-" + uuid.uuid4().hex
    result = server.admin(
        "user", "create", username, "--idp", DEMO_IDP, "--password-stdin", input=password + "\n"
    )
    assert result.returncode == 0, result.stderr
    return username, password


def create_collection(server: LiveServer, name: str, root: Path, owner: str | None = None) -> str:
    from tests.support.server import DEMO_USERNAME

    result = server.admin(
        "collection",
        "create",
        "--name",
        name,
        "--posix",
        str(root),
        "--owner",
        owner or DEMO_USERNAME,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split()[-1]


def part_files(root: Path) -> list[Path]:
    """Temporary files the POSIX connector leaves while writing (``.arctern-*.part``)."""
    return [p for p in root.rglob(".arctern-*") if p.is_file() or p.is_symlink()]


def database_url(server: LiveServer) -> str:
    if "--database" in server.extra_args:
        return server.extra_args[server.extra_args.index("--database") + 1]
    return f"sqlite+aiosqlite:///{server.home / 'arctern.db'}"


@pytest.fixture(scope="module")
def shared(server: LiveServer) -> Session:
    """The demo user on the per-process shared demo server."""
    return login(server)


@pytest.fixture
def scratch(shared: Session) -> Iterator[str]:
    """A fresh directory in collection 2 for one test, removed afterwards."""
    name = f"/rel-{uuid.uuid4().hex[:8]}/"
    shared.tc.operation_mkdir(shared.c2, name)
    yield name
    path = shared.c2_root / name.strip("/")
    if path.exists():
        for p in sorted(path.rglob("*"), reverse=True):
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                p.unlink()
        path.rmdir()


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")
