"""Unit tests of the Transfer API's input languages: paths, filters, dates, patterns, documents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arctern.errors import ArcternError, InvalidRequest, PermissionDenied, RequestTooLarge
from arctern.transfer.filters import (
    glob_regex,
    parse_datetime,
    parse_filters,
    parse_orderby,
    parse_pattern,
    patterns_match,
)
from arctern.transfer.paths import display_path, is_within, normalize_path
from arctern.transfer.services.submission import MAX_ITEMS, parse_delete, parse_transfer

NOW = datetime(2030, 1, 1, tzinfo=UTC)
SRC = "0f4a3a26-0b9f-4c34-8f43-3c1e7f3b8a01"
DST = "a3cc3f8e-0b4e-4a64-9f0e-6a9b3c2f1d02"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/", "/"),
        ("/~/", "/"),
        ("~", "/"),
        ("/~/a/b/", "/a/b"),
        ("~/a", "/a"),
        ("a/b", "/a/b"),
        ("/a/./b//c/", "/a/b/c"),
        ("/a/b/../c", "/a/c"),
        (None, "/"),
        ("/%2e%2e/x", "/%2e%2e/x"),
    ],
)
def test_normalize_path(raw: str | None, canonical: str) -> None:
    assert normalize_path(raw) == canonical


@pytest.mark.parametrize("raw", ["/..", "/../etc", "/~/../x", "/a/../../b", "..", "/a/b/../../.."])
def test_paths_cannot_escape_the_root(raw: str) -> None:
    with pytest.raises(PermissionDenied):
        normalize_path(raw)


def test_nul_and_overlong_paths_are_bad_requests() -> None:
    with pytest.raises(InvalidRequest):
        normalize_path("/a\x00b")
    with pytest.raises(InvalidRequest):
        normalize_path("/" + "x" * 5000)


def test_display_path_keeps_home_and_ends_with_slash() -> None:
    assert display_path(None) == "/~/"
    assert display_path("/~/nested") == "/~/nested/"
    assert display_path("/share") == "/share/"
    assert display_path("/") == "/"
    assert is_within("/a/b", "/a/") and is_within("/a", "/a/")
    assert not is_within("/ab", "/a/")


def test_filters_and_alternatives() -> None:
    allowed = frozenset({"status", "type", "label"})
    assert parse_filters([], allowed) == []
    assert parse_filters([""], allowed) == []
    assert parse_filters(["status:ACTIVE,FAILED/type:TRANSFER"], allowed) == [
        {"status": ["ACTIVE", "FAILED"], "type": ["TRANSFER"]}
    ]
    assert len(parse_filters(["type:dir", "label:x"], allowed)) == 2
    with pytest.raises(InvalidRequest):
        parse_filters(["colour:red"], allowed)
    with pytest.raises(InvalidRequest):
        parse_filters(["status"], allowed)


@pytest.mark.parametrize(
    "text",
    ["2030-01-01", "2030-01-01 00:00:00", "2030-01-01T00:00:00+00:00", "2030-01-01 00:00:00Z"],
)
def test_dates(text: str) -> None:
    assert parse_datetime(text) == NOW


def test_label_patterns() -> None:
    patterns = [parse_pattern("~night*"), parse_pattern("!~*test*")]
    assert patterns_match(patterns, "Nightly run")
    assert not patterns_match(patterns, "nightly test")
    assert not patterns_match(patterns, "weekly")
    assert patterns_match([parse_pattern("!x")], None)
    assert not patterns_match([parse_pattern("=x")], None)
    assert glob_regex("a?c").fullmatch("ABC")


def test_orderby() -> None:
    allowed = frozenset({"name", "size"})
    assert parse_orderby("name DESC, size", allowed) == [("name", True), ("size", False)]
    assert parse_orderby("name:DESC", allowed) == [("name", True)]
    with pytest.raises(InvalidRequest):
        parse_orderby("owner ASC", allowed)
    with pytest.raises(InvalidRequest):
        parse_orderby("name SIDEWAYS", allowed)


def _transfer(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "DATA_TYPE": "transfer",
        "source_endpoint": SRC,
        "destination_endpoint": DST,
        "DATA": [{"DATA_TYPE": "transfer_item", "source_path": "/~/a", "destination_path": "/b"}],
    }
    body.update(fields)
    return body


def test_parse_transfer_normalises_and_keeps_options() -> None:
    plan, src, dst = parse_transfer(
        _transfer(
            sync_level="mtime",
            verify_checksum=True,
            filter_rules=[{"DATA_TYPE": "filter_rule", "method": "exclude", "name": "*.tmp"}],
            perf_cc=4,  # unknown fields are ignored
        ),
        NOW,
    )
    assert str(src) == SRC and str(dst) == DST
    assert plan.options["sync_level"] == 2 and plan.options["verify_checksum"] is True
    assert plan.options["filter_rules"][0]["method"] == "exclude"
    assert plan.items[0].source_path == "/a" and plan.items[0].recursive is None
    assert plan.deadline is not None and plan.deadline > NOW


@pytest.mark.parametrize(
    "fields",
    [
        {"DATA": []},
        {"DATA": "nope"},
        {"sync_level": 4},
        {"sync_level": True},
        {"preserve_timestamp": "true"},
        {"source_endpoint": "not-a-uuid"},
        {"deadline": "2020-01-01"},
        {"deadline": "someday"},
        {"label": "x" * 200},
        {"DATA_TYPE": "delete"},
        {"submission_id": "abc"},
        {"filter_rules": [{"method": "include"}]},
        {"recursive_symlinks": "follow"},
        {"DATA": [{"source_path": "/a"}]},
        {"DATA": [{"source_path": "/a", "destination_path": "/b", "recursive": "yes"}]},
        {
            "DATA": [
                {
                    "source_path": "/a",
                    "destination_path": "/b",
                    "recursive": True,
                    "external_checksum": "x",
                }
            ]
        },
        {"DATA": [{"source_path": "/a", "destination_path": "/b", "checksum_algorithm": "ROT13"}]},
    ],
)
def test_parse_transfer_rejects(fields: dict[str, object]) -> None:
    with pytest.raises(ArcternError) as excinfo:
        parse_transfer(_transfer(**fields), NOW)
    assert excinfo.value.status == 400


def test_too_many_items_is_413() -> None:
    items = [{"source_path": "/a", "destination_path": "/b"}] * (MAX_ITEMS + 1)
    with pytest.raises(RequestTooLarge):
        parse_transfer(_transfer(DATA=items), NOW)


def test_parse_delete() -> None:
    plan, endpoint = parse_delete(
        {
            "DATA_TYPE": "delete",
            "endpoint": SRC,
            "recursive": True,
            "interpret_globs": True,
            "DATA": [{"DATA_TYPE": "delete_item", "path": "/~/dir/*.txt"}],
        },
        NOW,
    )
    assert str(endpoint) == SRC
    assert plan.options["recursive"] and plan.options["interpret_globs"]
    assert plan.items[0].source_path == "/dir/*.txt"
    with pytest.raises(ArcternError):
        parse_delete({"endpoint": SRC, "DATA": [{"path": "/~/"}]}, NOW)
