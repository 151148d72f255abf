"""Environment: the machine as the session found it, NVIDIA facts from NVML, and every pool
as its worker loaded it (framework build, device, CUDA libraries, what its policy meant)."""

from __future__ import annotations

from gpumon import events as ev
from gpumon.fmt import nbytes, plural
from gpumon.session.markdown.blocks import table
from gpumon.session.markdown.context import Context


def section(ctx: Context) -> list[str]:
    h = ctx.s.start.host
    fw = ", ".join(f"{k} {v}" for k, v in sorted(h.frameworks.items())) or "none found"
    out = ["## Environment", ""]
    rows = [
        ["Host", h.hostname],
        ["OS", f"{h.os_version} ({h.os}, {h.machine})"],
        ["Chip", h.chip],
        ["CPU cores, memory", f"{plural(h.cpu_count, 'core')}, {nbytes(h.mem_total)} (psutil)"],
        ["GPUs", ", ".join(h.gpus) or "none found"],
    ]
    if h.driver_version:
        cuda = f", CUDA {h.cuda_driver_version} (newest the driver supports)"
        rows.append(
            ["NVIDIA driver (NVML)", h.driver_version + (cuda if h.cuda_driver_version else "")]
        )
    elif h.nvml:
        rows.append(["NVIDIA driver (NVML)", f"not read: {h.nvml}"])
    rows += [["Python (monitor)", h.python], ["Frameworks installed (package metadata)", fw]]
    out += [*table(["Machine", "As recorded when the session started"], rows), ""]
    if h.gpu_devices:
        out += [
            *table(
                ["GPU", "Name", "Memory", "Power limit", "UUID"],
                [
                    [
                        str(g.index),
                        g.name,
                        nbytes(g.mem_total) if g.mem_total else "—",
                        f"{g.power_limit_w:g} W" if g.power_limit_w else "—",
                        g.uuid or "—",
                    ]
                    for g in h.gpu_devices
                ],
            ),
            "",
            "Source: NVML (nvidia-ml-py) at session start.",
            "",
        ]
    out += _pools(ctx)
    return out


def _pools(ctx: Context) -> list[str]:
    rows: list[list[str]] = []
    seen: set[tuple[object, ...]] = set()
    for name, readies in ctx.ready.items():
        for r in readies:
            key = (
                name,
                r.backend,
                r.device,
                r.device_name,
                r.framework,
                r.policy,
                tuple(sorted(r.versions.items())),
                r.native_capture,
                r.env,
            )
            if key in seen:
                continue  # a restart that came back the same is not a new fact
            seen.add(key)
            versions = ", ".join(f"{k} {v}" for k, v in sorted(r.versions.items()))
            meaning = r.policy_meanings.get(r.policy, "")
            rows.append(
                [
                    ctx.pool(name),
                    f"{r.backend}:{r.device} — {r.device_name}",
                    r.device_reason,
                    r.framework,
                    versions or "—",
                    f"{r.env} (isolated)" if r.env else "gpumon's own",
                    f"`{r.policy}`" + (f": {meaning}" if meaning else "") if r.policy else "—",
                    r.native_capture or "—",
                ]
            )
    out = ["### Pools as the workers loaded them", ""]
    if rows:
        headers = [
            "Pool",
            "Device",
            "Chosen because",
            "Framework as loaded",
            "Versions (worker)",
            "Environment",
            "Policy (what it means in this version)",
            "Native stacks on a crash",
        ]
        out += [*table(headers, rows), ""]
    else:
        out += ["No pool reported ready in this session.", ""]
    failed = [e for e in ctx.s.events if isinstance(e, ev.PoolFailed)]
    if failed:
        out += ["Pools that could not start:", ""]
        out += [
            f"- {ctx.pool(e.pool)} ({ctx.rel(e.t)}): {e.message}"
            + (f" — fix: {e.fix}" if e.fix else "")
            for e in failed
        ]
        out.append("")
    return out
