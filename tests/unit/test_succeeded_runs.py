"""Files copied successfully are recorded as runs: consecutive ids of one batch that share
a checksum algorithm (``progress.succeeded_runs``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from arctern.worker.batch_files import file_id
from arctern.worker.progress import succeeded_runs

TASK = uuid.uuid4()
T0 = datetime(2026, 12, 6, tzinfo=UTC)


def done(checksum: str | None, algorithm: str | None = "MD5", seconds: int = 0) -> dict[str, Any]:
    return {
        "state": "done",
        "checksum": checksum,
        "checksum_algorithm": algorithm,
        "done_time": T0 + timedelta(seconds=seconds),
    }


def test_consecutive_files_of_a_batch_make_one_run_in_id_order() -> None:
    records = [(file_id(7, index), done(f"c{index}", seconds=index)) for index in (2, 0, 1)]
    [run] = succeeded_runs(TASK, records)
    assert run == {
        "id": file_id(7, 0),
        "task_id": TASK,
        "batch_id": 7,
        "count": 3,
        "checksum_algorithm": "MD5",
        "checksums": ["c0", "c1", "c2"],
        "done_time": T0 + timedelta(seconds=2),
    }


def test_a_gap_a_new_batch_or_another_algorithm_starts_a_new_run() -> None:
    records = [
        (file_id(7, 0), done("a")),
        (file_id(7, 1), done("b")),
        (file_id(7, 3), done("c")),  # file 2 failed: it has a row of its own
        (file_id(7, 4), done(None, None)),  # verification off for this one
        (file_id(8, 0), done("d")),  # the next batch's first file
    ]
    runs = succeeded_runs(TASK, records)
    assert [(r["id"], r["count"], r["checksums"]) for r in runs] == [
        (file_id(7, 0), 2, ["a", "b"]),
        (file_id(7, 3), 1, ["c"]),
        (file_id(7, 4), 1, [None]),
        (file_id(8, 0), 1, ["d"]),
    ]
    assert [r["batch_id"] for r in runs] == [7, 7, 7, 8]


def test_nothing_succeeded_makes_no_run() -> None:
    assert succeeded_runs(TASK, []) == []
