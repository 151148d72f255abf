"""`gpumon doctor [--pool SPEC...] [--json]`: what this machine can run, and how crashes are
captured. The facts come from gpumon.machine; this module only prints them.

Exit status: 0 when every pool asked for with --pool can run here (plain `doctor` only reports:
a machine without MLX is not an error), 1 when one of them cannot, 2 for a bad --pool spec
(refused before anything is probed).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gpumon.exit_codes import ExitCode

PROBE_SPECS = ("mlx", "torch", "fault")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument(
        "--pool",
        action="append",
        metavar="BACKEND[:DEVICE]",
        help="probe these pool specs instead of mlx, torch and fault",
    )


def render(f: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # Piped or redirected, a line must stay one line (grep, CI logs): no wrapping at 80 columns.
    con = Console(width=None if sys.stdout.isatty() else 1000)
    h = f["host"]
    con.print(f"[bold]gpumon {f['gpumon']}[/] doctor")
    con.print(f"  OS        {h['os_version']} ({h['machine']})")
    con.print(
        f"  CPU       {h['chip']}, {h['cpu_count']} cores, "
        f"{h['mem_total'] / (1 << 30):.1f} GiB memory"
    )
    con.print(f"  GPUs      {', '.join(h.get('gpus') or []) or 'none found'}")
    con.print(f"  NVIDIA    {escape(_nvidia_line(h))}")
    con.print(f"  Python    {h['python']} ({f['python_executable']})")
    fw = h.get("frameworks") or {}
    con.print("  Installed " + (", ".join(f"{k} {v}" for k, v in fw.items()) or "no frameworks"))
    # The title as its own line: a table title is padded to the table's full width.
    con.print("[bold]Backends[/] (probed in a child process)")
    t = Table()
    for col in ("pool", "device", "why", "policies", "defaults"):
        t.add_column(col)
    for b in f["backends"]:
        if b["ok"]:
            pol = ", ".join(k if not v else f"[dim]{k}: {v}[/]" for k, v in b["policies"].items())
            t.add_row(
                b["spec"],
                f"{b['device']} — {b['device_name']}",
                b["reason"],
                pol,
                f"{b['default_size']} {b['default_dtype']}",
            )
        else:
            t.add_row(b["spec"], "[red]unavailable[/]", b["message"], "", b.get("fix", ""))
    con.print(t)
    c = f["crash_capture"]
    con.print("[bold]Crash capture[/]")
    con.print(f"  native stacks   {c['native_stacks']}")
    con.print(f"  Python stacks   {c['faulthandler']}")
    con.print(f"  gdb             {c['gdb'] or 'not installed'}")
    con.print(f"  pystack         {c['pystack'] or 'not installed'}")
    if "core_pattern" in c:
        lim = c["core_limit"]
        con.print(
            f"  core files      core_pattern={c['core_pattern']!r}, "
            f"ulimit -c soft={lim['soft']} hard={lim['hard']} "
            "(not used: gdb captures live)"
        )
        scope = c.get("ptrace_scope")
        con.print(f"  ptrace_scope    {scope if scope is not None else 'no Yama (unrestricted)'}")
    for d, ok in (c.get("crash_report_dirs") or {}).items():
        con.print(f"  reports         {d} {'(readable)' if ok else '[red](missing)'}")
    env = f.get("envs")
    if env:
        con.print("[bold]Framework environments[/] (pools on another version, `mlx@0.31.1`)")
        con.print(
            f"  cache     {escape(env['root'])}: {env['count']} built, "
            f"{env['size_bytes'] / (1 << 30):.2f} GiB"
            + (f", {env['incomplete']} incomplete" if env["incomplete"] else "")
        )
        builder = f"uv {env['uv_version']}" if env["uv"] else f"no uv: {env['fallback']}"
        con.print(f"  builds    with {escape(builder)}")
        con.print(f"  index     {escape(env['index_url'])} ({escape(env['index_source'])})")
        con.print(f"  torch CPU {escape(env['torch_cpu_index'])}")
    con.print(f"[bold]Session logs[/]   {f['session_dir']}")


def _nvidia_line(h: dict[str, Any]) -> str:
    if h.get("nvml"):
        return h["nvml"]
    parts = [f"driver {h.get('driver_version') or '?'}"]
    if h.get("cuda_driver_version"):
        parts.append(f"CUDA driver {h['cuda_driver_version']}")
    for d in h.get("gpu_devices") or []:
        mem = f", {d['mem_total'] / (1 << 30):.0f} GiB" if d.get("mem_total") else ""
        power = f", {d['power_limit_w']:.0f} W limit" if d.get("power_limit_w") else ""
        parts.append(f"GPU {d['index']}: {d['name']}{mem}{power}")
    return "; ".join(parts) + " (NVML)"


def run(args: argparse.Namespace) -> int:
    from gpumon.machine import findings
    from gpumon.spec import parse_pool

    for spec in args.pool or ():
        parse_pool(spec)  # SpecError: one line, exit 2 (gpumon.cli), before a slow probe
    f = findings(list(args.pool or PROBE_SPECS))
    if args.json:
        print(json.dumps(f, indent=2))
    else:
        render(f)
    if args.pool and not all(b["ok"] for b in f["backends"]):
        return ExitCode.ERROR
    return ExitCode.OK
