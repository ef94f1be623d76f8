"""The benchmark command: datasets, every contender in alternating order, service metrics."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, service
from bench.arctern_session import ArcternContender, ArcternSession, ArcternUnavailable
from bench.contenders import Contender, command_contenders
from bench.datasets import Dataset, ensure_dataset, ensure_empty_tree, parse_size, tree_stats
from bench.idle import cpu_seconds
from bench.profiling import PySpy, summarize_raw
from bench.tools import (
    TRASH,
    Stopwatch,
    ensure_tools,
    flush,
    measure_disk,
    remove_tree,
    set_aside,
    tool_version,
    warm_cache,
)

REPO = Path(__file__).resolve().parent.parent

DEFAULT_DATASETS = {
    "A": "20000x4KiB@20",
    "B": "4x1GiB",
    "C": "1000x1MiB+10x100MiB+10000x1KiB",
}
QUICK_DATASETS = {
    "A": "200x4KiB@4",
    "B": "2x4MiB",
    "C": "20x64KiB+2x2MiB+100x1KiB",
}


@dataclass
class Config:
    quick: bool
    datasets: dict[str, str]
    reps: int
    # Dataset A's: its copies take a second or two, so one slow moment of the shared disk
    # swings a repetition's ratio by 2x; more repetitions give the median something to hold.
    small_file_reps: int
    workdir: Path
    out: Path
    only: list[str] | None
    arctern: bool
    service: bool
    latency_runs: int
    get_task_clients: int
    get_task_seconds: float
    task_list_tasks: int
    task_list_requests: int
    tree_files: int
    tree_timeout: float
    budget: float
    copy_timeout: float
    disk_size: int
    install_tools: bool
    clean: bool
    profile: list[str] = field(default_factory=list)
    command: str = ""

    def reps_for(self, dataset: str) -> int:
        """Repetitions per contender of ``dataset``."""
        return self.small_file_reps if dataset == "A" else self.reps


def parse_args(argv: Sequence[str] | None) -> Config:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Arctern against cp, rsync and rclone (see bench/README.md).",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, for CI (under 2 minutes)")
    p.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="KEY=SPEC",
        help="override a dataset, e.g. A=20000x4KiB@20 or C=1000x1MiB+10x100MiB",
    )
    p.add_argument("--datasets", help="comma-separated subset of datasets, e.g. A,C ('none')")
    p.add_argument("--reps", type=int, help="repetitions per contender and dataset (3; quick 2)")
    p.add_argument(
        "--small-file-reps",
        type=int,
        help="repetitions for dataset A, whose short copies the disk's noise swings most "
        "(9; quick: as --reps)",
    )
    p.add_argument(
        "--workdir", type=Path, help="where data is created (/tmp/arctern-bench[-quick])"
    )
    p.add_argument("--out", type=Path, help="output directory (bench/; quick: WORKDIR/results)")
    p.add_argument("--contenders", help="comma-separated subset, e.g. 'cp -r,Arctern verify on'")
    p.add_argument("--no-arctern", action="store_true", help="only the command-line contenders")
    p.add_argument("--no-service", action="store_true", help="skip latency/get_task/task_list/tree")
    p.add_argument("--latency-runs", type=int)
    p.add_argument("--get-task-seconds", type=float)
    p.add_argument("--task-list-tasks", type=int)
    p.add_argument("--tree-files", type=int)
    p.add_argument(
        "--tree-timeout", type=float, help="seconds allowed for the big tree (at most 900)"
    )
    p.add_argument(
        "--budget",
        type=float,
        help="seconds the whole run may take (1140; quick 110): the tree, measured last, gets "
        "what is left (at least 60 s) and reports its progress if it cannot finish",
    )
    p.add_argument("--disk-size", help="bytes written by dd/fio (2GiB; quick 32MiB)")
    p.add_argument("--no-install", action="store_true", help="never apt-get install fio etc.")
    p.add_argument("--clean", action="store_true", help="delete the source datasets afterwards")
    p.add_argument(
        "--profile",
        default="",
        help="comma-separated parts to profile the server in with py-spy: dataset keys (first "
        "'Arctern verify on' run), latency, get_task, task_list, tree",
    )
    a = p.parse_args(argv)
    quick = a.quick
    datasets = dict(QUICK_DATASETS if quick else DEFAULT_DATASETS)
    for item in a.dataset:
        key, _, spec = item.partition("=")
        datasets[key.strip()] = spec
    if a.datasets:
        wanted = [k.strip() for k in a.datasets.split(",") if k.strip() not in ("", "none")]
        datasets = {k: datasets[k] for k in wanted}
    workdir = a.workdir or Path("/tmp/arctern-bench" + ("-quick" if quick else ""))
    return Config(
        quick=quick,
        datasets=datasets,
        reps=a.reps or (2 if quick else 3),
        small_file_reps=a.small_file_reps or a.reps or (2 if quick else 9),
        workdir=workdir.resolve(),
        out=(a.out or (workdir / "results" if quick else REPO / "bench")).resolve(),
        only=[c.strip() for c in a.contenders.split(",")] if a.contenders else None,
        arctern=not a.no_arctern,
        service=not a.no_service,
        latency_runs=a.latency_runs or (5 if quick else 50),
        get_task_clients=32,
        get_task_seconds=a.get_task_seconds or (2.0 if quick else 10.0),
        task_list_tasks=a.task_list_tasks
        if a.task_list_tasks is not None
        else (2000 if quick else 100_000),
        task_list_requests=10 if quick else 50,
        tree_files=a.tree_files if a.tree_files is not None else (2000 if quick else 1_000_000),
        tree_timeout=a.tree_timeout or (60.0 if quick else 900.0),
        budget=a.budget or (110.0 if quick else 1140.0),
        copy_timeout=120.0 if quick else 1800.0,
        disk_size=parse_size(a.disk_size)
        if a.disk_size
        else parse_size("32MiB" if quick else "2GiB"),
        install_tools=not a.no_install and not quick,
        clean=a.clean,
        profile=[k.strip() for k in a.profile.split(",") if k.strip()],
        command="python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
    )


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def order_for(rep: int, names: list[str]) -> list[str]:
    """Rotate by the repetition and reverse every other one, so no contender always goes first."""
    shift = rep % len(names)
    rotated = names[shift:] + names[:shift]
    return rotated[::-1] if rep % 2 else rotated


def machine_meta(cfg: Config) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    fs = subprocess.run(
        ["df", "--output=fstype,source", str(cfg.workdir)], capture_output=True, text=True
    ).stdout.split("\n")[1:2]
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "cpus": os.cpu_count(),
        "memory_gib": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "filesystem": " ".join(fs[0].split()) if fs else "unknown",
        "commit": commit or "unknown",
        "load_average_start": os.getloadavg(),
    }


@contextlib.contextmanager
def profiled(cfg: Config, pid: int | None, name: str) -> Iterator[None]:
    """Record a py-spy profile of the server around the block when ``name`` was asked for."""
    if pid is None or name not in cfg.profile:
        yield
        return
    spy = PySpy(pid, cfg.out / "profiles" / f"{name}.raw")
    with spy:
        yield
    if spy.error:
        log(f"profile {name}: {spy.error}")


def _activity(pid: int) -> tuple[int, int]:
    """(CPU ticks, bytes written) of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        with open(f"/proc/{pid}/io") as io:
            written = next(int(line.split()[1]) for line in io if line.startswith("write_bytes"))
    except (OSError, StopIteration):
        return (0, 0)
    return (int(fields[11]) + int(fields[12]), written)


def wait_quiet(pid: int, *, timeout: float = 30.0) -> None:
    """Until the process neither writes nor uses more than a trickle of CPU for 0.5 s."""
    deadline = time.monotonic() + timeout
    before = _activity(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _activity(pid)
        # Idle polling of the worker pool costs a few ticks; a copy or commit costs many.
        if now[1] == before[1] and now[0] - before[0] <= 5:
            return
        before = now


def cpu_used(contender: Contender, session: ArcternSession | None) -> float:
    """CPU seconds used so far by what does ``contender``'s copies: the server and its helper
    processes for Arctern, the finished child processes of this one for a command."""
    if isinstance(contender, ArcternContender) and session is not None:
        return cpu_seconds(session.pid)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_copies(
    cfg: Config,
    datasets: dict[str, Dataset],
    contenders: dict[str, Contender],
    src_root: Path,
    dst_root: Path,
    session: ArcternSession | None,
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    names = list(contenders)
    trash = cfg.workdir / TRASH
    for key, dataset in datasets.items():
        src = src_root / key
        reps = cfg.reps_for(key)
        for rep in range(reps):
            for name in order_for(rep, names):
                dst = dst_root / key
                set_aside(dst, trash)
                if session:
                    # The server may still write (database, cleanup) after SUCCEEDED; the next
                    # contender's syncfs must not pay for that.
                    wait_quiet(session.pid)
                flush(dst_root)  # nobody pays for the previous run's dirty pages
                warm_cache(src)  # nor reads a source the previous one dropped from the cache
                record: dict[str, Any] = {"dataset": key, "contender": name, "rep": rep}
                # Only the first verify-on repetition is profiled, so the others stay clean.
                scope = f"{key}" if name == report.ARCTERN_ON and rep == 0 else ""
                try:
                    with profiled(cfg, session.pid if session else None, scope):
                        watch = Stopwatch()
                        cpu_before = cpu_used(contenders[name], session)
                        contenders[name].copy(src, dst)
                        record["cpu_s"] = round(cpu_used(contenders[name], session) - cpu_before, 3)
                        flush(dst)
                        # Arctern's run ends when the server records it finished, not at
                        # the poll that sees it (the flush after it is still counted).
                        overrun = getattr(contenders[name], "overrun", 0.0)
                        record["seconds"] = watch.elapsed() - overrun
                        if overrun:
                            record["poll_overrun"] = round(overrun, 4)
                    files, size = tree_stats(dst)
                    record["ok"] = (files, size) == (dataset.files, dataset.bytes)
                    if not record["ok"]:
                        record["error"] = (
                            f"destination has {files} files / {size} bytes, "
                            f"expected {dataset.files} / {dataset.bytes}"
                        )
                except Exception as exc:
                    record.update(
                        ok=False, seconds=None, error=f"{type(exc).__name__}: {exc}"[:600]
                    )
                if isinstance(contenders[name], ArcternContender):
                    task = contenders[name].last_task  # type: ignore[attr-defined]
                    if task:
                        record["task"] = {
                            k: task.get(k)
                            for k in (
                                "files",
                                "files_transferred",
                                "bytes_transferred",
                                "bytes_checksummed",
                                "effective_bytes_per_second",
                                "faults",
                                "request_time",
                                "completion_time",
                            )
                        }
                seconds = record.get("seconds")
                log(
                    f"{key} rep {rep + 1}/{reps} {name}: "
                    f"{f'{seconds:.2f} s' if seconds else 'FAILED'}"
                    f"{'' if record['ok'] else ' — ' + record.get('error', '')[:200]}"
                )
                runs.append(record)
                set_aside(dst, trash)
    return runs


def run_service(cfg: Config, session: ArcternSession) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": {}}
    steps = [
        ("latency", lambda: service.one_file_latency(session, cfg.latency_runs)),
        (
            "get_task",
            lambda: service.get_task_throughput(
                session, out["latency_task"], cfg.get_task_clients, cfg.get_task_seconds
            ),
        ),
        (
            "task_list",
            lambda: service.task_list_latency(session, cfg.task_list_tasks, cfg.task_list_requests),
        ),
    ]
    for name, step in steps:
        if name == "get_task":
            # Any finished task will do; the latency step leaves plenty.
            try:
                out["latency_task"] = session.client().task_list(limit=1)["DATA"][0]["task_id"]
            except Exception as exc:
                out["errors"][name] = f"no task to read: {exc}"
                continue
        log(f"service: {name}")
        try:
            with profiled(cfg, session.pid, name):
                out[name] = step()
            log(f"service: {name} -> {json.dumps(out[name], default=str)[:300]}")
        except Exception as exc:
            out["errors"][name] = f"{type(exc).__name__}: {exc}"[:600]
            log(f"service: {name} FAILED {out['errors'][name]}")
    out.pop("latency_task", None)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--wan" in args:  # the wide-area part has a lab of its own (bench/wan.py)
        from bench import wan

        return wan.main(args)
    cfg = parse_args(argv)
    started = datetime.now(UTC)
    watch = Stopwatch()
    notes: list[str] = []
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    cfg.out.mkdir(parents=True, exist_ok=True)
    src_root, dst_root = cfg.workdir / "src", cfg.workdir / "dst"
    src_root.mkdir(exist_ok=True)
    remove_tree(dst_root)
    remove_tree(cfg.workdir / TRASH)
    dst_root.mkdir()

    available = ensure_tools(["rsync", "rclone", "fio"], install=cfg.install_tools, log=notes)
    meta = machine_meta(cfg)
    meta.update(
        command=cfg.command,
        started=started.strftime("%Y-%m-%d %H:%M"),
        quick=cfg.quick,
        reps=cfg.reps,
        small_file_reps=cfg.reps_for("A"),
        tools={
            t: tool_version(t)
            for t in ("cp", "rsync", "rclone", "fio", "dd")
            if t in ("cp", "dd") or available.get(t)
        },
    )
    skipped: list[str] = list(notes)
    phases: dict[str, float] = {}
    meta["phases_s"] = phases
    if cfg.profile:
        remove_tree(cfg.out / "profiles")

    phase = Stopwatch()
    log(f"disk limit ({cfg.disk_size >> 20} MiB)")
    disk: list[dict[str, Any]] = [
        dict(d.as_dict(), when="start")
        for d in measure_disk(cfg.workdir, cfg.disk_size, use_fio=True)
    ]
    phases["disk limit (start)"] = phase.elapsed()

    phase = Stopwatch()
    keys = list(cfg.datasets)
    datasets = {k: Dataset.parse(k, cfg.datasets[k]) for k in keys}
    for key, dataset in datasets.items():
        log(f"dataset {key}: {dataset.describe()}")
        ensure_dataset(dataset, src_root)
    if cfg.arctern and cfg.service and cfg.tree_files > 0:
        log(f"dataset tree: {cfg.tree_files:,} empty files")
        ensure_empty_tree(src_root, cfg.tree_files)
    flush(src_root)
    phases["datasets (created or reused)"] = phase.elapsed()

    rclone_conf = cfg.workdir / "rclone.conf"
    rclone_conf.touch()
    contenders: dict[str, Contender] = {}
    for c in command_contenders(rclone_conf, dict(os.environ)):
        if shutil.which(c.argv[0]) is None:
            skipped.append(f"{c.name}: {c.argv[0]} not installed")
            continue
        contenders[c.name] = c

    session: ArcternSession | None = None
    phase = Stopwatch()
    if cfg.arctern:
        home = cfg.workdir / "arctern-home"
        remove_tree(home)
        log("starting arctern serve")
        try:
            session = ArcternSession(home=home, src_root=src_root, dst_root=dst_root).start()
            for verify, algorithm in ((True, None), (False, None), (True, "CRC32C")):
                contender = ArcternContender(
                    session, verify=verify, timeout=cfg.copy_timeout, algorithm=algorithm
                )
                contenders[contender.name] = contender
        except (ArcternUnavailable, RuntimeError) as exc:
            skipped.append(f"Arctern: {exc}"[:800])
            log(f"Arctern skipped: {exc}")
            session = None
    if cfg.only:
        contenders = {n: c for n, c in contenders.items() if n in cfg.only}
    phases["server start, collections, login"] = phase.elapsed()

    results: dict[str, Any] = {
        "meta": meta,
        "disk": disk,
        "datasets": {
            k: {
                "spec": cfg.datasets[k],
                "description": d.describe(),
                "files": d.files,
                "bytes": d.bytes,
            }
            for k, d in datasets.items()
        },
        "contenders": {n: {"verifies": c.verifies, "note": c.note} for n, c in contenders.items()},
        "runs": [],
        "service": {},
        "skipped": skipped,
    }
    try:
        phase = Stopwatch()
        results["runs"] = run_copies(cfg, datasets, contenders, src_root, dst_root, session)
        phases["copies"] = phase.elapsed()
        if session and cfg.service:
            phase = Stopwatch()
            results["service"] = run_service(cfg, session)
            phases["latency, get_task, task_list"] = phase.elapsed()
    finally:
        if session:
            session.stop()
    phase = Stopwatch()
    if session and cfg.service and cfg.tree_files > 0:
        # Leave ~45 s for the server start, the final disk measurement and the report.
        allowed = min(cfg.tree_timeout, max(60.0, cfg.budget - watch.elapsed() - 45))
        log(f"service: tree of {cfg.tree_files:,} empty files on a fresh server ({allowed:.0f} s)")
        try:
            results["service"]["tree"] = service.big_tree(
                cfg.workdir / "arctern-tree-home",
                src_root,
                dst_root,
                cfg.tree_files,
                allowed,
                profile=cfg.out / "profiles" / "tree.raw" if "tree" in cfg.profile else None,
            )
            brief = {k: v for k, v in results["service"]["tree"].items() if k != "rss_timeline"}
            log(f"service: tree -> {json.dumps(brief)}")
        except Exception as exc:
            results["service"].setdefault("errors", {})["tree"] = f"{type(exc).__name__}: {exc}"[
                :600
            ]
        phases["tree (fresh server)"] = phase.elapsed()
    elif cfg.service and not session:
        skipped.append("service measurements: Arctern not running")

    phase = Stopwatch()
    log("disk limit again")
    disk += [
        dict(d.as_dict(), when="end")
        for d in measure_disk(cfg.workdir, cfg.disk_size, use_fio=True)
    ]
    phases["disk limit (end)"] = phase.elapsed()
    results["disk_limit_mib_s"] = max(float(d["write_mib_s"]) for d in disk)  # type: ignore[arg-type]

    results["summary"] = report.summarize(results)
    results["targets"] = report.evaluate_targets(results)
    if cfg.profile:
        profiles = {}
        for raw in sorted((cfg.out / "profiles").glob("*.raw")):
            profiles[raw.stem] = summarize_raw(raw)
        results["profiles"] = profiles
    meta["elapsed_s"] = watch.elapsed()
    meta["load_average_end"] = os.getloadavg()
    paths = report.write_outputs(results, cfg.out)
    remove_tree(dst_root)
    remove_tree(cfg.workdir / TRASH)  # last: see set_aside
    if cfg.clean:
        remove_tree(src_root)
    log(f"done in {watch.elapsed():.0f} s: " + ", ".join(str(p) for p in paths.values()))
    print(paths["markdown"].read_text())
    return 0
