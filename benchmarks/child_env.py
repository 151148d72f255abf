"""The environment a benchmark gives its child processes."""

from __future__ import annotations

import os
from pathlib import Path


def with_gpumon(checkout: Path) -> dict[str, str]:
    """os.environ with `checkout` first on PYTHONPATH, the caller's entries kept: hosts whose
    packages come from PYTHONPATH (the offline GPU host unpacks msgspec and MLX into one) lost
    them when it was replaced, and the children failed there."""
    path = os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)
