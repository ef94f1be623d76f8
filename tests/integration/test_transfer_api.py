"""The Transfer API through the unmodified globus-sdk: collections, file operations, submission,
task documents and lists, bookmarks, and Globus-shaped errors. Nothing here needs the worker
to run tasks (finished tasks are inserted as rows where a test needs them)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import globus_sdk
import httpx
import pytest

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.transfer import Task, TaskEvent
from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_IDP, LiveServer


@dataclass
class Account:
    username: str
    identity_id: str
    token: str
    tc: globus_sdk.TransferClient


@dataclass
class Env:
    server: LiveServer
    owner: Account
    c1: str
    c2: str
    scratch: str  # a per-module directory in collection 2, e.g. "/api-1a2b3c/"

    @property
    def c2_root(self) -> Path:
        return self.server.home / "demo" / "collection2"


def login(server: LiveServer, username: str, password: str) -> Account:
    tokens = native_tokens(server, username=username, password=password)
    data = tokens.by_resource_server["transfer.api.globus.org"]
    identity = tokens.decode_id_token()["sub"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(data["access_token"]),
        base_url=f"{server.url}/transfer/",
    )
    return Account(username, identity, data["access_token"], tc)


def make_user(server: LiveServer, prefix: str) -> tuple[str, str]:
    username = f"{prefix}-{uuid.uuid4().hex[:8]}@example.edu"
    password = "pw-" + uuid.uuid4().hex
    result = server.admin(
        "user", "create", username, "--idp", DEMO_IDP, "--password-stdin", input=password + "\n"
    )
    assert result.returncode == 0, result.stderr
    return username, password


def database_url(server: LiveServer) -> str:
    if "--database" in server.extra_args:
        return server.extra_args[server.extra_args.index("--database") + 1]
    return f"sqlite+aiosqlite:///{server.home / 'arctern.db'}"


def insert_finished_task(
    server: LiveServer,
    owner_id: str,
    source: str,
    destination: str,
    *,
    status: str,
    label: str,
    request_time: datetime,
) -> str:
    """A finished task row, as the worker leaves it (the worker never touches these again)."""

    async def run() -> str:
        ctx = AppContext.from_settings(
            Settings(home=server.home, database_url=database_url(server))
        )
        try:
            async with ctx.db.session() as session:
                task = Task(
                    submission_id=uuid.uuid4(),
                    owner_id=uuid.UUID(owner_id),
                    type="TRANSFER",
                    status=status,
                    nice_status=None,
                    label=label,
                    source_endpoint_id=uuid.UUID(source),
                    destination_endpoint_id=uuid.UUID(destination),
                    options={"verify_checksum": True, "sync_level": 3},
                    request_time=request_time,
                    completion_time=request_time + timedelta(seconds=10),
                    deadline=request_time + timedelta(days=1),
                    fatal_error=(
                        {"code": "FILE_NOT_FOUND", "description": "file not found"}
                        if status == "FAILED"
                        else None
                    ),
                    planned=True,
                    files=2,
                    files_transferred=2 if status == "SUCCEEDED" else 0,
                    bytes_transferred=1000 if status == "SUCCEEDED" else 0,
                )
                session.add(task)
                await session.flush()
                for n in range(3):
                    session.add(
                        TaskEvent(
                            task_id=task.id,
                            time=request_time + timedelta(seconds=n),
                            code=["STARTED", "PROGRESS", "FILE_NOT_FOUND"][n],
                            description=["started", "progress", "file not found"][n],
                            details="{}",
                            is_error=n == 2,
                        )
                    )
                return str(task.id)
        finally:
            await ctx.db.dispose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def env(server: LiveServer) -> Iterator[Env]:
    from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME

    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    found = {e["display_name"]: e["id"] for e in owner.tc.endpoint_search("Demo Collection")}
    scratch = f"/api-{uuid.uuid4().hex[:6]}/"
    c2 = found["Demo Collection 2"]
    owner.tc.operation_mkdir(c2, scratch)
    yield Env(server, owner, found["Demo Collection 1"], c2, scratch)


@pytest.fixture(scope="module")
def other(env: Env) -> Account:
    """A second user with no rules at all."""
    username, password = make_user(env.server, "other")
    return login(env.server, username, password)


def api_error(excinfo: pytest.ExceptionInfo[globus_sdk.TransferAPIError]) -> tuple[int, str]:
    return excinfo.value.http_status, str(excinfo.value.code)


# -- collections -------------------------------------------------------------------------


def test_endpoint_search_finds_both_demo_collections(env: Env) -> None:
    results = list(env.owner.tc.endpoint_search("demo collection"))
    names = sorted(r["display_name"] for r in results)
    assert names == ["Demo Collection 1", "Demo Collection 2"]
    mine = env.owner.tc.endpoint_search(filter_scope="my-endpoints")
    assert {r["id"] for r in mine} >= {env.c1, env.c2}
    assert mine["has_next_page"] is False
    first = env.owner.tc.endpoint_search("demo collection", limit=1)
    assert len(first["DATA"]) == 1 and first["has_next_page"] is True
    second = env.owner.tc.endpoint_search("demo collection", limit=1, offset=1)
    assert second["has_next_page"] is False
    assert first["DATA"][0]["id"] != second["DATA"][0]["id"]
    assert list(env.owner.tc.endpoint_search("no-such-thing-anywhere")) == []


def test_endpoint_document(env: Env) -> None:
    doc = env.owner.tc.get_endpoint(env.c1)
    assert doc["DATA_TYPE"] == "endpoint"
    assert doc["id"] == env.c1
    assert doc["display_name"] == "Demo Collection 1"
    # A GCSv5 mapped collection of the built-in endpoint (the deployment's own storage).
    assert doc["entity_type"] == "GCSv5_mapped_collection"
    assert doc["host_endpoint_id"] == "6a7c6e2e-0000-4000-8000-61726374e001"
    assert doc["gcs_version"].startswith("5.")
    assert doc["https_server"] == f"{env.server.url}/https/{env.c1}"
    assert doc["owner_string"] == env.owner.username
    # As with Globus: the endpoint's identity (globus-cli finds the endpoint from it).
    assert doc["owner_id"] == doc["host_endpoint_id"]
    assert doc["default_directory"] == "/~/"
    assert doc["is_globus_connect"] is False
    assert doc["subscription_id"] is None and doc["high_assurance"] is False
    assert doc["my_effective_roles"] == ["administrator"]
    roles = env.owner.tc.endpoint_role_list(env.c1)
    assert [(r["principal"], r["role"]) for r in roles] == [
        (env.owner.identity_id, "administrator")
    ]


def test_other_users_see_public_collections_without_roles(env: Env, other: Account) -> None:
    doc = other.tc.get_endpoint(env.c2)
    assert doc["display_name"] == "Demo Collection 2" and doc["my_effective_roles"] == []
    assert other.tc.endpoint_search(filter_scope="my-endpoints")["DATA"] == []
    assert other.tc.endpoint_search(filter_scope="shared-with-me")["DATA"] == []


def test_unknown_endpoint_is_a_globus_404(env: Env) -> None:
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        env.owner.tc.get_endpoint(str(uuid.uuid4()))
    assert api_error(excinfo) == (404, "EndpointNotFound")
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        env.owner.tc.operation_ls("not-a-uuid")
    assert api_error(excinfo) == (404, "EndpointNotFound")


# -- file operations ---------------------------------------------------------------------


def test_ls_home_and_paths(env: Env) -> None:
    listing = env.owner.tc.operation_ls(env.c1)
    assert listing["DATA_TYPE"] == "file_list"
    assert listing["path"] == "/~/"
    names = {f["name"]: f for f in listing}
    assert {"README.txt", "hello.txt", "large.bin", "nested", "data"} <= set(names)
    assert names["nested"]["type"] == "dir"
    assert names["large.bin"]["size"] == 20 * 1024 * 1024
    assert names["hello.txt"]["DATA_TYPE"] == "file"
    assert len(names["hello.txt"]["permissions"]) == 4
    datetime.fromisoformat(names["hello.txt"]["last_modified"])
    assert env.owner.tc.operation_ls(env.c1, path="/nested")["path"] == "/nested/"
    inner = env.owner.tc.operation_ls(env.c1, path="/~/nested/dir/")
    assert inner["path"] == "/~/nested/dir/"
    assert sorted(f["name"] for f in inner) == ["another.txt", "file.txt"]


def test_ls_hidden_filter_orderby_paging(env: Env) -> None:
    folder = env.c2_root / env.scratch.strip("/") / "lsdir"
    (folder / "sub").mkdir(parents=True)
    for name, size in (("a.txt", 1), ("b.txt", 5), ("c.dat", 3), (".secret", 2)):
        (folder / name).write_bytes(b"x" * size)
    path = env.scratch + "lsdir/"
    tc = env.owner.tc

    def names(**kwargs: object) -> list[str]:
        return [f["name"] for f in tc.operation_ls(env.c2, path=path, **kwargs)]

    assert ".secret" in names()
    assert ".secret" not in names(show_hidden=False)
    assert names(show_hidden=False) == ["sub", "a.txt", "b.txt", "c.dat"]
    assert names(filter="name:~*.txt") == ["a.txt", "b.txt"]
    assert names(filter={"type": "dir"}) == ["sub"]
    # Several filters are alternatives: the CLI's recursive ls depends on it.
    assert names(filter=[{"type": "dir"}, {"name": "c.dat"}]) == ["sub", "c.dat"]
    assert names(filter="name:!~*.txt", show_hidden=False) == ["sub", "c.dat"]
    assert names(orderby="name DESC", show_hidden=False) == ["sub", "c.dat", "b.txt", "a.txt"]
    assert names(orderby="size DESC", filter="type:file", show_hidden=False)[0] == "b.txt"
    paged = tc.operation_ls(env.c2, path=path, show_hidden=False, limit=2, offset=1)
    assert [f["name"] for f in paged] == ["a.txt", "b.txt"]
    assert paged["total"] == 4
    # An empty filter means no filter.
    raw = httpx.get(
        f"{env.server.url}/transfer/v0.10/operation/endpoint/{env.c2}/ls",
        params={"path": path, "filter": "", "show_hidden": "0"},
        headers={"Authorization": f"Bearer {env.owner.token}"},
    )
    assert raw.status_code == 200 and raw.json()["length"] == 4


def test_ls_errors(env: Env) -> None:
    tc = env.owner.tc
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_ls(env.c1, path="/no/such/dir/")
    assert api_error(excinfo) == (404, "ClientError.NotFound")
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_ls(env.c1, path="/hello.txt")
    assert api_error(excinfo) == (502, "ExternalError.DirListingFailed.NotDirectory")
    for escape in ("/../", "/~/../../etc/", "/nested/../../"):
        with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
            tc.operation_ls(env.c1, path=escape)
        assert excinfo.value.http_status == 403, escape


def test_stat(env: Env) -> None:
    doc = env.owner.tc.operation_stat(env.c1, "/~/hello.txt")
    assert doc["name"] == "hello.txt" and doc["type"] == "file"
    assert doc["size"] == len("Hello from Demo Collection 1.\n")
    assert env.owner.tc.operation_stat(env.c1, "/nested")["type"] == "dir"
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        env.owner.tc.operation_stat(env.c1, "/missing.txt")
    assert api_error(excinfo) == (404, "ClientError.NotFound")


def test_mkdir_and_rename(env: Env) -> None:
    tc = env.owner.tc
    base = env.scratch + "ops/"
    result = tc.operation_mkdir(env.c2, base)
    assert result["code"] == "DirectoryCreated"
    assert (env.c2_root / base.strip("/")).is_dir()
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_mkdir(env.c2, base)
    assert api_error(excinfo) == (502, "ExternalError.MkdirFailed.Exists")
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_mkdir(env.c2, base + "missing/parent/")
    assert excinfo.value.http_status == 404
    (env.c2_root / base.strip("/") / "f.txt").write_text("data")
    renamed = tc.operation_rename(env.c2, base + "f.txt", base + "g.txt")
    assert renamed["code"] == "FileRenamed"
    assert (env.c2_root / base.strip("/") / "g.txt").read_text() == "data"
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_rename(env.c2, base + "nope.txt", base + "x.txt")
    assert api_error(excinfo) == (404, "ClientError.NotFound")
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.operation_rename(env.c2, base + "g.txt", "/../outside.txt")
    assert excinfo.value.http_status == 403
    assert not (env.server.home / "demo" / "outside.txt").exists()


# -- submission and tasks ----------------------------------------------------------------


def test_submission_is_idempotent_and_task_document_is_complete(env: Env) -> None:
    tc = env.owner.tc
    sid = tc.get_submission_id()["value"]
    uuid.UUID(sid)
    tdata = globus_sdk.TransferData(
        source_endpoint=env.c1,
        destination_endpoint=env.c2,
        label="idempotent submission",
        submission_id=sid,
        sync_level="checksum",
        verify_checksum=True,
        preserve_timestamp=True,
    )
    tdata.add_item("/hello.txt", env.scratch + "idem/hello.txt")
    first = tc.submit_transfer(tdata)
    assert first.http_status == 202
    assert first["code"] == "Accepted" and first["submission_id"] == sid
    again = tc.submit_transfer(tdata)
    assert again["code"] == "Duplicate"
    assert again["task_id"] == first["task_id"]
    task = tc.get_task(first["task_id"])
    for field in (
        "task_id",
        "type",
        "status",
        "label",
        "owner_id",
        "request_time",
        "completion_time",
        "deadline",
        "source_endpoint_id",
        "source_endpoint_display_name",
        "destination_endpoint_id",
        "destination_endpoint_display_name",
        "sync_level",
        "verify_checksum",
        "preserve_timestamp",
        "encrypt_data",
        "delete_destination_extra",
        "files",
        "directories",
        "files_skipped",
        "files_transferred",
        "bytes_transferred",
        "bytes_checksummed",
        "effective_bytes_per_second",
        "subtasks_total",
        "subtasks_pending",
        "subtasks_retrying",
        "subtasks_succeeded",
        "subtasks_failed",
        "subtasks_canceled",
        "subtasks_expired",
        "subtasks_skipped_errors",
        "faults",
        "nice_status",
        "is_paused",
        "fatal_error",
        "history_deleted",
        "command",
    ):
        assert field in task.data, field
    assert task["type"] == "TRANSFER"
    assert task["status"] in ("ACTIVE", "SUCCEEDED")
    assert task["label"] == "idempotent submission"
    assert task["sync_level"] == 3 and task["verify_checksum"] is True
    assert task["source_endpoint_display_name"] == "Demo Collection 1"
    assert task["destination_endpoint_display_name"] == "Demo Collection 2"
    assert task["owner_id"] == env.owner.identity_id
    datetime.fromisoformat(task["request_time"])


def test_submission_validation_errors(env: Env) -> None:
    tc = env.owner.tc

    def submit(**fields: object) -> globus_sdk.TransferData:
        tdata = globus_sdk.TransferData(
            source_endpoint=fields.pop("source", env.c1),
            destination_endpoint=fields.pop("destination", env.c2),
            **fields,  # type: ignore[arg-type]
        )
        return tdata

    empty = submit()
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.submit_transfer(empty)
    assert api_error(excinfo) == (400, "ClientError.BadRequest.NoTransferItems")

    cases: list[tuple[globus_sdk.TransferData, int]] = []
    bad_sync = submit(additional_fields={"sync_level": 7})
    bad_sync.add_item("/hello.txt", env.scratch + "x")
    cases.append((bad_sync, 400))
    bad_bool = submit(additional_fields={"verify_checksum": "yes"})
    bad_bool.add_item("/hello.txt", env.scratch + "x")
    cases.append((bad_bool, 400))
    recursive_checksum = submit()
    recursive_checksum["DATA"].append(
        {
            "DATA_TYPE": "transfer_item",
            "source_path": "/nested",
            "destination_path": "/y",
            "recursive": True,
            "external_checksum": "abc",
        }
    )
    cases.append((recursive_checksum, 400))
    bad_filter = submit(additional_fields={"filter_rules": [{"method": "maybe", "name": "*"}]})
    bad_filter.add_item("/nested", env.scratch + "x", recursive=True)
    cases.append((bad_filter, 400))
    past = submit(deadline="2001-01-01 00:00:00")
    past.add_item("/hello.txt", env.scratch + "x")
    cases.append((past, 400))
    unknown_endpoint = submit(destination=str(uuid.uuid4()))
    unknown_endpoint.add_item("/hello.txt", env.scratch + "x")
    cases.append((unknown_endpoint, 404))
    escape = submit()
    escape.add_item("/hello.txt", "/../../escaped.txt")
    cases.append((escape, 403))
    eats_source = submit(destination=env.c1, delete_destination_extra=True)
    eats_source.add_item("/nested/dir", "/nested", recursive=True)
    cases.append((eats_source, 400))
    onto_itself = submit(destination=env.c1)
    onto_itself.add_item("/nested", "/nested/inner", recursive=True)
    cases.append((onto_itself, 400))
    for tdata, status in cases:
        with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
            tc.submit_transfer(tdata)
        assert excinfo.value.http_status == status, tdata
        assert excinfo.value.message


def test_raw_error_bodies(env: Env) -> None:
    base = f"{env.server.url}/transfer/v0.10"
    auth = {"Authorization": f"Bearer {env.owner.token}"}
    checks = [
        httpx.post(f"{base}/transfer", content=b"{not json", headers=auth),
        httpx.post(f"{base}/transfer", content=b"[1, 2]", headers=auth),
        httpx.post(f"{base}/delete", json={"DATA_TYPE": "delete", "DATA": []}, headers=auth),
        httpx.get(f"{base}/task_list", params={"limit": "many"}, headers=auth),
        httpx.get(f"{base}/task_list", params={"filter": "colour:blue"}, headers=auth),
        httpx.get(f"{base}/task/{uuid.uuid4()}", headers=auth),
        httpx.get(f"{base}/task/not-a-task", headers=auth),
        httpx.post(f"{base}/task/{uuid.uuid4()}/cancel", headers=auth),
        httpx.get(f"{base}/no/such/route", headers=auth),
        httpx.get(f"{base}/task_list", headers={"Authorization": "Bearer nonsense"}),
        httpx.get(f"{base}/task_list"),
    ]
    expected = [400, 400, 400, 400, 400, 404, 404, 404, 404, 401, 401]
    for response, status in zip(checks, expected, strict=True):
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) >= {"code", "message", "request_id", "resource"}, body
        assert "detail" not in body
        assert isinstance(body["code"], str) and isinstance(body["message"], str)
    assert checks[5].json()["code"] == "ClientError.NotFound"
    assert checks[9].json()["code"] == "ClientError.AuthenticationFailed"


def test_request_body_limits(env: Env) -> None:
    base = f"{env.server.url}/transfer/v0.10"
    auth = {"Authorization": f"Bearer {env.owner.token}"}
    huge = httpx.post(
        f"{base}/transfer",
        content=b" " * (101 * 1024 * 1024),
        headers={**auth, "Content-Type": "application/json"},
        timeout=60,
    )
    assert huge.status_code == 413 and huge.json()["code"] == "ClientError.RequestTooLarge"
    items = [
        {
            "DATA_TYPE": "transfer_item",
            "source_path": f"/f{i}",
            "destination_path": f"/g{i}",
            "recursive": False,
        }
        for i in range(100_001)
    ]
    many = httpx.post(
        f"{base}/transfer",
        json={
            "DATA_TYPE": "transfer",
            "source_endpoint": env.c1,
            "destination_endpoint": env.c2,
            "DATA": items,
        },
        headers=auth,
        timeout=60,
    )
    assert many.status_code == 413, many.text


def test_task_list_filters_and_finished_task_rules(env: Env) -> None:
    username, password = make_user(env.server, "lister")
    user = login(env.server, username, password)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ok = insert_finished_task(
        env.server,
        user.identity_id,
        env.c1,
        env.c2,
        status="SUCCEEDED",
        label="Nightly Backup",
        request_time=t0,
    )
    bad = insert_finished_task(
        env.server,
        user.identity_id,
        env.c1,
        env.c2,
        status="FAILED",
        label="weekly sync",
        request_time=t0 + timedelta(days=2),
    )
    tc = user.tc

    def ids(**kwargs: object) -> list[str]:
        response = tc.task_list(**kwargs)  # type: ignore[arg-type]
        if "offset" not in kwargs:
            assert response["total"] == len(response["DATA"])
        return [t["task_id"] for t in response]

    assert ids() == [bad, ok]  # newest first
    assert ids(filter={"status": "SUCCEEDED"}) == [ok]
    assert ids(filter={"status": "FAILED"}) == [bad]
    assert ids(filter={"status": "ACTIVE"}) == []
    assert ids(filter={"status": ["SUCCEEDED", "FAILED"], "type": "TRANSFER"}) == [bad, ok]
    assert ids(filter={"type": "DELETE"}) == []
    assert ids(filter="label:~nightly*") == [ok]
    assert ids(filter="label:=weekly sync") == [bad]
    assert ids(filter="label:!~*backup") == [bad]
    assert ids(filter="request_time:2026-01-02 00:00:00,") == [bad]
    assert ids(filter="request_time:,2026-01-02T00:00:00+00:00") == [ok]
    assert ids(orderby="request_time ASC") == [ok, bad]
    assert ids(limit=1, offset=1) == [ok]
    assert tc.task_list(limit=1)["total"] == 2
    # Another user's task list never shows these tasks.
    assert ok not in [t["task_id"] for t in env.owner.tc.task_list(limit=1000)]

    doc = tc.get_task(bad)
    assert doc["status"] == "FAILED"
    assert doc["fatal_error"]["code"] == "FILE_NOT_FOUND"
    assert doc["completion_time"] and doc["nice_status"] is None
    assert tc.get_task(ok)["effective_bytes_per_second"] == 100

    cancel = tc.cancel_task(ok)
    assert cancel.http_status == 200 and cancel["code"] == "TaskComplete"
    assert tc.get_task(ok)["status"] == "SUCCEEDED"
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.update_task(ok, {"label": "too late"})
    assert excinfo.value.http_status == 409

    events = tc.task_event_list(bad)
    assert events["total"] == 3
    assert [e["code"] for e in events] == ["FILE_NOT_FOUND", "PROGRESS", "STARTED"]
    errors = tc.task_event_list(bad, query_params={"filter": "is_error:1"})
    assert [e["code"] for e in errors] == ["FILE_NOT_FOUND"] and errors["total"] == 1
    assert tc.task_pause_info(bad)["pause_rules"] == []

    for call in (env.owner.tc.get_task, env.owner.tc.cancel_task, env.owner.tc.task_event_list):
        with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
            call(ok)
        assert api_error(excinfo) == (404, "ClientError.NotFound")


def test_update_task_label_and_deadline(env: Env) -> None:
    tdata = globus_sdk.TransferData(
        source_endpoint=env.c1, destination_endpoint=env.c2, label="before"
    )
    tdata.add_item("/large.bin", env.scratch + "update/large.bin")
    task_id = env.owner.tc.submit_transfer(tdata)["task_id"]
    deadline = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    try:
        result = env.owner.tc.update_task(
            task_id, {"label": "after", "deadline": deadline.isoformat()}
        )
    except globus_sdk.TransferAPIError as exc:
        # The worker may finish a 20 MB copy first; then updates are refused.
        assert exc.http_status == 409
        return
    assert result["code"] == "Updated"
    doc = env.owner.tc.get_task(task_id)
    assert doc["label"] == "after"
    assert datetime.fromisoformat(doc["deadline"]) == deadline


# -- bookmarks ---------------------------------------------------------------------------


def test_bookmarks(env: Env) -> None:
    tc = env.owner.tc
    name = f"bm-{uuid.uuid4().hex[:6]}"
    created = tc.create_bookmark({"endpoint_id": env.c1, "path": "/~/nested/", "name": name})
    assert created["name"] == name and created["endpoint_id"] == env.c1
    assert created["path"] == "/~/nested/" and created["pinned"] is False
    listed = {b["id"]: b for b in tc.bookmark_list()}
    assert created["id"] in listed
    assert tc.get_bookmark(created["id"])["name"] == name
    assert tc.update_bookmark(created["id"], {"name": name + "-x"})["name"] == name + "-x"
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.create_bookmark({"endpoint_id": str(uuid.uuid4()), "path": "/", "name": "nope"})
    assert api_error(excinfo) == (404, "EndpointNotFound")
    assert tc.delete_bookmark(created["id"])["code"] == "Deleted"
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.get_bookmark(created["id"])
    assert excinfo.value.http_status == 404


def wait_done(tc: globus_sdk.TransferClient, task_id: str, timeout: float = 60) -> dict:  # type: ignore[type-arg]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = tc.get_task(task_id)
        if doc["status"] != "ACTIVE":
            return doc.data
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} did not finish")


def test_skipped_errors_successful_transfers_and_recent_collections(env: Env) -> None:
    tc = env.owner.tc
    tdata = globus_sdk.TransferData(
        source_endpoint=env.c1, destination_endpoint=env.c2, skip_source_errors=True
    )
    tdata.add_item("/hello.txt", env.scratch + "skip/hello.txt")
    tdata.add_item("/missing.txt", env.scratch + "skip/missing.txt")
    task_id = tc.submit_transfer(tdata)["task_id"]
    doc = wait_done(tc, task_id)
    assert doc["status"] == "SUCCEEDED", doc
    successful = list(tc.paginated.task_successful_transfers(task_id).items())
    assert [s["destination_path"] for s in successful] == [env.scratch + "skip/hello.txt"]
    assert successful[0]["size"] == len("Hello from Demo Collection 1.\n")
    skipped = list(tc.paginated.task_skipped_errors(task_id).items())
    assert [(s["source_path"], s["error_code"]) for s in skipped] == [
        ("/missing.txt", "FILE_NOT_FOUND")
    ]
    recent = [e["id"] for e in tc.endpoint_search(filter_scope="recently-used")]
    assert set(recent) >= {env.c1, env.c2}


def test_successful_transfers_of_a_real_copy_page_through_its_runs(env: Env) -> None:
    """Files copied in groups are recorded as runs: the listing pages through them by marker
    (three batches, several runs each), every file once, in plan order, with its checksum."""
    folder = env.server.home / "demo" / "collection1" / f"many-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    names = [f"f{n:04d}.txt" for n in range(2400)]
    for name in names:
        (folder / name).write_text(name)
    tc = env.owner.tc
    tdata = globus_sdk.TransferData(
        source_endpoint=env.c1, destination_endpoint=env.c2, verify_checksum=True
    )
    tdata.add_item(f"/{folder.name}/", env.scratch + "many/", recursive=True)
    task_id = tc.submit_transfer(tdata)["task_id"]
    doc = wait_done(tc, task_id, timeout=180)
    assert doc["status"] == "SUCCEEDED" and doc["files_transferred"] == 2400, doc
    first = tc.task_successful_transfers(task_id)
    assert len(first["DATA"]) == 1000 and first["next_marker"] is not None
    done = list(tc.paginated.task_successful_transfers(task_id).items())
    # The walk is in name order, and so are the files' ids.
    assert [d["destination_path"] for d in done] == [f"{env.scratch}many/{n}" for n in names]
    assert all(d["checksum_algorithm"] == "MD5" and len(d["checksum"]) == 32 for d in done)
    sample = next(d for d in done if d["source_path"].endswith("/f0123.txt"))
    assert sample["size"] == len("f0123.txt")
    assert sample["checksum"] == hashlib.md5(b"f0123.txt").hexdigest()


def test_delete_task(env: Env) -> None:
    tc = env.owner.tc
    folder = env.c2_root / env.scratch.strip("/") / "del"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_text("x")
    (folder / "y.txt").write_text("y")
    ddata = globus_sdk.DeleteData(endpoint=env.c2, recursive=True, label="cleanup")
    ddata.add_item(env.scratch + "del/sub")
    ddata.add_item(
        env.scratch + "del/not-there",
    )
    task_id = tc.submit_delete(ddata)["task_id"]
    doc = wait_done(tc, task_id)
    assert doc["type"] == "DELETE" and doc["destination_endpoint_id"] is None
    assert doc["source_endpoint_id"] == env.c2
    assert doc["status"] == "FAILED"  # a missing path without ignore_missing
    ddata = globus_sdk.DeleteData(endpoint=env.c2, recursive=True, ignore_missing=True)
    ddata.add_item(env.scratch + "del/sub")
    ddata.add_item(env.scratch + "del/not-there")
    doc = wait_done(tc, tc.submit_delete(ddata)["task_id"])
    assert doc["status"] == "SUCCEEDED", doc
    assert sorted(p.name for p in folder.iterdir()) == ["y.txt"]


def test_tokens_for_other_resource_servers_are_refused(env: Env) -> None:
    tokens = native_tokens(env.server, scopes=["openid", "profile"])
    auth_token = tokens.by_resource_server["auth.globus.org"]["access_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(auth_token),
        base_url=f"{env.server.url}/transfer/",
    )
    with pytest.raises(globus_sdk.TransferAPIError) as excinfo:
        tc.endpoint_search("Demo")
    assert api_error(excinfo) == (401, "ClientError.AuthenticationFailed")


def test_successful_transfers_marker_paging(env: Env) -> None:
    from arctern.db.models.work import TaskFile

    username, password = make_user(env.server, "pager")
    user = login(env.server, username, password)
    task_id = insert_finished_task(
        env.server,
        user.identity_id,
        env.c1,
        env.c2,
        status="SUCCEEDED",
        label="many files",
        request_time=datetime(2026, 2, 1, tzinfo=UTC),
    )

    async def add_files() -> None:
        ctx = AppContext.from_settings(
            Settings(home=env.server.home, database_url=database_url(env.server))
        )
        try:
            async with ctx.db.session() as session:
                now = datetime.now(UTC)
                session.add_all(
                    TaskFile(
                        task_id=uuid.UUID(task_id),
                        source_path=f"/src/f{n:05d}",
                        destination_path=f"/dst/f{n:05d}",
                        size=n,
                        state="done" if n % 10 else "skipped",
                        error_code=None if n % 10 else "PERMISSION_DENIED",
                        error_message=None if n % 10 else "denied",
                        checksum_algorithm="MD5",
                        checksum=f"{n:032x}",
                        done_time=now,
                    )
                    for n in range(2500)
                )
        finally:
            await ctx.db.dispose()

    asyncio.run(add_files())
    first = user.tc.task_successful_transfers(task_id)
    assert first["next_marker"] is not None and len(first["DATA"]) == 1000
    done = list(user.tc.paginated.task_successful_transfers(task_id).items())
    assert len(done) == 2250
    assert [d["source_path"] for d in done] == sorted(d["source_path"] for d in done)
    assert done[0]["checksum_algorithm"] == "MD5" and done[0]["DATA_TYPE"] == "successful_transfer"
    skipped = list(user.tc.paginated.task_skipped_errors(task_id).items())
    assert len(skipped) == 250
    assert {s["error_code"] for s in skipped} == {"PERMISSION_DENIED"}
    last = user.tc.task_skipped_errors(task_id)
    assert last["next_marker"] is None
