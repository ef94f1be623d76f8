"""What Arctern costs while nothing happens: CPU and memory of an idle server, worker and
Connect agent (``python -m bench.idle [--seconds 60]``; writes ``bench/IDLE.md``).

Starts ``arctern serve --demo`` (with its embedded workers), a standalone ``arctern worker``
on the same home and a Connect agent (``arctern connect run``) connected to it, lets them
settle, then reads each process's CPU time (user + system, with its children: the worker's
copy helpers) from /proc at the start and the end of the window, and its resident memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).parent
ARCTERN = str(Path(sys.executable).with_name("arctern"))
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    name: str
    cpu_seconds: float
    rss_mib: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            frontier.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mib(pid: int) -> float:
    total = 0
    for member in tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def wait_until(condition: object, what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if condition():  # type: ignore[operator]
                return
        except (OSError, httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def measure(seconds: float) -> list[Sample]:
    work = Path(tempfile.mkdtemp(prefix="arctern-idle-"))
    home, agent_home = work / "home", work / "agent"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ARCTERN_HOME": str(home)}
    agent_env = {k: v for k, v in os.environ.items() if not k.startswith("ARCTERN_")}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        processes["server (serve --demo, embedded workers)"] = subprocess.Popen(
            [ARCTERN, "serve", "--demo", "--home", str(home), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, "server")
        processes["standalone worker (arctern worker)"] = subprocess.Popen(
            [ARCTERN, "worker", "--home", str(home)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        made = subprocess.run(
            [ARCTERN, "endpoint", "create", "idle agent", "--owner", "researcher@example.edu",
             "--home", str(home)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key = made.stdout.split("Setup key")[1].split(": ")[1].split()[0]
        subprocess.run(
            [ARCTERN, "connect", "setup", url, "--name", "idle agent", "--home",
             str(agent_home), "--setup-key-stdin"],
            env=agent_env, input=key + "\n", capture_output=True, text=True, check=True,
        )  # fmt: skip
        processes["Connect agent (connect run)"] = subprocess.Popen(
            [ARCTERN, "connect", "run", "--home", str(agent_home)],
            env=agent_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: '"connected"' in (agent_home / "status.json").read_text(), "the agent")
        time.sleep(10)  # start-up work (migrations, demo data, first polls) is not idle cost
        before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
        time.sleep(seconds)
        return [
            Sample(name, (cpu_seconds(p.pid) - before[name]) / seconds * 60, rss_mib(p.pid))
            for name, p in processes.items()
        ]
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def report(samples: list[Sample], seconds: float) -> str:
    lines = [
        "# Idle cost",
        "",
        f"Measured by `python -m bench.idle` over {seconds:.0f} s of idleness (after 10 s to",
        "settle), SQLite home, on this project's 2-core machine. CPU is user + system time of",
        "the process and its children, per minute of wall time; memory is resident (RSS).",
        "",
        "| Process | CPU seconds per minute | CPU % | RSS (MiB) |",
        "|---|---:|---:|---:|",
    ]
    for s in samples:
        lines.append(
            f"| {s.name} | {s.cpu_seconds:.2f} | {s.cpu_seconds / 60 * 100:.2f} | {s.rss_mib:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the window")
    parser.add_argument("--out", type=Path, default=HERE / "IDLE.md")
    args = parser.parse_args()
    samples = measure(args.seconds)
    text = report(samples, args.seconds)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
