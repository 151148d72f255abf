"""Whether a scenario's pinned framework versions can run here, or its synthetic fallback must.

A demo must not die on stage because the room has no network: a version that is neither cached
nor installable from a reachable index switches the whole scenario to its fallback pools
(the synthetic fault backend, labelled as such everywhere), and says why in one line.
"""

from __future__ import annotations

from gpumon.scenario.model import Scenario, ScenarioError
from gpumon.spec import PoolConfig


def unavailable(sc: Scenario) -> str:
    """Why the scenario's real pools cannot run here ("" when they can)."""
    from gpumon import envs
    from gpumon.envs.versions import release_status

    for cfg in sc.pool_configs():
        if not cfg.version or cfg.python:
            continue
        try:
            req = envs.request_for(f"{cfg.backend}@{cfg.version}", device=cfg.device)
            if envs.find(req) is not None:
                continue
            status = release_status(req.pin, req.variant, req.target, timeout=5.0)
        except envs.EnvError as e:
            return f"{cfg.backend} {cfg.version} is not cached here and {e.message}"
        if status is None or not status.installable:
            why = status.reason if status else "the index does not have it"
            return f"{cfg.backend} {cfg.version} cannot be installed here: {why}"
    return ""


def pick(sc: Scenario) -> tuple[list[PoolConfig], bool, str]:
    """(the pools to run, whether they are the synthetic fallback, why) — raises
    ScenarioError when the real pools cannot run and there is no fallback."""
    why = unavailable(sc)
    if not why:
        return sc.pool_configs(), False, ""
    if not sc.fallback:
        raise ScenarioError(f"scenario {sc.name}: {why}, and it has no synthetic fallback")
    return sc.pool_configs(fallback=True), True, f"{why}: running the SYNTHETIC fallback instead"
