"""`gpumon doctor [--pool SPEC...] [--json]`: what this machine can run, and how crashes are
captured. The facts come from gpumon.machine; this module only prints them."""

from __future__ import annotations

import argparse
import json
from typing import Any

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
    from rich.table import Table

    con = Console()
    h = f["host"]
    con.print(f"[bold]gpumon {f['gpumon']}[/] doctor")
    con.print(f"  OS        {h['os_version']} ({h['machine']})")
    con.print(
        f"  CPU       {h['chip']}, {h['cpu_count']} cores, "
        f"{h['mem_total'] / (1 << 30):.1f} GiB memory"
    )
    con.print(f"  GPUs      {', '.join(h.get('gpus') or []) or 'none found'}")
    con.print(f"  Python    {h['python']} ({f['python_executable']})")
    fw = h.get("frameworks") or {}
    con.print("  Installed " + (", ".join(f"{k} {v}" for k, v in fw.items()) or "no frameworks"))
    t = Table(title="Backends (probed in a child process)", title_justify="left")
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
    con.print(f"[bold]Session logs[/]   {f['session_dir']}")


def run(args: argparse.Namespace) -> int:
    from gpumon.machine import findings

    f = findings(list(args.pool or PROBE_SPECS))
    if args.json:
        print(json.dumps(f, indent=2))
    else:
        render(f)
    return 0
