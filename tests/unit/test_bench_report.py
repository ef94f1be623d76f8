"""RESULTS.md holds two runs' parts: a local run and a WAN run each replace only their own."""

from __future__ import annotations

from bench.report import WAN_MARKER_END, WAN_MARKER_START, wan_section, with_wan_section

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
