"""One module per framework; `load(config)` imports only the one a pool needs."""

from __future__ import annotations

from gpumon.spec import PoolConfig
from gpumon.worker.backends.base import Backend


def load(config: PoolConfig) -> Backend:
    if config.backend == "torch":
        from gpumon.worker.backends.torch_backend import TorchBackend

        return TorchBackend(config)
    if config.backend == "mlx":
        from gpumon.worker.backends.mlx_backend import MlxBackend

        return MlxBackend(config)
    from gpumon.worker.backends.fault import FaultBackend

    return FaultBackend(config)
