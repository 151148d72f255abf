"""Running gpumon's worker code under an environment's interpreter, and nothing else of ours.

The worker needs the framework and msgspec (both in the env) plus the `gpumon` package. The
monitor's site-packages must stay out of the worker's path, or the monitor's own mlx/torch
would shadow the pinned one. So the worker gets a PYTHONPATH holding one folder with one
entry: a `gpumon` link to the running gpumon package (kept in the cache root, one per gpumon
install, made atomically on first use).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from gpumon.envs import layout

# Would let the monitor's Python setup leak into the env's interpreter.
_DROP = ("PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONEXECUTABLE", "VIRTUAL_ENV")


def gpumon_package() -> Path:
    import gpumon

    return Path(gpumon.__file__).resolve().parent


def gpumon_path(root: Path | None = None) -> Path:
    """A folder that holds only `gpumon` (a link to this gpumon package), for PYTHONPATH."""
    root = layout.env_root(root)
    package = gpumon_package()
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    folder = root / ".worker-path" / digest
    link = folder / "gpumon"
    with contextlib.suppress(OSError):
        if link.resolve() == package:
            return folder
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".gpumon-{secrets.token_hex(4)}"
    os.symlink(package, tmp, target_is_directory=True)
    os.replace(tmp, link)  # atomic: a concurrent reader sees the old link or the new one
    return folder


def worker_environ(base: Mapping[str, str], pythonpath: Path) -> dict[str, str]:
    """The environment variables for a worker running under an env's interpreter."""
    env = {k: v for k, v in base.items() if k not in _DROP}
    env["PYTHONPATH"] = str(pythonpath)
    env["PYTHONNOUSERSITE"] = "1"  # ~/.local's packages would shadow the env's as well
    return env
