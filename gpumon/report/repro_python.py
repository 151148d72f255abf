"""Which Python runs a repro script: `--python PATH`, else this gpumon's own Python when it has
the pinned release installed, else the framework environment gpumon.envs keeps for the pin
(built on first use, with progress), the same one a `mlx@0.31.1` pool runs in.

The script imports only the framework, so any interpreter with that release will do; the
environment cache is how a machine without it gets one. Everything a user can get wrong here
(no pin, a bad path, an index that cannot be reached) is one sentence with the way out.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from gpumon.report.script_header import ScriptHeader

# The build a pin names -> the pool device gpumon.envs picks a build for.
_DEVICE = {"cpu": "cpu", "cuda": "cuda", "metal": "gpu", "gpu": "gpu", "mps": "mps"}


class ReproPythonError(Exception):
    """No interpreter for the script; str() is one sentence that names the way out."""


@dataclass(frozen=True)
class ScriptPython:
    path: str
    how: str  # for people: "--python /x", "this Python (mlx 0.31.1)", "mlx 0.31.1 ..., cached"
    isolated: bool  # not gpumon's own environment


def installed_release(framework: str) -> str | None:
    """The release of `framework` installed beside gpumon, from package metadata (the monitor
    never imports a framework)."""
    try:
        return metadata.version(framework).split("+")[0]
    except metadata.PackageNotFoundError:
        return None


def user_python(raw: str) -> str:
    """`--python PATH`: an interpreter, a venv folder holding bin/python, or a command name
    on PATH (`python3.11`)."""
    p = Path(raw).expanduser()
    if not p.exists() and os.sep not in raw:
        found = shutil.which(raw)
        if found:
            p = Path(found)
    if p.is_dir():
        inner = next((p / n for n in ("bin/python", "bin/python3") if (p / n).exists()), None)
        if inner is None:
            raise ReproPythonError(f"--python {raw}: a folder without bin/python")
        p = inner
    if not p.exists():
        raise ReproPythonError(f"--python {raw}: no such file or command")
    if not p.is_file() or not os.access(p, os.X_OK):
        raise ReproPythonError(f"--python {raw}: not an executable file")
    return str(p)


def choose(header: ScriptHeader, override: str | None, say: Callable[[str], None]) -> ScriptPython:
    if override:
        path = user_python(override)
        return ScriptPython(path, f"--python {path}", isolated=True)
    if header.pin is None or header.framework is None or header.version is None:
        raise ReproPythonError(
            "the script has no '# requires: FRAMEWORK==VERSION (DEVICE)' line, so gpumon cannot "
            "tell which framework it needs: export it again with gpumon export -f repro, or "
            "give --python PATH"
        )
    if installed_release(header.framework) == header.version.split("+")[0]:
        return ScriptPython(sys.executable, f"this Python ({header.label})", isolated=False)
    return _from_env_cache(header, say)


def _from_env_cache(header: ScriptHeader, say: Callable[[str], None]) -> ScriptPython:
    from gpumon import envs

    assert header.pin is not None
    try:
        req = envs.request_for(header.pin, device=_DEVICE.get(header.build or ""))
        env = envs.find(req)
        if env is not None:
            return ScriptPython(str(env.python), f"{req.key.label}, cached", isolated=True)
        say(f"building {req.key.label} (once; later runs reuse it)")
        last = {"phase": ""}

        def progress(p: envs.BuildProgress) -> None:
            if p.phase != last["phase"]:
                last["phase"] = p.phase
                say(f"  {p.phase} ({p.elapsed_s:.0f} s)")

        env = envs.ensure(req, progress=progress)
    except envs.EnvError as e:
        raise ReproPythonError(str(e)) from None
    return ScriptPython(str(env.python), f"{req.key.label}, built", isolated=True)
