"""Small files between two local collections in one blocking call.

A 4 KiB file costs far more in per-operation overhead (a thread hop, a path lookup, an
await) than in I/O. For a file that fits in one chunk, the copier hands the whole job —
open, read, hash, write into the temporary file, read back and verify, rename — to this
function in a single worker thread, and every path is resolved with one confined
``openat2`` call (see ``connectors/posix/beneath.py``).
"""

from __future__ import annotations

import os

from arctern.connectors.access import AccessGuard
from arctern.connectors.errors import ConnectorError
from arctern.connectors.posix.connector import PosixConnector, map_os_error
from arctern.engine.checksums import new_hasher, same_checksum
from arctern.engine.errors import ChecksumMismatch, FileFailed, mark_source_side
from arctern.engine.options import FileJob


def copy_small_local(
    source: PosixConnector,
    destination: PosixConnector,
    job: FileJob,
    *,
    algorithm: str | None,
    verify: bool,
    preserve_timestamp: bool,
) -> str | None:
    """Copy ``job`` (at most one chunk) and return its checksum when ``algorithm`` is set;
    ``verify`` reads the copy back and compares it (only when there is an ``algorithm``).

    Raises connector errors (source ones marked), ``FileFailed`` or ``ChecksumMismatch``;
    on any failure the temporary file is gone and the destination untouched.
    """
    data = _read_source(source, job)
    checksum = None
    if algorithm:
        hasher = new_hasher(algorithm)
        hasher.update(data)
        checksum = hasher.hexdigest()
        if job.external_checksum and not same_checksum(job.external_checksum, checksum):
            raise FileFailed(
                "EXTERNAL_CHECKSUM_MISMATCH",
                f"{job.source_path}: {algorithm} is {checksum}, expected {job.external_checksum}",
                source_side=True,
            )
    temp = destination.create_temp_blocking(job.destination_path, job.temp_key)
    try:
        temp.write(data)
        if verify and algorithm and checksum is not None:
            _verify(temp.read_back(job.size + 1), data, job, algorithm, checksum)
        temp.commit(job.mtime if preserve_timestamp else None)
    finally:
        temp.close()
    return checksum


def _read_source(source: PosixConnector, job: FileJob) -> bytes:
    try:
        fd, st = source.open_read_blocking(job.source_path)
    except ConnectorError as exc:
        mark_source_side(exc)
        raise
    try:
        data = os.pread(fd, job.size, 0) if st.st_size == job.size else b""
    except OSError as exc:
        raise mark_source_side(map_os_error(exc, job.source_path)) from exc
    finally:
        os.close(fd)
    if st.st_size != job.size or len(data) != job.size:
        raise FileFailed(
            "FILE_SIZE_CHANGED",
            f"{job.source_path} changed size during the transfer "
            f"({job.size} bytes expected, {st.st_size} found)",
            source_side=True,
        )
    return data


def _verify(written: bytes, data: bytes, job: FileJob, algorithm: str, expected: str) -> None:
    """Compare what was read back with the source bytes still in memory: a byte comparison
    is both stricter and cheaper than hashing the copy again."""
    if written == data:
        return
    actual = new_hasher(algorithm)
    actual.update(written)
    raise ChecksumMismatch(
        f"checksum mismatch for {job.destination_path}: "
        f"source {algorithm} {expected}, destination {actual.hexdigest()}"
    )


def copy_group_local(
    source_root: str,
    destination_root: str,
    work: list[tuple[FileJob, str | None]],
    *,
    verify: bool,
    preserve_timestamp: bool,
    source_guard: AccessGuard | None = None,
    destination_guard: AccessGuard | None = None,
) -> list[str | BaseException | None]:
    """``copy_small_local`` for each ``(job, algorithm)``; one outcome (checksum or the
    exception) per job. Takes roots (and the picklable access guards of a non-owner's task),
    not connectors, so that it can run in another process."""
    source = PosixConnector(source_root, guard=source_guard)
    destination = PosixConnector(destination_root, guard=destination_guard)
    outcomes: list[str | BaseException | None] = []
    try:
        for job, algorithm in work:
            try:
                outcomes.append(
                    copy_small_local(
                        source,
                        destination,
                        job,
                        algorithm=algorithm,
                        verify=verify,
                        preserve_timestamp=preserve_timestamp,
                    )
                )
            except Exception as exc:  # reported per file to the caller
                outcomes.append(exc)
    finally:
        source.release()
        destination.release()
    return outcomes
