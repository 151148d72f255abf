"""Where environments live and how their folders are named. One home for every path.

    <root>/mlx-0.31.1-cpu-py3.11-linux-x86_64/     a complete environment (a venv)
        gpumon-env.json                           written last: its presence means complete
        .last-used                                touched on every use (mtime = last use)
    <root>/.build-<name>~<pid>~<rand>/            a build in progress, renamed into place
    <root>/.trash-<name>~<rand>/                  a removal in progress
    <root>/.locks/<name>.lock                     fcntl lock held while building or removing
    <root>/.logs/<name>.log                       the installer's output of the last failure

The root is $GPUMON_ENV_DIR, else platformdirs' per-user cache dir + `/envs`: environments
can always be rebuilt, so they are cache, not data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "GPUMON_ENV_DIR"
METADATA_NAME = "gpumon-env.json"
LAST_USED_NAME = ".last-used"
BUILD_PREFIX = ".build-"
TRASH_PREFIX = ".trash-"
# Separates the env name from the pid/token in temporary folders; never part of a name.
SEP = "~"


def default_root() -> Path:
    import platformdirs  # only here: a root given by the environment never needs it

    return Path(platformdirs.user_cache_dir("gpumon")) / "envs"


def env_root(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: explicit argument, then $GPUMON_ENV_DIR, then the platform default.
    Always absolute: installers run with the root as their working directory."""
    if override:
        return Path(override).expanduser().absolute()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().absolute()
    return default_root().absolute()


@dataclass(frozen=True, order=True)
class EnvKey:
    """Everything that makes two environments different, and so their folder name."""

    framework: str
    version: str
    variant: str
    python: str  # PythonTarget.key: py3.11, py3.13t
    platform: str  # PythonTarget.platform_key: linux-x86_64, macos-arm64

    @property
    def name(self) -> str:
        return f"{self.framework}-{self.version}-{self.variant}-{self.python}-{self.platform}"

    @property
    def label(self) -> str:
        """`mlx 0.31.1 (cpu, py3.11)` as progress and errors show it."""
        return f"{self.framework} {self.version} ({self.variant}, {self.python})"


# What EnvKey.name produces; a folder that does not look like this and has no metadata is not
# ours (GPUMON_ENV_DIR may point somewhere shared), so listing and pruning leave it alone.
_NAME = re.compile(
    r"^[a-z]+-[0-9][0-9A-Za-z.!+]*-[a-z]+-[a-z]+[0-9]+\.[0-9]+t?-[a-z]+-[A-Za-z0-9_]+$"
)


def looks_like_env(name: str) -> bool:
    return bool(_NAME.match(name))


def env_dir(root: Path, key: EnvKey) -> Path:
    return root / key.name


def metadata_path(folder: Path) -> Path:
    return folder / METADATA_NAME


def last_used_path(folder: Path) -> Path:
    return folder / LAST_USED_NAME


def python_path(folder: Path) -> Path:
    """The environment's interpreter; always the venv's own path, never the resolved link,
    so that Python finds the venv's pyvenv.cfg and site-packages."""
    return folder / "bin" / "python"


def lock_path(root: Path, name: str) -> Path:
    return root / ".locks" / f"{name}.lock"


def log_path(root: Path, name: str) -> Path:
    return root / ".logs" / f"{name}.log"


def build_dir(root: Path, name: str, token: str) -> Path:
    return root / f"{BUILD_PREFIX}{name}{SEP}{os.getpid()}{SEP}{token}"


def trash_dir(root: Path, name: str, token: str) -> Path:
    return root / f"{TRASH_PREFIX}{name}{SEP}{token}"


def leftovers(root: Path, name: str | None = None) -> list[Path]:
    """Build and trash folders left by killed processes (all, or those of one env)."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    return [
        p
        for p in entries
        if p.name.startswith((BUILD_PREFIX, TRASH_PREFIX))
        and (name is None or leftover_env_name(p) == name)
    ]


def leftover_env_name(folder: Path) -> str:
    """The environment a `.build-`/`.trash-` folder belongs to (its lock's name)."""
    stem = folder.name
    for prefix in (BUILD_PREFIX, TRASH_PREFIX):
        if stem.startswith(prefix):
            stem = stem[len(prefix) :]
    return stem.split(SEP, 1)[0]
