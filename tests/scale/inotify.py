"""Counts files delivered into a directory (Linux inotify): how often each file was delivered.

Arctern gives a file its final name only once it is complete: a file written under a hidden
temporary name is renamed into place (``IN_MOVED_TO``), a small file written as an unnamed
file is linked into place (``IN_CREATE``). So one such event per final name is one transfer
of that file, whichever process did it; hidden temporary names are not counted.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections import Counter
from pathlib import Path

IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
_DELIVERED = IN_CREATE | IN_MOVED_TO
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len


class DeliveryCounter:
    """Watches one directory from creation on; read the counts with ``collect()``."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self._fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(self._fd, str(directory).encode(), _DELIVERED) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch failed on {directory}")
        self.counts: Counter[str] = Counter()

    def collect(self) -> Counter[str]:
        """Drain the kernel queue (events wait there, up to its size) into ``counts``."""
        while True:
            try:
                data = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                return self.counts
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + length].rstrip(b"\0").decode()
                offset += length
                if mask & IN_Q_OVERFLOW:
                    raise AssertionError("inotify queue overflowed: counts are incomplete")
                if mask & _DELIVERED and not name.startswith("."):
                    self.counts[name] += 1

    def close(self) -> None:
        os.close(self._fd)
