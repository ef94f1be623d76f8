"""Parsing of the Transfer query mini-languages: ``filter``, ``orderby``, dates, patterns.

``filter=a:x,y/b:z`` is a conjunction of clauses, each a field with comma-separated values;
several ``filter`` parameters are alternatives (ORed); an empty ``filter=`` means no filter.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from arctern.errors import InvalidRequest

Clauses = dict[str, list[str]]


def bad_request(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="ClientError.BadRequest")


def parse_filters(values: list[str], allowed: frozenset[str]) -> list[Clauses]:
    """The alternatives of repeated ``filter`` parameters; ``[]`` when nothing filters."""
    alternatives: list[Clauses] = []
    for value in values:
        if not value.strip():
            # An empty filter matches everything, so the whole disjunction does.
            return []
        clauses: Clauses = {}
        for clause in value.split("/"):
            if not clause:
                continue
            field, sep, rest = clause.partition(":")
            field = field.strip()
            if not sep:
                raise bad_request(f"Invalid filter clause '{clause}': expected field:value")
            if field not in allowed:
                raise bad_request(
                    f"Invalid filter field '{field}'; allowed: {', '.join(sorted(allowed))}"
                )
            clauses[field] = rest.split(",")
        if not clauses:
            return []
        alternatives.append(clauses)
    return alternatives


def parse_datetime(text: str) -> datetime:
    """Accepts ISO-8601 (``T`` or space separated, with or without zone) and bare dates."""
    raw = text.strip()
    candidate = raw.replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(candidate)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        # 9999-12-31T23:59:59-14:00 is after datetime.max in UTC: OverflowError, not a 5xx.
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(f"Invalid date '{raw}'") from None


def parse_time_range(values: list[str], field: str) -> tuple[datetime | None, datetime | None]:
    """``start,end`` where either side may be empty."""
    if len(values) != 2:
        raise bad_request(f"The {field} filter takes 'start,end' (either may be empty)")
    start = parse_datetime(values[0]) if values[0].strip() else None
    end = parse_datetime(values[1]) if values[1].strip() else None
    return start, end


@dataclass(frozen=True, slots=True)
class StringPattern:
    """One ``=x``, ``~x``, ``!x`` or ``!~x`` pattern (a bare value means ``default_op``)."""

    negated: bool
    glob: bool
    text: str

    def matches(self, value: str | None) -> bool:
        if value is None:
            hit = False
        elif self.glob:
            hit = glob_regex(self.text).fullmatch(value) is not None
        else:
            hit = value == self.text
        return hit != self.negated


def parse_pattern(raw: str, *, default_glob: bool = False) -> StringPattern:
    if raw.startswith("!~"):
        return StringPattern(negated=True, glob=True, text=raw[2:])
    if raw.startswith("!"):
        return StringPattern(negated=True, glob=False, text=raw[1:])
    if raw.startswith("~"):
        return StringPattern(negated=False, glob=True, text=raw[1:])
    if raw.startswith("="):
        return StringPattern(negated=False, glob=False, text=raw[1:])
    return StringPattern(negated=False, glob=default_glob, text=raw)


def patterns_match(patterns: list[StringPattern], value: str | None) -> bool:
    """Any positive pattern matches (or there is none) and no negative pattern excludes."""
    positives = [p for p in patterns if not p.negated]
    negatives = [p for p in patterns if p.negated]
    if positives and not any(p.matches(value) for p in positives):
        return False
    return all(p.matches(value) for p in negatives)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Case-insensitive, anchored ``*``/``?`` glob."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def parse_orderby(raw: str | None, allowed: frozenset[str]) -> list[tuple[str, bool]]:
    """``field [ASC|DESC], …`` as (field, descending) pairs; ``field:DESC`` is accepted too."""
    if not raw or not raw.strip():
        return []
    order: list[tuple[str, bool]] = []
    for item in raw.split(","):
        words = item.replace(":", " ").split()
        if not words:
            continue
        field = words[0]
        if field not in allowed:
            raise bad_request(f"Cannot order by '{field}'; allowed: {', '.join(sorted(allowed))}")
        direction = words[1].upper() if len(words) > 1 else "ASC"
        if direction not in ("ASC", "DESC") or len(words) > 2:
            raise bad_request(f"Invalid orderby item '{item.strip()}'")
        order.append((field, direction == "DESC"))
    return order


def parse_bool(raw: str | None, *, default: bool, name: str) -> bool:
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "f", "no", "n", "off"):
        return False
    raise bad_request(f"Invalid boolean for {name}: '{raw}'")


def parse_int(raw: str | None, *, default: int, name: str, minimum: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid integer for {name}: '{raw}'") from None
    if value < minimum or value > maximum:
        raise bad_request(f"{name} must be between {minimum} and {maximum}")
    return value
