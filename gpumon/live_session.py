"""One function wires a session: bus, supervisor, recorder and host sampler, in that order.

Every caller — the live monitor, `sweep`, tests, benchmarks, fixture recorders — gets a session
the same way, so they all record the same stream: SessionStart is published first (before any
pool starts), host samples arrive once a second from the same loop, and SessionEnd is
published last, after every pool has stopped and its artifacts are recorded.

    async with open_session(pools, mode="sweep", argv=sys.argv) as s:
        await s.supervisor.command(...)
    s.exit_reason ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpumon import __version__
from gpumon import events as ev
from gpumon.bus import Bus, Listener
from gpumon.spec import PoolConfig
from gpumon.supervisor.backoff import RestartPolicy
from gpumon.supervisor.supervisor import STALL_AFTER, Supervisor

if TYPE_CHECKING:
    from gpumon.session.recorder import Recorder

HOST_EVERY = 1.0  # seconds between host samples (CPU/memory move slowly; NVML is not free)


@dataclass
class LiveSession:
    bus: Bus
    supervisor: Supervisor
    session_id: str
    recorder: Recorder | None = None
    # Why nothing is being recorded: set at the start (the folder could not be made) or later
    # (the disk filled up); the title bar shows it and the command exits non-zero.
    record_error: str | None = None
    host_task: asyncio.Task[None] | None = None
    ended: bool = False

    @property
    def log_path(self) -> Path | None:
        return self.recorder.path if self.recorder is not None else None

    @property
    def folder(self) -> Path | None:
        return self.recorder.folder if self.recorder is not None else None

    def publish(self, event: ev.Event) -> None:
        self.bus.publish(event)

    async def close(self, reason: str = "quit") -> None:
        """Stop every pool (waiting for their artifacts), then publish SessionEnd (once)."""
        if self.ended:
            return
        self.ended = True
        try:
            await self.supervisor.stop()
        finally:
            if self.host_task is not None:
                self.host_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.host_task
            self.bus.publish(ev.SessionEnd(reason=reason))


def _watch_recording(session: LiveSession) -> Listener:
    def watch(e: ev.Event) -> None:
        if isinstance(e, ev.RecordingStopped) and session.record_error is None:
            session.record_error = f"recording stopped: {e.reason}"

    return watch


async def _sample_host(bus: Bus, every: float) -> None:
    from gpumon.host import HostSampler  # psutil and NVML: only when a session samples

    sampler = HostSampler()
    while True:
        await asyncio.sleep(every)
        bus.publish(sampler.sample())


def start_event(
    session_id: str, mode: str, argv: Sequence[str], host: ev.HostInfo | None = None
) -> ev.SessionStart:
    if host is None:
        from gpumon.host import host_info  # psutil + subprocesses: only when needed

        host = host_info()
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "?"  # the directory was removed under us; not a reason to refuse recording
    return ev.SessionStart(
        t=time.time(),
        session_id=session_id,
        gpumon_version=__version__,
        mode=mode,
        argv=list(argv),
        cwd=cwd,
        host=host,
    )


@contextlib.asynccontextmanager
async def open_session(
    pools: Iterable[PoolConfig] = (),
    *,
    mode: str,
    argv: Sequence[str],
    record: bool = True,
    session_dir: Path | None = None,
    listeners: Iterable[Callable[[ev.Event], None]] = (),
    restart: RestartPolicy | None = None,
    stall_after: float = STALL_AFTER,
    host: ev.HostInfo | None = None,
    host_every: float | None = HOST_EVERY,
    start_pools: bool = True,
    end_reason: str = "quit",
    artifacts_root: Path | None = None,
) -> AsyncIterator[LiveSession]:
    """A running session. `listeners` see every event from SessionStart to SessionEnd.
    With `record`, a failure to create the session folder does not stop the session: it runs
    unrecorded and `record_error` says why (the caller decides whether that is fatal)."""
    session = await start_session(
        pools,
        mode=mode,
        argv=argv,
        record=record,
        session_dir=session_dir,
        listeners=listeners,
        restart=restart,
        stall_after=stall_after,
        host=host,
        host_every=host_every,
        start_pools=start_pools,
        artifacts_root=artifacts_root,
    )
    reason = end_reason
    try:
        yield session
    except BaseException:
        reason = "error"
        raise
    finally:
        await session.close(reason)


async def start_session(
    pools: Iterable[PoolConfig] = (),
    *,
    mode: str,
    argv: Sequence[str],
    record: bool = True,
    session_dir: Path | None = None,
    listeners: Iterable[Callable[[ev.Event], None]] = (),
    restart: RestartPolicy | None = None,
    stall_after: float = STALL_AFTER,
    host: ev.HostInfo | None = None,
    host_every: float | None = HOST_EVERY,
    start_pools: bool = True,
    artifacts_root: Path | None = None,
) -> LiveSession:
    """open_session without the context manager, for owners with their own lifetime (the
    TUI app starts it on mount and closes it on quit); call `close()` when done.
    `artifacts_root` is where an unrecorded session keeps its evidence (a temp dir if None);
    a recorded one keeps it in its session folder."""
    bus = Bus()
    recorder = None
    record_error = None
    if record:
        from gpumon.session.recorder import Recorder, RecorderError

        try:
            recorder = Recorder(session_dir)
        except RecorderError as e:
            record_error = f"not recording: {e.reason}"
    if recorder is not None:
        bus.subscribe(recorder)
        session_id = recorder.session_id
        artifacts_root = recorder.artifacts_dir
    else:
        session_id = secrets.token_hex(6)
        artifacts_root = artifacts_root or Path(tempfile.mkdtemp(prefix="gpumon-"))
    for listener in listeners:
        bus.subscribe(listener)
    sup = Supervisor(
        pools,
        emit=bus.publish,
        artifacts_root=artifacts_root,
        restart=restart,
        stall_after=stall_after,
    )
    session = LiveSession(
        bus=bus,
        supervisor=sup,
        session_id=session_id,
        recorder=recorder,
        record_error=record_error,
    )
    bus.subscribe(_watch_recording(session))
    bus.publish(start_event(session_id, mode, argv, host))
    if host_every:
        session.host_task = asyncio.create_task(_sample_host(bus, host_every), name="host")
    if start_pools:
        await sup.start()
    return session
