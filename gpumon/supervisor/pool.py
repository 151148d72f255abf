"""One pool, seen from the monitor: its worker process, its commands, its deaths.

A `Pool` outlives its processes: each start (first or restart) is a new `attempt` with its own
artifacts folder, and the pool's config follows live changes so a restart comes back as the
user left it. Every observation becomes an event through `emit`; nothing here draws anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import psutil

from gpumon import events as ev
from gpumon import layout, protocol
from gpumon.fmt import plural
from gpumon.spec import PoolConfig
from gpumon.supervisor import capture

STARTING, RUNNING, PAUSED, CRASHED, RESTARTING, STOPPING, STOPPED, FAILED = (
    "starting",
    "running",
    "paused",
    "crashed",
    "restarting",
    "stopping",
    "stopped",
    "failed",
)
ALIVE = (STARTING, RUNNING, PAUSED)
COMMAND_TIMEOUT = 5.0
START_COMMAND_TIMEOUT = 120.0  # a command sent while torch is still importing waits for it
STOP_TIMEOUT = 15.0
PS_PERIOD = 0.09  # seconds between psutil reads of one worker


class WorkerProcess:
    """One spawned worker (possibly wrapped in gdb) and its message socket."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        artifacts: Path,
        plan: capture.NativePlan,
    ):
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.artifacts = artifacts
        self.plan = plan
        self.pid = proc.pid  # the worker's own pid replaces gdb's once Hello arrives
        self.hello: protocol.Hello | None = None
        self.fatal: protocol.Fatal | None = None
        self.bye: protocol.Bye | None = None
        self.exited: protocol.Exited | None = None
        self.dying: protocol.Dying | None = None
        self.native_path: Path | None = None
        self.ready_at: float | None = None
        self.started_at = time.monotonic()
        self.last_msg = time.monotonic()
        self.ps: psutil.Process | None = None
        self.ps_at = 0.0
        self.cpu_percent: float | None = None
        self.rss: int | None = None
        self.killed = False  # gpumon sent SIGKILL itself (stop that did not finish)

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

    def signal_worker(self, signo: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signo)

    def kill(self) -> None:
        self.killed = True
        self.signal_worker(signal.SIGKILL)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


async def spawn(config: PoolConfig, artifacts: Path, plan: capture.NativePlan) -> WorkerProcess:
    parent, child = socket.socketpair()
    fd = child.fileno()
    config_file = artifacts / layout.CONFIG
    config_file.write_bytes(msgspec.json.encode(config))
    worker_cmd = [
        sys.executable,
        "-m",
        "gpumon.worker",
        "--fd",
        str(fd),
        "--config-file",
        str(config_file),
        "--faulthandler",
        str(artifacts / layout.FAULTHANDLER),
    ]
    cmd = capture.gdb_command(plan, worker_cmd) if plan.kind == "gdb" else worker_cmd
    with (
        (artifacts / layout.STDOUT).open("ab") as out,
        (artifacts / layout.STDERR).open("ab") as err,
    ):
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=[fd],
                env=capture.env_for_worker(fd, artifacts),
                # Own session: a Ctrl-C in the monitor's terminal must not reach the workers
                # (gdb would take it as "stop the inferior").
                start_new_session=True,
            )
        finally:
            child.close()
    reader, writer = await asyncio.open_unix_connection(sock=parent, limit=protocol.MAX_LINE)
    return WorkerProcess(proc, reader, writer, artifacts, plan)


class Pool:
    def __init__(
        self,
        config: PoolConfig,
        emit: Callable[[ev.Event], None],
        artifacts_root: Path,
        restart: RestartPolicy,
    ) -> None:
        self.config = config
        self.name = config.name
        self.emit = emit
        self.artifacts_root = artifacts_root
        self.restart_policy = restart
        self.state = STOPPED
        self.attempt = 0
        self.crashes = 0
        self.consecutive_crashes = 0
        self.ops_total = 0
        self.worker: WorkerProcess | None = None
        self.ready: ev.PoolReady | None = None
        self.stop_requested = False
        self.stalled = False
        self.noise = 0  # unreadable lines from the worker
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[protocol.Ack | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self.crash_id: str | None = None
        self.exited = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    # ---- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self.attempt += 1
        self.stop_requested = False
        self.stalled = False
        self.crash_id = None
        self.ready = None
        self.exited = asyncio.Event()
        self.state = STARTING
        self.emit(ev.PoolStarting(pool=self.name, config=self.config, attempt=self.attempt))
        try:
            plan = capture.native_plan(self.config.native_stacks)
        except capture.CaptureUnavailable as e:
            self._fail(e.message, e.fix)
            return
        try:
            # One folder per worker process for the whole session (restarts, sweep cells).
            artifacts = layout.claim_worker_dir(self.artifacts_root, self.name)
            self.worker = await spawn(self.config, artifacts, plan)
        except OSError as e:
            self._fail(f"could not start the worker process: {e}", "check the Python install")
            return
        self._task = asyncio.create_task(self._supervise(self.worker), name=f"pool {self.name}")

    def _fail(self, message: str, fix: str) -> None:
        self.state = FAILED
        self.emit(ev.PoolFailed(pool=self.name, message=message, fix=fix))
        self.exited.set()

    async def _supervise(self, w: WorkerProcess) -> None:
        try:
            await self._supervise_inner(w)
        except Exception as e:  # a bug here must not leave the pool in limbo, nor go unseen
            self._notice(f"supervisor error: {type(e).__name__}: {e}", "error")
            w.kill()
            if self.state not in (STOPPED, FAILED, CRASHED, RESTARTING):
                self.state = FAILED
            self.exited.set()

    async def _supervise_inner(self, w: WorkerProcess) -> None:
        await self._read_messages(w)
        await w.proc.wait()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(None)
        self._pending.clear()
        await self._on_exit(w)

    async def _read_messages(self, w: WorkerProcess) -> None:
        while True:
            try:
                line = await w.reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                # Over-long line: not ours. Skip to the next newline and keep going.
                self._noise(b"<line longer than 1 MiB>")
                with contextlib.suppress(
                    ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError
                ):
                    await w.reader.readuntil(b"\n")
                continue
            except ConnectionError:
                return
            if not line:
                return  # EOF: the worker (and gdb) closed the socket
            w.last_msg = time.monotonic()
            if self.stalled:
                self.stalled = False
                self._notice("worker answered again after a stall")
            try:
                msg = protocol.decode_worker(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self._noise(line)
                continue
            self._handle(w, msg)

    def _notice(self, message: str, level: str = "info") -> None:
        self.emit(ev.Notice(pool=self.name, level=level, message=message))

    def _note(self, crash_id: str, note: str) -> None:
        self.emit(ev.CrashArtifact(crash_id=crash_id, pool=self.name, kind="note", note=note))

    def _noise(self, line: bytes) -> None:
        self.noise += 1
        # Report the first few in full and then every 100th, so garbage cannot flood the log.
        if self.noise <= 3 or self.noise % 100 == 0:
            shown = line[:80].decode(errors="replace").rstrip()
            self._notice(
                f"unreadable line #{self.noise} from the worker ignored: {shown!r}", "warning"
            )

    def _handle(self, w: WorkerProcess, msg: msgspec.Struct) -> None:
        if isinstance(msg, ev.Sample):
            self._on_sample(w, msg)
        elif isinstance(msg, protocol.Ack):
            fut = self._pending.pop(msg.id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif isinstance(msg, protocol.Hello):
            self._on_hello(w, msg)
        elif isinstance(msg, protocol.ThreadFailed):
            self.emit(ev.ThreadFailed(pool=self.name, slot=msg.slot, error=msg.error))
        elif isinstance(msg, protocol.Fatal):
            w.fatal = msg
        elif isinstance(msg, protocol.Bye):
            w.bye = msg
        elif isinstance(msg, protocol.Dying):
            w.dying = msg
            self._record_crash(w, signal_name=msg.signal, exit_code=None, detected_by="debugger")
        elif isinstance(msg, protocol.NativeReady):
            w.native_path = Path(msg.path)
            self._attach_native(w)
        elif isinstance(msg, protocol.SnapshotReady):
            w.native_path = Path(msg.path)
        elif isinstance(msg, protocol.Exited):
            w.exited = msg
        elif isinstance(msg, protocol.DebuggerError):
            self._notice(f"gdb could not run the worker: {msg.message}", "error")

    def _on_hello(self, w: WorkerProcess, h: protocol.Hello) -> None:
        if h.protocol != protocol.PROTOCOL_VERSION:
            self.emit(
                ev.PoolFailed(
                    pool=self.name,
                    message=f"worker speaks protocol "
                    f"{h.protocol}, monitor speaks {protocol.PROTOCOL_VERSION}",
                    fix="reinstall gpumon so both sides are the same version",
                )
            )
            w.kill()
            return
        w.hello = h
        w.pid = h.pid
        w.ready_at = time.monotonic()
        with contextlib.suppress(psutil.Error):
            w.ps = psutil.Process(h.pid)
            w.ps.cpu_percent(None)  # first call only primes the counter
        self.state = RUNNING
        self.ready = ev.PoolReady(
            pool=self.name,
            pid=h.pid,
            backend=h.backend,
            device=h.device,
            device_name=h.device_name,
            device_reason=h.device_reason,
            framework=h.framework,
            versions=h.versions,
            policies=h.policies,
            native_capture=w.plan.description,
            size=h.size,
            dtype=h.dtype,
            flop_per_op=h.flop_per_op,
            artifacts_dir=str(w.artifacts),
        )
        self.config = msgspec.structs.replace(self.config, size=h.size, dtype=h.dtype)
        self.emit(self.ready)

    def _on_sample(self, w: WorkerProcess, s: ev.Sample) -> None:
        s.t = time.time()
        # psutil reads /proc twice per call; at most once per sample period is plenty (CPU%
        # is averaged since the last read anyway) and keeps ingest far above 20k messages/s.
        now = time.monotonic()
        if w.ps is not None and now - w.ps_at >= PS_PERIOD:
            w.ps_at = now
            try:
                with w.ps.oneshot():
                    w.cpu_percent = w.ps.cpu_percent(None)
                    w.rss = w.ps.memory_info().rss
            except psutil.Error:
                w.ps = None
        s.cpu_percent, s.rss = w.cpu_percent, w.rss
        self.ops_total += sum(s.ops)
        self.emit(s)

    # ---- commands ------------------------------------------------------------------
    async def command(
        self, op: str, source: str = "user", **args: str | int | float | None
    ) -> ev.Control:
        """Send a command and wait for its acknowledgement; never hangs on a dead pool."""
        w = self.worker
        if op == "set_threads" and self.state in (CRASHED, RESTARTING, FAILED, STOPPED):
            # Nothing to talk to: remember it, so the next start uses it.
            self.config = msgspec.structs.replace(self.config, threads=int(args["threads"]))
            return self._control(
                op,
                args,
                True,
                f"pool is {self.state}; it will start with "
                f"{plural(int(args['threads']), 'thread')}",
                source,
            )
        if w is None or self.state not in (*ALIVE, STOPPING) or w.proc.returncode is not None:
            return self._control(op, args, False, f"pool {self.name} is {self.state}", source)
        cid = next(self._ids)
        fut: asyncio.Future[protocol.Ack | None] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        try:
            w.writer.write(protocol.encode(protocol.Command(id=cid, op=op, args=args)))
            await w.writer.drain()
        except (ConnectionError, OSError):
            self._pending.pop(cid, None)
            return self._control(op, args, False, "worker is gone", source)
        timeout = START_COMMAND_TIMEOUT if self.state == STARTING else COMMAND_TIMEOUT
        if op in ("set_threads", "stop", "set_workload", "set_policy"):
            timeout += 15.0  # joining threads waits for their current op
        try:
            ack = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(cid, None)
            return self._control(
                op, args, False, f"no answer from the worker in {timeout:.0f} s (stalled?)", source
            )
        if ack is None:
            return self._control(op, args, False, "worker died before answering", source)
        if ack.ok:
            self._track(ack)
        return self._control(op, args, ack.ok, ack.detail, source)

    def _track(self, ack: protocol.Ack) -> None:
        c = self.config
        self.config = msgspec.structs.replace(
            c,
            threads=ack.threads or c.threads,
            policy=ack.policy or c.policy,
            workload=ack.workload or c.workload,
        )
        if ack.command == "set_workload" and (w := ev.parse_workload_detail(ack.detail)):
            self.config = msgspec.structs.replace(self.config, size=w[1], dtype=w[2])
        if ack.state == "paused":
            self.state = PAUSED
        elif ack.state == "running" and self.state == PAUSED:
            self.state = RUNNING

    def _control(
        self, op: str, args: dict[str, str | int | float | None], ok: bool, detail: str, source: str
    ) -> ev.Control:
        c = ev.Control(
            pool=self.name, command=op, args=dict(args), ok=ok, detail=detail, source=source
        )
        self.emit(c)
        return c

    async def stop(self, reason: str = "stopped") -> None:
        """Ask the worker to finish cleanly; escalate to SIGKILL if it will not."""
        if self._restart_task is not None:
            self._restart_task.cancel()
            self._restart_task = None
        self.stop_requested = True
        w = self.worker
        if w is None or w.proc.returncode is not None or self.state in (STOPPED, FAILED):
            if self.state in (CRASHED, RESTARTING):
                self.state = STOPPED
                self.emit(ev.PoolStopped(pool=self.name, reason=reason, ops_total=self.ops_total))
            return
        prev = self.state
        self.state = STOPPING
        if self.stalled:
            w.kill()  # it answers nothing, so asking it to stop would only wait out a timeout
        elif prev != STARTING or w.hello is not None:
            ctl = await self.command("stop", source="supervisor")
            if not ctl.ok:
                w.kill()
        else:
            w.kill()  # still importing a framework: nothing worth waiting for
        try:
            await asyncio.wait_for(self.exited.wait(), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            w.kill()
            await self.exited.wait()

    async def restart(self, source: str = "user") -> ev.Control:
        await self.stop(reason="restart")
        await self.start()
        return self._control("restart", {}, True, f"attempt {self.attempt}", source)

    # ---- deaths --------------------------------------------------------------------
    def _exit_status(self, w: WorkerProcess) -> tuple[int | None, str | None]:
        """(exit code, signal name) of the worker itself, not of gdb around it."""
        if w.plan.kind == "gdb":
            if w.exited is not None:
                if w.exited.signo:
                    return None, capture.signal_name(w.exited.signo)
                return w.exited.exit_code, None
            if w.dying is not None:  # gdb saw the fatal signal but ended before reporting
                return None, w.dying.signal
            return None, None  # gdb died without telling us (killed with SIGKILL)
        rc = w.proc.returncode
        if rc is not None and rc < 0:
            return None, capture.signal_name(-rc)
        return rc, None

    async def _on_exit(self, w: WorkerProcess) -> None:
        code, sig = self._exit_status(w)
        if w.fatal is not None:
            self._fail(w.fatal.message, w.fatal.fix)
            return
        if (
            w.plan.kind == "gdb"
            and w.exited is None
            and w.proc.returncode not in (0, None)
            and w.hello is None
            and not self.stop_requested
        ):
            tail = capture.read_tail(w.stderr, 2048, 5).replace("\n", " | ")
            self._fail(
                f"gdb could not start the worker: {tail or 'no output'}", "use --native-stacks off"
            )
            return
        clean = code == 0 and sig is None
        if self.stop_requested and (clean or w.killed):
            self.state = STOPPED
            reason = "killed: it did not stop in time" if w.killed and not clean else "stopped"
            self.emit(
                ev.PoolStopped(
                    pool=self.name, reason=reason, exit_code=code, ops_total=self.ops_total
                )
            )
            self.exited.set()
            return
        if self.crash_id is None:
            self._record_crash(w, signal_name=sig, exit_code=code, detected_by="exit")
        elif w.dying is not None:
            how = f"signal {sig}" if sig else f"exit code {code}"
            if w.exited is None:
                how += f" (gdb exited with {w.proc.returncode} before reporting the end)"
            self._note(self.crash_id, f"worker {w.pid} ended with {how}")
        await self._collect_artifacts(w)
        self.exited.set()
        if not self.stop_requested:
            self._schedule_restart(w)

    def _record_crash(
        self, w: WorkerProcess, signal_name: str | None, exit_code: int | None, detected_by: str
    ) -> None:
        self.crashes += 1
        self.state = CRASHED
        h = w.hello
        uptime = time.monotonic() - (w.ready_at or w.started_at)
        # The worker's own folder names the crash: one process, one crash, one set of files.
        self.crash_id = f"{w.artifacts.name}-{w.pid}"
        during = "stopping" if self.stop_requested else "run" if h is not None else "starting"
        self.emit(
            ev.Crash(
                crash_id=self.crash_id,
                pool=self.name,
                pid=w.pid,
                signal=signal_name,
                exit_code=exit_code,
                detected_by=detected_by,
                threads=self.config.threads,
                uptime=uptime,
                ops_total=self.ops_total,
                policy=self.config.policy,
                workload=self.config.workload,
                backend=self.config.backend,
                device=h.device if h else (self.config.device or "auto"),
                versions=dict(h.versions) if h else {},
                crash_number=self.crashes,
                during=during,
            )
        )

    def _attach_native(self, w: WorkerProcess) -> None:
        if self.crash_id is None or w.native_path is None:
            return
        text = capture.read_from(w.native_path, 0)
        report, why = capture.parse_text(text, str(w.native_path))
        self.emit(
            ev.CrashArtifact(
                crash_id=self.crash_id,
                pool=self.name,
                kind="native",
                path=str(w.native_path),
                text=text,
                report=report,
                note=why and f"could not parse gdb output: {why}",
            )
        )

    async def _collect_artifacts(self, w: WorkerProcess) -> None:
        assert self.crash_id is not None
        cid = self.crash_id
        fh = capture.read_from(w.faulthandler, 0)
        if fh.strip():
            report, why = capture.parse_text(fh, str(w.faulthandler))
            if report is not None and w.native_path is not None:
                # Python < 3.14 does not name threads in faulthandler dumps; gdb did.
                from gpumon.crash.gdb import name_threads, pthread_names

                name_threads(report, pthread_names(capture.read_from(w.native_path, 0)))
            self.emit(
                ev.CrashArtifact(
                    crash_id=cid,
                    pool=self.name,
                    kind="faulthandler",
                    path=str(w.faulthandler),
                    text=fh[-64 * 1024 :],
                    report=report,
                    note=why,
                )
            )
        else:
            self._note(
                cid,
                "faulthandler wrote nothing (the process was "
                "killed, or died before Python started)",
            )
        for kind, path in (("stderr", w.stderr), ("stdout", w.stdout)):
            tail = capture.read_tail(path)
            if tail.strip():
                self.emit(
                    ev.CrashArtifact(
                        crash_id=cid, pool=self.name, kind=kind, path=str(path), text=tail
                    )
                )
        if w.plan.kind == "gdb" and w.native_path is None:
            self._note(
                cid,
                "gdb saw no fatal signal (the worker exited or "
                "was killed), so there are no native stacks",
            )
        elif w.plan.kind == "none":
            self._note(cid, f"native stacks: {w.plan.description}")
        elif w.plan.kind == "ips":
            # The report appears seconds later; the crash event is already out.
            task = asyncio.create_task(self._await_ips(cid, w), name=f"ips {cid}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _await_ips(self, cid: str, w: WorkerProcess) -> None:
        from gpumon.crash.locate import wait_for_report

        path = await wait_for_report(
            w.pid, since=time.time() - (time.monotonic() - w.started_at) - 1
        )
        if path is None:
            self._note(cid, f"macOS wrote no crash report for pid {w.pid} in time")
            return
        text = capture.read_from(path, 0)
        report, why = capture.parse_text(text, str(path))
        copy = w.artifacts / path.name
        with contextlib.suppress(OSError):
            copy.write_text(text)
        self.emit(
            ev.CrashArtifact(
                crash_id=cid,
                pool=self.name,
                kind="ips",
                path=str(copy),
                text=text,
                report=report,
                note=why,
            )
        )

    def _schedule_restart(self, w: WorkerProcess) -> None:
        rp = self.restart_policy
        uptime = time.monotonic() - (w.ready_at or w.started_at)
        if uptime > rp.reset_after:
            self.consecutive_crashes = 0
        self.consecutive_crashes += 1
        if not rp.enabled or (rp.max_restarts is not None and self.crashes > rp.max_restarts):
            return
        delay = min(rp.max_delay, rp.base_delay * rp.factor ** (self.consecutive_crashes - 1))
        self.state = RESTARTING
        self.emit(
            ev.PoolRestart(
                pool=self.name, attempt=self.attempt + 1, delay=delay, crashes=self.crashes
            )
        )

        async def later() -> None:
            await asyncio.sleep(delay)
            self._restart_task = None
            if self.state == RESTARTING:
                await self.start()

        self._restart_task = asyncio.create_task(later(), name=f"restart {self.name}")

    # ---- stalls --------------------------------------------------------------------
    async def check_stall(self, after: float) -> None:
        w = self.worker
        if (
            w is None
            or w.hello is None
            or self.stalled
            or self.state not in (RUNNING, PAUSED)
            or w.proc.returncode is not None
        ):
            return
        silent = time.monotonic() - w.last_msg
        if silent < after:
            return
        self.stalled = True
        offset = capture.file_size(w.faulthandler)
        w.signal_worker(signal.SIGUSR1)  # faulthandler dumps every thread, GIL or not
        native = None
        if w.plan.kind == "gdb":
            before = capture.file_size(w.native_out)
            w.signal_worker(signal.SIGUSR2)  # gdb stops the worker, dumps, resumes
            for _ in range(40):
                await asyncio.sleep(0.25)
                if capture.file_size(w.native_out) != before or w.proc.returncode is not None:
                    break
            native, _why = capture.parse_text(capture.read_from(w.native_out, 0), str(w.native_out))
        else:
            await asyncio.sleep(0.5)
        stacks = capture.read_from(w.faulthandler, offset)
        self.emit(
            ev.Stall(
                pool=self.name,
                silent_for=silent,
                threads=self.config.threads,
                stacks=stacks,
                native=native,
            )
        )


class RestartPolicy(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = False
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 10.0
    max_restarts: int | None = None
    reset_after: float = 30.0  # seconds up that count as "healthy again"
