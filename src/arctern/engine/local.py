"""Small files in one blocking call: between two local collections, or one side of a copy.

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
from arctern.connectors.posix.connector import HeldDirectories, PosixConnector, map_os_error
from arctern.engine.checksums import new_hasher, same_checksum
from arctern.engine.errors import ChecksumMismatch, FileFailed, mark_source_side
from arctern.engine.options import FileJob

# A small file read: its bytes and, when asked for, their checksum.
SmallRead = tuple[bytes, str | None]
# A small file to write: the job, its bytes, the algorithm and the source's checksum.
SmallWrite = tuple[FileJob, bytes, str | None, str | None]


def copy_small_local(
    source: PosixConnector,
    destination: PosixConnector,
    job: FileJob,
    *,
    algorithm: str | None,
    verify: bool,
    preserve_timestamp: bool,
    held: HeldDirectories | None = None,
) -> str | None:
    """Copy ``job`` (at most one chunk) and return its checksum when ``algorithm`` is set;
    ``verify`` reads the copy back and compares it (only when there is an ``algorithm``).

    Raises connector errors (source ones marked), ``FileFailed`` or ``ChecksumMismatch``;
    on any failure the temporary file is gone and the destination untouched.
    """
    data, checksum = read_small(source, job, algorithm)
    write_small(
        destination,
        job,
        data,
        algorithm=algorithm,
        checksum=checksum,
        verify=verify,
        preserve_timestamp=preserve_timestamp,
        held=held,
    )
    return checksum


def read_small(source: PosixConnector, job: FileJob, algorithm: str | None) -> SmallRead:
    """The source half of ``copy_small_local``: the bytes, and their checksum when
    ``algorithm`` is set (checked against the job's external checksum, if any)."""
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
    return data, checksum


def write_small(
    destination: PosixConnector,
    job: FileJob,
    data: bytes,
    *,
    algorithm: str | None,
    checksum: str | None,
    verify: bool,
    preserve_timestamp: bool,
    held: HeldDirectories | None = None,
) -> None:
    """The destination half: a temporary file, read back and compared when ``verify`` (and
    there is a checksum), then renamed into place. ``held``: the directories of the group
    this file belongs to, looked up once for all of it."""
    temp = destination.create_temp_blocking(job.destination_path, job.temp_key, held)
    try:
        temp.write(data)
        if verify and algorithm and checksum is not None:
            _verify(temp.read_back(job.size + 1), data, job, algorithm, checksum)
        temp.commit(job.mtime if preserve_timestamp else None)
    finally:
        temp.close()


def read_small_many(
    source: PosixConnector, work: list[tuple[FileJob, str | None]]
) -> list[SmallRead | BaseException]:
    """``read_small`` for each ``(job, algorithm)``, one outcome per job."""
    outcomes: list[SmallRead | BaseException] = []
    for job, algorithm in work:
        try:
            outcomes.append(read_small(source, job, algorithm))
        except Exception as exc:  # reported per file to the caller
            outcomes.append(exc)
    return outcomes


def write_small_many(
    destination: PosixConnector,
    work: list[SmallWrite],
    *,
    verify: bool,
    preserve_timestamp: bool,
    check_data: bool = False,
) -> list[BaseException | None]:
    """``write_small`` for each ``(job, data, algorithm, checksum)``, one outcome per job.

    ``check_data``: the bytes came from elsewhere (a peer agent), so they are hashed and
    compared with the checksum the reading side computed before anything is written."""
    outcomes: list[BaseException | None] = []
    held = HeldDirectories()
    try:
        for job, data, algorithm, checksum in work:
            try:
                if check_data and algorithm and checksum is not None:
                    received = new_hasher(algorithm)
                    received.update(data)
                    if not same_checksum(received.hexdigest(), checksum):
                        raise ChecksumMismatch(
                            f"checksum mismatch for {job.destination_path} in transit: "
                            f"source {algorithm} {checksum}, received {received.hexdigest()}"
                        )
                write_small(
                    destination,
                    job,
                    data,
                    algorithm=algorithm,
                    checksum=checksum,
                    verify=verify,
                    preserve_timestamp=preserve_timestamp,
                    held=held,
                )
                outcomes.append(None)
            except Exception as exc:  # reported per file to the caller
                outcomes.append(exc)
    finally:
        held.close()
    return outcomes


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


# A job's ``FileJob.fields()``: how a group of small files travels to a helper process.
JobFields = tuple[str, str, int, float, str | None, str | None, int | None]


def copy_group_local(
    source_root: str,
    destination_root: str,
    work: list[tuple[JobFields, str | None]],
    *,
    verify: bool,
    preserve_timestamp: bool,
    source_guard: AccessGuard | None = None,
    destination_guard: AccessGuard | None = None,
) -> list[str | BaseException | None]:
    """``copy_small_local`` for each ``(job fields, algorithm)``; one outcome (checksum or
    the exception) per job. Takes roots (and the picklable access guards of a non-owner's
    task), not connectors, and plain tuples, so that it runs in another process cheaply."""
    source = PosixConnector(source_root, guard=source_guard)
    destination = PosixConnector(destination_root, guard=destination_guard)
    held = HeldDirectories()
    outcomes: list[str | BaseException | None] = []
    try:
        for fields, algorithm in work:
            try:
                outcomes.append(
                    copy_small_local(
                        source,
                        destination,
                        FileJob(*fields),
                        algorithm=algorithm,
                        verify=verify,
                        preserve_timestamp=preserve_timestamp,
                        held=held,
                    )
                )
            except Exception as exc:  # reported per file to the caller
                outcomes.append(exc)
    finally:
        held.close()
        source.release()
        destination.release()
    return outcomes
