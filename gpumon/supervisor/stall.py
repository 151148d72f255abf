"""A worker that went silent: reported the moment it is noticed, its stacks gathered after.

The Stall event goes out first, so a hang is visible (and counted) at once. Then, in the
background: SIGUSR1 makes faulthandler dump every Python thread (its C handler runs even while
a thread holds the GIL forever); under gdb, SIGUSR2 makes the debugger write a native snapshot
of every thread into its own file. Each arrives as a StallArtifact, or a note says why not.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from gpumon import events as ev
from gpumon.supervisor import capture
from gpumon.supervisor.process import WorkerProcess

FAULTHANDLER_WAIT = 2.0  # seconds for faulthandler's dump to appear and settle
# gdb reads every library's symbols before its first backtrace: ~5 s with libtorch loaded.
SNAPSHOT_WAIT = 30.0


def report(
    w: WorkerProcess, pool: str, threads: int, silent: float, emit: Callable[[ev.Event], None]
) -> str:
    w.stalls += 1
    stall_id = f"{w.artifacts.name}-stall-{w.stalls}"
    emit(ev.Stall(pool=pool, silent_for=silent, threads=threads, stall_id=stall_id, pid=w.pid))
    return stall_id


async def gather(
    w: WorkerProcess, pool: str, stall_id: str, emit: Callable[[ev.Event], None]
) -> None:
    def artifact(kind: str, **fields: object) -> None:
        emit(ev.StallArtifact(stall_id=stall_id, pool=pool, kind=kind, **fields))  # type: ignore[arg-type]

    offset = capture.file_size(w.faulthandler)
    w.signal_worker(signal.SIGUSR1)
    text = await _grown(w.faulthandler, offset, FAULTHANDLER_WAIT)
    # Everything up to here is stall dumps: a later crash's Python stacks start after it.
    w.fh_offset = max(w.fh_offset, capture.file_size(w.faulthandler))
    if text.strip():
        rep, why = capture.parse_text(text, str(w.faulthandler))
        artifact("faulthandler", path=str(w.faulthandler), text=text, report=rep, note=why)
    elif w.proc.returncode is not None:
        artifact("note", note="the worker died before faulthandler could dump its stacks")
        return
    else:
        artifact(
            "note",
            note=f"faulthandler wrote nothing within {FAULTHANDLER_WAIT:g} s of SIGUSR1 "
            "(is the process stopped?)",
        )
    if w.plan.kind != "gdb":
        artifact("note", note=f"native stacks: {w.plan.description}")
        return
    loop = asyncio.get_running_loop()
    w.snapshot_waiter = loop.create_future()
    w.signal_worker(signal.SIGUSR2)  # gdb stops the worker, dumps, resumes
    try:
        path = await asyncio.wait_for(asyncio.shield(w.snapshot_waiter), SNAPSHOT_WAIT)
    except asyncio.TimeoutError:
        path = None
        why = f"gdb wrote no native snapshot within {SNAPSHOT_WAIT:g} s"
    else:
        why = "the worker ended before gdb wrote a native snapshot" if path is None else ""
    finally:
        w.snapshot_waiter = None
    if path is None:
        artifact("note", note=why)
        return
    snap = capture.read_from(path, 0)
    rep, parse_why = capture.parse_text(snap, str(path))
    artifact(
        "native",
        path=str(path),
        text=snap,
        report=rep,
        note=parse_why and f"could not parse gdb output: {parse_why}",
    )


def snapshot_ready(w: WorkerProcess, path: Path | None) -> None:
    waiter = w.snapshot_waiter
    if waiter is not None and not waiter.done():
        waiter.set_result(path)


async def _grown(path: Path, offset: int, within: float) -> str:
    """What was appended to `path` after `offset`, once it stops growing (or `within` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    size = offset
    while loop.time() < deadline:
        await asyncio.sleep(0.1)
        now = capture.file_size(path)
        if now > offset and now == size:
            break  # grew, then held still for one tick: the dump is complete
        size = now
    return capture.read_from(path, offset)
