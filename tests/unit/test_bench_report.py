"""The bench report: ratios paired by repetition, and RESULTS.md's two parts (a local run and a
WAN run each replace only their own)."""

# The report's typographic signs (multiplication sign, en dash) are meant.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any

import pytest
from bench.report import (
    WAN_MARKER_END,
    WAN_MARKER_START,
    evaluate_targets,
    paired_ratio,
    summarize,
    wan_section,
    with_wan_section,
)

WAN_OLD = f"{WAN_MARKER_START}\n## WAN\n\nold figures\n{WAN_MARKER_END}\n"
WAN_NEW = f"{WAN_MARKER_START}\n## WAN\n\nnew figures\n{WAN_MARKER_END}\n"


def test_a_text_without_wan_part_gets_it_appended_after_one_blank_line() -> None:
    assert with_wan_section("# local\n\ntable\n\n\n", WAN_NEW) == "# local\n\ntable\n\n" + WAN_NEW


def test_the_wan_part_is_replaced_in_place_and_what_follows_it_stays() -> None:
    text = "# local\n\n" + WAN_OLD + "\nfooter\n"
    assert with_wan_section(text, WAN_NEW) == "# local\n\n" + WAN_NEW + "\nfooter\n"


def test_wan_section_finds_the_part_with_its_markers_or_nothing() -> None:
    assert wan_section("# local\n\n" + WAN_OLD + "footer\n") == WAN_OLD
    assert wan_section("# local only\n") == ""
    assert wan_section(f"# cut short\n{WAN_MARKER_START}\n## WAN\n") == ""


def _run(contender: str, rep: int, seconds: float, *, ok: bool = True) -> dict[str, Any]:
    return {"dataset": "A", "contender": contender, "rep": rep, "seconds": seconds, "ok": ok}


def _results(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's results with dataset A and two contenders, Arctern and rsync."""
    return {
        "datasets": {"A": {"bytes": 1 << 20, "files": 10}},
        "contenders": {"Arctern verify on": {"verifies": True}, "rsync -a": {"verifies": True}},
        "runs": runs,
    }


# Arctern took 1.5x rsync's time in two repetitions of three. The disk was slow for both in
# the first and for rsync alone in the last: a ratio of medians (1.5 s / 2.0 s) says 0.75x.
NOISY_RUNS = [
    _run("Arctern verify on", 0, 3.0),
    _run("rsync -a", 0, 2.0),
    _run("Arctern verify on", 1, 1.5),
    _run("rsync -a", 1, 1.0),
    _run("Arctern verify on", 2, 1.5),
    _run("rsync -a", 2, 2.5),
]


def test_a_ratio_is_the_median_of_each_repetitions_own_ratio() -> None:
    paired = paired_ratio(NOISY_RUNS, "A", "Arctern verify on", "rsync -a")
    assert paired is not None
    assert paired.median == pytest.approx(1.5)
    assert paired.pairs == 3


def test_a_repetition_that_failed_on_either_side_is_left_out() -> None:
    runs = [
        *NOISY_RUNS,
        _run("Arctern verify on", 4, 0.1),
        _run("rsync -a", 4, 9.0, ok=False),
        _run("rsync -a", 5, 0.1),
    ]
    paired = paired_ratio(runs, "A", "Arctern verify on", "rsync -a")
    assert paired is not None
    assert (paired.pairs, paired.median) == (3, pytest.approx(1.5))
    assert paired_ratio(runs, "A", "Arctern verify on", "rclone copy") is None


def test_the_target_reports_the_paired_ratio_and_says_when_the_disk_was_noisy() -> None:
    results = _results(NOISY_RUNS)
    results["summary"] = summarize(results)
    assert results["summary"]["A"]["rsync -a"]["arctern_ratio"] == pytest.approx(1.5)
    target = next(t for t in evaluate_targets(results) if t["id"] == "A-rsync")
    assert (target["met"], target["measured"]) == (False, "1.5×")
    assert "3 repetitions: 0.60–1.50×" in target["detail"]
    assert "rsync -a itself took 1.00–2.50 s (a noisy disk)" in target["detail"]


def test_a_contenders_cpu_is_the_median_of_its_successful_runs() -> None:
    runs = [
        {**_run("rsync -a", 0, 1.0), "cpu_s": 0.9},
        {**_run("rsync -a", 1, 1.0), "cpu_s": 1.1},
        {**_run("rsync -a", 2, 1.0), "cpu_s": 1.0},
        {**_run("rsync -a", 3, 9.0, ok=False), "cpu_s": 50.0},
        _run("Arctern verify on", 0, 1.5),  # measured before CPU was recorded
    ]
    rows = summarize(_results(runs))["A"]
    assert rows["rsync -a"]["cpu_s"] == pytest.approx(1.0)
    assert rows["Arctern verify on"]["cpu_s"] is None
