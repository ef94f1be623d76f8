"""Sampling profiles of the running server with py-spy, summarised as the hottest functions."""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def py_spy_command() -> list[str] | None:
    """py-spy from PATH or the venv, else run through ``uv tool run`` when uv is present."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found:
        return [found]
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    return [uv, "tool", "run", "py-spy"] if uv else None


class PySpy:
    """``with PySpy(pid, out):`` records raw (collapsed) stacks of every thread of ``pid``."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.process: subprocess.Popen[bytes] | None = None
        self.error = ""

    def __enter__(self) -> PySpy:
        command = py_spy_command()
        if command is None:
            self.error = "py-spy not found (pip install py-spy, or install uv)"
            return self
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                *command,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--idle",
                "--threads",
                "--output",
                str(self.out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        # py-spy writes its output when interrupted.
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        if not self.out.exists():
            self.error = err.decode(errors="replace")[-500:]


def summarize_raw(raw: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Share of samples per function: where the CPU sits (self) and what is on the stack (total).

    Idle samples (threads waiting in select/epoll/locks) are counted separately so the shares
    describe busy time.
    """
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    idle_markers = (
        "select (",
        "epoll",
        "poll (selectors",
        "wait (threading",
        "_worker (concurrent",
    )
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        leaf = frames[-1]
        if any(marker in leaf for marker in idle_markers):
            idle += count
            continue
        busy += count
        own[leaf] += count
        for frame in set(frames):
            total[frame] += count
    share = busy or 1
    return {
        "self": [(f, 100 * c / share) for f, c in own.most_common(top)],
        "total": [(f, 100 * c / share) for f, c in total.most_common(top)],
        "samples": [("busy", float(busy)), ("idle", float(idle))],
    }
