"""OS-level thread names, so native crash reports and debuggers name gpumon's threads.

Python < 3.14 names threads only inside Python; gdb, `.ips` reports and `top -H` see the
process name instead. Linux keeps at most 15 bytes; macOS can only name the calling thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

LINUX_MAX = 15
_PR_SET_NAME = 15

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
except OSError:  # pragma: no cover - every supported platform has a libc
    _libc = None


def os_thread_name(name: str) -> str:
    """The name as the OS will store it (truncated to Linux's 15-byte limit)."""
    return name.encode()[:LINUX_MAX].decode(errors="ignore")


def set_current_thread_name(name: str) -> bool:
    """Name the calling thread at OS level; returns False where the platform refuses."""
    if _libc is None:
        return False
    raw = os_thread_name(name).encode()
    try:
        if sys.platform.startswith("linux"):
            return _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) == 0
        if sys.platform == "darwin":
            return _libc.pthread_setname_np(ctypes.c_char_p(raw)) == 0
    except AttributeError:
        return False
    return False


def set_parent_death_signal(signo: int) -> bool:
    """Linux: have the kernel send `signo` to this process when its parent dies, so a worker
    that is hung (and so cannot notice its socket closing) still never outlives the monitor."""
    if _libc is None or not sys.platform.startswith("linux"):
        return False
    PR_SET_PDEATHSIG = 1
    return _libc.prctl(PR_SET_PDEATHSIG, signo, 0, 0, 0) == 0
