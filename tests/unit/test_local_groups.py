"""Groups of small files between local collections: one offloaded call, per-file outcomes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from arctern.connectors.posix.connector import TEMP_PREFIX, PosixConnector
from arctern.engine.copier import Copier, CopyResult
from arctern.engine.errors import CancelToken, FileFailed
from arctern.engine.offload import Offload, ThreadOffload
from arctern.engine.options import FileJob, TransferOptions
from arctern.engine.runner import MemorySink
from arctern.worker.processes import ProcessOffload


def job(root: Path, name: str, key: int) -> FileJob:
    st = (root / name).stat() if (root / name).exists() else None
    return FileJob(
        source_path=f"/{name}",
        destination_path=f"/out/{name}",
        size=st.st_size if st else 3,
        mtime=st.st_mtime if st else 0.0,
        key=key,
    )


@pytest.mark.parametrize("kind", ["thread", "process"])
async def test_group_copies_verifies_and_reports_each_file(tmp_path: Path, kind: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (dst / "out" / "taken.bin").mkdir(parents=True)  # a directory where a file should go
    blobs = {f"f{i:03}.bin": os.urandom(i * 37) for i in range(120)}  # f000 is empty
    blobs["taken.bin"] = b"xyz"
    for name, data in blobs.items():
        (src / name).write_bytes(data)
    names = [*blobs, "missing.bin"]
    jobs = [job(src, name, key) for key, name in enumerate(names)]
    offload: Offload = ThreadOffload() if kind == "thread" else ProcessOffload(1)
    sink = MemorySink()
    copier = Copier(
        PosixConnector(str(src)),
        PosixConnector(str(dst)),
        TransferOptions(verify_checksum=True, preserve_timestamp=True),
        sink,
        CancelToken(),
        offload=offload,
    )
    try:
        assert all(copier.groupable(j, None) for j in jobs)
        outcomes = await copier.copy_group(jobs)
    finally:
        if isinstance(offload, ProcessOffload):
            offload.shutdown()

    by_name = dict(zip(names, outcomes, strict=True))
    for name, data in blobs.items():
        if name == "taken.bin":
            continue
        outcome = by_name[name]
        assert isinstance(outcome, CopyResult) and outcome.status == "done", name
        assert outcome.checksum == hashlib.md5(data).hexdigest()
        assert (dst / "out" / name).read_bytes() == data
        # preserve_timestamp was asked for
        assert (dst / "out" / name).stat().st_mtime == pytest.approx((src / name).stat().st_mtime)
    taken = by_name["taken.bin"]
    assert isinstance(taken, FileFailed) and taken.code == "IS_A_DIRECTORY"
    assert (dst / "out" / "taken.bin").is_dir()
    missing = by_name["missing.bin"]
    assert isinstance(missing, FileFailed) and missing.code == "FILE_NOT_FOUND"
    assert missing.source_side
    assert not [p for p in dst.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert sink.bytes_transferred == sum(len(d) for n, d in blobs.items() if n != "taken.bin")


async def test_a_cancelled_copier_copies_no_group(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"abc")
    cancel = CancelToken()
    cancel.cancel()
    copier = Copier(
        PosixConnector(str(tmp_path / "src")),
        PosixConnector(str(tmp_path / "dst"), create_root=True),
        TransferOptions(),
        MemorySink(),
        cancel,
    )
    outcomes = await copier.copy_group([job(tmp_path / "src", "a", 1)])
    assert [type(o).__name__ for o in outcomes] == ["Canceled"]
    assert not (tmp_path / "dst" / "out").exists()


def _imported_copy_code() -> tuple[int, bool]:
    import sys

    return os.getpid(), "arctern.engine.local" in sys.modules


async def test_warm_starts_every_helper_before_the_first_call() -> None:
    offload = ProcessOffload(2)
    try:
        offload.warm()
        offload.warm()  # once started, warming again starts nothing more
        executor = offload._executor
        assert executor is not None
        helpers = set(executor._processes)  # spawned by warm itself, not by a first call
        assert len(helpers) == 2
        pid, imported = await offload.run(_imported_copy_code)
        assert pid in helpers and imported
        assert set(executor._processes) == helpers
    finally:
        offload.shutdown()


def _collector_state() -> tuple[tuple[int, int, int], int, bool]:
    """In a helper: its collector's thresholds, frozen objects, and whether the copy code is
    imported."""
    import gc
    import sys

    return gc.get_threshold(), gc.get_freeze_count(), "arctern.engine.local" in sys.modules


async def test_a_helper_starts_with_the_copy_code_loaded_and_its_heap_settled() -> None:
    from arctern.heap import YOUNG_GENERATION_THRESHOLD

    offload = ProcessOffload(1)
    try:
        thresholds, frozen, imported = await offload.run(_collector_state)
    finally:
        offload.shutdown()
    assert thresholds[0] == YOUNG_GENERATION_THRESHOLD
    assert frozen > 10_000  # the copy code's modules, frozen out of full collections
    assert imported
