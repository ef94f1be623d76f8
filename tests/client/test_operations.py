"""ls, transfer, tasks, cancel and watch against a faked Transfer API."""

from __future__ import annotations

import io
import json
from typing import Any

import globus_sdk
import pytest
import responses
from tqdm import tqdm

from arctern_client import SubmittedTask, TaskTable, operations
from arctern_client.deployment import Deployment
from arctern_client.locations import CollectionResolver
from tests.client.conftest import TRANSFER_API, task_doc

ONE = "11111111-1111-4111-8111-111111111111"
TWO = "22222222-2222-4222-8222-222222222222"
TASK = "3a4b5c6d-0000-4000-8000-000000000001"


@pytest.fixture
def tc(deployment: Deployment) -> globus_sdk.TransferClient:
    return deployment.transfer_client(globus_sdk.AccessTokenAuthorizer("token"))


@pytest.fixture
def resolver(http: responses.RequestsMock, tc: globus_sdk.TransferClient) -> CollectionResolver:
    http.get(
        f"{TRANSFER_API}/endpoint_search",
        json={
            "DATA": [
                {"id": ONE, "display_name": "Demo Collection 1"},
                {"id": TWO, "display_name": "Demo Collection 2"},
            ],
            "has_next_page": False,
        },
    )
    return CollectionResolver(tc)


def _file(name: str, kind: str = "file", size: int = 0) -> dict[str, Any]:
    return {"DATA_TYPE": "file", "name": name, "type": kind, "size": size}


def test_ls_by_display_name(
    http: responses.RequestsMock, tc: globus_sdk.TransferClient, resolver: CollectionResolver
) -> None:
    ls_call = http.get(
        f"{TRANSFER_API}/operation/endpoint/{ONE}/ls",
        json={"DATA": [_file("nested", "dir"), _file("a.txt", size=3)], "path": "/nested/"},
    )
    listing = operations.ls(tc, "Demo Collection 1:/nested", resolver=resolver)
    assert listing.names() == ["nested/", "a.txt"]
    assert listing.path == "/nested/"
    assert listing.collection == "Demo Collection 1"
    url = ls_call.calls[0].request.url or ""
    assert "path=%2Fnested" in url and "show_hidden=0" in url


def _json_body(registered: responses.BaseResponse) -> dict[str, Any]:
    body = registered.calls[0].request.body
    assert isinstance(body, bytes | str)
    return dict(json.loads(body))


def _accept_submission(http: responses.RequestsMock) -> responses.BaseResponse:
    http.get(f"{TRANSFER_API}/submission_id", json={"value": "sub-1"})
    return http.post(
        f"{TRANSFER_API}/transfer",
        status=202,
        json={"DATA_TYPE": "transfer_result", "code": "Accepted", "task_id": TASK},
    )


def test_transfer_a_file_into_a_directory(
    http: responses.RequestsMock, tc: globus_sdk.TransferClient, resolver: CollectionResolver
) -> None:
    http.get(
        f"{TRANSFER_API}/operation/endpoint/{ONE}/stat", json=_file("large.bin", size=20_000_000)
    )
    submit = _accept_submission(http)
    task = operations.transfer(
        tc, "Demo Collection 1:/large.bin", "Demo Collection 2:/copies/", label="big"
    )
    assert isinstance(task, SubmittedTask) and task == TASK
    assert task.total_bytes == 20_000_000
    assert task.destination == "Demo Collection 2:/copies/large.bin"
    body = _json_body(submit)
    assert body["source_endpoint"] == ONE and body["destination_endpoint"] == TWO
    assert body["label"] == "big" and body["verify_checksum"] is True
    assert body["DATA"] == [
        {
            "DATA_TYPE": "transfer_item",
            "source_path": "/large.bin",
            "destination_path": "/copies/large.bin",
            "recursive": False,
        }
    ]


def test_transfer_a_directory_is_recursive_and_sized(
    http: responses.RequestsMock, tc: globus_sdk.TransferClient, resolver: CollectionResolver
) -> None:
    http.get(f"{TRANSFER_API}/operation/endpoint/{ONE}/stat", json=_file("nested", "dir"))
    http.get(
        f"{TRANSFER_API}/operation/endpoint/{ONE}/ls",
        json={"DATA": [_file("a", size=5), _file("dir", "dir")], "path": "/nested/"},
        match=[responses.matchers.query_param_matcher({"path": "/nested/", "show_hidden": "1"})],
    )
    http.get(
        f"{TRANSFER_API}/operation/endpoint/{ONE}/ls",
        json={"DATA": [_file("b", size=7)], "path": "/nested/dir/"},
        match=[
            responses.matchers.query_param_matcher({"path": "/nested/dir/", "show_hidden": "1"})
        ],
    )
    submit = _accept_submission(http)
    task = operations.transfer(tc, f"{ONE}:/nested", f"{TWO}:/out/")
    assert task.total_bytes == 12
    item = _json_body(submit)["DATA"][0]
    assert item["recursive"] is True and item["destination_path"] == "/out/"


def test_transfer_needs_paths(tc: globus_sdk.TransferClient, resolver: CollectionResolver) -> None:
    with pytest.raises(ValueError, match="collection:/path"):
        operations.transfer(tc, "Demo Collection 1", "Demo Collection 2:/x", resolver=resolver)


def test_tasks_filters_by_status(
    http: responses.RequestsMock, tc: globus_sdk.TransferClient
) -> None:
    listing = http.get(
        f"{TRANSFER_API}/task_list",
        json={"DATA": [task_doc(status="FAILED")], "total": 1, "limit": 5, "offset": 0},
    )
    frame = operations.tasks(tc, ["failed", "active"], limit=5)
    assert list(frame["status"]) == ["FAILED"]
    url = listing.calls[0].request.url or ""
    assert "filter=status%3AFAILED%2CACTIVE" in url
    assert "limit=5" in url and "orderby=request_time+DESC" in url
    table = operations.tasks(tc, dataframe=False)
    assert isinstance(table, TaskTable) and table[0].status == "FAILED"
    assert "filter" not in (listing.calls[1].request.url or "")


def test_unknown_status_is_rejected(tc: globus_sdk.TransferClient) -> None:
    with pytest.raises(ValueError, match="unknown task status 'done'"):
        operations.tasks(tc, "done")


def test_cancel_returns_the_result(
    http: responses.RequestsMock, tc: globus_sdk.TransferClient
) -> None:
    http.post(
        f"{TRANSFER_API}/task/{TASK}/cancel",
        json={"DATA_TYPE": "result", "code": "TaskComplete", "message": "already done"},
    )
    assert operations.cancel(tc, TASK)["code"] == "TaskComplete"


def _progress(buffer: io.StringIO) -> Any:
    def factory(**kwargs: Any) -> tqdm:  # type: ignore[type-arg]
        kwargs["file"] = buffer
        return tqdm(**kwargs)

    return factory


def test_watch_follows_the_task_to_the_end(
    http: responses.RequestsMock, tc: globus_sdk.TransferClient
) -> None:
    url = f"{TRANSFER_API}/task/{TASK}"
    http.get(url, json=task_doc(files=2, bytes_transferred=0))
    http.get(url, json=task_doc(files=2, files_transferred=1, bytes_transferred=600))
    http.get(
        url,
        json=task_doc(
            status="SUCCEEDED",
            nice_status=None,
            files=2,
            files_transferred=2,
            bytes_transferred=1000,
            completion_time="2026-11-26T00:00:04+00:00",
        ),
    )
    bars, printed = io.StringIO(), io.StringIO()
    sleeps: list[float] = []
    task = SubmittedTask(TASK, total_bytes=1000, source="a", destination="b")
    view = operations.watch(
        tc,
        task,
        interval=0.5,
        sleep=sleeps.append,
        file=printed,
        progress_factory=_progress(bars),
    )
    assert view.status == "SUCCEEDED"
    assert sleeps == [0.5, 0.5]
    assert "100%" in bars.getvalue() and "0.98k/0.98k" in bars.getvalue()
    assert "2/2 files, SUCCEEDED" in bars.getvalue()
    summary = printed.getvalue().strip()
    assert summary.startswith(f"✓ Task {TASK} SUCCEEDED - 2/2 files")
    assert "in 4 s" in summary


def test_watch_reports_failure(http: responses.RequestsMock, tc: globus_sdk.TransferClient) -> None:
    http.get(
        f"{TRANSFER_API}/task/{TASK}",
        json=task_doc(status="FAILED", fatal_error={"code": "CANCELED", "description": "canceled"}),
    )
    printed = io.StringIO()
    view = operations.watch(tc, TASK, file=printed, progress_factory=_progress(io.StringIO()))
    assert view.details == "CANCELED: canceled"
    assert printed.getvalue().startswith("✗ Task") and "[CANCELED: canceled]" in printed.getvalue()


def test_interrupting_watch_is_clean(
    http: responses.RequestsMock, tc: globus_sdk.TransferClient
) -> None:
    http.get(f"{TRANSFER_API}/task/{TASK}", json=task_doc(files=3, bytes_transferred=5))

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    printed = io.StringIO()
    view = operations.watch(
        tc, TASK, sleep=interrupt, file=printed, progress_factory=_progress(io.StringIO())
    )
    assert view.status == "ACTIVE"
    assert printed.getvalue().startswith(f"Stopped watching task {TASK}: it is still ACTIVE")


def test_watch_timeout(http: responses.RequestsMock, tc: globus_sdk.TransferClient) -> None:
    http.get(f"{TRANSFER_API}/task/{TASK}", json=task_doc())
    printed = io.StringIO()
    view = operations.watch(
        tc, TASK, timeout=0, file=printed, progress_factory=_progress(io.StringIO())
    )
    assert view.status == "ACTIVE"
    assert printed.getvalue().startswith("Timed out watching")
