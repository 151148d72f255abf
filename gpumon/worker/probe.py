"""`python -m gpumon.worker.probe BACKEND[:DEVICE]`: which device would this pool get, and why.

`gpumon doctor` runs this in a child process because the monitor never imports a framework.
Prints one JSON object on stdout and exits 0 whether or not the backend is usable.
"""

from __future__ import annotations

import json
import sys

from gpumon.spec import PoolConfig, SpecError, parse_pool
from gpumon.worker.backends import load
from gpumon.worker.backends.base import BackendUnavailable


def probe(spec: str) -> dict[str, object]:
    try:
        config: PoolConfig = parse_pool(spec)
    except SpecError as e:
        return {"spec": spec, "ok": False, "message": str(e), "fix": ""}
    backend = load(config)
    try:
        choice = backend.setup()
    except BackendUnavailable as e:
        return {"spec": spec, "ok": False, "message": e.message, "fix": e.fix}
    return {
        "spec": spec,
        "ok": True,
        "device": choice.device,
        "device_name": choice.device_name,
        "reason": choice.reason,
        "framework": choice.framework,
        "versions": choice.versions,
        "policies": backend.policies(),
        "default_size": backend.default_size(),
        "default_dtype": backend.default_dtype(),
    }


def main() -> int:
    print(json.dumps([probe(s) for s in sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
