"""A `Session` of pools given as PoolConfig objects rather than spec strings.

For pools a spec string cannot express yet, such as policy=None (the framework's own default,
resolved by the worker) while PoolConfig's default is still "per-thread".
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon.spec import PoolConfig, parse_pool
from gpumon.supervisor.pool import RestartPolicy
from gpumon.supervisor.supervisor import Supervisor
from tests.engine.helpers import Session


class ConfigSession(Session):
    def __init__(self, configs: list[PoolConfig], artifacts: Path) -> None:
        self.events: list[ev.Event] = []
        self.sup = Supervisor(
            configs,
            artifacts_root=artifacts,
            restart=RestartPolicy(enabled=False),
            stall_after=3.0,
            listeners=[self.events.append],
        )


def default_policy(spec: str) -> PoolConfig:
    """parse_pool(spec) with no policy: the worker picks the framework's own default."""
    return msgspec.structs.replace(parse_pool(spec), policy=None)
