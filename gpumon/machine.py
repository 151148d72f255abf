"""What this machine can run, and how a dead worker's stacks will be captured (`gpumon doctor`).

Which device a backend would pick is asked of a probe child process (gpumon.worker.probe):
the monitor itself never imports torch or mlx.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from gpumon import sanitize
from gpumon.host import host_info
from gpumon.supervisor.capture import CaptureUnavailable, find_gdb, native_plan, ptrace_scope

PROBE_TIMEOUT = 180.0


def probe_backends(specs: list[str]) -> list[dict[str, Any]]:
    """Each spec in its own probe child, all at once: two frameworks in one process can kill it
    (torch's and MLX's CUDA libraries of different releases segfaulted one probe on an H200
    host), and one backend's death must not hide another's answer."""
    children = [(s, _start_probe(s)) for s in specs]
    return [_probe_answer(s, child) for s, child in children]


def _start_probe(spec: str) -> subprocess.Popen[str] | OSError:
    cmd = [sys.executable, "-m", "gpumon.worker.probe", spec]
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        return e


def _probe_answer(spec: str, child: subprocess.Popen[str] | OSError) -> dict[str, Any]:
    if isinstance(child, OSError):
        return _probe_failed(spec, f"could not start it: {child.strerror or child}")
    try:
        out, err = child.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return _probe_failed(spec, f"no answer in {PROBE_TIMEOUT:.0f} s")
    lines = out.strip().splitlines()
    try:
        (found,) = json.loads(lines[-1])
        return dict(found)
    except (ValueError, IndexError, TypeError):
        pass
    if child.returncode < 0:
        status = f"killed by {_signal_name(-child.returncode)}"
    else:
        status = f"exit status {child.returncode}"
    last = [x for x in err.strip().splitlines() if x.strip()]
    said = f": {sanitize.line(last[-1])[:200]}" if last else ""
    return _probe_failed(spec, f"{status}{said}")


def _probe_failed(spec: str, why: str) -> dict[str, Any]:
    return {
        "spec": spec,
        "ok": False,
        "message": f"the probe process failed ({why})",
        "fix": f"python -m gpumon.worker.probe {spec} shows it in full",
    }


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


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
    from gpumon.layout import default_session_dir

    return {
        "gpumon": __version__,
        "host": msgspec.to_builtins(host_info()),
        "python_executable": sys.executable,
        "backends": probe_backends(specs),
        "crash_capture": crash_capture(),
        "envs": env_facts(),
        "session_dir": str(default_session_dir()),
    }


def env_facts() -> dict[str, Any]:
    """Where framework environments are cached and what builds them (gpumon.envs.doctor)."""
    from gpumon.envs.doctor import facts

    return facts().as_dict()
