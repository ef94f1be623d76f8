"""Jinja filters that turn sizes, times and paths into what people read on a page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_size(value: Any) -> str:
    """Decimal units as the Globus web app shows them (1 KB = 1000 B)."""
    if value is None or value == "":
        return ""
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1000 or unit == _UNITS[-1]:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PB"  # unreachable; keeps the type checker content


def when(value: Any) -> str:
    """``2026-11-26 00:12 UTC`` for datetimes or ISO strings; empty for nothing."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def iso(value: Any) -> str:
    """The ISO-8601 UTC form for ``<time datetime>``, from which the page shows local time."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return ""


def short_when(value: Any) -> str:
    """``2026-11-26 00:12`` (UTC) for tables, where seconds and the zone are noise."""
    full = when(value)
    return full[:16] if full.endswith(" UTC") else full


def percent(done: Any, total: Any) -> int:
    try:
        d, t = float(done or 0), float(total or 0)
    except (TypeError, ValueError):
        return 0
    if t <= 0:
        return 0
    return max(0, min(100, round(100 * d / t)))


def duration(seconds: float | None) -> str:
    """``1 h 5 min``, ``3 min 20 s``, ``42 s``; empty when unknown."""
    if seconds is None or seconds < 0:
        return ""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@dataclass(frozen=True, slots=True)
class Progress:
    """What a progress line says about a task: the bar counts bytes, the text adds the rest.

    The same reading as ``arctern_client.watch()`` (bytes, files, rate, total, ETA), computed
    here because the server must not import the client package."""

    percent: int | None  # None while the total is unknown (still planning)
    bytes_text: str  # "1.2 GB of 3.4 GB" or "1.2 GB"
    files_text: str  # "400 of 401 files"
    rate_text: str  # "12.3 MB/s" or ""
    eta_text: str  # "about 3 min 20 s left" or ""
    total_text: str  # "3.4 GB" or ""

    def as_dict(self) -> dict[str, object]:
        return {
            "percent": self.percent,
            "bytes": self.bytes_text,
            "files": self.files_text,
            "rate": self.rate_text,
            "eta": self.eta_text,
            "total": self.total_text,
        }


def task_progress(
    *,
    bytes_done: int,
    bytes_total: int | None,
    files_done: int,
    files_total: int | None,
    bytes_per_second: float,
    finished: bool,
    succeeded: bool,
) -> Progress:
    """``bytes_total``/``files_total`` are None until the task's source tree is planned."""
    total_text = human_size(bytes_total) if bytes_total is not None else ""
    if bytes_total is not None and bytes_total > 0:
        percent: int | None = max(0, min(100, int(100 * bytes_done / bytes_total)))
        bytes_text = f"{human_size(bytes_done)} of {total_text}"
    elif bytes_total == 0 and files_total is not None:
        percent = 100 if files_total == files_done else 0
        bytes_text = human_size(bytes_done)
    else:
        percent, bytes_text = None, human_size(bytes_done)
    if succeeded:
        percent = 100
    files_text = f"{files_done}{f' of {files_total}' if files_total is not None else ''} file"
    files_text += "" if (files_total if files_total is not None else files_done) == 1 else "s"
    rate_text = f"{human_size(bytes_per_second)}/s" if bytes_per_second > 0 else ""
    eta_text = ""
    if not finished and bytes_total and bytes_per_second > 0 and bytes_done < bytes_total:
        eta_text = f"about {duration((bytes_total - bytes_done) / bytes_per_second)} left"
    return Progress(percent, bytes_text, files_text, rate_text, eta_text, total_text)


def register_filters(env: Environment) -> None:
    env.filters["human_size"] = human_size
    env.filters["when"] = when
    env.filters["short_when"] = short_when
    env.filters["iso"] = iso
    env.globals["percent"] = percent
