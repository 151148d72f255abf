"""Which Python an environment is built with, and how that Python names itself in a cache key.

By default an environment uses the monitor's own Python version, built from the *base*
interpreter: when gpumon itself runs from a virtual environment, a venv made from that venv's
`bin/python` would chain two venvs, so we go back to the interpreter the venv was made from.
Another Python can be named by path or by version (`3.12`); those are asked about once in a
child process (a few tens of milliseconds) and remembered.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from gpumon.envs.errors import EnvError

_SYSTEM_NAMES = {"linux": "Linux", "darwin": "macOS", "windows": "Windows"}
_MACHINE_ALIASES = {"amd64": "x86_64", "aarch64": "aarch64", "arm64": "arm64"}


@dataclass(frozen=True)
class PythonTarget:
    """A base interpreter and the facts that decide which wheels install into it."""

    executable: str
    version: tuple[int, int, int]
    implementation: str  # sys.implementation.name: "cpython", "pypy"
    freethreaded: bool  # a 3.13t build needs its own wheels (cp313t)
    system: str  # platform.system().lower(): "linux", "darwin"
    machine: str  # normalised platform.machine(): "x86_64", "arm64", "aarch64"

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def key(self) -> str:
        """`py3.11`, `py3.13t`, `pypy3.10`: the Python part of an environment's folder name."""
        impl = "py" if self.implementation == "cpython" else self.implementation
        return f"{impl}{self.minor}{'t' if self.freethreaded else ''}"

    @property
    def platform_key(self) -> str:
        system = "macos" if self.system == "darwin" else self.system
        return f"{system}-{self.machine}"

    def describe(self) -> str:
        """`Linux x86_64 / CPython 3.11`, as error messages say it."""
        system = _SYSTEM_NAMES.get(self.system, self.system)
        impl = {"cpython": "CPython", "pypy": "PyPy"}.get(self.implementation, self.implementation)
        threads = " free-threaded" if self.freethreaded else ""
        return f"{system} {self.machine} / {impl} {self.minor}{threads}"


def _machine(raw: str) -> str:
    return _MACHINE_ALIASES.get(raw.lower(), raw.lower())


def base_executable() -> str:
    """The interpreter the monitor's Python was made from (itself when not in a venv)."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    if sys.prefix != sys.base_prefix and Path(exe).parent == Path(sys.executable).parent:
        # Python 3.10 on POSIX reports the venv's own python here; look in the base prefix.
        base_bin = Path(sys.base_prefix) / "bin"
        for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3"):
            candidate = base_bin / name
            if candidate.exists():
                return str(candidate)
    return exe


def monitor_python() -> PythonTarget:
    """The default target: this process's Python version, no child process needed."""
    v = sys.version_info
    return PythonTarget(
        executable=base_executable(),
        version=(v[0], v[1], v[2]),
        implementation=sys.implementation.name,
        freethreaded=bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        system=platform.system().lower(),
        machine=_machine(platform.machine()),
    )


# Runs under the interpreter being asked about, so it must work on every Python we support
# and import nothing outside the standard library.
_PROBE = """
import json, platform, sys, sysconfig
v = sys.version_info
print(json.dumps({
    "executable": getattr(sys, "_base_executable", None) or sys.executable,
    "version": [v[0], v[1], v[2]],
    "implementation": sys.implementation.name,
    "freethreaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "system": platform.system().lower(),
    "machine": platform.machine(),
}))
"""


@functools.lru_cache(maxsize=16)
def probe_python(executable: str) -> PythonTarget:
    """Ask an interpreter what it is; EnvError(kind="interpreter") when it cannot answer."""
    fix = "give python=PATH of a working interpreter, or a version such as 3.12"
    try:
        r = subprocess.run(
            [executable, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EnvError(f"cannot run {executable}: {e}", fix, kind="interpreter") from None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvError(f"{executable} failed to start: {last}", fix, kind="interpreter")
    try:
        facts = json.loads(r.stdout.strip().splitlines()[-1])
        return PythonTarget(
            executable=str(facts["executable"]),
            version=(int(facts["version"][0]), int(facts["version"][1]), int(facts["version"][2])),
            implementation=str(facts["implementation"]),
            freethreaded=bool(facts["freethreaded"]),
            system=str(facts["system"]),
            machine=_machine(str(facts["machine"])),
        )
    except (ValueError, KeyError, IndexError, TypeError):
        raise EnvError(
            f"{executable} does not look like a Python interpreter", fix, kind="interpreter"
        ) from None


def resolve_python(spec: str | None, uv: str | None = None) -> PythonTarget:
    """None: the monitor's Python. A path: that interpreter. `3.12` / `3.13t`: one found on
    PATH (`python3.12`) or, when uv is available, one uv already has (never downloaded)."""
    if not spec:
        return monitor_python()
    if os.sep in spec or spec.startswith("."):
        path = Path(spec).expanduser()
        if not path.exists():
            raise EnvError(
                f"no interpreter at {spec}",
                "give python=PATH of an existing interpreter, or a version such as 3.12",
                kind="interpreter",
            )
        return probe_python(str(path))
    found = shutil.which(f"python{spec}")
    if found is None and uv is not None:
        try:
            r = subprocess.run(
                [uv, "python", "find", "--no-python-downloads", spec],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if r.returncode == 0 and r.stdout.strip():
                found = r.stdout.strip().splitlines()[-1]
        except (OSError, subprocess.TimeoutExpired):
            found = None
    if found is None:
        raise EnvError(
            f"no Python {spec} found on PATH",
            f"install Python {spec} (e.g. `uv python install {spec}`) or give python=PATH",
            kind="interpreter",
        )
    return probe_python(found)
