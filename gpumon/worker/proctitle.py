"""Worker processes named after their pool, so ps, top, nvitop and nvidia-smi tell a torch pool
from an MLX pool on the same GPU.

Two names, because the tools read two places:
- the *title* (argv memory, what `ps -o args`, nvitop and nvidia-smi show):
  `gpumon: mlx@0.31.1 cpu`, written by setproctitle. Python has no portable way to rewrite its
  own argv memory; setproctitle is the well-kept C extension that does (a dependency of
  gpumon). A worker in an isolated framework environment (`mlx@0.31.1`, which holds only the
  framework and msgspec) may not have it: its command line then still names the pool, because
  the monitor puts `--pool-label` first on it (gpumon.supervisor.process).
- the *comm* (15 bytes, what `ps -o comm`, top, gdb and `/proc/PID/comm` show): `gm-<pool>`, the
  main thread's OS name. On Linux the main thread's name *is* the process's name, which is why
  the sampler runs on its own thread named `gpumon_sampler` rather than renaming the main one.
"""

from __future__ import annotations

from gpumon.worker.threadname import os_thread_name, set_current_thread_name

COMM_PREFIX = "gm-"


def comm_name(pool: str) -> str:
    """The process's short name: `gm-mlx@0.31.1` (cut to the 15 bytes Linux keeps)."""
    return os_thread_name(COMM_PREFIX + pool)


def title(pool: str, backend: str, version: str, device: str) -> str:
    """`gpumon: mlx@0.31.1 cpu`, and the pool's name when it says more than the backend."""
    what = f"{backend}@{version}" if version else backend
    text = f"gpumon: {what} {device}".rstrip()
    if not pool.startswith(backend):
        text += f" ({pool})"
    return text


def set_title(full: str, comm: str) -> str:
    """Title the process; returns how ("setproctitle" or "comm only")."""
    how = "comm only"
    try:
        import setproctitle
    except ImportError:
        setproctitle = None  # type: ignore[assignment]
    if setproctitle is not None:
        setproctitle.setproctitle(full)
        how = "setproctitle"
    # setproctitle may also rename the main thread (it does on Linux): the short name wins.
    set_current_thread_name(comm)
    return how
