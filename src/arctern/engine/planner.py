"""Turns submitted items into a stream of work: directories to create, files to copy, errors.

The source tree is walked depth-first with each directory's listing sorted, so the stream is
deterministic and a planner that died can resume by skipping the entries it already committed.
Only one directory listing is held in memory at a time per level of depth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from arctern.connectors.base import SPECIAL_TYPES, Connector, FileInfo
from arctern.connectors.errors import ConnectorError, ObjectNotFound
from arctern.connectors.paths import normalize
from arctern.engine.filters import is_included
from arctern.engine.options import FileJob, ItemSpec, TransferOptions, collection_path


@dataclass(frozen=True)
class MakeDir:
    """Create ``path`` on the destination (with parents); ``counted`` for the directories total."""

    path: str
    counted: bool


@dataclass(slots=True)  # one per file: not frozen, which costs more than the rest of it
class CopyFile:
    job: FileJob


@dataclass(frozen=True)
class PlanError:
    """An item or subtree that cannot be transferred (missing source, unreadable dir, …)."""

    source_path: str
    destination_path: str
    code: str
    message: str
    is_directory: bool = False
    source_side: bool = True  # False: the destination failed (never skipped)


@dataclass(frozen=True)
class DeleteExtra:
    """A destination entry absent from the source (``delete_destination_extra``)."""

    path: str
    is_dir: bool


@dataclass(frozen=True)
class SkippedSymlink:
    source_path: str


PlanEntry = MakeDir | CopyFile | PlanError | DeleteExtra | SkippedSymlink


def _child(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _parent(path: str) -> str:
    head = path.rstrip("/").rsplit("/", 1)[0]
    return head or "/"


_SPECIAL_WORDS = {"pipe": "named pipe", "chr": "character device", "blk": "block device"}


def _special_error(info: FileInfo, source: str, destination: str) -> PlanError:
    """A named pipe, device or socket: listed, never read (reading a pipe blocks forever).
    A source error, so ``skip_source_errors`` skips it."""
    words = _SPECIAL_WORDS.get(info.type, "socket or other special file")
    return PlanError(
        source, destination, "NOT_A_REGULAR_FILE", f"Not a regular file ({words}): {source}"
    )


async def _sorted_listing(connector: Connector, path: str) -> list[FileInfo]:
    entries = [info async for info in connector.list(path)]
    entries.sort(key=lambda info: info.name)
    return entries


# Listings of a source that is not a local file system, fetched ahead of the walk: across
# a wide-area link (or from object storage) each listing is a round trip, and a tree's
# directories listed one after another would wait that many. At most this many are fetched
# or held at once: those of the directories the walk enters next.
LISTINGS_AHEAD = 16


# Of a directory listed ahead, this many subdirectories are listed ahead too: the walk
# enters them right after it, and a subdirectory found only when the walk reaches its parent
# would cost a round trip of its own (a tree of directories that each hold one: one per level).
SUBDIRECTORIES_AHEAD = 4


class _ListingsAhead:
    """The listings of the next directories of a walk, fetched while it goes on: those of
    the directories it enters next, and of the first few subdirectories of each."""

    def __init__(self, connector: Connector, limit: int) -> None:
        self._connector = connector
        self.limit = limit
        self._fetching: dict[str, asyncio.Task[list[FileInfo]]] = {}
        # The subdirectories listed ahead from each directory listed ahead.
        self._below: dict[str, list[str]] = {}

    @classmethod
    def of(cls, connector: Connector, *, wanted: bool = True) -> _ListingsAhead:
        """Listings of ``connector`` ahead of the walk, unless not ``wanted`` or it is a local
        file system (which lists faster than a task could be handed over to list ahead)."""
        listed_ahead = wanted and not connector.capabilities.local_path
        return cls(connector, LISTINGS_AHEAD if listed_ahead else 0)

    def expect(self, upcoming: list[str]) -> None:
        """``upcoming``: the directories the walk enters next, soonest first. The first
        ``limit`` are fetched (with their first subdirectories); listings of any others are
        dropped (fetched again later)."""
        wanted = upcoming[: self.limit]
        keep = set(wanted)
        for path in wanted:
            keep.update(self._below.get(path, ()))
        for path in [path for path in self._fetching if path not in keep]:
            self._fetching.pop(path).cancel()
        self._below = {path: below for path, below in self._below.items() if path in keep}
        for path in wanted:
            if path not in self._fetching:
                self._start(path, look_below=True)

    def _start(self, path: str, *, look_below: bool) -> None:
        fetching = asyncio.ensure_future(self._fetch(path, look_below))
        fetching.add_done_callback(_retrieved)
        self._fetching[path] = fetching

    async def _fetch(self, path: str, look_below: bool) -> list[FileInfo]:
        entries = await _sorted_listing(self._connector, path)
        if look_below:
            below = [_child(path, info.name) for info in entries if info.type == "dir"]
            below = below[:SUBDIRECTORIES_AHEAD]
            self._below[path] = below
            for subdirectory in below:
                if subdirectory not in self._fetching:
                    self._start(subdirectory, look_below=False)
        return entries

    async def take(self, path: str) -> list[FileInfo]:
        """The sorted listing of ``path``: the one fetched ahead, else fetched now."""
        fetching = self._fetching.pop(path, None)
        if fetching is None:
            return await _sorted_listing(self._connector, path)
        return await fetching

    def close(self) -> None:
        for fetching in self._fetching.values():
            fetching.cancel()
        self._fetching.clear()
        self._below.clear()


def _retrieved(fetching: asyncio.Task[list[FileInfo]]) -> None:
    """Mark a dropped listing's failure as seen (``take`` raises it when it is used)."""
    if not fetching.cancelled():
        fetching.exception()


class Planner:
    """Yields the plan entries of one transfer, item by item."""

    def __init__(
        self,
        source: Connector,
        destination: Connector,
        options: TransferOptions,
        *,
        same_storage: bool = False,
    ):
        self.source = source
        self.destination = destination
        self.options = options
        # Source and destination are one tree: copying a directory into itself never ends.
        self.same_storage = same_storage

    async def plan(self, items: list[ItemSpec]) -> AsyncIterator[PlanEntry]:
        for item in items:
            async for entry in self.plan_item(item):
                yield entry

    async def plan_item(self, item: ItemSpec) -> AsyncIterator[PlanEntry]:
        try:
            src = normalize(collection_path(item.source_path))
            dst = normalize(collection_path(item.destination_path))
        except ConnectorError as exc:
            yield PlanError(item.source_path, item.destination_path, exc.code, str(exc))
            return
        try:
            info = await self.source.stat(src)
        except ConnectorError as exc:
            yield PlanError(src, dst, exc.code, str(exc))
            return
        if item.recursive:
            if info.type != "dir":
                yield PlanError(src, dst, "NOT_A_DIRECTORY", f"Not a directory: {src}")
                return
            if self.same_storage and dst.startswith(src.rstrip("/") + "/"):
                yield PlanError(
                    src,
                    dst,
                    "INVALID_PATH_NAME",
                    f"cannot copy {src} into its own subdirectory {dst}",
                    True,
                )
                return
            yield MakeDir(dst, counted=True)
            async for entry in self._walk(
                src, dst, frozenset({info.path}), algorithm=item.checksum_algorithm
            ):
                yield entry
            return
        if info.type == "dir":
            yield PlanError(
                src, dst, "IS_A_DIRECTORY", f"{src} is a directory; use recursive", True
            )
            return
        if info.type in SPECIAL_TYPES:
            yield _special_error(info, src, dst)
            return
        if dst != "/":
            yield MakeDir(_parent(dst), counted=False)
        yield CopyFile(
            FileJob(
                source_path=src,
                destination_path=dst,
                size=info.size,
                mtime=info.mtime,
                external_checksum=item.external_checksum,
                checksum_algorithm=item.checksum_algorithm,
            )
        )

    async def _walk(
        self,
        src_dir: str,
        dst_dir: str,
        ancestors: frozenset[str] = frozenset(),
        *,
        algorithm: str | None = None,
    ) -> AsyncIterator[PlanEntry]:
        """The entries under ``src_dir``, depth first: a directory's own entries (in name
        order), then each subdirectory's ``MakeDir`` followed by its entries. ``algorithm``
        is the item's ``checksum_algorithm``, which applies to every file of a recursive
        item. The order is fixed: an interrupted plan resumes by counting entries.

        Directories wait on a stack rather than in nested generators, so that each entry
        passes through this one generator however deep it lies (a generator level costs
        about a microsecond per entry, paid for every file of a tree).
        """
        rules = self.options.filter_rules
        # (source, destination, the directories above, whether to announce it with MakeDir)
        stack: list[tuple[str, str, frozenset[str], bool]] = [(src_dir, dst_dir, ancestors, False)]
        ahead = _ListingsAhead.of(self.source)
        # The destination's own listings, to find what it has beyond the source's.
        extras_ahead = _ListingsAhead.of(
            self.destination, wanted=self.options.delete_destination_extra
        )
        try:
            while stack:
                src, dst, above, announce = stack.pop()
                if announce:
                    yield MakeDir(dst, counted=True)
                try:
                    entries = await ahead.take(src)
                except ConnectorError as exc:
                    yield PlanError(src, dst, exc.code, str(exc), is_directory=True)
                    continue
                kept: set[str] = set()
                subdirs: list[FileInfo] = []
                for info in entries:
                    if info.type == "link":
                        if self.options.recursive_symlinks != "copy":
                            yield SkippedSymlink(info.path)
                            continue
                        try:
                            target = await self.source.stat(info.path)
                        except ConnectorError as exc:
                            yield PlanError(info.path, _child(dst, info.name), exc.code, str(exc))
                            continue
                        if target.type == "dir" and target.path in above:
                            yield SkippedSymlink(info.path)  # a link back up the tree: no loop
                            continue
                        info = FileInfo(
                            name=info.name,
                            # Where the link leads (stat resolves it): detects loops further down.
                            path=target.path,
                            type=target.type,
                            size=target.size,
                            mtime=target.mtime,
                        )
                    is_dir = info.type == "dir"
                    if not is_included(rules, info.name, is_dir):
                        continue
                    kept.add(info.name)
                    if is_dir:
                        subdirs.append(info)
                    elif info.type in SPECIAL_TYPES:
                        yield _special_error(info, _child(src, info.name), _child(dst, info.name))
                    else:
                        yield CopyFile(
                            FileJob(
                                source_path=_child(src, info.name),
                                destination_path=_child(dst, info.name),
                                size=info.size,
                                mtime=info.mtime,
                                checksum_algorithm=algorithm,
                            )
                        )
                if self.options.delete_destination_extra:
                    async for extra in self._extras(dst, kept, extras_ahead):
                        yield extra
                for info in reversed(subdirs):  # popped in name order
                    stack.append(
                        (_child(src, info.name), _child(dst, info.name), above | {info.path}, True)
                    )
                if ahead.limit:
                    ahead.expect([pending[0] for pending in reversed(stack[-ahead.limit :])])
                if extras_ahead.limit:
                    upcoming = reversed(stack[-extras_ahead.limit :])
                    extras_ahead.expect([pending[1] for pending in upcoming])
        finally:
            ahead.close()
            extras_ahead.close()

    async def _extras(
        self, dst_dir: str, kept: set[str], listings: _ListingsAhead
    ) -> AsyncIterator[PlanEntry]:
        try:
            existing = await listings.take(dst_dir)
        except ObjectNotFound:
            return
        except ConnectorError as exc:
            yield PlanError(
                dst_dir, dst_dir, exc.code, str(exc), is_directory=True, source_side=False
            )
            return
        for info in existing:
            if info.name in kept:
                continue
            # Entries the filter excludes are outside the transfer: leave them alone.
            if not is_included(self.options.filter_rules, info.name, info.type == "dir"):
                continue
            yield DeleteExtra(info.path, info.type == "dir")
