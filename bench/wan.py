"""Across an emulated wide-area link: ``python -m bench --wan`` (root, Linux).

Three hosts as network namespaces on a bridge (``tests.support.netns``, the same lab the
WAN tests use): the deployment (``arctern serve``), a data transfer node and a laptop.
Every host holds each packet it receives for half the round trip (an NFQUEUE delay line:
this kernel has no netem) and may drop a fraction of them; the DTN's and the laptop's
sending rate is shaped with ``tbf``. On that link, the same data goes from the laptop to
the DTN with each contender, in alternating order:

- ``rsync -a -e ssh``, ``scp -r`` and ``rclone copy`` over SFTP, against an ``sshd`` on
  the DTN (key login, nothing else on the machine is touched);
- GridFTP (``globus-url-copy`` to a ``globus-gridftp-server`` on the DTN, anonymous, data
  channel unauthenticated: the fastest it can be), ``-p 4 -fast`` for large files and
  ``-pp -cc 4 -fast`` for many small ones — the engine Globus itself was built on;
- Arctern: two Connect agents (the DTN listens, the laptop does not and pushes), with
  checksum verification, timed from submission to the task's recorded completion (polled
  every 100 ms; the lag of the poll that saw it is subtracted, as in the local bench).

Each figure is the median time to data at the destination; ratios are against the fastest
contender of the same dataset and link. CPU seconds per GiB moved are those of the sending
side's processes (the laptop's agent, or the contender's client processes). Nothing is
asserted: the machine is shared, so the results are a measurement to read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.arctern_session import completed_at
from bench.report import WAN_MARKER_END, WAN_MARKER_START, with_wan_section
from bench.tools import TRASH, set_aside, warm_cache

REPO = Path(__file__).resolve().parent.parent
GRIDFTP_PORT = 2811
DATA_PORT = 50500


@dataclass
class WanConfig:
    rate: str
    one_way_ms: float
    losses: list[float]
    small_files: int
    large_files: int
    large_size: int
    reps: int
    workdir: Path
    out: Path
    all_small: bool = False
    tree_dirs: int = 0


@dataclass
class Lab:
    """The hosts, the deployment and what runs on the DTN."""

    laptop: Any  # tests.support.netns.Host
    dtn: Any
    hosts: list[Any]
    ssh_config: Path
    ssh_key: Path
    laptop_root: Path
    dtn_root: Path
    owner: Any  # tests.integration.test_transfer_api.Account
    laptop_collection: str
    dtn_collection: str
    laptop_agent: Any  # tests.integration.test_connect.Agent
    server_database: Path  # the deployment's SQLite file: when tasks completed
    helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _run(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _start_sshd(lab_dir: Path, host: Any) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """An sshd on ``host`` that lets in one key, and the client config that uses it."""
    ssh_dir = lab_dir / "ssh"
    ssh_dir.mkdir()
    key, host_key = ssh_dir / "id_ed25519", ssh_dir / "host_ed25519"
    for path in (key, host_key):
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path))
    (ssh_dir / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
    (ssh_dir / "sshd_config").write_text(
        f"ListenAddress {host.address}\nPort 22\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {ssh_dir}/authorized_keys\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nUsePAM no\nStrictModes no\nPidFile {ssh_dir}/sshd.pid\n"
        "Subsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    sshd = subprocess.Popen(
        [*host.launcher, "/usr/sbin/sshd", "-D", "-e", "-f", str(ssh_dir / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = ssh_dir / "config"
    config.write_text(
        f"Host dtn\n  HostName {host.address}\n  User root\n  IdentityFile {key}\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    return sshd, config, key


def _start_gridftp(host: Any, root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*host.launcher, "globus-gridftp-server", "-aa", "-anonymous-user", "nobody",
         "-p", str(GRIDFTP_PORT),
         "-data-interface", host.address, "-log-level", "error", "-logfile",
         str(root.parent / "gridftp.log")],
        stdout=subprocess.DEVNULL,
        stderr=(root.parent / "gridftp.err").open("wb"),
    )  # fmt: skip


def _wait_port(host: Any, port: int, timeout: float = 30) -> None:
    probe = (
        f"import socket; socket.create_connection(('{host.address}', {port}), timeout=2).close()"
    )
    end = time.monotonic() + timeout
    while subprocess.run([*host.launcher, sys.executable, "-c", probe]).returncode != 0:
        if time.monotonic() > end:
            raise RuntimeError(f"nothing listens on {host.address}:{port}")
        time.sleep(0.3)


@contextmanager
def lab(config: WanConfig) -> Iterator[Lab]:
    """Set up the namespaces, the deployment, the agents and the DTN's servers; tear all of
    it down afterwards, whatever happens."""
    sys.path.insert(0, str(REPO))
    from tests.integration.test_connect import Agent, create_endpoint, serves, wait_for
    from tests.integration.test_transfer_api import login
    from tests.support import netns
    from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, start_server

    for reason in (netns.available(), netns.delay_available()):
        if reason is not None:
            raise RuntimeError(f"the WAN bench cannot run here: {reason}")
    for tool in ("globus-url-copy", "globus-gridftp-server", "rclone", "rsync", "sshd"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise RuntimeError(f"{tool} is not installed (scripts/system-deps installs it)")
    lab_dir = Path(tempfile.mkdtemp(prefix="wan-", dir=config.workdir))
    network = netns.Network().create()
    agents: list[Any] = []
    helpers: list[subprocess.Popen[bytes]] = []
    server = None
    try:
        api, dtn, laptop = (network.add_host(n) for n in ("api", "dtn", "lap"))
        for queue, host in enumerate((api, dtn, laptop), start=7):
            host.add_delay(config.one_way_ms, queue=queue)
        for host in (dtn, laptop):
            host.limit_rate(config.rate, burst="4mb")
        server = start_server(lab_dir / "server", host=api.address, launcher=api.launcher)
        owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
        laptop_root, dtn_root = lab_dir / "laptop-data", lab_dir / "dtn-data"
        collections = []
        for host, root, label, args in (
            (dtn, dtn_root, "DTN", ["--listen", f"{dtn.address}:{DATA_PORT}"]),
            (laptop, laptop_root, "Laptop", ["--no-listen"]),
        ):
            root.mkdir()
            (root / "hello.txt").write_text(f"{label}\n")  # what ``serves`` looks for
            agent = Agent(server, lab_dir / f"{label.lower()}-home", run_args=args,
                          launcher=host.launcher)  # fmt: skip
            _, key = create_endpoint(server, label)
            if agent.setup(key, label).returncode != 0:
                raise RuntimeError(f"the {label} agent could not be set up")
            made = agent.connect("collection", "create", "--name", label, "--posix", str(root))
            collections.append(made.stdout.split()[0])
            agent.start()
            agents.append(agent)
        for collection in collections:
            wait_for(lambda c=collection: serves(owner.tc, c), "the agents to serve")
        os.chmod(dtn_root, 0o777)  # GridFTP writes as its anonymous user
        os.chmod(lab_dir, 0o755)
        sshd, ssh_config, ssh_key = _start_sshd(lab_dir, dtn)
        helpers += [sshd, _start_gridftp(dtn, dtn_root)]
        _wait_port(dtn, 22)
        try:
            _wait_port(dtn, GRIDFTP_PORT)
        except RuntimeError:
            raise RuntimeError(
                "GridFTP did not start: " + (lab_dir / "gridftp.err").read_text()[-2000:]
            ) from None
        yield Lab(laptop, dtn, [api, dtn, laptop], ssh_config, ssh_key, laptop_root, dtn_root,
                  owner, collections[1], collections[0], agents[1],
                  lab_dir / "server" / "arctern.db", helpers)  # fmt: skip
    finally:
        for helper in helpers:
            helper.terminate()
            try:
                helper.wait(10)
            except subprocess.TimeoutExpired:
                helper.kill()
        for agent in agents:
            if agent.process is not None and agent.process.poll() is None:
                agent.stop()
        if server is not None:
            server.stop()
        network.destroy()
        shutil.rmtree(lab_dir, ignore_errors=True)


PROBE_PORT = 5201
PROBE_SECONDS = 6.0


def link_capacity(the_lab: Lab, streams: int = 4, seconds: float = PROBE_SECONDS) -> float:
    """Mbit/s that ``streams`` plain TCP streams carry from the laptop to the DTN
    (``bench.linkprobe``): what the emulated link can carry, whatever its tbf rate says."""
    receiver = subprocess.Popen(
        [*the_lab.dtn.launcher, sys.executable, "-m", "bench.linkprobe", "receive",
         the_lab.dtn.address, str(PROBE_PORT), str(streams)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != "ready":
            raise RuntimeError("the link probe's receiver did not start")
        _run(*the_lab.laptop.launcher, sys.executable, "-m", "bench.linkprobe", "send",
             the_lab.dtn.address, str(PROBE_PORT), str(streams), str(seconds),
             timeout=seconds + 60)  # fmt: skip
        size, elapsed = receiver.stdout.readline().split()
        receiver.wait(30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    return int(size) * 8 / float(elapsed) / 1e6


def set_loss(the_lab: Lab, one_way_ms: float, loss: float) -> None:
    for queue, host in enumerate(the_lab.hosts, start=7):
        host.stop_helpers()
        _run(*host.launcher, "iptables-legacy", "-F", "INPUT")
        host.add_delay(one_way_ms, loss=loss, queue=queue)


# -- contenders ------------------------------------------------------------------------------


@dataclass
class WanContender:
    name: str
    # (lab, dataset folder, destination folder name) -> seconds of the measured time that
    # were the harness's own (Arctern: from the recorded completion to the poll that saw it)
    copy: Callable[[Lab, str, str], float | None]
    verifies: bool
    note: str
    datasets: tuple[str, ...] = ("small", "large", "tree")


def _on_laptop(the_lab: Lab, *args: str, timeout: float = 3600) -> None:
    done = subprocess.run(
        [*the_lab.laptop.launcher, *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")


def _rsync(the_lab: Lab, folder: str, target: str) -> None:
    _on_laptop(the_lab, "rsync", "-a", "-e", f"ssh -F {the_lab.ssh_config}",
               f"{the_lab.laptop_root / folder}/", f"dtn:{the_lab.dtn_root / target}/")  # fmt: skip


def _scp(the_lab: Lab, folder: str, target: str) -> None:
    _on_laptop(the_lab, "scp", "-F", str(the_lab.ssh_config), "-r", "-q",
               str(the_lab.laptop_root / folder), f"dtn:{the_lab.dtn_root / target}")  # fmt: skip


def _rclone_sftp(the_lab: Lab, folder: str, target: str) -> None:
    _on_laptop(the_lab, "rclone", "copy", "--config", "/dev/null",
               "--sftp-host", the_lab.dtn.address, "--sftp-user", "root",
               "--sftp-key-file", str(the_lab.ssh_key),
               str(the_lab.laptop_root / folder), f":sftp:{the_lab.dtn_root / target}")  # fmt: skip


def _gridftp(options: list[str]) -> Callable[[Lab, str, str], None]:
    def copy(the_lab: Lab, folder: str, target: str) -> None:
        url = f"ftp://{the_lab.dtn.address}:{GRIDFTP_PORT}{the_lab.dtn_root / target}/"
        _on_laptop(the_lab, "globus-url-copy", *options, "-r", "-cd",
                   f"file://{the_lab.laptop_root / folder}/", url)  # fmt: skip

    return copy


def _arctern(the_lab: Lab, folder: str, target: str) -> float:
    """Submitted with the unmodified globus-sdk and polled every 100 ms, as the local bench
    does; the time from the server's recorded completion to the poll that saw it is returned
    (the harness's share, subtracted)."""
    import globus_sdk

    tc = the_lab.owner.tc
    data = globus_sdk.TransferData(
        source_endpoint=the_lab.laptop_collection,
        destination_endpoint=the_lab.dtn_collection,
        verify_checksum=True,
    )
    data.add_item(f"/{folder}/", f"/{target}/", recursive=True)
    task_id = tc.submit_transfer(data)["task_id"]
    while True:
        doc = tc.get_task(task_id)
        if doc["status"] == "SUCCEEDED":
            seen = time.time()
            completed = completed_at(the_lab.server_database, task_id)
            return max(0.0, seen - completed) if completed is not None else 0.0
        if doc["status"] == "FAILED":
            raise RuntimeError(f"Arctern task {task_id} failed: {doc['fatal_error']}")
        time.sleep(0.1)


CONTENDERS = [
    WanContender(
        "rsync -a -e ssh",
        _rsync,
        True,
        "whole-file checksum while transferring; one pipelined stream",
    ),
    # One or more round trips per file: minutes for thousands of small files (measured here,
    # 300 x 4 KiB: scp 67 s, rclone 55 s); on many small files with --all-small only.
    WanContender("scp -r", _scp, False, "no integrity check beyond SSH's own MAC", ("large",)),
    WanContender(
        "rclone sftp",
        _rclone_sftp,
        False,
        "size and modification time (no hash over plain SFTP)",
        ("large",),
    ),
    WanContender(
        "GridFTP -p 4 -fast",
        _gridftp(["-p", "4", "-fast"]),
        False,
        "4 parallel streams per file, no integrity check",
        ("large",),
    ),
    WanContender(
        "GridFTP -pp -cc 4 -fast",
        _gridftp(["-pp", "-cc", "4", "-fast"]),
        False,
        "pipelined, 4 files at once, no integrity check",
        ("small", "tree"),
    ),
    WanContender(
        "Arctern verify on",
        _arctern,
        True,
        "Connect agents, laptop pushes to the listening DTN, MD5 checked",
    ),
]


# -- measuring -------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its waited-for children (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# The tree dataset: this many 4 KiB files in each of ``--tree-dirs`` directories.
TREE_FILES_PER_DIR = 10


def _make_datasets(the_lab: Lab, config: WanConfig) -> dict[str, tuple[int, int]]:
    shapes = {
        name: shape
        for name, shape in (
            ("small", (config.small_files, 4096)),
            ("large", (config.large_files, config.large_size)),
            ("tree", (config.tree_dirs * TREE_FILES_PER_DIR, 4096)),
        )
        if shape[0] > 0  # --small-files 0 / --large-files 0: that part is not run
    }
    for name, (count, size) in shapes.items():
        folder = the_lab.laptop_root / name
        folder.mkdir()
        chunk = os.urandom(min(size, 8 << 20))
        for i in range(count):
            if name == "tree":  # d0000/f000.dat ...: a directory per TREE_FILES_PER_DIR files
                where = folder / f"d{i // TREE_FILES_PER_DIR:04}"
                where.mkdir(exist_ok=True)
                path = where / f"f{i % TREE_FILES_PER_DIR:03}.dat"
            else:
                path = folder / f"f{i:05}.dat"
            with path.open("wb") as out:
                left = size
                while left:
                    piece = chunk[: min(left, len(chunk))]
                    out.write(piece)
                    left -= len(piece)
    return {name: (count, count * size) for name, (count, size) in shapes.items()}


def _landed(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def measure(
    the_lab: Lab, config: WanConfig, shapes: dict[str, tuple[int, int]], loss: float
) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for dataset, (count, size) in shapes.items():
        runs: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        order = [
            c
            for c in CONTENDERS
            if dataset in c.datasets or (config.all_small and c.name in ("scp -r", "rclone sftp"))
        ]
        for rep in range(config.reps):
            for contender in order if rep % 2 == 0 else list(reversed(order)):
                target = f"{dataset}-{contender.name.split()[0].lower()}-{rep}"
                arctern = contender.name.startswith("Arctern")
                before = (
                    _cpu_seconds(the_lab.laptop_agent.process.pid) if arctern else _children_cpu()
                )
                warm_cache(the_lab.laptop_root / dataset)  # rclone drops what it read
                started = time.perf_counter()
                overrun = contender.copy(the_lab, dataset, target) or 0.0
                elapsed = time.perf_counter() - started - overrun
                after = (
                    _cpu_seconds(the_lab.laptop_agent.process.pid) if arctern else _children_cpu()
                )
                landed = _landed(the_lab.dtn_root / target)
                if landed != (count, size):
                    raise RuntimeError(f"{contender.name} left {landed}, expected {(count, size)}")
                # Deleted with the lab: see bench.tools.set_aside.
                set_aside(the_lab.dtn_root / target, the_lab.dtn_root.parent / TRASH)
                runs.setdefault(contender.name, []).append(elapsed)
                cpu.setdefault(contender.name, []).append((after - before) / (size / 2**30))
                print(f"  {dataset} loss={loss:.1%} {contender.name}: {elapsed:.2f} s", flush=True)
        rows[dataset] = {
            "files": count,
            "bytes": size,
            "contenders": {
                name: {
                    "seconds": statistics.median(times),
                    "runs": times,
                    "mbit_per_s": size * 8 / statistics.median(times) / 1e6,
                    "sender_cpu_s_per_gib": statistics.median(cpu[name]),
                    "verifies": next(c.verifies for c in CONTENDERS if c.name == name),
                    "note": next(c.note for c in CONTENDERS if c.name == name),
                }
                for name, times in runs.items()
            },
        }
    return rows


def markdown(results: dict[str, Any]) -> str:
    link = results["link"]
    lines = [
        WAN_MARKER_START,
        "## Across a WAN link (`python -m bench --wan`)",
        "",
        f"Run {results['date']} on {results['machine']}. Laptop → DTN through emulated links: "
        f"rate {link['rate']} (tbf), {2 * link['one_way_ms']:.0f} ms round trip "
        f"(measured: {link['measured_rtt_ms']:.1f} ms, TCP connect). The delay line is a "
        "user-space NFQUEUE process: the highest rate it carries here bounds every contender. "
        f"Plain TCP on this link (4 streams, BBR, {PROBE_SECONDS:.0f} s, best of two "
        f"probes): **{link['capacity_mbit_per_s']:.0f} Mbit/s**; *link share* is each "
        "contender's throughput as a share of that. Median of "
        f"{results['reps']} runs, alternating order; time to data at the destination (Arctern: "
        "submission to its recorded completion). CPU: sender side, seconds per GiB.",
        "",
        "![WAN copy times](results-wan.png)",
        "",
    ]
    for loss, datasets in results["runs"].items():
        for dataset, row in datasets.items():
            best = min(v["seconds"] for v in row["contenders"].values())
            lines += [
                f"**{dataset}: {row['files']} files, {row['bytes'] / 2**20:.0f} MiB, "
                f"loss {float(loss):.1%}**",
                "",
                "| contender | seconds | x fastest | Mbit/s | link share | sender CPU s/GiB "
                "| verifies |",
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
            ]
            for name, value in sorted(row["contenders"].items(), key=lambda kv: kv[1]["seconds"]):
                lines.append(
                    f"| {name} | {value['seconds']:.2f} | {value['seconds'] / best:.2f} | "
                    f"{value['mbit_per_s']:.0f} | "
                    f"{value['mbit_per_s'] / link['capacity_mbit_per_s']:.0%} | "
                    f"{value['sender_cpu_s_per_gib']:.1f} | "
                    f"{'yes' if value['verifies'] else 'no'} |"
                )
            lines.append("")
    lines.append(WAN_MARKER_END)
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """One panel per dataset and loss: each contender's median time (bars: min to max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (loss, dataset, row)
        for loss, datasets in results["runs"].items()
        for dataset, row in datasets.items()
    ]
    fig, axes = plt.subplots(
        1, max(1, len(panels)), figsize=(4.6 * max(1, len(panels)), 3.8), squeeze=False
    )
    for ax, (loss, dataset, row) in zip(axes[0], panels, strict=False):
        ranked = sorted(row["contenders"].items(), key=lambda kv: kv[1]["seconds"])
        names = [name for name, _ in ranked]
        medians = [value["seconds"] for _, value in ranked]
        low = [value["seconds"] - min(value["runs"]) for _, value in ranked]
        high = [max(value["runs"]) - value["seconds"] for _, value in ranked]
        colors = ["#1f6fb2" if n.startswith("Arctern") else "#9aa5b1" for n in names]
        ax.barh(names, medians, xerr=[low, high], color=colors, capsize=3)
        ax.invert_yaxis()
        ax.set_title(
            f"{dataset}: {row['files']} files, {row['bytes'] / 2**20:.0f} MiB, "
            f"loss {float(loss):.1%}",
            fontsize=9,
        )
        ax.set_xlabel("median time to data, s (bars: min to max)")
        ax.tick_params(axis="y", labelsize=8)
    link = results["link"]
    fig.suptitle(
        f"Laptop → DTN, {link['rate']}, {link['measured_rtt_ms']:.0f} ms round trip "
        "(same run, same data)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results-wan.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "results-wan.png")
    target = out / "RESULTS.md"
    text = target.read_text() if target.exists() else ""
    target.write_text(with_wan_section(text, markdown(results)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench --wan", description=__doc__.split("\n")[0])
    p.add_argument("--wan", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rate", default="400mbit", help="tbf rate of each host's link (400mbit)")
    p.add_argument("--rtt-ms", type=float, default=50.0, help="round trip to emulate (50)")
    p.add_argument("--loss", type=float, default=0.001, help="loss of the lossy run (0.001)")
    p.add_argument("--small-files", type=int, default=2000, help="4 KiB files (2000; 0: none)")
    p.add_argument("--large-files", type=int, default=2, help="large files (2; 0: none)")
    p.add_argument(
        "--tree-dirs",
        type=int,
        default=200,
        help=f"directories of {TREE_FILES_PER_DIR} x 4 KiB files (200; 0: none)",
    )
    p.add_argument("--large-mib", type=int, default=256, help="size of each large file (256)")
    p.add_argument("--reps", type=int, default=2, help="runs per contender (2)")
    p.add_argument(
        "--all-small",
        action="store_true",
        help="also time scp and rclone over SFTP on the small files (minutes each)",
    )
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--out", type=Path, default=REPO / "bench")
    a = p.parse_args(argv)
    config = WanConfig(
        rate=a.rate,
        one_way_ms=a.rtt_ms / 2,
        losses=[0.0, a.loss] if a.loss > 0 else [0.0],
        small_files=a.small_files,
        large_files=a.large_files,
        large_size=a.large_mib << 20,
        reps=a.reps,
        workdir=a.workdir,
        out=a.out,
        all_small=a.all_small,
        tree_dirs=a.tree_dirs,
    )
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores",
        "reps": config.reps,
        "runs": {},
    }
    with lab(config) as the_lab:
        results["link"] = {
            "rate": config.rate,
            "one_way_ms": config.one_way_ms,
            "measured_rtt_ms": the_lab.laptop.round_trip_ms(the_lab.dtn, 22),
        }
        results["link"]["capacity_mbit_per_s"] = max(link_capacity(the_lab) for _ in range(2))
        print(
            f"round trip {results['link']['measured_rtt_ms']:.1f} ms, plain TCP "
            f"{results['link']['capacity_mbit_per_s']:.0f} Mbit/s",
            flush=True,
        )
        shapes = _make_datasets(the_lab, config)
        for loss in config.losses:
            if loss:
                # With loss, large files only: what loss costs is throughput.
                set_loss(the_lab, config.one_way_ms, loss)
                shapes = {key: shape for key, shape in shapes.items() if key == "large"}
                if not shapes:
                    break
            results["runs"][str(loss)] = measure(the_lab, config, shapes, loss)
    write_results(results, config.out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
