"""Guest collections the GCS way, with the unmodified globus-cli: ``globus login --gcs``,
``globus collection create guest``, ``globus gcs collection list``, ``globus collection
show/update/delete``, then sharing it with ``globus endpoint permission create``.

The GCS Manager API is only reached over HTTPS by globus-sdk, so this server serves HTTPS
with a self-signed certificate the clients trust (``REQUESTS_CA_BUNDLE``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import pytest

from tests.conftest import _database_args
from tests.integration.test_auth_globus_cli import GLOBUS
from tests.integration.test_transfer_api import login, make_user
from tests.support.auth_flow import authorize_over_http
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)
BUILTIN_ENDPOINT = "6a7c6e2e-0000-4000-8000-61726374e001"


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("gcs"), extra_args=_database_args(request), tls=True
    )
    try:
        yield server
    finally:
        server.stop()


def trust(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    """This process's clients (globus-sdk, httpx) trust the server's certificate (globus-sdk
    sends prepared requests, which skip REQUESTS_CA_BUNDLE: it has its own variable)."""
    for name in ("GLOBUS_SDK_VERIFY_SSL", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, str(server.certificate))
    return server


@pytest.fixture
def trusting(tls_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    return trust(tls_server, monkeypatch)


def globus(server: LiveServer, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GLOBUS, *args], env=server.client_env(home), capture_output=True, text=True, timeout=120
    )


def cli_login(server: LiveServer, home: Path, user: str, password: str, *args: str) -> None:
    """``globus login [ARGS] --no-local-server``: log in over HTTPS, paste the code."""
    process = subprocess.Popen(
        [GLOBUS, "login", *args, "--no-local-server"],
        env=server.client_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = ""
    while not url.startswith("https://"):
        line = process.stdout.readline()
        assert line, process.communicate()[1]
        url = line.strip()
    code = authorize_over_http(server.url, url, user, password)
    out, err = process.communicate(code + "\n", timeout=120)
    assert process.returncode == 0, out + err


def gcs_token(home: Path) -> str:
    """The CLI's access token for the built-in endpoint (from ``globus login --gcs``)."""
    with sqlite3.connect(home / ".globus" / "cli" / "storage.db") as db:
        for (raw,) in db.execute("SELECT token_data_json FROM token_storage"):
            data = json.loads(raw)
            if data["resource_server"] == BUILTIN_ENDPOINT:
                return str(data["access_token"])
    raise AssertionError("no token for the endpoint")


def test_guest_collection_with_the_globus_cli(trusting: LiveServer, tmp_path: Path) -> None:
    server = trusting
    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    creator_name, creator_password = make_user(server, "gcs-creator")
    creator = login(server, creator_name, creator_password)
    reader = login(server, *make_user(server, "gcs-reader"))
    mapped = next(
        c["id"]
        for c in owner.tc.endpoint_search("Demo Collection 1")
        if c["display_name"] == "Demo Collection 1"
    )
    folder = f"gcs-lab-{uuid.uuid4().hex[:6]}"
    (server.home / "demo" / "collection1" / folder).mkdir()
    (server.home / "demo" / "collection1" / folder / "data.txt").write_text("shared\n")
    owner.tc.add_endpoint_acl_rule(
        mapped,
        {"DATA_TYPE": "access", "principal_type": "identity",
         "principal": creator.identity_id, "path": f"/{folder}/", "permissions": "rw"},
    )  # fmt: skip
    assert (
        owner.tc.get_endpoint(mapped)["gcs_manager_url"] == f"{server.url}/gcs/{BUILTIN_ENDPOINT}"
    )

    cli_login(server, tmp_path, creator_name, creator_password)
    # Without consent for the endpoint, the CLI says how to get it.
    first = globus(server, tmp_path, "collection", "create", "guest", mapped, f"/{folder}/", "x")
    assert first.returncode != 0 and f"globus login --gcs {BUILTIN_ENDPOINT}" in first.stderr
    cli_login(
        server, tmp_path, creator_name, creator_password, "--gcs", f"{BUILTIN_ENDPOINT}:{mapped}"
    )

    name = f"CLI share {uuid.uuid4().hex[:6]}"
    made = globus(
        server, tmp_path, "collection", "create", "guest", mapped, f"/{folder}/", name,
        "--description", "made with the CLI", "-F", "json",
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    guest = json.loads(made.stdout)
    assert guest["collection_type"] == "guest" and guest["mapped_collection_id"] == mapped
    assert guest["collection_base_path"] == f"/{folder}/"

    shown = globus(server, tmp_path, "collection", "show", guest["id"])
    assert shown.returncode == 0, shown.stderr
    assert name in shown.stdout and "guest" in shown.stdout
    # (The token for the endpoint from the login above serves the endpoint's own calls.)
    listed = globus(server, tmp_path, "gcs", "collection", "list", BUILTIN_ENDPOINT, "-F", "json")
    assert listed.returncode == 0, listed.stderr
    ids = {c["id"] for c in json.loads(listed.stdout)["DATA"]}
    assert guest["id"] in ids and mapped in ids
    mine = globus(
        server, tmp_path, "gcs", "collection", "list", BUILTIN_ENDPOINT,
        "--filter", "created-by-me", "-F", "json",
    )  # fmt: skip
    assert [c["id"] for c in json.loads(mine.stdout)["DATA"]] == [guest["id"]]
    renamed = globus(
        server, tmp_path, "collection", "update", guest["id"], "--display-name", name + " v2"
    )
    assert renamed.returncode == 0, renamed.stderr
    assert creator.tc.get_endpoint(guest["id"])["display_name"] == name + " v2"

    # Shared with the reader through the Transfer API's rules, with the CLI.
    shared = globus(
        server, tmp_path, "endpoint", "permission", "create", f"{guest['id']}:/",
        "--permissions", "r", "--identity", reader.identity_id,
    )  # fmt: skip
    assert shared.returncode == 0, shared.stderr
    assert [e["name"] for e in reader.tc.operation_ls(guest["id"], path="/")] == ["data.txt"]
    with pytest.raises(globus_sdk.TransferAPIError):
        reader.tc.operation_ls(mapped, path=f"/{folder}/")

    # Roles on the guest collection, through the GCS API and the CLI.
    gcs = globus_sdk.GCSClient(
        f"{server.url}/gcs/{BUILTIN_ENDPOINT}",
        authorizer=globus_sdk.AccessTokenAuthorizer(gcs_token(tmp_path)),
    )
    made_role = gcs.create_role(
        globus_sdk.GCSRoleDocument(
            collection=guest["id"],
            principal=f"urn:globus:auth:identity:{reader.identity_id}",
            role="activity_monitor",
        )
    )
    roles = globus(server, tmp_path, "collection", "role", "list", guest["id"])
    assert roles.returncode == 0, roles.stderr
    assert "activity_monitor" in roles.stdout and made_role["id"] in roles.stdout
    assert reader.tc.endpoint_manager_monitored_endpoints()["DATA"][0]["id"] == guest["id"]
    gcs.delete_role(made_role["id"])
    assert list(reader.tc.endpoint_manager_monitored_endpoints()) == []

    deleted = globus(server, tmp_path, "collection", "delete", guest["id"])
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(globus_sdk.TransferAPIError) as gone:
        reader.tc.operation_ls(guest["id"], path="/")
    assert gone.value.http_status == 404


def test_the_gcs_api_refuses_what_it_should(trusting: LiveServer) -> None:
    import httpx

    server = trusting
    base = f"{server.url}/gcs/{BUILTIN_ENDPOINT}/api"
    anonymous = httpx.get(f"{base}/collections", verify=str(server.certificate))
    assert anonymous.status_code == 401
    assert anonymous.json()["DATA_TYPE"] == "result#1.0.0"
    assert anonymous.json()["code"] == "unauthorized"
    # A Transfer token is not a token for the endpoint.
    transfer = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    wrong = httpx.get(
        f"{base}/collections",
        headers={"Authorization": f"Bearer {transfer.token}"},
        verify=str(server.certificate),
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "permission_denied"
    nowhere = httpx.get(
        f"{server.url}/gcs/{uuid.uuid4()}/api/collections", verify=str(server.certificate)
    )
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "not_found"


def test_storage_gateway_path_restrictions_bound_everyone(
    trusting: LiveServer, tmp_path: Path
) -> None:
    """An endpoint administrator restricts the POSIX gateway with the GCS API: even the
    collections' owner reaches only the allowed paths, read-only where so restricted,
    nothing beneath a ``none`` path, not through a symlink either; the operator clears it."""
    server = trusting
    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    admin_name, admin_password = make_user(server, "gateway-admin")
    other_name, other_password = make_user(server, "not-admin")
    granted = server.admin("endpoint", "grant-role", "builtin", admin_name, "administrator")
    assert granted.returncode == 0, granted.stderr
    ids = {
        c["display_name"]: c["id"]
        for c in owner.tc.endpoint_search("Demo Collection")
        if c["display_name"] in ("Demo Collection 1", "Demo Collection 2")
    }
    c1, c2 = ids["Demo Collection 1"], ids["Demo Collection 2"]
    root = server.home / "demo" / "collection1"
    top = f"gw-{uuid.uuid4().hex[:6]}"
    for folder in ("allowed/secret", "ro"):
        (root / top / folder).mkdir(parents=True)
    (root / top / "ro" / "f.txt").write_text("read me\n")
    (root / top / "allowed" / "secret" / "s.txt").write_text("hidden\n")
    (root / top / "allowed" / "to-ro").symlink_to(root / top / "ro")

    cli_login(server, tmp_path, admin_name, admin_password, "--gcs", f"{BUILTIN_ENDPOINT}:{c1}")
    listed = globus(
        server, tmp_path, "gcs", "storage-gateway", "list", BUILTIN_ENDPOINT, "-F", "json"
    )
    assert listed.returncode == 0, listed.stderr
    posix = next(
        g for g in json.loads(listed.stdout)["data"]
        if g["connector_id"] == "145812c8-decc-41f1-83cf-bb2a85a2a70b"
    )  # fmt: skip
    assert posix["restrict_paths"] is None
    gcs = globus_sdk.GCSClient(
        f"{server.url}/gcs/{BUILTIN_ENDPOINT}",
        authorizer=globus_sdk.AccessTokenAuthorizer(gcs_token(tmp_path)),
    )
    restrictions = {
        "DATA_TYPE": "path_restrictions#1.0.0",
        "read_write": [f"{root / top / 'allowed'}/"],
        "read": [f"{root / top / 'ro'}/"],
        "none": [f"{root / top / 'allowed' / 'secret'}/"],
    }
    with pytest.raises(globus_sdk.GCSAPIError) as bad:
        gcs.update_storage_gateway(posix["id"], {"restrict_paths": {"read": ["relative/"]}})
    assert bad.value.http_status == 400

    other_home = tmp_path / "other"
    other_home.mkdir()
    cli_login(server, other_home, other_name, other_password, "--gcs", f"{BUILTIN_ENDPOINT}:{c1}")
    outsider = globus_sdk.GCSClient(
        f"{server.url}/gcs/{BUILTIN_ENDPOINT}",
        authorizer=globus_sdk.AccessTokenAuthorizer(gcs_token(other_home)),
    )
    with pytest.raises(globus_sdk.GCSAPIError) as refused:
        outsider.update_storage_gateway(posix["id"], {"restrict_paths": restrictions})
    assert refused.value.http_status == 403

    try:
        updated = gcs.update_storage_gateway(posix["id"], {"restrict_paths": restrictions})
        assert updated["data"][0]["restrict_paths"]["none"] == restrictions["none"]
        assert (
            gcs.get_storage_gateway(posix["id"])["restrict_paths"]["read"] == restrictions["read"]
        )

        tc = owner.tc

        def refused_status(call: object, *args: object, **kwargs: object) -> int:
            with pytest.raises(globus_sdk.TransferAPIError) as caught:
                call(*args, **kwargs)  # type: ignore[operator]
            return int(caught.value.http_status)

        # The collection's owner too: only inside the allowed paths.
        assert refused_status(tc.operation_ls, c1, path="/") == 403
        assert {e["name"] for e in tc.operation_ls(c1, path=f"/{top}/allowed/")} >= {"secret"}
        assert [e["name"] for e in tc.operation_ls(c1, path=f"/{top}/ro/")] == ["f.txt"]
        assert refused_status(tc.operation_ls, c1, path=f"/{top}/allowed/secret/") == 403
        assert refused_status(tc.operation_mkdir, c1, f"/{top}/ro/new") == 403
        tc.operation_mkdir(c1, f"/{top}/allowed/new")
        # A link from a writable folder into the read-only one writes nothing there.
        assert refused_status(tc.operation_mkdir, c1, f"/{top}/allowed/to-ro/new") == 403
        assert not (root / top / "ro" / "new").exists()
        # Collection 2 lies outside every allowed path.
        assert refused_status(tc.operation_ls, c2, path="/") == 403

        copy = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c1)
        copy.add_item(f"/{top}/ro/f.txt", f"/{top}/allowed/copy.txt")
        task = tc.submit_transfer(copy)["task_id"]
        assert tc.task_wait(task, timeout=120, polling_interval=1)
        assert tc.get_task(task)["status"] == "SUCCEEDED"
        assert (root / top / "allowed" / "copy.txt").read_text() == "read me\n"
        into_ro = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c1)
        into_ro.add_item(f"/{top}/allowed/copy.txt", f"/{top}/ro/copy.txt")
        assert refused_status(tc.submit_transfer, into_ro) == 403

        shown = server.admin("gateway", "list")
        assert shown.returncode == 0, shown.stderr
        assert posix["id"] in shown.stdout and "secret" in shown.stdout
    finally:
        cleared = server.admin("gateway", "restrict", posix["id"], "--clear")
        assert cleared.returncode == 0, cleared.stderr
    assert gcs.get_storage_gateway(posix["id"])["restrict_paths"] is None
    owner.tc.operation_ls(c1, path="/")
