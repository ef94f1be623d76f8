"""The worker's buffered progress summarises fault storms without hiding rare faults."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from arctern.worker.progress import MAX_EVENTS_PER_CODE_PER_FLUSH, TaskProgress


def test_a_storm_of_one_fault_does_not_hide_a_rare_one() -> None:
    progress = TaskProgress(task_id=uuid.uuid4(), clock_now=lambda: datetime.now(UTC))
    for _ in range(200):
        progress.fault("TRANSIENT", "injected read error")
    progress.fault("VERIFY_CHECKSUM", "md5 mismatch")

    codes = [e.code for e in progress.events]
    assert codes.count("ENDPOINT_ERROR") == MAX_EVENTS_PER_CODE_PER_FLUSH
    assert codes.count("VERIFY_CHECKSUM") == 1
    assert progress.dropped_events == 200 - MAX_EVENTS_PER_CODE_PER_FLUSH
    assert progress.deltas["faults"] == 201  # every fault is counted, recorded or not
