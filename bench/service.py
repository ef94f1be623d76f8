"""Service-level measurements: one-file latency, get_task throughput, task_list, memory."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.arctern_session import ArcternSession
from bench.datasets import ensure_empty_tree, tree_stats
from bench.profiling import PySpy
from bench.tools import remove_tree


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def one_file_latency(session: ArcternSession, runs: int) -> dict[str, Any]:
    """Submit one 4 KiB file and wait for SUCCEEDED, ``runs`` times, one after another."""
    source = session.src_root / "latency" / "one.dat"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(b"x" * 4096)
    out_dir = session.dst_root / "latency"
    remove_tree(out_dir)
    times = []
    walls: dict[str, tuple[float, float]] = {}
    for i in range(runs):
        wall = time.time()
        start = time.perf_counter()
        task_id = session.submit(
            [("/latency/one.dat", f"/latency/one-{i}.dat", False)], verify=True, label="latency"
        )
        # A shorter poll than the bulk runs: the interval bounds the measurement error.
        session.wait(task_id, timeout=60, interval=0.01)
        done = time.perf_counter()
        times.append((done - start) * 1000)
        walls[task_id] = (wall, wall + (done - start))
    remove_tree(out_dir)
    return {
        "runs": runs,
        "median_ms": statistics.median(times),
        "p95_ms": percentile(times, 95),
        "min_ms": min(times),
        "max_ms": max(times),
        "poll_interval_ms": 10,
        "breakdown_ms": latency_breakdown(session, walls),
    }


def latency_breakdown(
    session: ArcternSession, walls: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Median milliseconds of each stage, from the server's own timestamps (same clock).

    Read from the database after the fact (the task document only has whole seconds):
    request_time (the API stored the task), the plan's created_at (a worker adopted it), the
    file's done_time (copied and verified), completion_time (marked SUCCEEDED).
    """
    from sqlalchemy import create_engine, func, select

    from arctern.db.models import Task
    from arctern.db.models.work import TaskFile, TaskFileRun, TaskPlan

    stages: dict[str, list[float]] = {
        "client call -> API stored the task (GET submission_id, POST)": [],
        "API stored the task -> worker adopted it": [],
        "adopted -> file copied and verified": [],
        "file done -> task SUCCEEDED": [],
        "SUCCEEDED -> client saw it (poll)": [],
    }
    engine = create_engine(f"sqlite:///{session.database_path}")
    try:
        with engine.connect() as conn:
            for task_id, (begin, seen) in walls.items():
                tid = uuid.UUID(task_id)
                row = conn.execute(
                    select(Task.request_time, Task.completion_time).where(Task.id == tid)
                ).one()
                adopted = conn.execute(
                    select(TaskPlan.created_at).where(TaskPlan.task_id == tid)
                ).scalar()
                # A file done has a row, or (most often) a place in a run.
                done_times = [
                    conn.execute(
                        select(func.max(table.done_time)).where(table.task_id == tid)
                    ).scalar()
                    for table in (TaskFile, TaskFileRun)
                ]
                copied = max((t for t in done_times if t is not None), default=None)
                if not (adopted and copied and row.completion_time):
                    continue
                requested = row.request_time.timestamp()
                # Split at the server's instants; the submit call itself returns a little
                # after request_time, inside the second stage.
                values = [
                    requested - begin,
                    adopted.timestamp() - requested,
                    copied.timestamp() - adopted.timestamp(),
                    row.completion_time.timestamp() - copied.timestamp(),
                    seen - row.completion_time.timestamp(),
                ]
                for name, value in zip(stages, values, strict=True):
                    stages[name].append(value * 1000)
    finally:
        engine.dispose()
    return {name: statistics.median(v) for name, v in stages.items() if v}


async def _hammer(
    host: str, port: int, request: bytes, stop_at: float, counts: list[int], errors: list[int]
) -> None:
    """One keep-alive HTTP/1.1 client sending ``request`` back to back until ``stop_at``."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = None
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length is not None:
                await reader.readexactly(length)
            if status == 200:
                counts[0] += 1
            else:
                errors[0] += 1
    finally:
        writer.close()


def get_task_throughput(
    session: ArcternSession, task_id: str, clients: int, seconds: float
) -> dict[str, Any]:
    """Requests per second of ``GET /v0.10/task/<id>`` from ``clients`` keep-alive connections.

    A minimal asyncio client (pre-built request bytes, no JSON parsing) keeps the load
    generator's own CPU use small, since it shares the two cores with the server.
    """
    parts = urlsplit(session.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET /transfer/v0.10/task/{task_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {session.token}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    # The SDK's own view of the same document, so the endpoint is known to answer properly.
    session.client().get_task(task_id)
    counts, errors = [0], [0]

    async def run() -> float:
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(
            *(_hammer(host, port, request, stop_at, counts, errors) for _ in range(clients))
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(run())
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": counts[0],
        "errors": errors[0],
        "requests_per_second": counts[0] / elapsed,
    }


def insert_tasks(session: ArcternSession, count: int) -> float:
    """Add ``count`` finished task rows owned by the demo user straight into the database.

    Submitting 100,000 tasks through the API would take far longer than the benchmark may
    run, so rows are inserted with SQLAlchemy using the project's own ``Task`` model.
    Returns the seconds it took.
    """
    from sqlalchemy import create_engine, insert, select
    from tests.support.server import DEMO_USERNAME

    from arctern.db.models import Identity, Task

    start = time.perf_counter()
    engine = create_engine(f"sqlite:///{session.database_path}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout = 30000")
            owner = conn.execute(
                select(Identity.id).where(Identity.username == DEMO_USERNAME)
            ).scalar_one()
            base = datetime.now(UTC) - timedelta(days=30)
            batch: list[dict[str, Any]] = []
            for i in range(count):
                requested = base + timedelta(seconds=i * 20)
                batch.append(
                    {
                        "id": uuid.uuid4(),
                        "submission_id": uuid.uuid4(),
                        "owner_id": owner,
                        "type": "TRANSFER",
                        "status": "SUCCEEDED",
                        "nice_status": None,
                        "label": f"bench history {i}",
                        "source_endpoint_id": uuid.UUID(session.src_id),
                        "destination_endpoint_id": uuid.UUID(session.dst_id),
                        "options": {"verify_checksum": True, "sync_level": None},
                        "request_time": requested,
                        "completion_time": requested + timedelta(seconds=5),
                        "deadline": requested + timedelta(days=1),
                        "planned": True,
                        "files": 1,
                        "files_transferred": 1,
                        "bytes_transferred": 4096,
                        "bytes_checksummed": 4096,
                        "subtasks_total": 1,
                        "subtasks_succeeded": 1,
                    }
                )
                if len(batch) == 10_000:
                    conn.execute(insert(Task), batch)
                    batch = []
            if batch:
                conn.execute(insert(Task), batch)
    finally:
        engine.dispose()
    return time.perf_counter() - start


def task_list_latency(session: ArcternSession, tasks: int, requests: int) -> dict[str, Any]:
    """Time ``task_list`` (first page, SDK defaults) with ``tasks`` extra tasks in the database."""
    inserted_in = insert_tasks(session, tasks)
    client = session.client()
    first = client.task_list()
    total = first.get("total")
    page = len(first.get("DATA", []))
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.task_list()
        _ = response["DATA"]
        times.append((time.perf_counter() - start) * 1000)
    return {
        "tasks_inserted": tasks,
        "insert_seconds": inserted_in,
        "total_reported": total,
        "page_size": page,
        "requests": requests,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "max_ms": max(times),
    }


def _rss_kib(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@dataclass
class RssSampler:
    """Samples a process's resident memory every ``interval`` seconds in a thread."""

    pid: int
    interval: float = 0.25
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        start = time.perf_counter()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.samples.append(
                    (time.perf_counter() - start, _rss_kib(self.pid, "VmRSS") / 1024)
                )

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def big_tree(
    home: Path,
    src_root: Path,
    dst_root: Path,
    files: int,
    timeout: float,
    *,
    verify: bool = True,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Peak RSS of a fresh server while it copies a tree of ``files`` empty files."""
    tree = ensure_empty_tree(src_root, files)
    destination = dst_root / tree.name
    remove_tree(destination)
    session = ArcternSession(home=home, src_root=src_root, dst_root=dst_root, poll_interval=0.5)
    session.start()
    result: dict[str, Any] = {"files": files, "timeout_s": timeout}
    try:
        result["rss_before_mib"] = _rss_kib(session.pid, "VmRSS") / 1024
        start = time.perf_counter()
        spy = PySpy(session.pid, profile) if profile else contextlib.nullcontext()
        with RssSampler(session.pid) as sampler, spy:
            task_id = session.submit(
                [(f"/{tree.name}/", f"/{destination.name}/", True)], verify=verify, label="tree"
            )
            try:
                task = session.wait(task_id, timeout=timeout)
                result["completed"] = True
            except (TimeoutError, RuntimeError) as exc:
                result["completed"] = False
                result["error"] = str(exc)[:500]
                task = dict(session.client().get_task(task_id).data)
                if task["status"] == "ACTIVE":
                    session.client().cancel_task(task_id)
            result["files_transferred"] = task.get("files_transferred")
            result["status"] = task.get("status")
        result["seconds"] = time.perf_counter() - start
        rate = (result["files_transferred"] or 0) / result["seconds"]
        result["files_per_second"] = rate
        if not result["completed"] and rate:
            result["projected_seconds"] = files / rate
        result["peak_rss_mib"] = _rss_kib(session.pid, "VmHWM") / 1024
        result["sampled_max_rss_mib"] = max((s[1] for s in sampler.samples), default=0.0)
        result["rss_timeline"] = [
            (round(t, 2), round(m, 1))
            for t, m in sampler.samples[:: max(1, len(sampler.samples) // 200)]
        ]
    finally:
        session.stop()
    if result.get("completed"):
        copied, _ = tree_stats(destination)
        result["files_at_destination"] = copied
        result["completed"] = copied == files
    remove_tree(destination)
    remove_tree(home)
    return result
