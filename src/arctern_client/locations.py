"""Turning ``collection:path`` strings and collection display names into collection IDs."""

from __future__ import annotations

import difflib
import re
import uuid
from dataclasses import dataclass

import globus_sdk

from arctern_client.errors import AmbiguousCollection, CollectionNotFound

# A path starts after the first colon that is followed by "/" or "~" ("/~/" is the home).
_PATH_START = re.compile(r":(?=[/~])")


@dataclass(frozen=True)
class Collection:
    id: str
    display_name: str | None = None

    def __str__(self) -> str:
        return self.display_name or self.id


def split_location(location: str, path: str | None = None) -> tuple[str, str | None]:
    """``"Demo Collection 1:/data/"`` → ``("Demo Collection 1", "/data/")``.

    A separate ``path`` argument is allowed when ``location`` names only the collection.
    """
    match = _PATH_START.search(location)
    if match:
        collection, embedded = location[: match.start()], location[match.end() :]
    else:
        collection, embedded = location, None
    if path is not None and embedded is not None:
        raise ValueError(f"{location!r} already contains a path; do not pass path={path!r} too")
    return collection.strip(), embedded if embedded is not None else path


def as_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


class CollectionResolver:
    """Resolves display names with ``endpoint_search``; remembers answers for its lifetime."""

    def __init__(self, transfer_client: globus_sdk.TransferClient) -> None:
        self._tc = transfer_client
        self._by_name: dict[str, Collection] = {}

    def resolve(self, name_or_id: str) -> Collection:
        if (as_id := as_uuid(name_or_id)) is not None:
            return Collection(as_id)
        name = name_or_id.strip()
        key = name.casefold()
        if key in self._by_name:
            return self._by_name[key]
        response = self._tc.endpoint_search(name, limit=100)
        candidates = [
            Collection(str(doc["id"]), doc.get("display_name") or doc.get("canonical_name"))
            for doc in response.get("DATA", [])
        ]
        exact = [c for c in candidates if (c.display_name or "").casefold() == key]
        if len(exact) == 1:
            self._by_name[key] = exact[0]
            return exact[0]
        if not exact:
            hint = self._hint(name, [c.display_name for c in candidates if c.display_name])
            raise CollectionNotFound(f"No collection is named {name!r}.{hint}")
        listed = "; ".join(f"{c.display_name} ({c.id})" for c in exact)
        raise AmbiguousCollection(
            f"Several collections are named {name!r}: {listed}. Use the ID instead."
        )

    def _hint(self, name: str, found: list[str]) -> str:
        """The closest collection names to a mistyped one: searched word by word (a typo in
        one word still finds the others), then ranked by similarity; else what the search
        for the whole name found."""
        names: set[str] = set(found)
        for word in {w for w in name.split() if len(w) >= 3} or {name}:
            try:
                docs = self._tc.endpoint_search(word, limit=50).get("DATA", [])
            except globus_sdk.GlobusAPIError:
                continue
            names.update(str(d.get("display_name")) for d in docs if d.get("display_name"))
        close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.6)
        if close:
            return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
        if found:
            return " Similar names: " + ", ".join(repr(n) for n in found[:5]) + "."
        return ""
