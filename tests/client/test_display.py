"""Task documents, task lists and listings render as readable text, HTML and DataFrames."""

from __future__ import annotations

import pandas as pd

from arctern_client import FileListing, TaskTable, TaskView
from arctern_client.display import human_bytes
from tests.client.conftest import task_doc


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(20 * 1024 * 1024) == "20.0 MiB"
    assert human_bytes(None) == "-"


def test_task_view_summary_and_details() -> None:
    done = TaskView(
        task_doc(
            status="SUCCEEDED",
            nice_status=None,
            label="copy",
            files=4,
            files_transferred=4,
            bytes_transferred=2048,
            completion_time="2026-11-26T00:00:02+00:00",
            effective_bytes_per_second=1024,
        )
    )
    assert done.is_done
    assert done.summary() == (
        "Task 3a4b5c6d-0000-4000-8000-000000000001 SUCCEEDED 'copy' - 4/4 files, "
        "2.0 KiB in 2 s (1.0 KiB/s)"
    )
    failed = TaskView(
        task_doc(status="FAILED", fatal_error={"code": "CANCELED", "description": "canceled"})
    )
    assert failed.details == "CANCELED: canceled"
    assert "[CANCELED: canceled]" in failed.summary()
    assert "Status" in repr(failed) and "FAILED" in repr(failed)
    assert failed["status"] == "FAILED"


def test_task_view_html_escapes_user_text() -> None:
    view = TaskView(task_doc(label="<script>alert(1)</script>"))
    rendered = view._repr_html_()
    assert "<script>" not in rendered
    assert "&lt;script&gt;" in rendered
    assert "Demo Collection 1 → Demo Collection 2" in rendered


def test_task_table_renders_and_converts() -> None:
    table = TaskTable(
        [
            task_doc(task_id="a", status="ACTIVE", bytes_transferred=10),
            task_doc(
                task_id="b",
                status="SUCCEEDED",
                nice_status=None,
                completion_time="2026-11-26 00:01:00+00:00",
            ),
        ]
    )
    assert len(table) == 2 and table[1].status == "SUCCEEDED"
    assert len(table[:1]) == 1
    text = repr(table)
    assert text.splitlines()[0].startswith("Task ID")
    assert "SUCCEEDED" in text
    assert table._repr_html_().count("<tr>") == 3
    frame = table.to_dataframe()
    assert list(frame.index) == ["a", "b"]
    assert frame.loc["a", "bytes_transferred"] == 10
    assert frame.loc["b", "completion_time"] == pd.Timestamp("2026-11-26 00:01:00", tz="UTC")
    assert pd.isna(frame.loc["a", "completion_time"])


def test_empty_task_table() -> None:
    assert repr(TaskTable([])) == "(no tasks)"
    assert "No tasks" in TaskTable([])._repr_html_()


def test_file_listing() -> None:
    listing = FileListing(
        "Demo Collection 1",
        "/",
        [
            {"name": "nested", "type": "dir", "size": 4096},
            {"name": "large.bin", "type": "file", "size": 20 * 1024 * 1024},
        ],
    )
    assert listing.names() == ["nested/", "large.bin"]
    assert "20.0 MiB" in repr(listing)
    assert listing._repr_html_().startswith("<p><strong>Demo Collection 1</strong>:/</p>")
    assert "(empty)" in repr(FileListing("c", "/x/", []))


def test_quick_task_summary() -> None:
    quick = TaskView(
        task_doc(
            status="SUCCEEDED",
            completion_time="2026-11-26T00:00:00+00:00",
            effective_bytes_per_second=2048,
        )
    )
    assert "in under 1 s (2.0 KiB/s)" in quick.summary()
