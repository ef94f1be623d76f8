"""Timer runs with several workers and API hosts on one PostgreSQL database: every worker
looks for due runs, and each scheduled run fires exactly once (``timers/runner.py`` claims
a run with a conditional UPDATE of the timer's next run).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import globus_sdk
import pytest

from tests.scale.conftest import Deployment
from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME

pytestmark = pytest.mark.timeout(240)

TIMER_SCOPE = str(globus_sdk.TimersClient.scopes.timer)
FAST = {"ARCTERN_TIMER_MIN_INTERVAL_SECONDS": "1", "ARCTERN_SCHEDULER_INTERVAL": "0.05"}
RUNS = 8


def test_each_run_fires_once_with_many_workers(deployment: Callable[[], Deployment]) -> None:
    made = deployment()
    api = made.api(demo=True, extra_env=FAST)
    made.api(extra_env=FAST)  # a second API host, idle
    for name in ("w1", "w2", "w3"):
        made.worker(name, concurrency=2, extra_env=FAST)
    tokens = native_tokens(
        api,
        DEMO_USERNAME,
        DEMO_PASSWORD,
        scopes=["urn:globus:auth:scope:transfer.api.globus.org:all", TIMER_SCOPE],
    ).by_resource_server
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens["transfer.api.globus.org"]["access_token"]
        ),
        base_url=f"{api.url}/transfer/",
    )
    timers = globus_sdk.TimersClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens[globus_sdk.TimersClient.scopes.resource_server]["access_token"]
        ),
        base_url=f"{api.url}/timers/",
    )
    c1 = next(
        c["id"]
        for c in tc.endpoint_search("Demo Collection 1")
        if c["display_name"] == "Demo Collection 1"
    )
    data = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c1)
    data.add_item("/hello.txt", "/hello-timed.txt")
    timer_id = timers.create_timer(
        globus_sdk.TransferTimer(
            name="race",
            schedule=globus_sdk.RecurringTimerSchedule(
                interval_seconds=1, end={"condition": "iterations", "iterations": RUNS}
            ),
            body=data,
        )
    )["timer"]["job_id"]
    deadline = time.monotonic() + 180
    while True:
        job = timers.get_job(timer_id).data
        runs = job["results"]["data"]
        if job["status"] == "inactive" and all(r["data"] for r in runs):
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["n_runs"] == RUNS and job["n_errors"] == 0
    task_ids = [r["data"]["action_id"] for r in runs]
    assert len(set(task_ids)) == RUNS
    labels = [t["label"] for t in tc.task_list(limit=100) if (t["label"] or "").startswith("race")]
    assert sorted(labels) == sorted(f"race, run {n}" for n in range(1, RUNS + 1))
