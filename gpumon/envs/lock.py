"""One builder per environment, across threads and processes: an fcntl lock per env name.

flock locks belong to an open file, so two pools of one session (two threads, two opens)
exclude each other exactly like two gpumon processes do, and the kernel drops the lock when
a holder dies, so a killed build never leaves the env locked. Waiting polls instead of
blocking so that a cancel event (or Ctrl-C) is honoured while another process builds.
Lock files are never deleted: removing a lock file while someone waits on it would let a
third process lock a new file of the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

POLL_S = 0.1


def _holder(fd: int) -> str:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return raw if raw.isdigit() else ""


@contextlib.contextmanager
def env_lock(
    path: Path,
    *,
    cancel: threading.Event | None = None,
    on_wait: Callable[[str], None] | None = None,
    blocking: bool = True,
) -> Iterator[bool]:
    """Hold the lock at `path` for the block; yields False only when `blocking` is False and
    someone else holds it. `on_wait(pid)` is called once when we start waiting. Raises
    InterruptedError when `cancel` is set while waiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not blocking:
                    yield False
                    return
                if not told and on_wait is not None:
                    on_wait(_holder(fd))
                    told = True
                if cancel is not None and cancel.is_set():
                    raise InterruptedError("cancelled while waiting for the env lock") from None
                time.sleep(POLL_S)
        # Who holds it, for the message another waiter shows.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
