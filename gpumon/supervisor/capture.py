"""How a dead worker's evidence is gathered on this machine, and reading it back.

Linux: the worker runs under gdb (see gdb_driver.py for why) when gdb is present.
macOS: the system writes a crash report (`.ips`) that names every thread; we find it by pid.
Everywhere: faulthandler's Python stacks and the worker's stderr/stdout tails.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from gpumon import layout
from gpumon.crash.model import CrashReport

DRIVER = Path(__file__).with_name("gdb_driver.py")
TAIL_BYTES = 16 * 1024
TAIL_LINES = 80


@dataclass(frozen=True)
class NativePlan:
    kind: str  # gdb | ips | none
    description: str
    gdb: str | None = None


class CaptureUnavailable(Exception):
    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


def ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


def find_gdb() -> str | None:
    """gdb on PATH, or GPUMON_GDB (e.g. cuda-gdb on GPU hosts that have no plain gdb)."""
    return os.environ.get("GPUMON_GDB") or shutil.which("gdb")


def native_plan(mode: str) -> NativePlan:
    """Decide how native stacks of every thread will be captured for a pool."""
    if mode == "off":
        return NativePlan("none", "off (--native-stacks off): Python stacks only")
    if sys.platform == "darwin":
        if mode == "gdb":
            raise CaptureUnavailable(
                "gdb capture is for Linux; macOS writes its own crash reports",
                "use --native-stacks auto",
            )
        return NativePlan("ips", "macOS crash report (.ips) from DiagnosticReports, matched by pid")
    gdb = find_gdb()
    if gdb is None:
        if mode == "gdb":
            raise CaptureUnavailable(
                "gdb is not installed",
                "install gdb (e.g. apt install gdb) or use --native-stacks auto",
            )
        return NativePlan(
            "none", "unavailable: gdb is not installed (apt install gdb); Python stacks only"
        )
    if ptrace_scope() == 3:
        if mode == "gdb":
            raise CaptureUnavailable(
                "ptrace is disabled (kernel.yama.ptrace_scope = 3)", "use --native-stacks off"
            )
        return NativePlan(
            "none",
            "unavailable: ptrace is disabled (kernel.yama.ptrace_scope = 3); Python stacks only",
        )
    return NativePlan("gdb", f"gdb-supervised worker ({gdb}): every thread at the fault", gdb)


def gdb_command(plan: NativePlan, worker_cmd: list[str]) -> list[str]:
    assert plan.gdb is not None
    # PR_SET_PDEATHSIG on gdb itself: if the monitor is killed, gdb dies, and so does the
    # worker (which set its own death signal relative to gdb).
    pdeath = "python import ctypes; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)"
    return [
        plan.gdb,
        "-q",
        "-batch",
        "-nx",
        "-iex",
        "set auto-load off",
        "-iex",
        pdeath,
        "-x",
        str(DRIVER),
        "--args",
        *worker_cmd,
    ]


def read_tail(path: Path, max_bytes: int = TAIL_BYTES, max_lines: int = TAIL_LINES) -> str:
    """The end of a log file, decoded leniently; "" if it does not exist."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode(errors="replace")
    lines = text.splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # first line is probably cut
    return "\n".join(lines[-max_lines:])


def read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def parse_text(text: str, source: str) -> tuple[CrashReport | None, str]:
    """Parse captured text with the crash parsers; returns (report, note on failure)."""
    from gpumon.crash.model import CrashParseError
    from gpumon.crash.parse import parse_report

    if not text.strip():
        return None, "empty"
    try:
        return parse_report(text, source_path=source), ""
    except CrashParseError as e:
        return None, str(e)


def signal_name(signo: int) -> str:
    import signal

    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIG{signo}"


def env_for_worker(fd: int, artifacts: Path, *, isolated: bool = False) -> dict[str, str]:
    """The worker's environment. With `isolated` (an interpreter from a framework env or
    python=PATH), PYTHONPATH holds gpumon's package and nothing else: the monitor's own
    site-packages (a different mlx or torch) must not shadow the env's framework."""
    env = dict(os.environ)
    env["GPUMON_MSG_FD"] = str(fd)
    # Where gdb_driver.py writes (it cannot import gpumon, so the names travel here).
    env["GPUMON_NATIVE_OUT"] = str(artifacts / layout.NATIVE)
    env["GPUMON_SNAPSHOT_OUT"] = str(artifacts / layout.SNAPSHOT_PATTERN)
    env["PYTHONUNBUFFERED"] = "1"
    # The worker must import the same gpumon as the monitor, wherever it was started from.
    if isolated:
        from gpumon import envs

        return envs.worker_environ(env, envs.gpumon_path())
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
