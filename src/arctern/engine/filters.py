"""Globus ``filter_rules``: ordered include/exclude globs on names; first match wins."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any


@dataclass(frozen=True, slots=True)
class FilterRule:
    method: str  # "include" | "exclude"
    name: str  # shell glob matched against the entry's name (not its path)
    type: str | None = None  # "file" | "dir" | None (both)


def parse_filter_rules(raw: list[dict[str, Any]] | None) -> list[FilterRule]:
    rules: list[FilterRule] = []
    for item in raw or []:
        method = str(item.get("method", "exclude")).lower()
        if method not in ("include", "exclude"):
            raise ValueError(f"filter rule method must be include or exclude, not {method!r}")
        kind = item.get("type")
        if kind is not None and kind not in ("file", "dir"):
            raise ValueError(f"filter rule type must be file or dir, not {kind!r}")
        rules.append(FilterRule(method=method, name=str(item.get("name", "")), type=kind))
    return rules


def is_included(rules: list[FilterRule], name: str, is_dir: bool) -> bool:
    """Whether an entry called ``name`` takes part in a recursive transfer."""
    kind = "dir" if is_dir else "file"
    for rule in rules:
        if rule.type is not None and rule.type != kind:
            continue
        if fnmatchcase(name, rule.name):
            return rule.method == "include"
    return True
