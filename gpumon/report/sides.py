"""One side of a comparison from what was recorded: a session's events or a sweep's JSON.

Both become the same `Side`: cells from gpumon.facts (a sweep JSON holds CellFacts already, as
`gpumon sweep --json` wrote them) and an environment as `what -> value` rows — the host
(OS, CPU, memory, GPUs, Python, installed frameworks) and what the workers reported (the
framework versions they imported, their Python, other libraries such as CUDA, the devices).
Nothing is filled in that the input did not record: a missing figure is absent, not guessed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gpumon import events as ev
from gpumon import facts
from gpumon.fmt import nbytes
from gpumon.report.compare import CellKey, CellSide, Side
from gpumon.report.inputs import Input, InputError, SweepFile


class _RunDetail(msgspec.Struct):
    seconds: float = 0.0


class _SweepCell(msgspec.Struct):
    """The fields of a sweep JSON cell (CellFacts) a comparison reads."""

    pool: str
    backend: str
    device: str
    policy: str
    workload: str
    size: int
    dtype: str
    threads: int
    runs: int
    ops_per_s: float | None = None
    ops_per_s_min: float | None = None
    ops_per_s_max: float | None = None
    crashes: int = 0
    hangs: int = 0
    version: str = ""
    framework: str = ""
    device_name: str = ""
    run_details: list[_RunDetail] | None = None


class _SweepHost(msgspec.Struct):
    os: str = ""
    os_version: str = ""
    machine: str = ""
    chip: str = ""
    cpu_count: int = 0
    mem_total: int = 0
    python: str = ""
    gpus: list[str] = msgspec.field(default_factory=list)
    frameworks: dict[str, str] = msgspec.field(default_factory=dict)
    driver_version: str = ""  # NVIDIA's, from NVML where the recording gpumon had it
    cuda_driver_version: str = ""


def side(inp: Input) -> Side:
    if isinstance(inp, SweepFile):
        return _sweep_side(inp)
    cells = [_cell(msgspec.convert(_facts_dict(c), _SweepCell)) for c in facts.cells(inp.events)]
    host = msgspec.convert(msgspec.to_builtins(inp.start.host), _SweepHost)
    env = _host_env(host)
    ready = [e for e in inp.events if isinstance(e, ev.PoolReady)]
    env.update(_worker_env(ready))
    return Side(label=inp.folder.name, kind="session", cells=cells, env=env)


def _facts_dict(c: facts.CellFacts) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(c)


def _sweep_side(f: SweepFile) -> Side:
    try:
        raw_cells = msgspec.convert(f.data["cells"], list[_SweepCell], strict=False)
        host = msgspec.convert(f.data.get("host") or {}, _SweepHost, strict=False)
    except msgspec.ValidationError as e:
        raise InputError(f"{f.path}: not a readable sweep JSON ({e})") from None
    env = _host_env(host)
    versions: dict[str, set[str]] = {}
    devices: set[str] = set()
    for c in raw_cells:
        if c.version:
            versions.setdefault(c.backend, set()).add(c.version)
        if c.device_name:
            devices.add(c.device_name)
    for backend, vs in sorted(versions.items()):
        env[f"{backend} (worker)"] = ", ".join(sorted(vs))
    if devices:
        env["devices (worker)"] = ", ".join(sorted(devices))
    return Side(label=f.path.name, kind="sweep", cells=[_cell(c) for c in raw_cells], env=env)


def _cell(c: _SweepCell) -> CellSide:
    measured = (
        sum(1 for r in c.run_details if r.seconds > 0)
        if c.run_details is not None
        else (c.runs if c.ops_per_s is not None else 0)
    )
    return CellSide(
        key=CellKey(c.backend, c.device, c.policy, c.workload, c.size, c.dtype, c.threads),
        pool=c.pool,
        version=c.version,
        runs=c.runs,
        measured_runs=measured,
        ops_per_s=c.ops_per_s,
        ops_per_s_min=c.ops_per_s_min,
        ops_per_s_max=c.ops_per_s_max,
        crashes=c.crashes,
        hangs=c.hangs,
    )


def _host_env(h: _SweepHost) -> dict[str, str]:
    env: dict[str, str] = {}
    if h.os:
        env["OS"] = f"{h.os} {h.os_version}".strip()
    if h.chip or h.cpu_count:
        env["CPU"] = f"{h.chip} ({h.machine}, {h.cpu_count} cores)"
    if h.mem_total:
        env["memory"] = nbytes(h.mem_total)
    env["GPUs"] = ", ".join(h.gpus) if h.gpus else "none listed"
    if h.driver_version:
        env["NVIDIA driver"] = h.driver_version
    if h.cuda_driver_version:
        env["CUDA (driver's newest)"] = h.cuda_driver_version
    if h.python:
        env["Python (monitor)"] = h.python
    for name, version in sorted(h.frameworks.items()):
        env[f"{name} (installed)"] = version
    return env


def _worker_env(ready: list[ev.PoolReady]) -> dict[str, str]:
    """What the workers themselves reported: versions they imported (mlx, torch, python,
    cuda, a driver where a backend names one), and the devices they chose."""
    seen: dict[str, set[str]] = {}
    for r in ready:
        for k, v in r.versions.items():
            seen.setdefault(f"{k} (worker)" if k != "python" else "Python (worker)", set()).add(v)
        seen.setdefault("devices (worker)", set()).add(r.device_name)
    return {k: ", ".join(sorted(v)) for k, v in sorted(seen.items())}
