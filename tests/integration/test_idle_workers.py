"""An idle server's workers look at the database seldom, yet a cancel and a submission made
after a long idle spell are acted on at once, because both are announced to them.

The server idles up to two minutes between looks (``worker_idle_seconds``; 15 s by default)
so that, at the moment of the cancel and of the submission, the reaper's and the
dispatcher's next looks are surely far away: without the announcements the cancel call
would answer ``CancelAccepted`` and the copy would wait."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import globus_sdk
import pytest

from tests.conftest import _database_args
from tests.integration.test_transfer_api import Account, login, wait_done
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)

# Idle pauses double from half a second: 35 s after start the reaper is in its 32-s pause
# (from 31.5 s to 63.5 s), well past the 5 s the cancel call waits.
REAPER_ASLEEP_AFTER_START = 35.0


@pytest.fixture
def server_started(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[LiveServer, float]]:
    live = start_server(
        tmp_path_factory.mktemp("idle"),
        extra_args=_database_args(request),
        worker_idle_seconds=120,
    )
    try:
        yield live, time.monotonic()
    finally:
        live.stop()


def demo_ids(owner: Account) -> tuple[str, str]:
    ids = {
        c["display_name"]: c["id"]
        for c in owner.tc.endpoint_search("Demo Collection")
        if c["display_name"] in ("Demo Collection 1", "Demo Collection 2")
    }
    return ids["Demo Collection 1"], ids["Demo Collection 2"]


def test_cancel_and_submit_after_an_idle_spell_act_at_once(
    server_started: tuple[LiveServer, float],
) -> None:
    server, started = server_started
    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    c1, c2 = demo_ids(owner)
    name = f"idle-{uuid.uuid4().hex[:6]}.bin"
    (server.home / "demo" / "collection1" / name).write_bytes(b"i" * 4096)
    # A rule holds writes into collection 2: the task stays ACTIVE and nobody claims it.
    owner.tc.endpoint_manager_create_pause_rule(
        {"DATA_TYPE": "pause_rule", "endpoint_id": c2, "message": "maintenance",
         "pause_task_transfer_write": True, "pause_task_transfer_read": False,
         "pause_task_delete": False, "pause_ls": False, "pause_mkdir": False,
         "pause_rename": False},
    )  # fmt: skip
    data = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c2)
    data.add_item(f"/{name}", f"/{name}")
    held = str(owner.tc.submit_transfer(data)["task_id"])
    assert owner.tc.get_task(held)["status"] == "ACTIVE"

    # The idle spell is what is being tested.
    time.sleep(max(0.0, started + REAPER_ASLEEP_AFTER_START - time.monotonic()))
    # The cancel call waits up to 5 s for the task to be finalized: the reaper, woken by
    # the cancel, finalizes it within that.
    answer = owner.tc.cancel_task(held)
    assert answer["code"] == "Canceled", answer.data
    task = owner.tc.get_task(held)
    assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "CANCELED"

    # The dispatcher, last busy at the first submission, is deep in its idle pauses too
    # (25.6 s, then 51.2 s): woken by the submission, it copies a 4 KiB file well within
    # 15 s — however busy the machine, where the next look could be 40 s away.
    data = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c1)
    data.add_item(f"/{name}", f"/copy-{name}")
    done = wait_done(owner.tc, str(owner.tc.submit_transfer(data)["task_id"]), timeout=15)
    assert done["status"] == "SUCCEEDED"
    assert (server.home / "demo" / "collection1" / f"copy-{name}").read_bytes() == b"i" * 4096
