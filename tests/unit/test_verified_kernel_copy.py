"""Large local files with a checksum: copied in the kernel, hashed and compared from the
page cache (``Copier._copy_file_range`` with an algorithm)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from arctern.connectors.posix.connector import PosixConnector
from arctern.engine import copier as copier_module
from arctern.engine.copier import Copier, Resume, RetryPolicy
from arctern.engine.errors import CancelToken, FileFailed
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.runner import MemorySink

STEP = 64 * 1024
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01, checksum_attempts=2)


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: Any) -> tuple[Path, Path]:
    monkeypatch.setattr(copier_module, "FAST_PATH_CHUNK", STEP)
    monkeypatch.setattr(copier_module, "CHECK_READ", 16 * 1024)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return tmp_path / "a", tmp_path / "b"


def make_copier(src: Path, dst: Path, sink: MemorySink, **options: Any) -> Copier:
    return Copier(
        PosixConnector(str(src)),
        PosixConnector(str(dst)),
        TransferOptions(**options),
        sink,
        CancelToken(),
        chunk_size=8 * 1024,  # files above one chunk take the kernel path
        retry=FAST_RETRY,
    )


@pytest.mark.parametrize("algorithm", [None, "SHA256"])
async def test_checksum_and_read_back_cover_every_byte(
    roots: tuple[Path, Path], algorithm: str | None
) -> None:
    src, dst = roots
    payload = os.urandom(5 * STEP + 123)  # several steps and a short last one
    (src / "f.bin").write_bytes(payload)
    sink = MemorySink()
    copier = make_copier(src, dst, sink, verify_checksum=True)
    job = FileJob("/f.bin", "/f.bin", len(payload), 0.0, checksum_algorithm=algorithm)
    result = await copier.copy(job)
    expected = hashlib.new((algorithm or "md5").lower(), payload).hexdigest()
    assert result.checksum == expected
    assert (dst / "f.bin").read_bytes() == payload
    assert sink.bytes_transferred == len(payload)
    assert sink.bytes_checksummed == len(payload)
    assert sorted(p.name for p in dst.iterdir()) == ["f.bin"]


async def test_a_corrupted_copy_is_detected_retried_and_never_committed(
    roots: tuple[Path, Path], monkeypatch: Any
) -> None:
    src, dst = roots
    payload = os.urandom(3 * STEP)
    (src / "f.bin").write_bytes(payload)
    real = os.copy_file_range
    corrupt = {"left": 1}

    def flipping(src_fd: int, dst_fd: int, count: int, offset_src: int, offset_dst: int) -> int:
        copied = real(src_fd, dst_fd, count, offset_src, offset_dst)
        if corrupt["left"] and offset_dst >= STEP:
            corrupt["left"] -= 1
            os.pwrite(dst_fd, b"\xff", offset_dst + 10)
        return copied

    monkeypatch.setattr(copier_module.os, "copy_file_range", flipping)
    sink = MemorySink()
    copier = make_copier(src, dst, sink, verify_checksum=True)
    result = await copier.copy(FileJob("/f.bin", "/f.bin", len(payload), 0.0))
    assert sink.faults == 1  # the mismatch, then a clean second copy
    assert result.checksum == hashlib.md5(payload).hexdigest()
    assert (dst / "f.bin").read_bytes() == payload

    # A destination that always differs fails the file and leaves nothing behind.
    corrupt["left"] = 100
    (dst / "f.bin").unlink()
    with pytest.raises(FileFailed) as failed:
        await make_copier(src, dst, MemorySink(), verify_checksum=True).copy(
            FileJob("/f.bin", "/f.bin", len(payload), 0.0)
        )
    assert failed.value.code == "VERIFY_CHECKSUM"
    assert list(dst.iterdir()) == []


async def test_a_resumed_copy_hashes_and_checks_its_prefix(roots: tuple[Path, Path]) -> None:
    src, dst = roots
    payload = os.urandom(4 * STEP)
    (src / "f.bin").write_bytes(payload)
    destination = PosixConnector(str(dst))
    # An earlier worker wrote two steps into its temporary file.
    state = await destination.begin_write("/f.bin", len(payload), temp_key="file1")
    prefix = bytearray(payload[: 2 * STEP])
    await destination.write(state, 0, bytes(prefix))
    sink = MemorySink()
    copier = make_copier(src, dst, sink, verify_checksum=True)
    job = FileJob("/f.bin", "/f.bin", len(payload), 0.0, key=1)
    result = await copier.copy(job, Resume(2 * STEP, state))
    assert result.checksum == hashlib.md5(payload).hexdigest()
    assert sink.bytes_transferred == 2 * STEP  # only the rest was copied
    assert sink.bytes_checksummed == len(payload)

    # The same, but one byte of the earlier worker's prefix is wrong.
    prefix[5] ^= 0xFF
    state = await destination.begin_write("/g.bin", len(payload), temp_key="file2")
    await destination.write(state, 0, bytes(prefix))
    sink = MemorySink()
    job = FileJob("/f.bin", "/g.bin", len(payload), 0.0, key=2)
    result = await make_copier(src, dst, sink, verify_checksum=True).copy(
        job, Resume(2 * STEP, state)
    )
    assert sink.faults == 1  # the bad prefix was caught; the file started over
    assert (dst / "g.bin").read_bytes() == payload
    assert result.checksum == hashlib.md5(payload).hexdigest()


async def test_a_source_that_shrinks_fails_on_the_source_side(roots: tuple[Path, Path]) -> None:
    src, dst = roots
    payload = os.urandom(3 * STEP)
    (src / "f.bin").write_bytes(payload)
    sink = MemorySink()
    copier = make_copier(src, dst, sink, verify_checksum=True)
    with pytest.raises(FileFailed) as failed:
        await copier.copy(FileJob("/f.bin", "/f.bin", len(payload) + 1000, 0.0))
    assert failed.value.code == "FILE_SIZE_CHANGED"
    assert failed.value.source_side
    assert list(dst.iterdir()) == []
