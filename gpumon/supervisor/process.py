"""Starting one worker process (possibly under gdb) and what the monitor knows about it.

A `WorkerProcess` is one process: its own artifact folder, its socket, its pid (fixed by its
first Hello), what it said and how it ended. A pool has a new one for every (re)start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import psutil

from gpumon import events as ev
from gpumon import layout, protocol
from gpumon.spec import PoolConfig
from gpumon.supervisor import capture
from gpumon.supervisor.channel import Channel

PS_PERIOD = 0.09  # seconds between psutil reads of one worker


@dataclass
class WorkerProcess:
    proc: asyncio.subprocess.Process
    channel: Channel
    artifacts: Path
    plan: capture.NativePlan
    interpreter: str = ""
    env: str = ""  # the framework environment it runs in, for people ("" = gpumon's own)
    pid: int = 0  # gdb's pid until the worker's first Hello names the worker's own
    hello: protocol.Hello | None = None
    fatal: protocol.Fatal | None = None
    bye: protocol.Bye | None = None
    exited: protocol.Exited | None = None
    dying: protocol.Dying | None = None
    debugger_error: str = ""
    refused: bool = False  # gpumon refused it (protocol mismatch): a failure, not a crash
    native_path: Path | None = None
    ready_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    ops: int = 0  # ops this process completed (a crash line shows these, not the pool's)
    # faulthandler.txt up to here holds stall dumps; a crash's Python stacks start after it.
    fh_offset: int = 0
    stalls: int = 0
    # Set while a stall waits for gdb's snapshot; resolved by its snapshot_ready line.
    snapshot_waiter: asyncio.Future[Path | None] | None = None
    ps: psutil.Process | None = None
    ps_at: float = 0.0
    ps_busy: tuple[float, float] | None = None  # (monotonic s, user + system CPU s) last read
    cpu_percent: float | None = None
    rss: int | None = None
    killed: bool = False  # gpumon sent SIGKILL itself (a stop that did not finish)

    @property
    def faulthandler(self) -> Path:
        return self.artifacts / layout.FAULTHANDLER

    @property
    def stderr(self) -> Path:
        return self.artifacts / layout.STDERR

    @property
    def stdout(self) -> Path:
        return self.artifacts / layout.STDOUT

    @property
    def native_out(self) -> Path:
        return self.artifacts / layout.NATIVE

    @property
    def uptime(self) -> float:
        return time.monotonic() - (self.ready_at or self.started_at)

    def said_hello(self, h: protocol.Hello) -> None:
        """The worker is up: its own pid (not gdb's) from now on, and a psutil handle."""
        self.hello, self.pid, self.ready_at = h, h.pid, time.monotonic()
        with contextlib.suppress(psutil.Error):
            self.ps = psutil.Process(h.pid)
            self.process_figures()  # the first read is the baseline of the first CPU %

    def ready_event(self, pool: str) -> ev.PoolReady:
        h = self.hello
        assert h is not None
        return ev.PoolReady(
            pool=pool,
            pid=h.pid,
            backend=h.backend,
            device=h.device,
            device_name=h.device_name,
            device_reason=h.device_reason,
            framework=h.framework,
            versions=h.versions,
            policies=h.policies,
            policy=h.policy,
            policy_meanings=h.policy_meanings,
            native_capture=self.plan.description,
            size=h.size,
            dtype=h.dtype,
            flop_per_op=h.flop_per_op,
            artifacts_dir=str(self.artifacts),
            interpreter=self.interpreter,
            env=self.env,
        )

    def process_figures(self) -> tuple[float | None, int | None]:
        """(CPU % of one core since the last read, RSS bytes) of the worker, read at most once
        per PS_PERIOD. The CPU % is the change in the process's user + system time over the
        change in the monotonic clock, which is what psutil's `cpu_percent` computes, without
        the logical-CPU count it reads from /sys on every call (1.4% of a 16-pool monitor)."""
        now = time.monotonic()
        if self.ps is not None and now - self.ps_at >= PS_PERIOD:
            self.ps_at = now
            try:
                with self.ps.oneshot():
                    times = self.ps.cpu_times()
                    self.rss = self.ps.memory_info().rss
            except psutil.Error:
                self.ps = None
            else:
                busy = times.user + times.system
                if self.ps_busy is not None and now > self.ps_busy[0]:
                    since, was = self.ps_busy
                    self.cpu_percent = max(0.0, (busy - was) / (now - since) * 100)
                self.ps_busy = (now, busy)
        return self.cpu_percent, self.rss

    def signal_worker(self, signo: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signo)

    def kill(self) -> None:
        self.killed = True
        self.signal_worker(signal.SIGKILL)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


async def spawn(
    config: PoolConfig,
    artifacts: Path,
    plan: capture.NativePlan,
    on_noise: Callable[[str], None],
    interpreter: str | None = None,
) -> WorkerProcess:
    """Start `python -m gpumon.worker` (under gdb when the plan says so) with its message
    socket inherited as an fd, stdout/stderr to files in its own folder."""
    parent, child = socket.socketpair()
    fd = child.fileno()
    config_file = artifacts / layout.CONFIG
    _write_private(config_file, msgspec.json.encode(config))
    python = interpreter or sys.executable
    worker_cmd = [
        python,
        "-m",
        "gpumon.worker",
        "--pool-label",  # names the pool in ps/nvidia-smi even without setproctitle
        argv_label(config.name),
        "--fd",
        str(fd),
        # A file, not an argument: gdb re-splits the inferior's arguments and eats JSON quotes.
        "--config-file",
        str(config_file),
        "--faulthandler",
        str(artifacts / layout.FAULTHANDLER),
    ]
    cmd = capture.gdb_command(plan, worker_cmd) if plan.kind == "gdb" else worker_cmd
    out_path, err_path = artifacts / layout.STDOUT, artifacts / layout.STDERR
    try:
        with _open_private(out_path) as out, _open_private(err_path) as err:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=[fd],
                env=capture.env_for_worker(fd, artifacts, isolated=interpreter is not None),
                # Own session: a Ctrl-C in the monitor's terminal must not reach the workers
                # (gdb would take it as "stop the inferior").
                start_new_session=True,
                # Every file the worker (and gdb) writes holds stacks: the user's eyes only.
                umask=0o077,
            )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    reader, writer = await asyncio.open_unix_connection(sock=parent, limit=protocol.MAX_LINE)
    channel = Channel(reader, writer, on_noise)
    return WorkerProcess(
        proc=proc,
        channel=channel,
        artifacts=artifacts,
        plan=plan,
        interpreter=python,
        pid=proc.pid,
    )


def argv_label(name: str) -> str:
    """A pool name as one inert word: gdb starts its inferior through /bin/sh, so a space, a
    quote or a `$` in a name would split or expand it."""
    return "".join(c if c.isalnum() or c in "@:._+=,-/" else "_" for c in name) or "_"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, layout.FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _open_private(path: Path) -> contextlib.AbstractContextManager:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, layout.FILE_MODE)
    return os.fdopen(fd, "ab")


def spawn_fix(e: OSError) -> str:
    """What to do about a worker process that could not be spawned."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some disk space (the session folder needs room for artifacts)"
    if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return "choose a writable --session-dir"
    if e.errno == errno.ENOENT:
        return "check the interpreter path (python=PATH) and the Python install"
    return "check the Python install"
