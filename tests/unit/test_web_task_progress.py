"""The activity pages' reading of a task: bytes drive the bar, ETA, and the cancelled wording."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from arctern.db.models.transfer import Task
from arctern.transfer.services.tasks import TaskView
from arctern.web.activity import describe_task
from arctern.web.viewfmt import task_progress

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def a_task(**values: object) -> TaskView:
    source, destination = uuid.uuid4(), uuid.uuid4()
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "type": "TRANSFER",
        "status": "ACTIVE",
        "nice_status": "Queued",
        "label": None,
        "source_endpoint_id": source,
        "destination_endpoint_id": destination,
        "request_time": START,
        "completion_time": None,
        "fatal_error": None,
        "cancel_requested": False,
        "planned": True,
        "files": 401,
        "files_transferred": 400,
        "files_skipped": 0,
        "bytes_transferred": 100_000_000,
        "bytes_checksummed": 0,
        "active_seconds": 10.0,
        "faults": 0,
    }
    fields.update(values)
    return TaskView(Task(**fields), "demo", {source: "One", destination: "Two"})


def test_bar_counts_bytes_not_files() -> None:
    # 400 of 401 files copied, but the big one is still to come: the bar is at 6 %, not 100 %.
    row = describe_task(a_task(), bytes_total=1_600_000_000)
    assert row.percent == 6
    assert row.progress.files_text == "400 of 401 files"
    assert row.progress.bytes_text == "100.0 MB of 1.6 GB"
    assert row.progress.total_text == "1.6 GB"
    assert row.progress.rate_text == "10.0 MB/s"
    assert row.progress.eta_text == "about 2 min 30 s left"


def test_unknown_total_while_planning_shows_no_bar_value_or_eta() -> None:
    row = describe_task(a_task(planned=False), bytes_total=5000)
    assert row.percent is None and row.progress.eta_text == "" and row.progress.total_text == ""
    assert row.progress.files_text == "400 files"


def test_cancelled_task_reads_cancelled() -> None:
    row = describe_task(
        a_task(
            status="FAILED",
            nice_status=None,
            completion_time=START + timedelta(seconds=30),
            fatal_error={"code": "CANCELED", "description": "canceled"},
        ),
        bytes_total=1_600_000_000,
    )
    assert row.status_label == "Cancelled" and row.status_text == "Cancelled"
    assert row.canceled and row.progress.eta_text == ""
    failed = describe_task(
        a_task(status="FAILED", fatal_error={"code": "FILE_NOT_FOUND", "description": "x"})
    )
    assert (failed.status_label, failed.status_text) == ("FAILED", "Failed (FILE_NOT_FOUND)")


def test_progress_of_an_empty_finished_task() -> None:
    done = task_progress(
        bytes_done=0,
        bytes_total=0,
        files_done=0,
        files_total=0,
        bytes_per_second=0.0,
        finished=True,
        succeeded=True,
    )
    assert done.percent == 100 and done.files_text == "0 of 0 files" and done.rate_text == ""
