"""What the emulated link carries for plain TCP: the yardstick of the WAN bench's link share.

The tbf rate set on each host is an upper bound only: the delay line is a user-space process
that hands every packet back to the kernel, and on a 2-core machine it saturates below the
rates ``tbf`` can shape. The bench therefore measures, on the same link and just before the
contenders run, how many bytes a few plain TCP streams (BBR, as Arctern's data connections
use) move in a few seconds, and reports every contender's throughput as a share of that.

Run as ``python -m bench.linkprobe receive ADDRESS PORT STREAMS`` on one host (prints
``ready``, then ``BYTES SECONDS`` once every stream has ended) and ``python -m
bench.linkprobe send ADDRESS PORT STREAMS SECONDS`` on the other.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time

CHUNK = 1 << 20


def receive(address: str, port: int, streams: int) -> tuple[int, float]:
    """Accept ``streams`` connections and read each to its end: (bytes, seconds from the
    first byte to the last)."""
    with socket.create_server((address, port), backlog=streams) as server:
        print("ready", flush=True)
        connections = [server.accept()[0] for _ in range(streams)]
    totals = [0] * streams
    first: list[float] = []
    last: list[float] = []

    def drain(index: int, connection: socket.socket) -> None:
        with connection:
            buffer = bytearray(CHUNK)
            while True:
                n = connection.recv_into(buffer)
                if not n:
                    break
                if not first:
                    first.append(time.perf_counter())
                totals[index] += n
        last.append(time.perf_counter())

    threads = [threading.Thread(target=drain, args=(i, c)) for i, c in enumerate(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(totals), max(last) - first[0] if first else 0.0


def send(address: str, port: int, streams: int, seconds: float) -> None:
    """Open ``streams`` connections and keep each full for ``seconds``."""
    connections = []
    for _ in range(streams):
        connection = socket.create_connection((address, port), timeout=30)
        option = getattr(socket, "TCP_CONGESTION", None)
        if option is not None:
            with contextlib.suppress(OSError):  # the kernel's default then
                connection.setsockopt(socket.IPPROTO_TCP, option, b"bbr")
        connections.append(connection)
    payload = bytes(CHUNK)
    end = time.monotonic() + seconds

    def fill(connection: socket.socket) -> None:
        with connection:
            while time.monotonic() < end:
                connection.sendall(payload)
            connection.shutdown(socket.SHUT_WR)

    threads = [threading.Thread(target=fill, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(argv: list[str]) -> int:
    mode, address, port, streams, *rest = argv
    if mode == "receive":
        size, elapsed = receive(address, int(port), int(streams))
        print(size, elapsed, flush=True)
    else:
        send(address, int(port), int(streams), float(rest[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
