"""Which Python a pool's worker runs under: gpumon's own, an env with a pinned framework
version (`mlx@0.31.1`, built once and cached by gpumon.envs), or one the user names
(`python=PATH`).

Building an env can take seconds (a download), so it runs in a thread while the pool is
"starting"; its progress is published as PoolPreparing events, a few a second at most, for
the monitor's progress bar and the session log. A pool stopped meanwhile cancels the build.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpumon import events as ev
from gpumon.spec import PoolConfig

PROGRESS_EVERY = 0.25  # seconds between progress events within one phase


class InterpreterError(Exception):
    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


@dataclass(frozen=True)
class Interpreter:
    python: str
    env: str = ""  # what it is, for people: "mlx 0.31.1 (cpu, py3.11), cached" or ""
    isolated: bool = False  # not gpumon's own Python: the worker gets gpumon alone on its path


def user_python(raw: str) -> Path:
    """`python=PATH`: an interpreter, or a venv/prefix folder holding bin/python."""
    p = Path(raw).expanduser()
    if p.is_dir():
        for name in ("bin/python", "bin/python3", "Scripts/python.exe"):
            if (p / name).exists():
                p = p / name
                break
        else:
            raise InterpreterError(
                f"python={raw}: {p} is a folder without bin/python",
                "give a python executable or a virtual environment's folder",
            )
    if not p.exists():
        raise InterpreterError(
            f"python={raw}: no such file", "give the path of an existing python executable"
        )
    if not os.access(p, os.X_OK):
        raise InterpreterError(f"python={raw}: not executable", "check the path and permissions")
    return p


async def resolve(
    config: PoolConfig, emit: Callable[[ev.Event], None], cancel: threading.Event
) -> Interpreter:
    """The interpreter for `config`; raises InterpreterError or EnvError (one line each)."""
    if config.python:
        p = user_python(config.python)
        return Interpreter(str(p), f"python={p}", isolated=True)
    if not config.version:
        return Interpreter(sys.executable)
    from gpumon import envs

    req = envs.request_for(f"{config.backend}@{config.version}", device=config.device)
    env = envs.find(req)
    if env is not None:
        return Interpreter(str(env.python), f"{req.key.label}, cached", isolated=True)
    loop = asyncio.get_running_loop()
    last: dict[str, float | str] = {"phase": "", "at": 0.0}

    def progress(p: envs.BuildProgress) -> None:
        now = time.monotonic()
        if p.phase == last["phase"] and now - float(last["at"]) < PROGRESS_EVERY:
            return
        last["phase"], last["at"] = p.phase, now
        event = ev.PoolPreparing(
            pool=config.name,
            env=p.env,
            phase=p.phase,
            fraction=p.fraction,
            elapsed=p.elapsed_s,
            message=p.message,
        )
        loop.call_soon_threadsafe(emit, event)

    started = time.monotonic()
    env = await asyncio.to_thread(envs.ensure, req, progress=progress, cancel=cancel)
    took = time.monotonic() - started
    how = "built" if env.built else "cached"
    return Interpreter(str(env.python), f"{req.key.label}, {how} in {took:.1f} s", isolated=True)


def check_version(config: PoolConfig, versions: dict[str, str]) -> str:
    """Why the worker's framework is not the version the pool asked for ("" when it is)."""
    if not config.version or config.backend not in versions:
        return ""
    got = versions[config.backend]
    if got.split("+")[0] == config.version.split("+")[0]:
        return ""
    where = f" under {config.python}" if config.python else ""
    return f"asked for {config.backend} {config.version}, but the worker{where} imported {got}"
