"""Revision 0015: batches still to copy keep their files (as a list) across the upgrade."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

from arctern.db.migrate import upgrade
from arctern.worker import batch_files


def test_pending_rows_become_the_batch_list_and_resume_points_keep_their_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0014_pause_rules_gateways")
    task = uuid.uuid4().hex
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO work_batches (id, task_id, state, attempts, file_count, byte_count)"
            " VALUES (?, ?, ?, 0, ?, 0)",
            [(7, task, "pending", 3), (8, task, "done", 1)],
        )
        db.executemany(
            "INSERT INTO task_files (id, task_id, batch_id, source_path, destination_path,"
            " size, mtime, state, is_directory, bytes_done, write_state, checksum_algorithm)"
            " VALUES (?, ?, ?, ?, ?, ?, 0.0, ?, 0, ?, ?, ?)",
            [
                (1, task, 7, "/a", "/x/a", 1, "done", 0, None, "MD5"),
                (2, task, 7, "/b", "/x/b", 2, "pending", 0, None, None),
                (3, task, 7, "/c", "/x/c", 3, "pending", 10, '{"temp_path": "/x/.t"}', "SHA1"),
                (4, task, 8, "/d", "/x/d", 4, "done", 0, None, None),
            ],
        )
    upgrade(url)
    with sqlite3.connect(path) as db:
        batches = {
            row[0]: (row[1], json.loads(row[2]) if row[2] else None)
            for row in db.execute("SELECT id, file_count, files FROM work_batches")
        }
        rows = {
            row[0]: row[1:]
            for row in db.execute(
                "SELECT id, batch_id, source_path, state, bytes_done FROM task_files"
            )
        }
    # Batch 7 lists the two files it had still to copy; batch 8 was done and lists nothing.
    assert batches == {
        7: (2, [["/b", "/x/b", 2, 0.0, None, None], ["/c", "/x/c", 3, 0.0, None, "SHA1"]]),
        8: (1, None),
    }
    planned = batch_files.planned_jobs(7, batches[7][1])
    assert [job.key for job in planned] == [batch_files.file_id(7, 0), batch_files.file_id(7, 1)]
    # The resume point moved to /c's id in the list; /b lost its row until it has an outcome;
    # the file done keeps its row, outside the batch's list.
    assert rows == {
        1: (None, "/a", "done", 0),
        batch_files.file_id(7, 1): (7, "/c", "pending", 10),
        4: (8, "/d", "done", 0),
    }
