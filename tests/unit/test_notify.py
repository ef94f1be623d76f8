"""Webhook URLs, signatures and timer schedules: the parts of notifications and timers that
need no server."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from arctern.config import Settings
from arctern.notify.outbox import sign
from arctern.notify.webhooks import WebhookError, check_url
from arctern.timers.schedule import Schedule, ScheduleError

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_webhook_urls_must_be_https_without_credentials() -> None:
    settings = Settings(secret_key="k")
    assert check_url(" https://hooks.example.edu/x ", settings) == "https://hooks.example.edu/x"
    for bad in ("http://hooks.example.edu/x", "ftp://x/", "https://", "https://u:p@h.edu/x"):
        with pytest.raises(WebhookError):
            check_url(bad, settings)
    allowed = Settings(secret_key="k", webhook_allow_http=True)
    assert check_url("http://127.0.0.1:9/hook", allowed) == "http://127.0.0.1:9/hook"


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert sign("s3cret", "1700000000", '{"a":1}') == f"sha256={expected}"
    assert sign("other", "1700000000", '{"a":1}') != sign("s3cret", "1700000000", '{"a":1}')


def test_recurring_schedules_step_over_missed_runs_and_stop() -> None:
    raw = {"type": "recurring", "interval_seconds": 600, "end": {"count": 3}}
    schedule = Schedule.parse(raw, NOW, min_interval=300)
    assert schedule.start == NOW
    # Run 1 at NOW; the server was down for 25 minutes: the next is the first step after now.
    late = NOW + timedelta(minutes=25)
    assert schedule.following(NOW, 1, late) == NOW + timedelta(minutes=30)
    assert schedule.following(NOW, 3, NOW) is None
    until = Schedule.parse(
        {"type": "recurring", "interval_seconds": 600, "end": {"condition": "time",
         "datetime": "2026-12-04T12:15:00Z"}}, NOW, 300,
    )  # fmt: skip
    assert until.following(NOW, 1, NOW) == NOW + timedelta(minutes=10)
    assert until.following(NOW + timedelta(minutes=10), 2, NOW) is None
    once = Schedule.parse({"type": "once"}, NOW, 300)
    assert once.following(NOW, 1, NOW) is None
    assert Schedule.of_document(schedule.document()) == schedule


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "recurring", "interval_seconds": 60},
        {"type": "recurring", "interval_seconds": "600"},
        {"type": "recurring", "interval_seconds": 600, "end": {"count": 0}},
        {"type": "recurring", "interval_seconds": 600, "start": "2026-12-04T10:00:00"},
        {"type": "recurring", "interval_seconds": 600, "end": {"datetime": "2020-01-01T00:00Z"}},
        {"type": "once", "datetime": "yesterday"},
        {"type": "daily"},
        "every day",
    ],
)
def test_bad_schedules_are_refused(raw: object) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(raw, NOW, min_interval=300)
