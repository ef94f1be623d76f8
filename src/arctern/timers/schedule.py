"""Timer schedules as the Timers API takes them, and when a schedule runs next.

``{"type": "once", "datetime": T?}`` runs once (now when T is missing);
``{"type": "recurring", "interval_seconds": N, "start": T?, "end": E?}`` runs at start,
start + N, ... until ``E``: ``{"condition": "iterations", "count": K}`` (the SDK also says
``"iterations": K``) or ``{"condition": "time", "datetime": T}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


class ScheduleError(ValueError):
    """A schedule the API refuses (in words for the caller)."""


@dataclass(frozen=True)
class Schedule:
    start: datetime
    interval: timedelta | None = None  # None: runs once
    stop_after_runs: int | None = None
    stop_after: datetime | None = None

    @classmethod
    def parse(cls, raw: Any, now: datetime, min_interval: int) -> Schedule:
        if not isinstance(raw, dict):
            raise ScheduleError("'schedule' must be an object")
        kind = raw.get("type")
        if kind == "once":
            return cls(start=_moment(raw.get("datetime"), "schedule.datetime") or now)
        if kind != "recurring":
            raise ScheduleError("'schedule.type' must be 'once' or 'recurring'")
        interval = raw.get("interval_seconds")
        if isinstance(interval, bool) or not isinstance(interval, int):
            raise ScheduleError("'schedule.interval_seconds' must be a whole number of seconds")
        if interval < min_interval:
            raise ScheduleError(
                f"'schedule.interval_seconds' must be at least {min_interval} seconds"
            )
        start = _moment(raw.get("start"), "schedule.start") or now
        end = raw.get("end") or {}
        if not isinstance(end, dict):
            raise ScheduleError("'schedule.end' must be an object")
        count = end.get("count", end.get("iterations"))
        stop_after = _moment(end.get("datetime"), "schedule.end.datetime")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise ScheduleError("'schedule.end.count' must be a whole number")
        if count is not None and count < 1:
            raise ScheduleError("'schedule.end.count' must be at least 1")
        if count is not None and stop_after is not None:
            raise ScheduleError("'schedule.end' takes a count or a datetime, not both")
        if stop_after is not None and stop_after <= start:
            raise ScheduleError("'schedule.end.datetime' must be after the start")
        return cls(start, timedelta(seconds=interval), count, stop_after)

    @classmethod
    def of_document(cls, stored: dict[str, Any]) -> Schedule:
        """A schedule as ``document`` stored it (already checked)."""
        return cls.parse(stored, datetime.now(UTC), min_interval=0)

    def document(self) -> dict[str, Any]:
        if self.interval is None:
            return {"type": "once", "datetime": iso(self.start)}
        end: dict[str, Any] | None = None
        if self.stop_after_runs is not None:
            end = {"condition": "iterations", "count": self.stop_after_runs}
        elif self.stop_after is not None:
            end = {"condition": "time", "datetime": iso(self.stop_after)}
        return {
            "type": "recurring",
            "interval_seconds": int(self.interval.total_seconds()),
            "start": iso(self.start),
            "end": end,
        }

    def following(self, scheduled: datetime, runs_done: int, now: datetime) -> datetime | None:
        """The run after the one ``scheduled`` for (the ``runs_done``-th): the first
        interval step after ``now`` (runs missed while nothing was running are not made up
        one by one), or None when the schedule is over."""
        if self.interval is None:
            return None
        if self.stop_after_runs is not None and runs_done >= self.stop_after_runs:
            return None
        step = self.interval
        following = scheduled + step
        if following <= now:
            following += step * ((now - following) // step + 1)
        if self.stop_after is not None and following > self.stop_after:
            return None
        return following


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _moment(raw: Any, name: str) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ScheduleError(f"'{name}' must be an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"'{name}' is not an ISO 8601 date and time: {raw[:40]!r}") from None
    if parsed.tzinfo is None:
        raise ScheduleError(f"'{name}' needs a time zone (e.g. 2026-12-04T10:00:00+00:00)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ScheduleError(f"'{name}' is out of range") from None
