"""Several "hosts" on one machine: Linux network namespaces on a private bridge.

Each host is a namespace with one veth interface (``eth0``) on a bridge in the root
namespace, which also gets an address so the test process reaches every host. The bridge
has no route anywhere else: nothing started on it is reachable from outside the machine.
Links can be rate-limited with ``tbf`` (this kernel has no ``netem``). Needs root.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def available() -> str | None:
    """Why namespaces cannot be used here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    return None


def delay_available() -> str | None:
    """Why delay and loss cannot be emulated here, or None if they can."""
    if shutil.which("iptables-legacy") is None:
        return "iptables (iptables-legacy) is not installed"
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        return "netfilterqueue is not installed"
    return None


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    name: str  # the namespace
    address: str
    helpers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def launcher(self) -> list[str]:
        """Prefix a command with this to run it on this host."""
        return ["ip", "netns", "exec", self.name]

    def counters(self) -> tuple[int, int]:
        """Bytes received and sent on this host's network interface so far."""
        values = []
        for counter in ("rx_bytes", "tx_bytes"):
            out = _run(*self.launcher, "cat", f"/sys/class/net/eth0/statistics/{counter}")
            values.append(int(out.strip()))
        return values[0], values[1]

    def round_trip_ms(self, target: Host, port: int) -> float:
        """Median TCP connect time from this host to ``target``'s ``port`` (one round trip
        each, over the emulated link)."""
        probe = f"""
import socket, time
times = []
for _ in range(7):
    started = time.perf_counter()
    socket.create_connection(("{target.address}", {port}), timeout=10).close()
    times.append(time.perf_counter() - started)
print(" ".join(str(t * 1000) for t in times))
"""
        out = _run(*self.launcher, sys.executable, "-c", probe)
        return statistics.median(float(t) for t in out.split())

    def limit_rate(self, rate: str, burst: str = "256kb", latency: str = "50ms") -> None:
        """Shape what this host sends (tbf), e.g. ``rate="200mbit"``."""
        _run(*self.launcher, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
             "rate", rate, "burst", burst, "latency", latency)  # fmt: skip

    def add_delay(self, delay_ms: float, loss: float = 0.0, queue: int = 7) -> None:
        """Hold every packet this host receives for ``delay_ms`` and drop a ``loss`` fraction
        (``tests.support.delayline``: NFQUEUE, since this kernel has no netem). Delay on both
        ends of a link adds up to its round-trip time. Incoming, not outgoing: a packet held
        on the way out still counts against its socket's send queue (TCP small queues), so
        the sender would stall after a couple of packets per round trip."""
        helper = subprocess.Popen(
            [*self.launcher, sys.executable, "-m", "tests.support.delayline",
             "--queue", str(queue), "--delay-ms", str(delay_ms), "--loss", str(loss)],
            cwd=PROJECT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.helpers.append(helper)
        assert helper.stdout is not None
        if helper.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the delay line on {self.name} did not start")
        _run(*self.launcher, "iptables-legacy", "-A", "INPUT", "-i", "eth0",
             "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass")  # fmt: skip

    def stop_helpers(self) -> None:
        for helper in self.helpers:
            helper.terminate()
        for helper in self.helpers:
            try:
                helper.wait(10)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
        self.helpers.clear()


@dataclass
class Network:
    tag: str = field(default_factory=lambda: f"{random.randrange(16**4):04x}")
    subnet: int = field(default_factory=lambda: random.randrange(10, 250))
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"arcbr{self.tag}"

    @property
    def gateway(self) -> str:
        return f"10.77.{self.subnet}.1"

    def create(self) -> Network:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        return self

    def add_host(self, label: str) -> Host:
        index = len(self.hosts) + 2
        name = f"arc{self.tag}{label}"[:15]
        outside, inside = f"av{self.tag}{index}", f"ai{self.tag}{index}"
        address = f"10.77.{self.subnet}.{index}"
        _run("ip", "netns", "add", name)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", name)
        _run("ip", "link", "set", outside, "master", self.bridge)
        _run("ip", "link", "set", outside, "up")
        ns = ["ip", "netns", "exec", name]
        _run(*ns, "ip", "link", "set", inside, "name", "eth0")
        _run(*ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        _run(*ns, "ip", "link", "set", "eth0", "up")
        _run(*ns, "ip", "link", "set", "lo", "up")
        host = Host(name, address)
        self.hosts.append(host)
        return host

    def destroy(self) -> None:
        for host in self.hosts:
            host.stop_helpers()
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)
