"""Where gpumon's files go: session folders, one artifact folder per worker process, file names.

Layout of a session:

    <sessions dir>/<YYYYmmdd-HHMMSS>-<short id>/      (0700)
        session.jsonl                                   (0600) the event log
        artifacts/<pool>-<n>/                           one folder per worker process
            pool-config.json  faulthandler.txt  stderr.log  stdout.log
            native-stacks.txt           gdb's dump at a fatal signal
            native-snapshot-<k>.txt     gdb's dump for the k-th stall
        artifacts/imported/<crash id>/                  evidence copied in (a macOS .ips)

`<n>` counts worker processes of that pool across the whole session — live restarts and sweep
cells alike — and a folder is claimed with an exclusive mkdir, so no two processes can ever
write into one folder: every artifact of a crash comes from the process that crashed.

Reading side: a log is untrusted input. `confine` turns a recorded artifact path into a path
inside the session folder, or refuses it (absolute paths, `..`, `~`, links that leave it).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

ENV_VAR = "GPUMON_SESSION_DIR"
LOG_NAME = "session.jsonl"
ARTIFACTS_NAME = "artifacts"
IMPORTED = "imported"  # artifacts/ subfolder for evidence copied in from elsewhere

# Inside a worker's folder.
CONFIG = "pool-config.json"
FAULTHANDLER = "faulthandler.txt"
STDERR = "stderr.log"
STDOUT = "stdout.log"
NATIVE = "native-stacks.txt"
SNAPSHOT_PATTERN = "native-snapshot-{k}.txt"

# Session folders hold stacks, environment and command lines: the user's eyes only.
DIR_MODE = 0o700
FILE_MODE = 0o600


def default_session_dir() -> Path:
    import platformdirs  # only here: listing and exporting an explicit file never needs it

    return Path(platformdirs.user_data_dir("gpumon")) / "sessions"


def session_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The sessions root: explicit option, then the environment, then the platform default."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_session_dir()


def folder_name(started: float, session_id: str) -> str:
    # Local time: the folder name is for the person browsing the directory; the exact instant
    # is in SessionStart.t. Sorting uses the log, not this name.
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(started)) + f"-{session_id[:6]}"


def log_path(folder: Path) -> Path:
    return folder / LOG_NAME


def safe_name(name: str) -> str:
    """A pool or crash name as a file name: letters, digits, `-_.`; anything else is `_`."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "_"


def make_private_dir(path: Path) -> None:
    """mkdir -p with 0700 for the folders gpumon creates (existing parents are left alone)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)


def claim_worker_dir(artifacts_root: Path, pool: str) -> Path:
    """A new, empty folder for one worker process of `pool`: `<pool>-<n>` with the lowest n
    not yet taken in this session. mkdir is atomic, so concurrent claims never share one."""
    make_private_dir(artifacts_root)
    base = safe_name(pool)
    n = 1
    while True:
        candidate = artifacts_root / f"{base}-{n}"
        try:
            candidate.mkdir(mode=DIR_MODE)
        except FileExistsError:
            n += 1
            continue
        return candidate


def snapshot_name(k: int) -> str:
    return SNAPSHOT_PATTERN.format(k=k)


def check_writable_dir(path: Path, what: str) -> str | None:
    """Why `path` cannot hold gpumon's files, or None. Used before any work starts, so a
    session dir that is a file or read-only fails at once with one line."""
    p = path.expanduser()
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{what} {p} is not a folder ({probe} is a file)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{what} {p} is not writable ({probe}: permission denied)"
    return None


def confine(folder: Path, recorded: str) -> Path | None:
    """The file a log's artifact path names, if it lies inside the session folder; None when
    the path is absolute, uses `~` or `..` to leave it, or is a link that points outside.
    The log is input like any other: exports must not read what it merely names."""
    if not recorded or recorded.startswith("~") or os.path.isabs(recorded):
        return None
    root = folder.resolve()
    try:
        target = (root / recorded).resolve()
        target.relative_to(root)
    except (ValueError, OSError, RuntimeError):
        return None
    return target


def is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False
