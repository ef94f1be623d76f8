"""``collection:path`` parsing and display-name resolution through endpoint_search."""

from __future__ import annotations

import globus_sdk
import pytest
import responses

from arctern_client import AmbiguousCollection, CollectionNotFound, split_location
from arctern_client.deployment import Deployment
from arctern_client.locations import CollectionResolver
from tests.client.conftest import TRANSFER_API

ONE = "11111111-1111-4111-8111-111111111111"
TWO = "22222222-2222-4222-8222-222222222222"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Demo Collection 1:/data/", ("Demo Collection 1", "/data/")),
        ("Demo Collection 1:~/notes.txt", ("Demo Collection 1", "~/notes.txt")),
        ("Demo Collection 1", ("Demo Collection 1", None)),
        (f"{ONE}:/a:b/c", (ONE, "/a:b/c")),
        ("Lab: Microscopes:/raw/", ("Lab: Microscopes", "/raw/")),
    ],
)
def test_split_location(text: str, expected: tuple[str, str | None]) -> None:
    assert split_location(text) == expected


def test_split_location_with_separate_path() -> None:
    assert split_location("Demo Collection 1", "/x/") == ("Demo Collection 1", "/x/")
    with pytest.raises(ValueError, match="already contains a path"):
        split_location("Demo Collection 1:/x/", "/y/")


def _search_results(*names: tuple[str, str]) -> dict[str, object]:
    return {
        "DATA_TYPE": "endpoint_list",
        "DATA": [{"DATA_TYPE": "endpoint", "id": i, "display_name": n} for i, n in names],
        "has_next_page": False,
        "offset": 0,
        "limit": 100,
    }


@pytest.fixture
def resolver(deployment: Deployment) -> CollectionResolver:
    return CollectionResolver(deployment.transfer_client(globus_sdk.AccessTokenAuthorizer("t")))


def test_exact_display_name_wins_and_is_cached(
    http: responses.RequestsMock, resolver: CollectionResolver
) -> None:
    search = http.get(
        f"{TRANSFER_API}/endpoint_search",
        json=_search_results((ONE, "Demo Collection 1"), (TWO, "Demo Collection 2")),
    )
    first = resolver.resolve("demo collection 2")
    assert (first.id, first.display_name) == (TWO, "Demo Collection 2")
    assert resolver.resolve("Demo Collection 2 ") == first
    assert search.call_count == 1
    assert "filter_fulltext=demo+collection+2" in (search.calls[0].request.url or "")


def test_a_uuid_needs_no_lookup(http: responses.RequestsMock, resolver: CollectionResolver) -> None:
    assert resolver.resolve(ONE.upper()).id == ONE
    assert len(http.calls) == 0


def test_unknown_name_lists_similar_ones(
    http: responses.RequestsMock, resolver: CollectionResolver
) -> None:
    http.get(f"{TRANSFER_API}/endpoint_search", json=_search_results((ONE, "Demo Collection 1")))
    with pytest.raises(
        CollectionNotFound, match=r"No collection is named 'Demo'.*'Demo Collection 1'"
    ):
        resolver.resolve("Demo")


def test_two_collections_with_one_name(
    http: responses.RequestsMock, resolver: CollectionResolver
) -> None:
    http.get(
        f"{TRANSFER_API}/endpoint_search",
        json=_search_results((ONE, "Scratch"), (TWO, "scratch")),
    )
    with pytest.raises(AmbiguousCollection, match=f"{ONE}.*{TWO}.*Use the ID"):
        resolver.resolve("Scratch")
