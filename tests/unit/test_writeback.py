"""Early write-out of large writes (``connectors/posix/writeback.py``): each large write of a
local copy asks the kernel to start writing exactly its range, small ones are left alone,
and the request never fails a copy."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest

from arctern.connectors.posix import writeback
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.copier import Copier
from arctern.engine.errors import CancelToken
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.runner import MemorySink

MiB = 1 << 20


@pytest.fixture
def requested(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (offset, length) ranges whose write-out was requested."""
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(
        writeback, "_start", lambda _fd, offset, length: calls.append((offset, length))
    )
    return calls


def test_the_kernel_call_exists_here_and_accepts_files_and_pipes(tmp_path: Path) -> None:
    assert writeback._start is not None  # Linux: sync_file_range through libc
    with open(tmp_path / "f", "wb") as handle:
        handle.write(os.urandom(MiB))
        handle.flush()
        writeback.start_writeback(handle.fileno(), 0, MiB)
    reader, writer = os.pipe()
    try:
        writeback.start_writeback(writer, 0, MiB)  # refused by the kernel (ESPIPE): ignored
    finally:
        os.close(reader)
        os.close(writer)


async def test_large_writes_start_write_out_of_their_range(
    tmp_path: Path, requested: list[tuple[int, int]]
) -> None:
    root = PosixConnector(str(tmp_path))
    state = await root.begin_write("/big.bin", 3 * MiB)
    await root.write(state, 0, b"a" * MiB)
    await root.write(state, MiB, b"b" * (2 * MiB))
    await root.write(state, 3 * MiB, b"c" * 1000)  # small: left to the kernel
    await root.commit_write(state, "/big.bin")
    assert requested == [(0, MiB), (MiB, 2 * MiB)]
    assert (tmp_path / "big.bin").stat().st_size == 3 * MiB + 1000


@pytest.mark.parametrize("verify", [True, False])
async def test_a_kernel_side_copy_starts_write_out_step_by_step(
    tmp_path: Path, requested: list[tuple[int, int]], verify: bool
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    data = os.urandom(40 * MiB + 123)
    (src / "f.bin").write_bytes(data)
    options = TransferOptions(verify_checksum=verify)
    copier = Copier(
        PosixConnector(str(src)),
        PosixConnector(str(dst)),
        options,
        MemorySink(),
        CancelToken(),
        chunk_size=8 * MiB,
    )
    job = FileJob("/f.bin", "/f.bin", len(data), 1.7e9, checksum_algorithm="md5", key=1)
    result = await copier.copy(job)
    assert (dst / "f.bin").read_bytes() == data
    if verify:
        assert result.checksum == hashlib.md5(data).hexdigest()
    # Every byte's write-out was asked for once, in the order it was copied.
    assert requested and requested[0][0] == 0
    assert sum(length for _offset, length in requested) == len(data)
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(requested))
