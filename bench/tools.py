"""External tools: installing missing ones, their versions, flushing, and the disk's own limit."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.datasets import MiB

# Debian package providing each command the harness drives.
PACKAGES = {"rsync": "rsync", "rclone": "rclone", "fio": "fio"}


def ensure_tools(commands: list[str], *, install: bool, log: list[str]) -> dict[str, bool]:
    """Which commands exist, installing missing ones with apt-get when allowed and root."""
    missing = [c for c in commands if shutil.which(c) is None]
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        packages = sorted({PACKAGES.get(c, c) for c in missing})
        log.append(f"installing {' '.join(packages)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            env=env,
            check=False,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )
    return {c: shutil.which(c) is not None for c in commands}


def tool_version(command: str) -> str:
    args = {
        "cp": ["cp", "--version"],
        "rsync": ["rsync", "--version"],
        "rclone": ["rclone", "version"],
        "fio": ["fio", "--version"],
        "dd": ["dd", "--version"],
    }.get(command, [command, "--version"])
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def flush(path: Path) -> None:
    """Write back dirty pages of ``path``'s file system (``sync -f`` is syncfs(2))."""
    subprocess.run(["sync", "-f", str(path)], check=True)


def warm_cache(path: Path) -> None:
    """Read every file under ``path`` so that its pages are in the page cache.

    Every contender starts from the same, warm source: ``rclone`` drops the pages of the
    files it reads (``fadvise(DONTNEED)``; ``fincore`` shows none of A's resident after an
    ``rclone copy``), so whoever ran next read the source from disk — measured here, an
    Arctern copy of A took 3.1 s right after any rclone run and 1.9 s after another copy,
    its helpers' CPU doubled by the reads.
    """
    chunk = bytearray(1 << 20)
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb", buffering=0) as handle:
                while handle.readinto(chunk):
                    pass


def remove_tree(path: Path) -> None:
    # rm -rf is several times faster than shutil.rmtree on a million files.
    if path.exists():
        subprocess.run(["rm", "-rf", "--", str(path)], check=True)


# Finished copies wait in this folder of the work directory until the end of the run.
TRASH = "trash"


def set_aside(path: Path, trash: Path) -> None:
    """Take a finished copy out of the way without deleting its many small files yet.

    On ext4 without a journal (this VM's root file system) a new inode is never one freed in
    the last minute (five while its inode table block is dirty): after 20,000 deletions,
    every file created during the next minute first scans past them (``perf``: 60 % of a
    small-file copy's kernel time in ``recently_deleted``), so the next contender would pay
    for the clean-up of the previous one, more or less depending on the order. Files of
    1 MiB or more are deleted at once (they are few, and they hold the space); the rest is
    moved into ``trash``, deleted after the last timed copy.
    """
    if not path.exists():
        return
    subprocess.run(["find", str(path), "-type", "f", "-size", "+1023k", "-delete"], check=True)
    trash.mkdir(parents=True, exist_ok=True)
    path.rename(trash / f"{path.name}-{len(list(trash.iterdir()))}")


@dataclass
class DiskLimit:
    method: str
    write_mib_s: float
    read_mib_s: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "write_mib_s": self.write_mib_s,
            "read_mib_s": self.read_mib_s,
        }


def _dd_seconds(stderr: str) -> float:
    match = re.search(r"copied, ([\d.,]+) s", stderr)
    if not match:
        raise RuntimeError(f"unexpected dd output: {stderr!r}")
    return float(match.group(1).replace(",", "."))


def dd_limit(workdir: Path, size: int) -> DiskLimit:
    """Sequential write made durable (``conv=fdatasync``), then a direct (uncached) read."""
    target = workdir / "dd.bin"
    count = max(1, size // (4 * MiB))
    try:
        wrote = subprocess.run(
            ["dd", "if=/dev/zero", f"of={target}", "bs=4M", f"count={count}", "conv=fdatasync"],
            capture_output=True,
            text=True,
            check=True,
        )
        write = count * 4 * MiB / _dd_seconds(wrote.stderr) / MiB
        read: float | None
        try:
            got = subprocess.run(
                ["dd", f"if={target}", "of=/dev/null", "bs=4M", "iflag=direct"],
                capture_output=True,
                text=True,
                check=True,
            )
            read = count * 4 * MiB / _dd_seconds(got.stderr) / MiB
        except subprocess.CalledProcessError:
            read = None  # O_DIRECT is not supported everywhere (tmpfs).
        return DiskLimit("dd bs=4M conv=fdatasync / iflag=direct", write, read)
    finally:
        target.unlink(missing_ok=True)


def fio_limit(workdir: Path, size: int) -> DiskLimit:
    """fio sequential 1 MiB write with a final fsync, then a direct read of the same file."""
    target = workdir / "fio.bin"
    common = [
        "fio",
        "--name=bench",
        f"--filename={target}",
        "--bs=1M",
        f"--size={max(size // MiB, 1)}M",
        "--ioengine=psync",
        "--output-format=json",
    ]
    try:
        wrote = subprocess.run(
            [*common, "--rw=write", "--end_fsync=1"], capture_output=True, text=True, check=True
        )
        got = subprocess.run(
            [*common, "--rw=read", "--direct=1"], capture_output=True, text=True, check=True
        )
        write_kib = json.loads(wrote.stdout)["jobs"][0]["write"]["bw"]
        read_kib = json.loads(got.stdout)["jobs"][0]["read"]["bw"]
        return DiskLimit(
            "fio bs=1M psync end_fsync / direct read", write_kib / 1024, read_kib / 1024
        )
    finally:
        target.unlink(missing_ok=True)


def measure_disk(workdir: Path, size: int, *, use_fio: bool) -> list[DiskLimit]:
    results = [dd_limit(workdir, size)]
    if use_fio and shutil.which("fio"):
        with contextlib.suppress(subprocess.CalledProcessError, KeyError, ValueError):
            results.append(fio_limit(workdir, size))
    return results


class Stopwatch:
    """perf_counter seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
