"""Groups of small files read or written in one call per group, wherever the files live.

Between a local collection and a peer agent's collection, a 4 KiB file copied through the
connector interface costs four or five network round trips (stat, begin, write, commit,
checksum); across a 50 ms link that is a quarter of a second per file. An end that can take
a whole group at once — the local POSIX connector in one thread hop, the data channel in one
frame each way — lets a group of a hundred files cost one round trip instead of hundreds.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from arctern.connectors.base import Connector
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.local import SmallRead, SmallWrite, read_small_many, write_small_many
from arctern.engine.options import FileJob


@runtime_checkable
class SmallFileEnd(Protocol):
    """One side of a copy that reads or writes many small files per call.

    Outcomes come per file, in order: a failure of one file is its own exception (a
    connector error, ``FileFailed`` or ``ChecksumMismatch``) and does not fail the others.
    """

    async def read_small(
        self, work: list[tuple[FileJob, str | None]]
    ) -> list[SmallRead | BaseException]: ...

    async def write_small(
        self, work: list[SmallWrite], *, verify: bool, preserve_timestamp: bool
    ) -> list[BaseException | None]: ...


class LocalSmallFiles:
    """A POSIX collection as a ``SmallFileEnd``: each group is one hop to a thread."""

    def __init__(self, connector: PosixConnector) -> None:
        self.connector = connector

    async def read_small(
        self, work: list[tuple[FileJob, str | None]]
    ) -> list[SmallRead | BaseException]:
        return await asyncio.to_thread(read_small_many, self.connector, work)

    async def write_small(
        self, work: list[SmallWrite], *, verify: bool, preserve_timestamp: bool
    ) -> list[BaseException | None]:
        return await asyncio.to_thread(
            write_small_many,
            self.connector,
            work,
            verify=verify,
            preserve_timestamp=preserve_timestamp,
            check_data=True,
        )


def small_file_end(connector: Connector) -> SmallFileEnd | None:
    """``connector`` as a ``SmallFileEnd``, or None when it can only go file by file."""
    if isinstance(connector, PosixConnector):
        return LocalSmallFiles(connector)
    if isinstance(connector, SmallFileEnd) and getattr(connector, "small_files", True):
        return connector
    return None
