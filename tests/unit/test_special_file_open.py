"""The open-time backstop against special files: a file replaced by a named pipe (or a
socket) after the planner listed it is refused, never read, in every copy path: the
connector's own reads, the small-file path in a thread and in a spawned helper process, and
the ``copy_file_range`` path."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from arctern.connectors.errors import NotARegularFile
from arctern.connectors.posix.connector import PosixConnector
from arctern.engine.copier import Copier
from arctern.engine.errors import CancelToken, FileFailed
from arctern.engine.offload import Offload, ThreadOffload
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.runner import MemorySink
from arctern.worker.processes import ProcessOffload

pytestmark = pytest.mark.timeout(60)


def _socket_at(target: Path) -> None:
    short = tempfile.mkdtemp(prefix="s", dir="/tmp")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(os.path.join(short, "s"))
        shutil.move(os.path.join(short, "s"), target)
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    os.mkfifo(root / "fifo")
    _socket_at(root / "sock")
    return root


async def test_connector_refuses_to_read_a_fifo_or_a_socket(src: Path) -> None:
    conn = PosixConnector(str(src))
    for name, words in (("fifo", "named pipe"), ("sock", "socket")):
        with pytest.raises(NotARegularFile, match=words):
            await asyncio.wait_for(conn.read(f"/{name}", 0, 10), 10)
    assert (await conn.stat("/fifo")).type == "pipe"
    assert (await conn.stat("/sock")).type == "other"


@pytest.mark.parametrize("kind", ["thread", "process", "copy_file_range"])
async def test_every_copy_path_refuses_a_fifo_it_was_told_is_a_file(
    src: Path, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "dst").mkdir()
    # As if the planner had listed a regular file that was then replaced by a pipe.
    size = 10 if kind != "copy_file_range" else 64 * 1024 * 1024
    job = FileJob(source_path="/fifo", destination_path="/fifo", size=size, mtime=0.0, key=1)
    offload: Offload = ProcessOffload(1) if kind == "process" else ThreadOffload()
    copier = Copier(
        PosixConnector(str(src)),
        PosixConnector(str(tmp_path / "dst")),
        TransferOptions(),
        MemorySink(),
        CancelToken(),
        offload=offload,
    )
    try:
        if kind == "copy_file_range":
            with pytest.raises(FileFailed) as caught:
                await asyncio.wait_for(copier.copy(job), 20)
            outcome: object = caught.value
        else:
            (outcome,) = await asyncio.wait_for(copier.copy_group([job]), 20)
    finally:
        if isinstance(offload, ProcessOffload):
            offload.shutdown()
    assert isinstance(outcome, FileFailed), outcome
    assert outcome.code == "NOT_A_REGULAR_FILE" and outcome.source_side
    assert os.listdir(tmp_path / "dst") == []
