"""`gpumon doctor`: what this machine can run, and how a dead worker's stacks will be captured.

Which device a backend would pick is asked of a probe child process (gpumon.worker.probe):
the monitor itself never imports torch or mlx.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from gpumon.host import host_info
from gpumon.supervisor.capture import CaptureUnavailable, find_gdb, native_plan, ptrace_scope

PROBE_SPECS = ("mlx", "torch", "fault")
PROBE_TIMEOUT = 180.0


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument(
        "--pool",
        action="append",
        metavar="BACKEND[:DEVICE]",
        help="probe these pool specs instead of mlx, torch and fault",
    )


def probe_backends(specs: list[str]) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "gpumon.worker.probe", *specs]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        found = json.loads(out.stdout.strip().splitlines()[-1])
        return list(found)
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as e:
        why = f"the probe process failed: {type(e).__name__}"
        return [
            {"spec": s, "ok": False, "message": why, "fix": "run gpumon doctor again"}
            for s in specs
        ]


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def crash_capture() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": sys.platform}
    try:
        plan = native_plan("auto")
        info["native_stacks"] = plan.description
        info["mechanism"] = plan.kind
    except CaptureUnavailable as e:
        info["native_stacks"], info["mechanism"] = e.message, "none"
    gdb = find_gdb()
    info["gdb"] = f"{gdb} ({_version([gdb, '--version'])})" if gdb else None
    info["pystack"] = shutil.which("pystack")
    info["faulthandler"] = "Python stacks of every thread (always on in workers)"
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    info["core_limit"] = {
        "soft": "unlimited" if soft == resource.RLIM_INFINITY else soft,
        "hard": "unlimited" if hard == resource.RLIM_INFINITY else hard,
    }
    if sys.platform.startswith("linux"):
        try:
            info["core_pattern"] = Path("/proc/sys/kernel/core_pattern").read_text().strip()
        except OSError:
            info["core_pattern"] = None
        info["ptrace_scope"] = ptrace_scope()
    if sys.platform == "darwin":
        dirs = [
            Path.home() / "Library/Logs/DiagnosticReports",
            Path("/Library/Logs/DiagnosticReports"),
        ]
        info["crash_report_dirs"] = {str(d): d.is_dir() and os.access(d, os.R_OK) for d in dirs}
    return info


def findings(specs: list[str]) -> dict[str, Any]:
    from gpumon import __version__
    from gpumon.session.paths import default_session_dir

    return {
        "gpumon": __version__,
        "host": msgspec.to_builtins(host_info()),
        "python_executable": sys.executable,
        "backends": probe_backends(specs),
        "crash_capture": crash_capture(),
        "session_dir": str(default_session_dir()),
    }


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
    f = findings(list(args.pool or PROBE_SPECS))
    if args.json:
        print(json.dumps(f, indent=2))
    else:
        render(f)
    return 0
