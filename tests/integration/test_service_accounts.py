"""Service accounts: a confidential client's own tokens (client_credentials) on the Transfer
API, as pipelines use them with ``globus_sdk.ClientApp`` against Globus.

The client acts as its identity ``<client id>@clients.auth.globus.org`` (whose id is the
client id): it sees only what it is granted, owns and lists its own tasks, and submits and
watches transfers like a user. Driven with the unmodified globus-sdk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_transfer_api import Account, login
from tests.support.auth_flow import create_confidential_client
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)


@dataclass
class Site:
    server: LiveServer
    owner: Account
    c1: str
    c2: str


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(tmp_path_factory.mktemp("svc"), extra_args=_database_args(request))
    try:
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        ids = {d["display_name"]: d["id"] for d in owner.tc.endpoint_search("Demo Collection")}
        yield Site(server, owner, ids["Demo Collection 1"], ids["Demo Collection 2"])
    finally:
        server.stop()


def pipeline_client(
    site: Site, monkeypatch: pytest.MonkeyPatch, client_id: str, secret: str
) -> globus_sdk.TransferClient:
    """A TransferClient of a ``ClientApp``, configured only through the SDK's environment."""
    for key, value in site.server.client_env(site.server.home).items():
        if key.startswith("GLOBUS_SDK_"):
            monkeypatch.setenv(key, value)
    app = globus_sdk.ClientApp("nightly pipeline", client_id=client_id, client_secret=secret)
    return globus_sdk.TransferClient(app=app)


def test_a_client_app_pipeline_submits_and_watches_a_transfer(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, secret = create_confidential_client(site.server, f"Pipeline {uuid.uuid4().hex[:4]}")
    tc = pipeline_client(site, monkeypatch, client_id, secret)

    # Nothing is shared with it yet: the demo collections are not visible to it.
    with pytest.raises(globus_sdk.TransferAPIError) as hidden:
        tc.operation_ls(site.c1)
    assert hidden.value.http_status in (403, 404)

    # The owner grants the client's identity (whose id is the client id) what it needs.
    scratch = f"/svc-{uuid.uuid4().hex[:6]}/"
    site.owner.tc.operation_mkdir(site.c2, scratch)
    for collection, path, permissions in ((site.c1, "/", "r"), (site.c2, scratch, "rw")):
        site.owner.tc.add_endpoint_acl_rule(
            collection,
            {
                "DATA_TYPE": "access",
                "principal_type": "identity",
                "principal": client_id,
                "path": path,
                "permissions": permissions,
            },
        )
    assert "hello.txt" in {e["name"] for e in tc.operation_ls(site.c1)}

    tdata = globus_sdk.TransferData(
        source_endpoint=site.c1, destination_endpoint=site.c2, label="pipeline run"
    )
    tdata.add_item("/hello.txt", f"{scratch}hello.txt")
    task_id = tc.submit_transfer(tdata)["task_id"]
    assert tc.task_wait(task_id, timeout=120, polling_interval=1)
    task = tc.get_task(task_id)
    assert task["status"] == "SUCCEEDED", task.data
    assert task["owner_id"] == client_id
    root = site.server.home / "demo"
    assert (root / "collection2" / scratch.strip("/") / "hello.txt").read_bytes() == (
        root / "collection1" / "hello.txt"
    ).read_bytes()

    # Its tasks are its own: listed for it, not for the owner of the collections.
    assert task_id in {t["task_id"] for t in tc.task_list()}
    assert task_id not in {t["task_id"] for t in site.owner.tc.task_list(limit=100)}
    # Outside what it was granted, it is refused like anyone.
    denied = globus_sdk.TransferData(source_endpoint=site.c1, destination_endpoint=site.c2)
    denied.add_item("/hello.txt", "/elsewhere.txt")
    with pytest.raises(globus_sdk.TransferAPIError) as refused:
        tc.submit_transfer(denied)
    assert refused.value.http_status == 403


def test_the_client_identity_is_not_a_login_choice(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, secret = create_confidential_client(site.server, f"Bot {uuid.uuid4().hex[:4]}")
    # First use makes its identity (and the clients' provider) ...
    pipeline_client(site, monkeypatch, client_id, secret).endpoint_search("Demo")
    # ... which never appears among the institutions of the login page.
    login_page = httpx.get(f"{site.server.url}/auth/login", follow_redirects=True).text
    assert "Example University" in login_page
    assert "clients.auth.globus.org" not in login_page and "Globus Auth clients" not in login_page
