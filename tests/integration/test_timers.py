"""Timers and task mail against a live server: the unmodified globus-sdk ``TimersClient`` and
globus-cli ``globus timer``, a real SMTP server on loopback (aiosmtpd).

Intervals are seconds here (``ARCTERN_TIMER_MIN_INTERVAL_SECONDS=1``; 5 minutes by default)
and workers look for due runs every 0.3 s. Waits are on conditions (a timer's run count, a
task's status, mail in the box), never fixed sleeps, except where a test shows that nothing
happens (a paused timer).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_auth_globus_cli import GLOBUS, globus, globus_login
from tests.integration.test_transfer_api import make_user
from tests.support.auth_flow import authorize_over_http, idp_value, native_tokens, page_form
from tests.support.server import (
    DEMO_IDP,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    LiveServer,
    free_port,
    start_server,
)
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.timeout(300)
T = TypeVar("T")
TIMER_SCOPE = str(globus_sdk.TimersClient.scopes.timer)
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
FAST_TIMERS = {
    "ARCTERN_TIMER_MIN_INTERVAL_SECONDS": "1",
    "ARCTERN_SCHEDULER_INTERVAL": "0.3",
    "ARCTERN_MAIL_RETRY_SECONDS": "0.5",
    "ARCTERN_WEBHOOK_ALLOW_HTTP": "true",
}


@dataclass
class Site:
    server: LiveServer
    smtp: SmtpServer


@dataclass
class User:
    tc: globus_sdk.TransferClient
    timers: globus_sdk.TimersClient


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    smtp = SmtpServer(free_port()).start()
    server = start_server(
        tmp_path_factory.mktemp("timers"),
        extra_env={**smtp.env(), **FAST_TIMERS},
        extra_args=_database_args(request),
    )
    try:
        yield Site(server, smtp)
    finally:
        server.stop()
        smtp.stop()


def user(server: LiveServer, username: str = DEMO_USERNAME, password: str = DEMO_PASSWORD) -> User:
    tokens = native_tokens(
        server, username, password, scopes=["openid", "email", TRANSFER_SCOPE, TIMER_SCOPE]
    )
    by_rs = tokens.by_resource_server

    def bearer(rs: str) -> globus_sdk.AccessTokenAuthorizer:
        return globus_sdk.AccessTokenAuthorizer(by_rs[rs]["access_token"])

    return User(
        globus_sdk.TransferClient(
            authorizer=bearer("transfer.api.globus.org"), base_url=f"{server.url}/transfer/"
        ),
        globus_sdk.TimersClient(
            authorizer=bearer(globus_sdk.TimersClient.scopes.resource_server),
            base_url=f"{server.url}/timers/",
        ),
    )


def collection(tc: globus_sdk.TransferClient, name: str) -> str:
    return str(next(c["id"] for c in tc.endpoint_search(name) if c["display_name"] == name))


def wait_until(probe: Callable[[], T | None], timeout: float = 120, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def source_folder(server: LiveServer) -> str:
    """A folder with one file in Demo Collection 1; its path in the collection."""
    name = f"timer-src-{uuid.uuid4().hex[:6]}"
    folder = server.home / "demo" / "collection1" / name
    folder.mkdir()
    (folder / "reading.csv").write_text("t,value\n1,2\n")
    return f"/{name}/"


def transfer_body(tc: globus_sdk.TransferClient, src: str, dst: str) -> globus_sdk.TransferData:
    data = globus_sdk.TransferData(
        source_endpoint=collection(tc, "Demo Collection 1"),
        destination_endpoint=collection(tc, "Demo Collection 2"),
    )
    data.add_item(src, dst, recursive=True)
    return data


def finished(timers: globus_sdk.TimersClient, timer_id: str, runs: int) -> dict[str, Any] | None:
    job = timers.get_job(timer_id).data
    done = job["status"] == "inactive" and job["n_runs"] == runs
    settled = all(
        r["data"] and r["data"]["status"] in ("SUCCEEDED", "FAILED") for r in job["results"]["data"]
    )
    return job if done and settled else None


def test_a_recurring_timer_runs_its_count_and_mails_each_task(site: Site) -> None:
    me = user(site.server)
    src = source_folder(site.server)
    dst = f"/timer-dst-{uuid.uuid4().hex[:6]}/"
    made = me.timers.create_timer(
        globus_sdk.TransferTimer(
            name="instrument sync",
            schedule=globus_sdk.RecurringTimerSchedule(
                interval_seconds=2, end={"condition": "iterations", "iterations": 3}
            ),
            body=transfer_body(me.tc, src, dst),
        )
    )
    timer = made["timer"]
    assert made.http_status == 201 and timer["status"] == "new"
    assert timer["schedule"]["interval_seconds"] == 2
    assert timer["schedule"]["end"]["count"] == 3

    job = wait_until(lambda: finished(me.timers, timer["job_id"], 3), what="three runs")
    runs = job["results"]["data"]
    task_ids = [r["data"]["action_id"] for r in runs]
    assert len(set(task_ids)) == 3
    tasks = {t["task_id"]: t for t in me.tc.task_list(limit=100)}
    assert {tasks[i]["label"] for i in task_ids} == {f"instrument sync, run {n}" for n in (1, 2, 3)}
    assert all(tasks[i]["status"] == "SUCCEEDED" for i in task_ids)
    assert job["activity"] is None and job["next_run"] is None
    copied = site.server.home / "demo" / "collection2" / dst.strip("/") / "reading.csv"
    assert copied.read_text() == "t,value\n1,2\n"

    # One mail per finished task, to the owner, readable.
    mails = site.smtp.mailbox.wait_for(
        lambda box: sum(any(i in m.get_content() for i in task_ids) for m in box) == 3
    )
    mine = [m for m in mails if any(i in m.get_content() for i in task_ids)]
    assert all(DEMO_USERNAME in str(m["To"]) for m in mine)
    assert all(str(m["Subject"]).startswith("[Arctern] Transfer succeeded: instrument sync, run ")
               for m in mine)  # fmt: skip
    text = mine[0].get_content()
    assert "Demo Collection 1" in text and "Demo Collection 2" in text
    assert (
        f"{src.rstrip('/')} -> {dst.rstrip('/')}" in text and f"{site.server.url}/activity/" in text
    )


def test_pause_resume_delete_and_errors(site: Site) -> None:
    me = user(site.server)
    body = transfer_body(me.tc, source_folder(site.server), "/timer-pause/")
    timer_id = me.timers.create_timer(
        globus_sdk.TransferTimer(
            name="paused one",
            schedule=globus_sdk.RecurringTimerSchedule(interval_seconds=1),
            body=body,
        )
    )["timer"]["job_id"]
    wait_until(lambda: me.timers.get_job(timer_id)["n_runs"] >= 1, what="a first run")
    assert "Successfully paused" in me.timers.pause_job(timer_id)["message"]
    paused = me.timers.get_job(timer_id)
    assert paused["status"] == "paused" and paused["activity"]["code"] == "paused"
    time.sleep(3)  # three intervals: a paused timer does not run
    assert me.timers.get_job(timer_id)["n_runs"] == paused["n_runs"]
    me.timers.resume_job(timer_id)
    wait_until(
        lambda: me.timers.get_job(timer_id)["n_runs"] > paused["n_runs"], what="a run after resume"
    )
    deleted = me.timers.delete_job(timer_id)
    assert deleted["status"] == "deleted"
    with pytest.raises(globus_sdk.GlobusAPIError) as gone:
        me.timers.get_job(timer_id)
    assert gone.value.http_status == 404
    assert timer_id not in [j["job_id"] for j in me.timers.list_jobs()["jobs"]]

    # Unhappy paths, in the Timers API's error format.
    def refused(schedule: dict[str, Any], data: Any = body) -> globus_sdk.GlobusAPIError:
        with pytest.raises(globus_sdk.GlobusAPIError) as caught:
            me.timers.create_timer({"timer_type": "transfer", "name": "x", "schedule": schedule,
                                    "body": dict(data)})  # fmt: skip
        return caught.value

    short = refused({"type": "recurring", "interval_seconds": 0})
    assert short.http_status == 422 and short.code == "INVALID_SCHEDULE"
    assert refused({"type": "weekly"}).http_status == 422
    assert refused({"type": "once", "datetime": "tomorrow"}).http_status == 422
    missing = refused({"type": "once"}, {**dict(body), "source_endpoint": str(uuid.uuid4())})
    assert missing.http_status == 404


def test_another_users_timer_and_a_transfer_token(site: Site) -> None:
    me = user(site.server)
    timer_id = me.timers.create_timer(
        globus_sdk.TransferTimer(
            name="mine",
            schedule=globus_sdk.OnceTimerSchedule(datetime="2099-01-01T00:00:00+00:00"),
            body=transfer_body(me.tc, "/hello.txt", "/hello-copy.txt"),
        )
    )["timer"]["job_id"]
    other = user(site.server, *make_user(site.server, "other"))
    for call in (other.timers.get_job, other.timers.pause_job, other.timers.delete_job):
        with pytest.raises(globus_sdk.GlobusAPIError) as caught:
            call(timer_id)
        assert caught.value.http_status == 404
        assert caught.value.raw_json is not None and "error" in caught.value.raw_json
    assert other.timers.list_jobs()["jobs"] == []
    wrong = globus_sdk.TimersClient(
        authorizer=me.tc.authorizer, base_url=f"{site.server.url}/timers/"
    )
    with pytest.raises(globus_sdk.GlobusAPIError) as caught:
        wrong.list_jobs()
    assert caught.value.http_status == 403
    with pytest.raises(globus_sdk.GlobusAPIError) as caught:
        me.timers.get_job("not-a-timer")
    assert caught.value.http_status == 422
    me.timers.delete_job(timer_id)


def test_a_run_the_owner_can_no_longer_do_fails_with_the_reason(site: Site) -> None:
    owner = user(site.server)
    username, password = make_user(site.server, "guest")
    guest = user(site.server, username, password)
    c1 = collection(owner.tc, "Demo Collection 1")
    src = source_folder(site.server)
    me = native_tokens(site.server, username, password).decode_id_token()["sub"]
    rule_id = owner.tc.add_endpoint_acl_rule(
        c1,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": me,
            "path": src,
            "permissions": "rw",
        },
    )["access_id"]
    data = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c1)
    data.add_item(f"{src}reading.csv", f"{src}copy.csv")
    timer_id = guest.timers.create_timer(
        globus_sdk.TransferTimer(
            name="guest copy",
            schedule=globus_sdk.RecurringTimerSchedule(interval_seconds=1),
            body=data,
        )
    )["timer"]["job_id"]
    wait_until(lambda: guest.timers.get_job(timer_id)["n_runs"] >= 1, what="a first run")
    owner.tc.delete_endpoint_acl_rule(c1, rule_id)
    job = wait_until(
        lambda: (j := guest.timers.get_job(timer_id).data)["n_errors"] >= 1 and j, what="an error"
    )
    failed = next(r for r in job["results"]["data"] if r["errors"])
    assert failed["data"] is None
    assert "EndpointNotFound" in failed["errors"]["code"] or failed["errors"]["code"] in (
        "PermissionDenied",
        "NotFound",
    )
    assert job["status"] == "loaded"  # still scheduled: access may come back
    guest.timers.delete_job(timer_id)


def test_globus_cli_timer_commands(site: Site, tmp_path: Path) -> None:
    server = site.server
    assert globus_login(server, tmp_path).returncode == 0
    me = user(server)
    c1, c2 = collection(me.tc, "Demo Collection 1"), collection(me.tc, "Demo Collection 2")
    src = source_folder(server)
    args = [
        *("timer", "create", "transfer", f"{c1}:{src}", f"{c2}:/cli-timer/", "--recursive"),
        *("--interval", "2s", "--stop-after-runs", "3", "--name", "cli timer", "-F", "json"),
    ]
    created = globus(server, tmp_path, *args)
    if created.returncode != 0 and "globus session consent" in created.stdout + created.stderr:
        # Mapped collections need the data_access consent under the timer scope first.
        consent = subprocess.Popen(
            [
                GLOBUS,
                "session",
                "consent",
                "--no-local-server",
                "--timer-data-access",
                c1,
                "--timer-data-access",
                c2,
            ],
            env=server.client_env(tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert consent.stdout is not None
        url = ""
        while not url.startswith("http"):
            line = consent.stdout.readline()
            assert line, consent.communicate()[1]
            url = line.strip()
        code = authorize_over_http(server.url, url, DEMO_USERNAME, DEMO_PASSWORD)
        out, err = consent.communicate(code + "\n", timeout=120)
        assert consent.returncode == 0, out + err
        created = globus(server, tmp_path, *args)
    assert created.returncode == 0, created.stdout + created.stderr
    timer_id = json.loads(created.stdout)["job_id"]

    job = wait_until(lambda: finished(me.timers, timer_id, 3), what="three CLI timer runs")
    shown = globus(server, tmp_path, "timer", "show", timer_id)
    assert shown.returncode == 0, shown.stderr
    assert "Transfer" in shown.stdout and "This timer is no longer active" in shown.stdout
    listed = globus(server, tmp_path, "timer", "list")
    assert timer_id in listed.stdout
    tasks = json.loads(globus(server, tmp_path, "task", "list", "-F", "json").stdout)["DATA"]
    run_tasks = {r["data"]["action_id"] for r in job["results"]["data"]}
    assert run_tasks <= {t["task_id"] for t in tasks}
    assert "cli timer, run 3" in globus(server, tmp_path, "task", "list").stdout

    paused = globus(server, tmp_path, "timer", "pause", timer_id)
    assert paused.returncode != 0 and "no longer active" in paused.stderr
    deleted = globus(server, tmp_path, "timer", "delete", timer_id)
    assert deleted.returncode == 0 and timer_id in deleted.stdout

    # An hourly timer: pause and resume with the CLI.
    args[args.index("2s")] = "1h"
    hourly = globus(server, tmp_path, *args)
    assert hourly.returncode == 0, hourly.stderr
    hourly_id = json.loads(hourly.stdout)["job_id"]
    paused = globus(server, tmp_path, "timer", "pause", hourly_id)
    assert paused.returncode == 0 and f"Successfully paused job {hourly_id}" in paused.stdout
    assert (
        "Paused, awaiting user action"
        in globus(server, tmp_path, "timer", "show", hourly_id).stdout
    )
    resumed = globus(server, tmp_path, "timer", "resume", hourly_id)
    assert resumed.returncode == 0 and "Successfully resumed" in resumed.stdout
    shown = globus(server, tmp_path, "timer", "show", hourly_id).stdout
    # (or still finishing the run it made when created, on a busy machine)
    assert "Awaiting the next run" in shown or "Awaiting completion of the latest run" in shown
    assert globus(server, tmp_path, "timer", "delete", hourly_id).returncode == 0


def test_a_killed_server_loses_no_run_and_doubles_none(tmp_path: Path) -> None:
    """The server dies after a run, stays down across the next scheduled time, and its mail
    server is down too: after the restart the timer does each of its runs once, and every
    task's mail arrives once the SMTP server is up."""
    port = free_port()
    server = start_server(tmp_path / "srv", extra_env={**SmtpServer(port).env(), **FAST_TIMERS})
    smtp: SmtpServer | None = None
    try:
        me = user(server)
        timer_id = me.timers.create_timer(
            globus_sdk.TransferTimer(
                name="survivor",
                schedule=globus_sdk.RecurringTimerSchedule(
                    interval_seconds=3, end={"condition": "iterations", "iterations": 3}
                ),
                body=transfer_body(me.tc, source_folder(server), "/survivor/"),
            )
        )["timer"]["job_id"]
        wait_until(
            lambda: (
                (r := me.timers.get_job(timer_id)["results"]["data"])
                and r[-1]["data"]["status"] == "SUCCEEDED"
            ),
            what="the first run to finish",
        )
        server.kill()
        time.sleep(4)  # the next run's time passes while the server is down
        server.start()
        smtp = SmtpServer(port).start()
        me = user(server)
        job = wait_until(lambda: finished(me.timers, timer_id, 3), what="the remaining runs")
        numbers = sorted(r["data"]["details"]["label"] for r in job["results"]["data"])
        assert numbers == [f"survivor, run {n}" for n in (1, 2, 3)]
        labels = [t["label"] for t in me.tc.task_list(limit=100) if t["label"]]
        assert sorted(lbl for lbl in labels if lbl.startswith("survivor")) == numbers
        # A send in progress when the server died holds its message until the claim lapses
        # (45 s), then it goes.
        mails = smtp.mailbox.wait_for(lambda box: len(box) >= 3, timeout=150)
        assert sorted(str(m["Subject"]).rsplit(": ", 1)[1] for m in mails) == numbers
    finally:
        server.stop()
        if smtp is not None:
            smtp.stop()


def test_mail_follows_the_tasks_flags_and_sharing_invites(site: Site) -> None:
    me = user(site.server)
    c1 = collection(me.tc, "Demo Collection 1")
    src = source_folder(site.server)

    def copy(notify: bool) -> str:
        data = globus_sdk.TransferData(
            source_endpoint=c1, destination_endpoint=c1, notify_on_succeeded=notify
        )
        data.add_item(f"{src}reading.csv", f"{src}copy-{notify}.csv")
        task_id = str(me.tc.submit_transfer(data)["task_id"])
        assert me.tc.task_wait(task_id, timeout=120, polling_interval=1)
        return task_id

    quiet, loud = copy(False), copy(True)
    mails = site.smtp.mailbox.wait_for(lambda box: any(loud in m.get_content() for m in box))
    assert not any(quiet in m.get_content() for m in mails)

    # An access rule's notify_email sends the invitation, with the sharer's message.
    me.tc.add_endpoint_acl_rule(
        c1,
        {
            "DATA_TYPE": "access",
            "principal_type": "all_authenticated_users",
            "principal": "",
            "path": src,
            "permissions": "r",
            "notify_email": "colleague@partner.example.org",
            "notify_message": "The readings from last night.",
        },
    )
    site.smtp.mailbox.wait_for(
        lambda _: bool(site.smtp.mailbox.to("colleague@partner.example.org"))
    )
    (invite,) = site.smtp.mailbox.to("colleague@partner.example.org")
    assert str(invite["Subject"]) == (
        f"[Arctern] {DEMO_USERNAME} shared Demo Collection 1{src} with you"
    )
    body = invite.get_content()
    assert "The readings from last night." in body and "Access:       read" in body
    with pytest.raises(globus_sdk.TransferAPIError) as bad:
        me.tc.add_endpoint_acl_rule(
            c1,
            {"DATA_TYPE": "access", "principal_type": "anonymous", "principal": "",
             "path": src, "permissions": "r", "notify_email": "not an address"},
        )  # fmt: skip
    assert bad.value.http_status == 400


class Hooks(BaseHTTPRequestHandler):
    """Records webhook deliveries; refuses the first one (500), to be retried."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hooks.received.append((dict(self.headers), body))
        self.send_response(500 if len(Hooks.received) == 1 else 204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def webhook_form(http: httpx.Client, server: LiveServer) -> dict[str, str]:
    """Log the browser in as the demo user; the hidden fields of the account page's webhook
    form."""
    page = http.get(f"{server.url}/auth/login?next=/account")
    form = {
        **page_form(page.text, 'action="/auth/login"')[1],
        "idp": idp_value(page.text, DEMO_IDP),
        "username": DEMO_USERNAME,
        "password": DEMO_PASSWORD,
    }
    account = http.post(f"{server.url}/auth/login", data=form)
    return page_form(account.text, "/account/webhook")[1]


def test_a_webhook_gets_each_ended_task_signed_and_retried(site: Site) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/arctern"
    try:
        with httpx.Client(timeout=30, follow_redirects=True) as http:
            saved = http.post(
                f"{site.server.url}/account/webhook",
                data={**webhook_form(http, site.server), "webhook_url": url},
            )
            assert saved.headers["cache-control"] == "no-store"
            match = re.search(r'data-testid="webhook-secret">([^<]+)<', saved.text)
            assert match, saved.text[:2000]
            secret = match.group(1)
            # A reload shows the URL, never the secret again.
            again = http.get(f"{site.server.url}/account")
            assert url in again.text and secret not in again.text
        me = user(site.server)
        c1 = collection(me.tc, "Demo Collection 1")
        data = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c1)
        data.add_item("/hello.txt", f"/hook-{uuid.uuid4().hex[:6]}.txt")
        task_id = str(me.tc.submit_transfer(data)["task_id"])
        wait_until(lambda: len(Hooks.received) >= 2, what="the retried delivery")
        first, second = Hooks.received[:2]
        assert first[1] == second[1]  # the same delivery, tried again
        headers, body = second
        payload = json.loads(body)
        assert payload["event"] == "task.succeeded" and payload["task"]["task_id"] == task_id
        expected = hmac.new(
            secret.encode(), f"{headers['X-Arctern-Timestamp']}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert headers["X-Arctern-Signature"] == f"sha256={expected}"
    finally:
        receiver.shutdown()
        with httpx.Client(timeout=30, follow_redirects=True) as http:
            http.post(
                f"{site.server.url}/account/webhook",
                data={**webhook_form(http, site.server), "webhook_url": ""},
            )
