"""Sampling profiles of the running server with py-spy, summarised as the hottest functions."""

from __future__ import annotations

import collections
import functools
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


@functools.cache
def py_spy_command() -> list[str] | None:
    """py-spy from PATH or the venv, else the binary of an ephemeral ``uv tool run`` environment.

    The path is resolved once, so attaching takes milliseconds and short runs are covered.
    """
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found:
        return [found]
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if not uv:
        return None
    probe = subprocess.run(
        [
            uv,
            "tool",
            "run",
            "--from",
            "py-spy",
            "python",
            "-c",
            "import shutil; print(shutil.which('py-spy') or '')",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    path = probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else ""
    return [path] if path else None


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

    py-spy records only threads that are running (no ``--idle``), so every sample is busy time;
    at 100 Hz, 100 samples are about one CPU-second. ``threads`` splits them by thread name.
    """
    own: collections.Counter[str] = collections.Counter()
    # "total" keeps the project's own frames: the generic outer frames (thread bootstrap,
    # uvicorn, the CLI entry point) are on every stack and say nothing.
    total: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # Line numbers dropped: one row per function reads better than one per line.
        frames = [_LINE.sub(")", f) for f in stack.split(";") if f and not f.startswith("process ")]
        if frames and frames[0].startswith("thread ("):
            # "thread (1234): uvloop_0" -> "uvloop": pool threads share one name.
            name = frames.pop(0).partition(": ")[2] or "thread"
            if "(" in name:  # "Thread-7 (_connection_worker_thread)" -> the target function
                name = name[name.index("(") + 1 : name.rindex(")")]
            threads[name.rstrip("_0123456789") or name] += count
        if not frames:
            continue
        busy += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "arctern/" in frame and "arctern/cli/" not in frame:
                total[frame] += count
    share = busy or 1
    return {
        "self": [(f, 100 * c / share) for f, c in own.most_common(top)],
        "total": [(f, 100 * c / share) for f, c in total.most_common(top)],
        "threads": [(t, 100 * c / share) for t, c in threads.most_common(8)],
        "samples": [("busy", float(busy))],
    }
