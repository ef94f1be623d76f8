"""One-syscall confined lookups with Linux ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)``.

Walking a path one component at a time from the collection root costs two system calls and
several Python calls per component, for every operation on every file. ``openat2`` does the
same walk in the kernel and refuses, atomically, any ``..`` or symlink on the way, so the
result is confined to the root by construction and immune to rename races. It exists since
Linux 5.6; Python's ``os`` module does not expose it, hence ``ctypes``.

Where it cannot answer (older kernels, seccomp filters, or a path that does go through a
symlink, which the caller must then resolve itself), ``open_beneath`` returns ``None`` and
the caller falls back to its component walk.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS

# openat2 is syscall 437 on every architecture with the unified syscall table (x86_64,
# aarch64, riscv64, …); 32-bit x86 uses it too.
_SYS_OPENAT2 = 437
_SUPPORTED_MACHINES = {"x86_64", "aarch64", "riscv64", "i686", "i386"}

# Errors after which the component walk must decide: a symlink or ``..`` on the way
# (ELOOP/EXDEV), a missing or non-directory component (so that the walk reports it with
# its usual message), a rename race (EAGAIN).
_FALL_BACK = {errno.ELOOP, errno.EXDEV, errno.ENOENT, errno.ENOTDIR, errno.EAGAIN}


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


@functools.cache
def _load_syscall() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if platform.system() != "Linux" or platform.machine() not in _SUPPORTED_MACHINES:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    syscall.argtypes = [
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.POINTER(_OpenHow),
        ctypes.c_size_t,
    ]
    return syscall


class BeneathOpener:
    """Opens paths beneath a directory fd in one system call, when the kernel allows it."""

    def __init__(self) -> None:
        self._syscall = _load_syscall()

    @property
    def available(self) -> bool:
        return self._syscall is not None

    def open(self, dir_fd: int, relative: str, flags: int, mode: int = 0) -> int | None:
        """An fd for ``relative`` (no leading ``/``, no ``..``) beneath ``dir_fd``, or None
        when the caller must walk the path itself. Other failures raise ``OSError``."""
        syscall = self._syscall
        if syscall is None:
            return None
        how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE)
        # fsencode: names that are not UTF-8 arrive in the os module's surrogateescape form.
        fd = int(syscall(_SYS_OPENAT2, dir_fd, os.fsencode(relative), ctypes.byref(how), 24))
        if fd >= 0:
            return fd
        code = ctypes.get_errno()
        if code == errno.ENOSYS:
            # The kernel (or a seccomp profile) has no openat2: stop trying.
            self._syscall = None
            return None
        if code in _FALL_BACK:
            return None
        raise OSError(code, os.strerror(code), relative)
