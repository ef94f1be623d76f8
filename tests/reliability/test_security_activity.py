"""The activity pages' new routes against another user: live values, task page, rerun, files.

A task id is not a secret (it shows in logs, URLs and screenshots). Knowing one must not let
another user read the task's progress, its items and file list, or submit it again as theirs.
"""

from __future__ import annotations

import httpx

from tests.integration.test_web_pages import hidden, log_in
from tests.reliability.conftest import Session, make_user


def test_another_user_cannot_read_or_rerun_my_task(shared: Session) -> None:
    me = shared
    secret_name = "only-mine.txt"
    (me.c1_root / secret_name).write_text("mine\n")
    task_id = me.transfer(me.c1, me.c2, [(f"/{secret_name}", f"/{secret_name}", False)])
    me.wait(task_id)
    username, password = make_user(me.server, "intruder")
    with httpx.Client(base_url=me.server.url, timeout=30) as intruder:
        log_in(intruder, username, password)
        token = hidden(intruder.get("/activity").text, "csrf_token")
        tasks_before = intruder.get("/activity").text.count('data-testid="task-row"')

        values = intruder.get("/activity/live.json", params={"id": task_id})
        assert values.status_code == 200 and values.json()["tasks"] == {}
        page = intruder.get(f"/activity/{task_id}", headers={"accept": "text/html"})
        assert page.status_code == 404 and secret_name not in page.text
        files = intruder.get(f"/activity/{task_id}", params={"files": "1"})
        assert files.status_code == 404 and secret_name not in files.text
        rerun = intruder.post(f"/activity/{task_id}/rerun", data={"csrf_token": token})
        assert rerun.status_code == 404 and "location" not in rerun.headers
        assert intruder.get("/activity").text.count('data-testid="task-row"') == tasks_before
        # Nor does my task list grow: the rerun did not run as me either.
        assert me.tc.task_list(filter=f"task_id:{task_id}")["total"] == 1
        print(
            f"\nRELIABILITY activity: foreign task -> live.json {values.json()['tasks']}, "
            f"page {page.status_code}, rerun {rerun.status_code}"
        )
