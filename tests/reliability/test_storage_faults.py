"""Storage faults through a live server: injected I/O errors and corruption, permanent errors,
a full destination (tmpfs with a size limit), cancel and deadline of a large copy."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import Session, create_collection, login, part_files


def sparse(path: Path, size: int) -> None:
    """A large file that costs nothing to create (reads of holes are cheap, writes are not)."""
    with path.open("wb") as f:
        f.truncate(size)
        f.seek(size // 2)
        f.write(os.urandom(4096))


# -- 2. injected faults ------------------------------------------------------------------


def test_injected_io_errors_and_flipped_bytes_are_retried(server_factory) -> None:  # type: ignore[no-untyped-def]
    # The injector decides each fault from (seed, operation, path, offset, try number), so
    # which files meet which faults is the same on every run, however the worker happens to
    # interleave the files; the seed is one whose faults include read and write errors and
    # flipped bytes. (A shared random stream made this test fail ~1 run in 10 under load.)
    live = server_factory(
        extra_env={"ARCTERN_FAULT_INJECTION": "read_error=0.1,write_error=0.1,flip=0.1,seed=11"}
    )
    me = login(live)
    src = me.c1_root / "faulty"
    src.mkdir()
    blobs = {f"{i:02}.bin": os.urandom(100_000 + i) for i in range(40)}
    blobs["big.bin"] = os.urandom(20 << 20)  # several chunks: faults in the middle of a file
    for name, blob in blobs.items():
        (src / name).write_bytes(blob)
    started = time.monotonic()
    task_id = me.transfer(me.c1, me.c2, [("/faulty", "/faulty", True)], verify_checksum=True)
    doc = me.wait(task_id, timeout=150)
    took = time.monotonic() - started
    if doc["status"] != "SUCCEEDED":  # say which file gave up, and after what
        events = [
            (e["code"], e["details"][:160])
            for e in me.tc.task_event_list(task_id, limit=1000)
            if e["code"] != "ENDPOINT_ERROR"
        ]
        pytest.fail(f"task {doc['status']}: {doc.get('fatal_error')}; events {events[:20]}")
    assert doc["faults"] > 0
    for name, blob in blobs.items():
        assert (me.c2_root / "faulty" / name).read_bytes() == blob, name
    assert part_files(me.c2_root) == []
    codes = me.event_codes(task_id)
    # The flipped bytes were written, caught by the checksum and the file sent again.
    assert "VERIFY_CHECKSUM" in codes, codes
    details = " ".join(e["details"] for e in me.tc.task_event_list(task_id, limit=1000))
    assert "injected read error" in details and "injected write error" in details, details
    print(
        f"\nRELIABILITY faults: files={len(blobs)} faults={doc['faults']} "
        f"verify_checksum_events={codes.count('VERIFY_CHECKSUM')} took={took:.1f}s"
    )


# -- 3. permanent errors -----------------------------------------------------------------


@pytest.fixture
def immutable_dir(shared: Session, scratch: str) -> Iterator[Path]:
    """A destination directory even root cannot write into (``chattr +i``)."""
    path = shared.c2_root / scratch.strip("/") / "locked"
    path.mkdir()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported on this filesystem")
    yield path
    subprocess.run(["chattr", "-i", str(path)], check=True)


def test_permanent_errors_fail_the_task_with_a_clear_fatal_error(
    shared: Session, scratch: str, immutable_dir: Path
) -> None:
    me = shared
    base = me.c2_root / scratch.strip("/")
    (me.c1_root / "rel-perm.txt").write_bytes(b"data")
    (base / "plainfile").write_bytes(b"not a directory")
    try:
        cases = {
            "FILE_NOT_FOUND": ("/no/such/file.txt", f"{scratch}x.txt"),
            "PERMISSION_DENIED": ("/rel-perm.txt", f"{scratch}locked/x.txt"),
            "NOT_A_DIRECTORY": ("/rel-perm.txt", f"{scratch}plainfile/x.txt"),
        }
        tasks = {
            code: me.transfer(me.c1, me.c2, [(src, dst, False)])
            for code, (src, dst) in cases.items()
        }
        for code, task_id in tasks.items():
            started = time.monotonic()
            doc = me.wait(task_id, timeout=60)
            assert doc["status"] == "FAILED", doc
            assert doc["fatal_error"]["code"] == code, doc["fatal_error"]
            assert doc["fatal_error"]["description"], doc
            assert code in me.event_codes(task_id)
            assert time.monotonic() - started < 30
        assert list(immutable_dir.iterdir()) == []
        assert (base / "plainfile").read_bytes() == b"not a directory"
        assert part_files(base) == []
    finally:
        (me.c1_root / "rel-perm.txt").unlink()


def test_skip_source_errors_lists_the_skipped_files(shared: Session, scratch: str) -> None:
    me = shared
    task_id = me.transfer(
        me.c1,
        me.c2,
        [
            ("/hello.txt", f"{scratch}ok.txt", False),
            ("/missing-1.txt", f"{scratch}m1", False),
            ("/missing-2.txt", f"{scratch}m2", False),
        ],
        skip_source_errors=True,
    )
    doc = me.wait(task_id)
    assert doc["status"] == "SUCCEEDED", doc
    skipped = list(me.tc.task_skipped_errors(task_id))
    assert sorted(s["source_path"] for s in skipped) == ["/missing-1.txt", "/missing-2.txt"]
    assert {s["error_code"] for s in skipped} == {"FILE_NOT_FOUND"}
    assert (me.c2_root / scratch.strip("/") / "ok.txt").exists()


# -- 4. destination full -----------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MiB tmpfs; skipped only where this process may not mount."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_destination_full(server_factory, full_disk: Path) -> None:  # type: ignore[no-untyped-def]
    live = server_factory()
    me = login(live)
    small_dst = create_collection(live, "Small Disk", full_disk)
    (full_disk / "keep.bin").write_bytes(b"k" * (2 << 20))  # data already there stays intact
    blob = os.urandom(30 << 20)  # larger than the whole tmpfs
    (me.c1_root / "toobig.bin").write_bytes(blob)

    # fail_on_quota_errors=True: FAILED quickly, partial file removed.
    started = time.monotonic()
    task_id = me.transfer(
        me.c1, small_dst, [("/toobig.bin", "/toobig.bin", False)], fail_on_quota_errors=True
    )
    doc = me.wait(task_id, timeout=30)
    quick = time.monotonic() - started
    assert doc["status"] == "FAILED", doc
    assert doc["fatal_error"]["code"] in ("QUOTA_EXCEEDED", "NO_SPACE_LEFT"), doc["fatal_error"]
    assert quick < 15
    assert sorted(p.name for p in full_disk.iterdir()) == ["keep.bin"]
    assert (full_disk / "keep.bin").read_bytes() == b"k" * (2 << 20)

    # fail_on_quota_errors=False: stays ACTIVE, nice_status names the error, until canceled.
    task_id = me.transfer(me.c1, small_dst, [("/toobig.bin", "/toobig.bin", False)])
    doc = me.wait(
        task_id, timeout=30, until=lambda d: d["nice_status"] not in (None, "Queued", "OK")
    )
    assert doc["status"] == "ACTIVE", doc
    nice = doc["nice_status"]
    time.sleep(2)
    assert me.tc.get_task(task_id)["status"] == "ACTIVE"
    asked = time.monotonic()
    me.tc.cancel_task(task_id)
    doc = me.wait(task_id, timeout=10)
    canceled_in = time.monotonic() - asked
    assert doc["status"] == "FAILED" and doc["fatal_error"]["code"] == "CANCELED"
    with contextlib.suppress(FileNotFoundError):
        assert sorted(p.name for p in full_disk.iterdir()) == ["keep.bin"]
    assert (full_disk / "keep.bin").read_bytes() == b"k" * (2 << 20)
    print(
        f"\nRELIABILITY quota: fail_on_quota_errors=true FAILED in {quick:.1f}s; "
        f"false stays ACTIVE nice_status={nice!r}, canceled in {canceled_in:.1f}s"
    )


# -- 5. cancel and deadline --------------------------------------------------------------


def test_cancel_of_a_large_copy_stops_within_two_seconds(shared: Session, scratch: str) -> None:
    me = shared
    sparse(me.c1_root / "rel-cancel.bin", 4 << 30)
    try:
        task_id = me.transfer(
            me.c1, me.c2, [("/rel-cancel.bin", f"{scratch}big.bin", False)], verify_checksum=True
        )
        me.wait(task_id, timeout=30, until=lambda d: d["bytes_transferred"] > 0)
        asked = time.monotonic()
        me.tc.cancel_task(task_id)
        doc = me.wait(task_id, timeout=10)
        stopped = time.monotonic() - asked
        assert doc["status"] == "FAILED" and doc["fatal_error"]["code"] == "CANCELED"
        assert stopped < 2.0, stopped
        assert list((me.c2_root / scratch.strip("/")).iterdir()) == []
        print(f"\nRELIABILITY cancel: stopped in {stopped:.2f}s")
    finally:
        (me.c1_root / "rel-cancel.bin").unlink()


def test_deadline_expires_a_task(shared: Session, scratch: str) -> None:
    me = shared
    sparse(me.c1_root / "rel-deadline.bin", 4 << 30)
    try:
        from datetime import UTC, datetime, timedelta

        deadline = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        task_id = me.transfer(
            me.c1,
            me.c2,
            [("/rel-deadline.bin", f"{scratch}big.bin", False)],
            verify_checksum=True,
            deadline=deadline,
        )
        doc = me.wait(task_id, timeout=30)
        assert doc["status"] == "FAILED", doc
        assert doc["fatal_error"]["code"] == "EXPIRED"
        assert "EXPIRED" in me.event_codes(task_id)
        time.sleep(0.5)
        assert list((me.c2_root / scratch.strip("/")).iterdir()) == []
    finally:
        (me.c1_root / "rel-deadline.bin").unlink()
