"""A dead worker's evidence: how it ended, and the artifacts of its crash — all from its folder.

Every function here reads only the dead process's own folder (gpumon.layout gives each worker
process one), so a crash's Python stacks, stderr and native stacks can never come from another
process. Python stacks are read from `fh_offset` on: what lies before it in faulthandler.txt
are the dumps taken for earlier stalls of the same process, not the crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpumon import events as ev
from gpumon import protocol
from gpumon.supervisor import capture

if TYPE_CHECKING:
    from gpumon.spec import PoolConfig
    from gpumon.supervisor.process import WorkerProcess

FAULTHANDLER_KEEP = 64 * 1024  # characters of a faulthandler dump kept inline in the event


def crash_event(
    w: WorkerProcess,
    pool: str,
    config: PoolConfig,
    *,
    crash_id: str,
    signal_name: str | None,
    exit_code: int | None,
    detected_by: str,
    crash_number: int,
    during: str,
    in_flight: tuple[str, float] | None,
) -> ev.Crash:
    """The Crash event of worker `w`: its own ops and hello, the pool's configuration as the
    worker last acknowledged it, and the command it had not acknowledged (what, sent when)."""
    h = w.hello
    return ev.Crash(
        crash_id=crash_id,
        pool=pool,
        pid=w.pid,
        signal=signal_name,
        exit_code=exit_code,
        detected_by=detected_by,
        threads=config.threads,
        uptime=w.uptime,
        ops_total=w.ops,
        policy=config.policy or "default",
        workload=config.workload,
        backend=config.backend,
        device=h.device if h else (config.device or "auto"),
        versions=dict(h.versions) if h else {},
        crash_number=crash_number,
        during=during,
        artifacts_dir=str(w.artifacts),
        in_flight=in_flight[0] if in_flight else "",
        in_flight_for=time.monotonic() - in_flight[1] if in_flight else None,
    )


def exit_status(
    plan_kind: str,
    returncode: int | None,
    exited: protocol.Exited | None,
    dying: protocol.Dying | None,
) -> tuple[int | None, str | None]:
    """(exit code, signal name) of the worker itself, not of gdb around it."""
    if plan_kind == "gdb":
        if exited is not None:
            if exited.signo:
                return None, capture.signal_name(exited.signo)
            return exited.exit_code, None
        if dying is not None:  # gdb saw the fatal signal but ended before reporting
            return None, dying.signal
        return None, None  # gdb died without telling us (killed with SIGKILL)
    if returncode is not None and returncode < 0:
        return None, capture.signal_name(-returncode)
    return returncode, None


@dataclass(frozen=True)
class Files:
    """The files of one worker process."""

    faulthandler: Path
    stderr: Path
    stdout: Path
    native: Path | None  # gdb's dump at the fatal signal, once it said it wrote one


def crash_artifacts(
    crash_id: str, pool: str, files: Files, fh_offset: int, plan: capture.NativePlan
) -> list[ev.CrashArtifact]:
    """Python stacks, output tails and notes for one crash (native stacks are attached when
    gdb reports them; a macOS report is awaited separately)."""
    out: list[ev.CrashArtifact] = []

    def note(text: str) -> None:
        out.append(ev.CrashArtifact(crash_id=crash_id, pool=pool, kind="note", note=text))

    fh = capture.read_from(files.faulthandler, fh_offset)
    if fh.strip():
        report, why = capture.parse_text(fh, str(files.faulthandler))
        if report is not None and files.native is not None:
            # Python < 3.14 does not name threads in faulthandler dumps; gdb did.
            from gpumon.crash.gdb import name_threads, pthread_names

            name_threads(report, pthread_names(capture.read_from(files.native, 0)))
        out.append(
            ev.CrashArtifact(
                crash_id=crash_id,
                pool=pool,
                kind="faulthandler",
                path=str(files.faulthandler),
                text=fh[-FAULTHANDLER_KEEP:],
                report=report,
                note=why,
            )
        )
    else:
        note("faulthandler wrote nothing (the process was killed, or died before Python started)")
    for kind, path in (("stderr", files.stderr), ("stdout", files.stdout)):
        tail = capture.read_tail(path)
        if tail.strip():
            out.append(
                ev.CrashArtifact(crash_id=crash_id, pool=pool, kind=kind, path=str(path), text=tail)
            )
    if plan.kind == "gdb" and files.native is None:
        note(
            "gdb saw no fatal signal (the worker exited or was killed), "
            "so there are no native stacks"
        )
    elif plan.kind == "none":
        note(f"native stacks: {plan.description}")
    return out


def native_artifact(crash_id: str, pool: str, path: Path) -> ev.CrashArtifact:
    """gdb's dump of every thread at the fatal signal, parsed."""
    text = capture.read_from(path, 0)
    report, why = capture.parse_text(text, str(path))
    return ev.CrashArtifact(
        crash_id=crash_id,
        pool=pool,
        kind="native",
        path=str(path),
        text=text,
        report=report,
        note=why and f"could not parse gdb output: {why}",
    )


async def await_ips(
    crash_id: str, pool: str, pid: int, started_at: float, emit: Callable[[ev.Event], None]
) -> None:
    """macOS writes its crash report (.ips) seconds after the death; attach it when it
    appears, or a note when it does not. The recorder copies it into the session folder."""
    from gpumon.crash.locate import wait_for_report

    path = await wait_for_report(pid, since=time.time() - (time.monotonic() - started_at) - 1)
    if path is None:
        emit(
            ev.CrashArtifact(
                crash_id=crash_id,
                pool=pool,
                kind="note",
                note=f"macOS wrote no crash report for pid {pid} in time",
            )
        )
        return
    text = capture.read_from(path, 0)
    report, why = capture.parse_text(text, str(path))
    emit(
        ev.CrashArtifact(
            crash_id=crash_id,
            pool=pool,
            kind="ips",
            path=str(path),
            text=text,
            report=report,
            note=why,
        )
    )


def own_file(w: WorkerProcess, path: str) -> Path | None:
    """A path the debugger named, accepted only inside this worker's own folder."""
    p = Path(path)
    try:
        p.resolve().relative_to(w.artifacts.resolve())
    except (ValueError, OSError):
        return None
    return p
