"""Isolated, cached framework environments: a pool on `mlx@0.31.1` runs in a venv of its own.

Monitor-side only: nothing here imports torch or mlx, and gpumon.worker never imports this
package. The worker runs under `Env.python` with a PYTHONPATH that holds gpumon alone.

    req = request_for("mlx@0.31.1", device="cpu")   # parse + pick the build + the Python
    env = find(req) or ensure(req, progress=cb)     # a stat or two on a hit; builds on a miss
    cmd = [str(env.python), "-m", "gpumon.worker", ...]
    environ = worker_environ(os.environ, gpumon_path())   # PYTHONPATH = gpumon alone

Modules, one job each: requirement (parse the pin), variant (which build a device needs),
interpreter (which Python), layout (paths), metadata (the completeness file), lock,
tools (uv / venv+pip), progress, diagnose (installer output -> error), build, cache
(find/ensure/list/remove/prune), index + simple_api + versions (what the index offers),
doctor (facts), launch (the worker's PYTHONPATH). The `gpumon envs` command is gpumon.commands.envs.
"""

from __future__ import annotations

from gpumon.envs.build import EnvRequest
from gpumon.envs.cache import (
    CachedEnv,
    Env,
    PruneResult,
    ensure,
    find,
    list_envs,
    prune,
    remove,
    request_for,
)
from gpumon.envs.errors import EnvCancelled, EnvError
from gpumon.envs.launch import gpumon_path, worker_environ
from gpumon.envs.progress import BuildProgress, ProgressCallback
from gpumon.envs.requirement import FrameworkPin, parse_pin

__all__ = [
    "BuildProgress",
    "CachedEnv",
    "Env",
    "EnvCancelled",
    "EnvError",
    "EnvRequest",
    "FrameworkPin",
    "ProgressCallback",
    "PruneResult",
    "ensure",
    "find",
    "gpumon_path",
    "list_envs",
    "parse_pin",
    "prune",
    "remove",
    "request_for",
    "worker_environ",
]
