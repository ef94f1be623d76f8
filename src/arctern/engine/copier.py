"""Copies one file between connectors: sync check, chunked parallel copy, checksums, retries.

Data goes to a hidden temporary object that is renamed into place only once complete and
verified. Large files are copied in windows of chunks read and written in parallel at their
offsets; after each window the progress is handed to the sink so that another worker can
resume from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import xxhash

from arctern.connectors.base import Connector, WriteState
from arctern.connectors.errors import (
    ConnectorError,
    ObjectNotFound,
    QuotaExceeded,
    TransientError,
)
from arctern.connectors.posix.writeback import start_writeback
from arctern.engine.checksums import (
    DEFAULT_ALGORITHM,
    THREAD_THRESHOLD,
    Hasher,
    UnsupportedAlgorithm,
    hash_into,
    new_hasher,
    normalize_algorithm,
    same_checksum,
)
from arctern.engine.errors import (
    Canceled,
    CancelToken,
    ChecksumMismatch,
    FileFailed,
    is_source_side,
    mark_source_side,
)
from arctern.engine.local import SmallWrite, copy_group_local, copy_small_local
from arctern.engine.offload import Offload, ThreadOffload
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.small import SmallFileEnd, small_file_end

DEFAULT_CHUNK_SIZE = 8 << 20
FAST_PATH_CHUNK = 64 << 20
# Destinations a group of small files looks up at once for its sync check: a group's worth
# (``worker.executor.GROUP_FILES``), pipelined on the data connections of a remote one.
SYNC_LOOKUPS_AT_ONCE = 256


class ProgressSink(Protocol):
    """Receives accounting from the engine; implementations batch it (never a commit per call)."""

    def count(
        self, *, bytes_transferred: int = 0, bytes_checksummed: int = 0, faults: int = 0
    ) -> None: ...

    def fault(self, code: str, message: str) -> None:
        """A retryable problem happened: count one fault and record an event."""
        ...

    def checkpoint(self, job: FileJob, bytes_done: int, state: WriteState | None) -> None:
        """The first ``bytes_done`` bytes of ``job`` are durably in ``state``'s temp object."""
        ...

    async def persist_checkpoint(
        self, job: FileJob, bytes_done: int, state: WriteState | None
    ) -> None:
        """``checkpoint``, returning once it is stored where a successor would resume from
        (a large file's resume point after each window; concurrent calls share one write)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    checksum_attempts: int = 5

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * self.factor ** max(0, attempt - 1))


@dataclass
class Resume:
    """Persisted progress of a partly copied file."""

    bytes_done: int
    state: WriteState | None


@dataclass(slots=True)  # one per file: not frozen, which costs 1 µs per object made
class CopyResult:
    status: Literal["done", "skipped"]  # skipped: the sync level found nothing to do
    checksum: str | None
    algorithm: str | None
    size: int


@dataclass
class _Progress:
    state: WriteState | None = None
    done: int = 0
    hasher: Hasher | None = None  # covers exactly the first ``done`` bytes when set


class Copier:
    """Copies files from ``source`` to ``destination`` under one task's options."""

    def __init__(
        self,
        source: Connector,
        destination: Connector,
        options: TransferOptions,
        sink: ProgressSink,
        cancel: CancelToken,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel_chunks: int = 4,
        retry: RetryPolicy | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.source = source
        self.destination = destination
        self.options = options
        self.sink = sink
        self.cancel = cancel
        self.chunk_size = chunk_size
        self.parallel_chunks = max(1, parallel_chunks)
        self.retry = retry or RetryPolicy()
        self.offload: Offload = offload or ThreadOffload()
        self._fast_path = _posix_pair(source, destination)
        # Both ends take groups of small files per call (e.g. local POSIX and a peer agent):
        # a group costs one round trip instead of several per file.
        self._ends: tuple[SmallFileEnd, SmallFileEnd] | None = None
        if not self._fast_path:
            source_end, destination_end = small_file_end(source), small_file_end(destination)
            if source_end is not None and destination_end is not None:
                self._ends = (source_end, destination_end)

    # -- orchestration -------------------------------------------------------------------

    async def copy(self, job: FileJob, resume: Resume | None = None) -> CopyResult:
        """Copy ``job``; raises ``FileFailed`` (permanent) or ``Canceled``."""
        try:
            algorithm = normalize_algorithm(job.checksum_algorithm)
        except UnsupportedAlgorithm as exc:
            raise FileFailed("UNSUPPORTED_CHECKSUM_ALGORITHM", str(exc)) from exc
        progress = _Progress(
            state=resume.state if resume else None, done=resume.bytes_done if resume else 0
        )
        # Failed attempts in a row that copied nothing new. An attempt that moved the file
        # forward before failing (say its read-back hit an error after every byte was
        # written) starts the count again: sporadic faults must not doom a long file, and
        # the next attempt has less to do.
        stalled = 0
        mismatches = 0
        while True:
            self.cancel.check()
            started_at = progress.done
            try:
                return await self._attempt(job, algorithm, progress)
            except Canceled:
                if not self.cancel.keep_partial:
                    await self._discard(progress)
                raise
            except FileFailed:
                await self._discard(progress)
                raise
            except ChecksumMismatch as exc:
                await self._discard(progress)
                mismatches += 1
                self.sink.fault("VERIFY_CHECKSUM", str(exc))
                if mismatches >= self.retry.checksum_attempts:
                    raise FileFailed("VERIFY_CHECKSUM", str(exc)) from exc
                # The file starts over: checksum retries have their own budget, and the
                # transient errors met before the mismatch say nothing about this new copy.
                stalled = 0
            except QuotaExceeded as exc:
                stalled = 0 if progress.done > started_at else stalled + 1
                if self.options.fail_on_quota_errors or stalled >= self.retry.max_attempts:
                    await self._discard(progress)
                    raise FileFailed(exc.code, str(exc), quota=True) from exc
                self.sink.fault(exc.code, str(exc))
                await self._sleep(self.retry.delay(stalled))
            except ConnectorError as exc:
                stalled = 0 if progress.done > started_at else stalled + 1
                if not exc.retryable or stalled >= self.retry.max_attempts:
                    await self._discard(progress)
                    raise FileFailed(exc.code, str(exc), source_side=is_source_side(exc)) from exc
                self.sink.fault(exc.code, str(exc))
                await self._sleep(self.retry.delay(stalled))

    async def _discard(self, progress: _Progress) -> None:
        if progress.state is not None:
            state, progress.state, progress.done = progress.state, None, 0
            progress.hasher = None
            with contextlib.suppress(ConnectorError):
                await self.destination.abort_write(state)

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self.cancel.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))

    # -- one attempt ---------------------------------------------------------------------

    def _needs_checksum(self, job: FileJob) -> bool:
        return bool(
            self.options.verify_checksum or job.external_checksum or self.options.sync_level == 3
        )

    async def _attempt(self, job: FileJob, algorithm: str, progress: _Progress) -> CopyResult:
        if (
            progress.state is None
            and self.options.sync_level is not None
            and await self._up_to_date(job, algorithm)
        ):
            return CopyResult("skipped", None, None, job.size)
        need_hash = self._needs_checksum(job)
        if self._fast_path and job.size <= self.chunk_size and progress.state is None:
            return await self._copy_small_local(job, algorithm if need_hash else None)
        verify_wanted = self.options.verify_checksum and need_hash
        if self._fast_path:
            try:
                checksum = await self._copy_file_range(
                    job, progress, algorithm if need_hash else None, verify=verify_wanted
                )
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    from arctern.connectors.posix.connector import map_os_error

                    raise map_os_error(exc, job.destination_path) from exc
                self._fast_path = False  # this filesystem pair cannot do it; use read/write
                await self._discard(progress)
            else:
                self._check_external(job, algorithm, checksum)
                await self._commit(job, progress)
                return CopyResult("done", checksum, algorithm if checksum else None, job.size)
        # Multipart stores only show an object once it is completed: verify after commit.
        readable_temp = self.destination.capabilities.write_at_offset
        checksum, verified = await self._copy_chunks(
            job,
            algorithm if need_hash else None,
            progress,
            read_back=verify_wanted and readable_temp,
        )
        self._check_external(job, algorithm, checksum)
        verify = self.options.verify_checksum and checksum is not None
        if verify and readable_temp:
            assert progress.state is not None and checksum is not None
            if not verified:  # resumed: the prefix was not read back as it was written
                # Checksummed where it lies if the destination can (a peer agent: nothing
                # comes back across the link), else read back here.
                await self._verify(progress.state.temp_path, job, algorithm, checksum, native=True)
        await self._commit(job, progress)
        if verify and not readable_temp:
            assert checksum is not None
            try:
                await self._verify(job.destination_path, job, algorithm, checksum, native=True)
            except ChecksumMismatch:
                with contextlib.suppress(ConnectorError):
                    await self.destination.delete(job.destination_path)
                raise
        return CopyResult("done", checksum, algorithm if checksum else None, job.size)

    @staticmethod
    def _check_external(job: FileJob, algorithm: str, checksum: str | None) -> None:
        """The source's checksum against the one the user gave for it, if any."""
        if (
            job.external_checksum
            and checksum is not None
            and not same_checksum(job.external_checksum, checksum)
        ):
            raise FileFailed(
                "EXTERNAL_CHECKSUM_MISMATCH",
                f"{job.source_path}: {algorithm} is {checksum}, expected {job.external_checksum}",
                source_side=True,
            )

    # -- many small local files at once -------------------------------------------------

    def groupable(self, job: FileJob, resume: Resume | None) -> bool:
        """Whether ``job`` may go through ``copy_group``: at most one chunk, between two local
        collections (or ends that take groups), and not resuming a partial copy."""
        return (
            (self._fast_path or self._ends is not None)
            and resume is None
            and job.size <= self.chunk_size
        )

    async def copy_group(self, jobs: list[FileJob]) -> list[CopyResult | FileFailed | Canceled]:
        """Copy ``groupable`` jobs one after another in a single ``offload`` call.

        Thousands of 4 KiB files cost far more in thread hand-offs than in I/O, and a thread
        making system calls in a tight loop waits for the GIL after every one of them while
        the event loop is busy (measured: 20,000 small copies took 33 s beside a busy thread,
        3 s alone). The worker therefore runs groups in helper processes; a file that fails
        inside the group has its fault counted and is retried through ``copy``.
        """
        outcomes: list[CopyResult | FileFailed | Canceled | None] = [None] * len(jobs)
        work: list[tuple[int, FileJob, str | None]] = []
        for index, job in enumerate(jobs):
            try:
                algorithm = normalize_algorithm(job.checksum_algorithm)
            except UnsupportedAlgorithm as exc:
                outcomes[index] = FileFailed("UNSUPPORTED_CHECKSUM_ALGORITHM", str(exc))
                continue
            work.append((index, job, algorithm if self._needs_checksum(job) else None))
        verify = self.options.verify_checksum
        if self.cancel.cancelled:
            return [Canceled(self.cancel.reason)] * len(jobs)
        unsure: list[tuple[int, FileJob, str | None]] = []
        unsure_why: list[BaseException] = []
        if self.options.sync_level is not None and work:
            current = await self._current_at_destination(
                [(job, algorithm) for _i, job, algorithm in work]
            )
            to_copy: list[tuple[int, FileJob, str | None]] = []
            for entry, found in zip(work, current, strict=True):
                if found is True:
                    outcomes[entry[0]] = CopyResult("skipped", None, None, entry[1].size)
                elif found is False:
                    to_copy.append(entry)
                else:  # the check failed: the file goes one by one, as below
                    unsure.append(entry)
                    unsure_why.append(found)
            work = to_copy
        results: list[str | BaseException | None] = []
        if work and self._ends is not None:
            results = await self._copy_group_ends(work, self._ends)
        elif work:
            try:
                results = await self.offload.run(
                    copy_group_local,
                    self.source.root,  # type: ignore[attr-defined]
                    self.destination.root,  # type: ignore[attr-defined]
                    [(job.fields(), algorithm) for _index, job, algorithm in work],
                    verify=verify,
                    preserve_timestamp=self.options.preserve_timestamp,
                    # A snapshot of a non-owner's grants: the helper applies them as well.
                    source_guard=getattr(self.source, "guard", None),
                    destination_guard=getattr(self.destination, "guard", None),
                )
            except Exception as exc:  # the helper process died: every file goes one by one
                results = [TransientError(f"local copy helper failed: {exc}")] * len(work)
        moved = checked = 0
        work += unsure
        results += unsure_why
        for (index, job, wanted), result in zip(work, results, strict=True):
            if not isinstance(result, BaseException):
                moved += job.size
                checked += job.size if verify and wanted else 0
                outcomes[index] = CopyResult("done", result, wanted if result else None, job.size)
                continue
            if isinstance(result, FileFailed):
                outcomes[index] = result
                continue
            if isinstance(result, ChecksumMismatch):
                self.sink.fault("VERIFY_CHECKSUM", str(result))
            elif isinstance(result, ConnectorError) and result.retryable:
                self.sink.fault(result.code, str(result))
            elif not isinstance(result, ConnectorError):
                raise result
            try:
                outcomes[index] = await self.copy(job)
            except (FileFailed, Canceled) as exc:
                outcomes[index] = exc
        self.sink.count(bytes_transferred=moved, bytes_checksummed=checked)
        final = [outcome for outcome in outcomes if outcome is not None]
        assert len(final) == len(jobs)
        return final

    async def _current_at_destination(
        self, work: list[tuple[FileJob, str | None]]
    ) -> list[bool | BaseException]:
        """For each ``(job, algorithm)``, whether the sync level finds its destination
        current, or why that could not be told. The files are looked up (and at level 3
        checksummed, each where it lies) at once: across a wide-area link, one after another
        they would cost a round trip each."""
        looking = asyncio.Semaphore(SYNC_LOOKUPS_AT_ONCE)

        async def current(job: FileJob, algorithm: str | None) -> bool:
            async with looking:
                return await self._up_to_date(job, algorithm or DEFAULT_ALGORITHM)

        checks = (current(job, algorithm) for job, algorithm in work)
        return list(await asyncio.gather(*checks, return_exceptions=True))

    async def _copy_group_ends(
        self,
        work: list[tuple[int, FileJob, str | None]],
        ends: tuple[SmallFileEnd, SmallFileEnd],
    ) -> list[str | BaseException | None]:
        """One read call for the whole group on the source end, one write call on the
        destination end; an outcome (checksum or exception) per file."""
        source_end, destination_end = ends
        try:
            reads = await source_end.read_small([(job, algorithm) for _i, job, algorithm in work])
        except ConnectorError as exc:  # the whole call failed: every file goes one by one
            return [mark_source_side(exc)] * len(work)
        results: list[str | BaseException | None] = [None] * len(work)
        writes: list[SmallWrite] = []
        positions: list[int] = []
        for position, ((_index, job, algorithm), read) in enumerate(zip(work, reads, strict=True)):
            if isinstance(read, BaseException):
                results[position] = mark_source_side(read)
                continue
            data, checksum = read
            writes.append((job, data, algorithm, checksum))
            positions.append(position)
        if not writes:
            return results
        self.cancel.check()
        try:
            written = await destination_end.write_small(
                writes,
                verify=self.options.verify_checksum,
                preserve_timestamp=self.options.preserve_timestamp,
            )
        except ConnectorError as exc:
            written = [exc] * len(writes)
        for position, outcome, (_job, _data, _algorithm, checksum) in zip(
            positions, written, writes, strict=True
        ):
            results[position] = checksum if outcome is None else outcome
        return results

    @property
    def group_parallelism(self) -> int | None:
        """How many groups to run at once when the ends take groups over the network (their
        round trips overlap); None for local groups, which share the worker's helpers."""
        return None if self._ends is None else self.parallel_chunks

    async def _copy_small_local(self, job: FileJob, algorithm: str | None) -> CopyResult:
        """A file of at most one chunk between local collections: one thread hop in all."""
        verify = self.options.verify_checksum and algorithm is not None
        checksum = await asyncio.to_thread(
            copy_small_local,
            self.source,  # type: ignore[arg-type]
            self.destination,  # type: ignore[arg-type]
            job,
            algorithm=algorithm,
            verify=verify,
            preserve_timestamp=self.options.preserve_timestamp,
        )
        self.sink.count(bytes_transferred=job.size, bytes_checksummed=job.size if verify else 0)
        return CopyResult("done", checksum, algorithm if checksum else None, job.size)

    async def _commit(self, job: FileJob, progress: _Progress) -> None:
        assert progress.state is not None
        mtime = job.mtime if self.options.preserve_timestamp else None
        await self.destination.commit_write(progress.state, job.destination_path, mtime=mtime)
        progress.state = None
        progress.done = 0
        progress.hasher = None

    async def _up_to_date(self, job: FileJob, algorithm: str) -> bool:
        """Whether the sync level says the destination already has this file."""
        try:
            dst = await self.destination.stat(job.destination_path)
        except ObjectNotFound:
            return False
        level = self.options.sync_level or 0
        if dst.type == "dir":
            return False  # the copy will fail with IS_A_DIRECTORY, as it should
        if level == 0:
            return True
        if dst.size != job.size:
            return False
        if level == 1:
            return True
        if level == 2:
            # Copy only when the source is newer; sub-second differences are filesystem noise.
            return not job.mtime > dst.mtime + 1.0
        try:
            src_sum = await self._native_or_read(self.source, job.source_path, job.size, algorithm)
        except ConnectorError as exc:
            mark_source_side(exc)
            raise
        dst_sum = await self._native_or_read(
            self.destination, job.destination_path, dst.size, algorithm
        )
        return same_checksum(src_sum, dst_sum)

    async def _native_or_read(
        self, connector: Connector, path: str, size: int, algorithm: str
    ) -> str:
        """The checksum of ``path`` as ``connector`` computes it where the file lies (an
        object store, a peer agent), else read and hashed here."""
        native = None
        capabilities = connector.capabilities
        largest = capabilities.native_checksum_max_size
        if algorithm in capabilities.native_checksums and (largest is None or size <= largest):
            native = await connector.checksum(path, algorithm)
        if native is not None:
            return native
        return await self._checksum_of(connector, path, size, algorithm)

    async def _checksum_of(self, connector: Connector, path: str, size: int, algo: str) -> str:
        hasher = new_hasher(algo)
        offset = 0

        def fetch(at: int) -> asyncio.Future[bytes]:
            return asyncio.ensure_future(connector.read(path, at, min(self.chunk_size, size - at)))

        # Read the next chunk while hashing this one.
        pending = fetch(0) if size > 0 else None
        try:
            while pending is not None:
                self.cancel.check()
                data = await pending
                pending = None
                if not data:
                    break
                offset += len(data)
                if offset < size:
                    pending = fetch(offset)
                await hash_into(hasher, data)
                self.sink.count(bytes_checksummed=len(data))
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
        return hasher.hexdigest()

    async def _verify(
        self, path: str, job: FileJob, algorithm: str, expected: str, *, native: bool = False
    ) -> None:
        if native:
            info = await self.destination.stat(path)
            actual = await self._native_or_read(self.destination, path, info.size, algorithm)
        else:
            actual = await self._checksum_of(self.destination, path, job.size, algorithm)
        if not same_checksum(actual, expected):
            raise ChecksumMismatch(
                f"checksum mismatch for {job.destination_path}: "
                f"source {algorithm} {expected}, destination {actual}"
            )

    async def _copy_chunks(
        self,
        job: FileJob,
        algorithm: str | None,
        progress: _Progress,
        *,
        read_back: bool = False,
    ) -> tuple[str | None, bool]:
        """Copy the rest of ``job``; return the source checksum and whether the temporary
        file was verified as it was written (``read_back`` on a copy from the start: each
        window is read back and compared while the next one is copied)."""
        state = await self.destination.begin_write(
            job.destination_path, job.size, resume=progress.state, temp_key=job.temp_key
        )
        if progress.state is None or state.temp_path != progress.state.temp_path:
            progress.done = 0
            progress.hasher = None
        progress.state = state
        # Record the temporary file at once: a worker killed before its first chunk
        # checkpoint must not leave a partial file its successor cannot find and reuse.
        self.sink.checkpoint(job, progress.done, state)
        hasher = progress.hasher if algorithm else None
        if algorithm and (hasher is None or not progress.done):
            hasher = new_hasher(algorithm)
            if progress.done:
                # Resuming: the hash must cover the prefix copied by an earlier attempt.
                await self._hash_prefix(job.source_path, progress.done, hasher)
        progress.hasher = hasher
        offset = progress.done
        # Multipart stores need whole parts; offsets then stay on part boundaries.
        chunk = state.part_size or self.chunk_size
        window_bytes = chunk * self.parallel_chunks
        checker = (
            _ReadBack(self, state, job.destination_path) if read_back and offset == 0 else None
        )
        try:
            await self._copy_windows(job, progress, state, hasher, checker, chunk, window_bytes)
            if checker is not None:
                await checker.finish()
        finally:
            if checker is not None:
                await checker.stop()
        return (hasher.hexdigest() if hasher is not None else None), checker is not None

    async def _copy_windows(
        self,
        job: FileJob,
        progress: _Progress,
        state: WriteState,
        hasher: Hasher | None,
        checker: _ReadBack | None,
        chunk: int,
        window_bytes: int,
    ) -> None:
        size = job.size
        offset = progress.done
        while offset < size:
            self.cancel.check()
            end = min(size, offset + window_bytes)
            spans = [(o, min(chunk, end - o)) for o in range(offset, end, chunk)]
            results = await asyncio.gather(
                *[self.source.read(job.source_path, o, n) for o, n in spans],
                return_exceptions=True,
            )
            # Keep the contiguous prefix that was read; a failed chunk is retried, not its
            # neighbours.
            good: list[tuple[int, bytes]] = []
            error: BaseException | None = None
            for (o, n), result in zip(spans, results, strict=True):
                if isinstance(result, BaseException):
                    error = mark_source_side(result)
                    break
                if len(result) != n:
                    raise FileFailed(
                        "FILE_SIZE_CHANGED",
                        f"{job.source_path} changed size during the transfer "
                        f"(short read at offset {o})",
                        source_side=True,
                    )
                good.append((o, result))
            if good:
                writes: list[Awaitable[None]] = [
                    self.destination.write(state, o, d) for o, d in good
                ]
                if hasher is not None:
                    # Hash while the writes are in flight (hashlib releases the GIL).
                    writes.append(_hash_all(hasher, [d for _o, d in good]))
                fingerprints: list[bytes] = []
                if checker is not None:
                    writes.append(_fingerprint_all([d for _o, d in good], fingerprints))
                try:
                    outcomes = await asyncio.gather(*writes, return_exceptions=True)
                except BaseException:
                    progress.hasher = None  # it may have hashed bytes that were not written
                    raise
                for outcome in outcomes[len(good) :]:  # hashing itself failed: nothing is known
                    if isinstance(outcome, BaseException):
                        progress.hasher = None
                        raise outcome
                # Keep the contiguous prefix that was written: a failed write is retried, not
                # the chunks before it (and the progress resets the attempt budget).
                kept = next(
                    (
                        i
                        for i, r in enumerate(outcomes[: len(good)])
                        if isinstance(r, BaseException)
                    ),
                    len(good),
                )
                hashed_all = kept == len(good)
                if not hashed_all:
                    error = outcomes[kept]
                    good, fingerprints = good[:kept], fingerprints[:kept]
                written = sum(len(d) for _o, d in good)
                if checker is not None:
                    checker.add(
                        [(o, len(d), fp) for (o, d), fp in zip(good, fingerprints, strict=True)]
                    )
                offset += written
                progress.done = offset
                # The hash covered every chunk read; after a failed write it runs ahead of
                # the data, and the next attempt rebuilds it from the source.
                progress.hasher = hasher if hashed_all else None
                self.sink.count(bytes_transferred=written)
                if size > chunk:
                    # Durable before the next window: a crash re-sends at most one window.
                    # (The last one needs no wait: the file is committed next.)
                    if offset < size:
                        await self.sink.persist_checkpoint(job, offset, state)
                    else:
                        self.sink.checkpoint(job, offset, state)
            if error is not None:
                raise error

    async def _hash_prefix(self, path: str, length: int, hasher: Hasher) -> None:
        offset = 0
        while offset < length:
            self.cancel.check()
            try:
                data = await self.source.read(path, offset, min(self.chunk_size, length - offset))
            except ConnectorError as exc:
                mark_source_side(exc)
                raise
            if not data:
                raise FileFailed(
                    "FILE_SIZE_CHANGED", f"{path} shrank during the transfer", source_side=True
                )
            await hash_into(hasher, data)
            offset += len(data)

    async def _copy_file_range(
        self,
        job: FileJob,
        progress: _Progress,
        algorithm: str | None = None,
        *,
        verify: bool = False,
    ) -> str | None:
        """Kernel-side copy between two local files, in steps (``FAST_PATH_CHUNK``; a window
        when a checksum is computed, see below).

        With an ``algorithm``, each step is hashed from the source (in the page cache) while
        the kernel copies the next one, and with ``verify`` the destination's bytes are read
        back and compared with the source's: the copy never passes through Python, and MD5
        is the only real cost. Hashing releases the GIL, so the files copied at once hash on
        different cores. Returns the source's checksum (``None`` without an algorithm).
        """
        src = self.source
        dst = self.destination
        state = await dst.begin_write(
            job.destination_path, job.size, resume=progress.state, temp_key=job.temp_key
        )
        if progress.state is None or state.temp_path != progress.state.temp_path:
            progress.done = 0
        progress.state = state
        self.sink.checkpoint(job, progress.done, state)  # see _copy_chunks
        try:
            src_fd = await asyncio.to_thread(src.open_read_fd, job.source_path)  # type: ignore[attr-defined]
        except ConnectorError as exc:
            mark_source_side(exc)
            raise
        # A resumed copy hashes (and compares) its prefix again, one step at a time, along
        # with the rest: the steps below the resume point copy nothing.
        hasher = new_hasher(algorithm) if algorithm else None
        try:
            dst_fd = await asyncio.to_thread(
                dst.open_write_fd,  # type: ignore[attr-defined]
                state,
                readable=verify,
            )
            durable: asyncio.Future[None] | None = None
            # Unverified, a step's resume point is made durable while the next step is copied
            # (one step behind; waiting cost a tenth of the speed). Verified, the copy waits
            # for it — the wait overlaps the previous step's check, the slower part — and a
            # step is a window: a crash then re-sends at most one window, as on the windowed
            # path.
            step_size = (
                FAST_PATH_CHUNK
                if hasher is None
                else min(FAST_PATH_CHUNK, self.chunk_size * self.parallel_chunks)
            )

            async def copy_step(start: int, count: int, after: Awaitable[None] | None) -> None:
                if after is not None:
                    await after
                if count:
                    await asyncio.to_thread(_copy_range, src_fd, dst_fd, start, count, job)

            try:
                checked = 0
                while checked < job.size:
                    self.cancel.check()
                    start = progress.done
                    count = min(step_size, job.size - start)
                    steps: list[Awaitable[Any]] = [
                        copy_step(start, count, durable if hasher is not None else None)
                    ]
                    if hasher is not None and checked < start:
                        # The step copied before, while this one is being copied.
                        steps.append(
                            asyncio.to_thread(
                                _check_range, src_fd, dst_fd, checked, start, hasher, verify, job
                            )
                        )
                    await _all_or_first_error(steps)
                    if hasher is not None and checked < start:
                        if verify:
                            self.sink.count(bytes_checksummed=start - checked)
                        checked = start
                    elif hasher is None:
                        checked = start + count
                    if not count:
                        continue
                    progress.done = start + count
                    self.sink.count(bytes_transferred=count)
                    if job.size > self.chunk_size:
                        self.sink.checkpoint(job, progress.done, state)
                    if job.size > self.chunk_size and progress.done < job.size:
                        if durable is not None:
                            await durable
                        durable = asyncio.ensure_future(
                            self.sink.persist_checkpoint(job, progress.done, state)
                        )
                if durable is not None:
                    await durable
            finally:
                if durable is not None:
                    with contextlib.suppress(Exception):
                        await durable
                os.close(dst_fd)
        finally:
            os.close(src_fd)
        return hasher.hexdigest() if hasher is not None else None


def _copy_range(src_fd: int, dst_fd: int, offset: int, count: int, job: FileJob) -> None:
    """``count`` bytes at ``offset`` from one file to the other, in the kernel."""
    end = offset + count
    while offset < end:
        copied = os.copy_file_range(src_fd, dst_fd, end - offset, offset, offset)
        if copied == 0:
            raise FileFailed(
                "FILE_SIZE_CHANGED",
                f"{job.source_path} changed size during the transfer",
                source_side=True,
            )
        offset += copied
    start_writeback(dst_fd, end - count, count)


# Read size of ``_check_range``: large enough that the per-call cost vanishes, small enough
# to stay in the CPU caches between hashing and comparing.
CHECK_READ = 4 << 20


def _check_range(
    src_fd: int,
    dst_fd: int,
    start: int,
    end: int,
    hasher: Hasher,
    verify: bool,
    job: FileJob,
) -> None:
    """Hash the source's bytes in ``[start, end)`` and, with ``verify``, compare the
    destination's bytes there with them (blocking; hashlib releases the GIL)."""
    offset = start
    while offset < end:
        n = min(CHECK_READ, end - offset)
        data = os.pread(src_fd, n, offset)
        if len(data) != n:
            raise FileFailed(
                "FILE_SIZE_CHANGED",
                f"{job.source_path} shrank during the transfer (short read at offset {offset})",
                source_side=True,
            )
        hasher.update(data)
        if verify and os.pread(dst_fd, n, offset) != data:
            raise ChecksumMismatch(
                f"checksum mismatch for {job.destination_path}: bytes {offset}-{offset + n} "
                "read back from the destination differ from the source"
            )
        offset += n


async def _all_or_first_error(steps: list[Awaitable[Any]]) -> None:
    """Wait for every step (threads cannot be stopped halfway), then raise the first error."""
    outcomes = await asyncio.gather(*steps, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


class _ReadBack:
    """Reads written chunks of a temporary file back, in order, while the copy goes on, and
    compares each with the fingerprint of the source bytes that were written there.

    Fingerprints are xxh3-128 (about 15 GB/s on one core): the algorithm the user asked for
    is computed once, on the source stream, and reported; hashing the read-back with it as
    well would double the cost of MD5 for no better detection of corrupted bytes.
    """

    def __init__(self, copier: Copier, state: WriteState, path: str) -> None:
        self.copier = copier
        self.state = state
        self.path = path
        self._last: asyncio.Task[None] | None = None

    def add(self, chunks: list[tuple[int, int, bytes]]) -> None:
        """Check ``(offset, length, fingerprint)`` chunks after those added before."""
        self._last = asyncio.ensure_future(self._check(self._last, chunks))

    async def _check(
        self, before: asyncio.Task[None] | None, chunks: list[tuple[int, int, bytes]]
    ) -> None:
        if before is not None:
            await before
        destination = self.copier.destination
        if isinstance(destination, RangeFingerprints):
            # Hashed where the bytes are: a destination across a network is not made to
            # send the whole file back.
            found = await destination.fingerprints(
                self.state.temp_path, [(offset, length) for offset, length, _ in chunks]
            )
        else:
            found = []
            for offset, length, _ in chunks:
                found.append(
                    await _fingerprint(await destination.read(self.state.temp_path, offset, length))
                )
        if len(found) != len(chunks):
            raise ChecksumMismatch(f"the destination did not read back all of {self.path}")
        for (offset, length, expected), fingerprint in zip(chunks, found, strict=True):
            if fingerprint != expected:
                raise ChecksumMismatch(
                    f"checksum mismatch for {self.path}: bytes {offset}-{offset + length} "
                    "read back from the destination differ from the source"
                )
            self.copier.sink.count(bytes_checksummed=length)

    async def finish(self) -> None:
        """Wait until every chunk is checked; raises ``ChecksumMismatch`` on a difference."""
        if self._last is not None:
            await self._last

    async def stop(self) -> None:
        """Cancel reading back (the copy failed) and wait until nothing is in flight."""
        if self._last is None:
            return
        if not self._last.done():
            self._last.cancel()
        with contextlib.suppress(BaseException):  # also marks a failure as retrieved
            await self._last


@runtime_checkable
class RangeFingerprints(Protocol):
    """A destination that reads byte ranges back and fingerprints them where it stores them
    (``chunk_fingerprint`` of each range, in order)."""

    async def fingerprints(self, path: str, spans: list[tuple[int, int]]) -> list[bytes]: ...


def chunk_fingerprint(data: bytes) -> bytes:
    """The read-back fingerprint of a chunk (xxh3-128)."""
    return xxhash.xxh3_128_digest(data)


async def _fingerprint(data: bytes) -> bytes:
    if len(data) >= THREAD_THRESHOLD:
        return await asyncio.to_thread(chunk_fingerprint, data)
    return chunk_fingerprint(data)


async def _fingerprint_all(chunks: list[bytes], into: list[bytes]) -> None:
    for data in chunks:
        into.append(await _fingerprint(data))


def _posix_pair(source: Connector, destination: Connector) -> bool:
    from arctern.connectors.posix.connector import PosixConnector

    return isinstance(source, PosixConnector) and isinstance(destination, PosixConnector)


async def _hash_all(hasher: Hasher, chunks: list[bytes]) -> None:
    for data in chunks:
        await hash_into(hasher, data)


# Re-exported for callers that classify engine outcomes.
__all__ = [
    "Canceled",
    "Copier",
    "CopyResult",
    "FileFailed",
    "ProgressSink",
    "Resume",
    "RetryPolicy",
]
