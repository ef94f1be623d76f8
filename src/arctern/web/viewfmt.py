"""Jinja filters that turn sizes, times and paths into what people read on a page."""

from __future__ import annotations

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


def register_filters(env: Environment) -> None:
    env.filters["human_size"] = human_size
    env.filters["when"] = when
    env.filters["short_when"] = short_when
    env.globals["percent"] = percent
