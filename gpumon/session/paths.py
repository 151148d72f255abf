"""Where session logs live: one folder per session under a per-user data directory.

Layout: `<sessions dir>/<YYYYmmdd-HHMMSS>-<short id>/session.jsonl` with the workers' crash
artifacts in `artifacts/` beside it, so a session folder is self-contained: zip it, attach it to
a bug report, export it anywhere. The sessions dir is `--session-dir`, else $GPUMON_SESSION_DIR,
else platformdirs' user data dir + `/sessions`.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ENV_VAR = "GPUMON_SESSION_DIR"
LOG_NAME = "session.jsonl"
ARTIFACTS_NAME = "artifacts"


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


def add_session_dir_argument(parser: argparse.ArgumentParser) -> None:
    """`--session-dir D` for every command that records or lists sessions."""
    parser.add_argument(
        "--session-dir",
        metavar="DIR",
        default=None,
        help=f"where session folders are kept (default: ${ENV_VAR}, else the per-user data "
        "directory, e.g. ~/.local/share/gpumon/sessions)",
    )
