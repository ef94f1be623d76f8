"""A user-space delay line: holds each packet a host receives for a fixed time, drops some.

This kernel has no ``netem`` qdisc, so wide-area links are emulated with NFQUEUE: an
iptables rule in the receiving host's namespace queues its incoming packets to this process,
which gives each one its verdict (accept) once the delay has passed, or drops it with the
given probability. Delay on both ends of a link adds up to the round-trip time. Only packet
metadata is copied to user space; receive offload (GRO) means a queued packet may carry up
to 64 KiB, so the packet rate stays within what Python can handle. The netlink socket gets a
large buffer: a notification it cannot hold would leave its packet queued for ever.

Run inside a namespace: ``python -m tests.support.delayline --queue 7 --delay-ms 25
--loss 0.001``; it prints ``ready`` once bound, and exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import random
import select
import signal
import socket
import sys
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=25.0)
    parser.add_argument("--loss", type=float, default=0.0, help="fraction of packets dropped")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    from netfilterqueue import COPY_META, NetfilterQueue

    delay = args.delay_ms / 1000.0
    rng = random.Random(args.seed)
    held: collections.deque[tuple[float, Any]] = collections.deque()

    def arrived(packet: Any) -> None:
        if args.loss and rng.random() < args.loss:
            packet.drop()
            return
        # A constant delay keeps arrival order, so the line is a FIFO.
        held.append((time.monotonic() + delay, packet))

    queue = NetfilterQueue()
    # Enough room for a bandwidth-delay product of a few Gbit/s x 50 ms in 64 KiB packets.
    queue.bind(args.queue, arrived, max_len=65536, mode=COPY_META, sock_len=64 << 20)
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = socket.fromfd(queue.get_fd(), socket.AF_NETLINK, socket.SOCK_RAW)
    print("ready", flush=True)
    try:
        while not stopping:
            timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
            readable, _, _ = select.select([listener], [], [], timeout)
            if readable:
                queue.run(block=False)
            now = time.monotonic()
            while held and held[0][0] <= now:
                held.popleft()[1].accept()
    finally:
        while held:  # let the rest go rather than stall connections at shutdown
            held.popleft()[1].accept()
        queue.unbind()
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
