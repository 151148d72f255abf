"""One pool, seen from the monitor: the state machine over its worker processes.

A `Pool` outlives its processes: each (re)start spawns a new `WorkerProcess` with its own
artifact folder, and the pool's config follows live changes so a restart comes back as the user
left it. Every observation becomes an event through `emit`; nothing here draws anything. The
parts live beside it: process.py (spawning), channel.py (messages and commands), evidence.py
(how a worker ended, its crash artifacts), stall.py (silence), backoff.py (restarts).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec

from gpumon import events as ev
from gpumon import layout, protocol
from gpumon.control import PoolCommand, Restart, SetThreads, Stop, describe, remembered
from gpumon.envs import EnvError
from gpumon.spec import PoolConfig
from gpumon.supervisor import backoff, capture, evidence, interpreter, stall
from gpumon.supervisor.backoff import RestartPolicy
from gpumon.supervisor.channel import timeout_for
from gpumon.supervisor.gpu_memory import GpuMemory
from gpumon.supervisor.process import WorkerProcess, spawn, spawn_fix

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
DEAD = (CRASHED, RESTARTING, FAILED, STOPPED)
STOP_TIMEOUT = 15.0

__all__ = ["Pool", "RestartPolicy", "WorkerProcess"]


class Pool:
    def __init__(
        self,
        config: PoolConfig,
        emit: Callable[[ev.Event], None],
        artifacts_root: Path,
        restart: RestartPolicy,
        gpu_memory: GpuMemory | None = None,
    ) -> None:
        self.config = config
        self.gpu_memory = gpu_memory
        self.name = config.name
        self.emit = emit
        self.artifacts_root = artifacts_root
        self.restart_policy = restart
        self.state = STOPPED
        self.attempt = 0
        self.crashes = 0
        self.consecutive_crashes = 0
        self.crash_times: collections.deque[float] = collections.deque(maxlen=1000)
        self.ops_total = 0
        self.worker: WorkerProcess | None = None
        self.ready: ev.PoolReady | None = None
        self.stop_requested = False
        self.stalled = False
        self.crash_id: str | None = None
        # The command sent to the worker and not yet acknowledged, with when it was sent.
        self._in_flight: tuple[str, float] | None = None
        self.failure: ev.PoolFailed | None = None  # why it could not start, the last time
        self.exited = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._cancel_build: threading.Event | None = None
        self._background: set[asyncio.Task[None]] = set()

    # ---- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self.attempt += 1
        self.stop_requested = False
        self.stalled = False
        self.crash_id = None
        self.ready = None
        self.worker = None
        self.exited = asyncio.Event()
        self.state = STARTING
        self.emit(ev.PoolStarting(pool=self.name, config=self.config, attempt=self.attempt))
        try:
            plan = capture.native_plan(self.config.native_stacks)
        except capture.CaptureUnavailable as e:
            self._fail(e.message, e.fix)
            return
        self._cancel_build = threading.Event()
        try:
            interp = await interpreter.resolve(self.config, self.emit, self._cancel_build)
        except (interpreter.InterpreterError, EnvError) as e:
            if self.stop_requested:  # the build was cancelled by a stop: not a failure
                self._stopped("stopped while its environment was being built")
            else:
                self._fail(e.message, e.fix)
            return
        if self.stop_requested:
            self._stopped("stopped before its worker started")
            return
        try:
            # One folder per worker process for the whole session (restarts, sweep cells).
            artifacts = layout.claim_worker_dir(self.artifacts_root, self.name)
            python = interp.python if interp.isolated else None
            self.worker = await spawn(self.config, artifacts, plan, self._noise, python)
        except OSError as e:
            self._fail(f"could not start the worker process: {e.strerror or e}", spawn_fix(e))
            return
        self.worker.env = interp.env
        self._task = asyncio.create_task(self._supervise(self.worker), name=f"pool {self.name}")

    def _stopped(self, reason: str) -> None:
        self.state = STOPPED
        self.emit(ev.PoolStopped(pool=self.name, reason=reason, ops_total=self.ops_total))
        self.exited.set()

    def _fail(self, message: str, fix: str) -> None:
        self.state = FAILED
        self.failure = ev.PoolFailed(pool=self.name, message=message, fix=fix)
        self.emit(self.failure)
        self.exited.set()

    async def _supervise(self, w: WorkerProcess) -> None:
        try:
            async for msg in w.channel.messages():
                self._handle(w, msg)
            await w.proc.wait()
            w.channel.close()
            await self._on_exit(w)
        except Exception as e:  # a bug here must not leave the pool in limbo, nor go unseen
            self._notice(f"supervisor error: {type(e).__name__}: {e}", "error")
            w.kill()
            if self.state not in DEAD:
                self.state = FAILED
            self.exited.set()

    def _notice(self, message: str, level: str = "info") -> None:
        self.emit(ev.Notice(pool=self.name, level=level, message=message))

    def _noise(self, text: str) -> None:
        self._notice(text, "warning")

    def _note(self, crash_id: str, note: str) -> None:
        self.emit(ev.CrashArtifact(crash_id=crash_id, pool=self.name, kind="note", note=note))

    def _handle(self, w: WorkerProcess, msg: msgspec.Struct) -> None:
        if self.stalled:
            self.stalled = False
            self.emit(ev.StallCleared(pool=self.name, silent_for=w.channel.gap))
        match msg:
            case ev.Sample():
                self._on_sample(w, msg)
            case protocol.Hello():
                self._on_hello(w, msg)
            case protocol.ThreadFailed(slot=slot, error=error):
                self.emit(ev.ThreadFailed(pool=self.name, slot=slot, error=error))
            case protocol.Fatal():
                w.fatal = msg
            case protocol.Bye():
                w.bye = msg
            case protocol.Dying(signal=sig):
                w.dying = msg
                self._record_crash(w, signal_name=sig, exit_code=None, detected_by="debugger")
            case protocol.NativeReady(path=path):
                w.native_path = evidence.own_file(w, path)
                if self.crash_id is not None and w.native_path is not None:
                    self.emit(evidence.native_artifact(self.crash_id, self.name, w.native_path))
            case protocol.SnapshotReady(path=path):
                stall.snapshot_ready(w, evidence.own_file(w, path))
            case protocol.Exited():
                w.exited = msg
            case protocol.DebuggerError(message=message):
                w.debugger_error = message

    def _on_hello(self, w: WorkerProcess, h: protocol.Hello) -> None:
        if w.hello is not None:
            # The pid that signals go to is fixed by the first Hello; a second one is noise.
            self._notice(f"a second hello from worker {w.pid} ignored (it said pid {h.pid})")
            return
        if h.protocol != protocol.PROTOCOL_VERSION:
            w.refused = True
            self._fail(
                f"worker speaks protocol {h.protocol}, monitor speaks {protocol.PROTOCOL_VERSION}",
                "reinstall gpumon so both sides are the same version",
            )
            w.kill()
            return
        wrong = interpreter.check_version(self.config, h.versions)
        if wrong:
            w.refused = True
            self._fail(wrong, "leave out python= to let gpumon build that version's environment")
            w.kill()
            return
        w.said_hello(h)
        self.state = RUNNING
        self.ready = w.ready_event(self.name)
        self.config = msgspec.structs.replace(
            self.config, size=h.size, dtype=h.dtype, policy=h.policy or self.config.policy
        )
        self.emit(self.ready)

    def _on_sample(self, w: WorkerProcess, s: ev.Sample) -> None:
        s.t = time.time()
        s.cpu_percent, s.rss = w.process_figures()
        if self.gpu_memory is not None:
            s.gpu_mem = self.gpu_memory.of(w.pid)
        ops = sum(s.ops)
        w.ops += ops
        self.ops_total += ops
        self.emit(s)

    # ---- commands ------------------------------------------------------------------
    async def command(self, cmd: PoolCommand, source: str = "user") -> ev.Control:
        """Carry out a command and answer with a Control event; never hangs on a dead pool."""
        if isinstance(cmd, Restart):
            return await self.restart(source)
        w = self.worker
        if self.state in DEAD and (later := remembered(self.config, cmd)) is not None:
            # Nothing to talk to: remember it, so the next start uses it.
            self.config, what = later
            return self._control(cmd, True, f"pool is {self.state}; it will start {what}", source)
        if w is None or self.state not in (*ALIVE, STOPPING) or w.proc.returncode is not None:
            return self._control(cmd, False, f"pool {self.name} is {self.state}", source)
        answered: list[ev.Control] = []
        self._in_flight = (self._describe(cmd), time.monotonic())

        def on_ack(a: protocol.Ack) -> None:
            # Taken and published as the Ack is read: a crash the change caused at once (a
            # grow that kills) is then recorded at the new thread count, after its Control.
            if a.ok:
                self._track(a.state)
            answered.append(self._control(cmd, a.ok, a.detail, source))

        try:
            answer = await w.channel.request(cmd, timeout_for(cmd, self.state == STARTING), on_ack)
        finally:
            self._in_flight = None
        if isinstance(answer, str):
            return self._control(cmd, False, answer, source)
        return answered[0]

    def _describe(self, cmd: PoolCommand) -> str:
        if isinstance(cmd, SetThreads):
            return f"threads {self.config.threads}→{cmd.threads}"
        return describe(cmd)

    def _track(self, st: protocol.WorkerState) -> None:
        self.config = msgspec.structs.replace(
            self.config,
            threads=st.threads,
            policy=st.policy,
            workload=st.workload,
            size=st.size,
            dtype=st.dtype,
        )
        if st.state == "paused":
            self.state = PAUSED
        elif st.state == "running" and self.state == PAUSED:
            self.state = RUNNING

    def _control(self, cmd: PoolCommand, ok: bool, detail: str, source: str) -> ev.Control:
        c = ev.Control(
            pool=self.name, command=cmd, ok=ok, detail=detail, source=source, config=self.config
        )
        self.emit(c)
        return c

    async def stop(self, reason: str = "stopped") -> None:
        """Ask the worker to finish cleanly; escalate to SIGKILL if it will not."""
        if self._restart_task is not None:
            self._restart_task.cancel()
            self._restart_task = None
        self.stop_requested = True
        if self._cancel_build is not None:
            self._cancel_build.set()  # a build in progress ends; start() then says "stopped"
        w = self.worker
        if w is None and self.state == STARTING:
            await self.exited.wait()  # the interpreter is still being prepared
            return
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
            ctl = await self.command(Stop(), source="supervisor")
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
        return self._control(Restart(), True, f"attempt {self.attempt}", source)

    # ---- deaths --------------------------------------------------------------------
    async def _on_exit(self, w: WorkerProcess) -> None:
        stall.snapshot_ready(w, None)  # a stall still waiting for gdb's snapshot: none comes
        code, sig = evidence.exit_status(w.plan.kind, w.proc.returncode, w.exited, w.dying)
        if w.refused:
            self.exited.set()  # a failure already reported, not a crash
            return
        if w.fatal is not None:
            self._fail(w.fatal.message, w.fatal.fix)
            return
        if (
            w.plan.kind == "gdb"
            and w.hello is None
            and w.exited is None
            and not self.stop_requested
        ):
            # gdb itself failed (not the worker): a failure with gdb's words, never a crash loop.
            why = w.debugger_error or capture.read_tail(w.stderr, 2048, 5).replace("\n", " | ")
            self._fail(
                f"gdb could not start the worker: {why or 'no output'}", "use --native-stacks off"
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
        assert self.crash_id is not None
        files = evidence.Files(w.faulthandler, w.stderr, w.stdout, w.native_path)
        for artifact in evidence.crash_artifacts(
            self.crash_id, self.name, files, w.fh_offset, w.plan
        ):
            self.emit(artifact)
        if w.plan.kind == "ips":
            # The report appears seconds later; the crash event is already out.
            ips = evidence.await_ips(self.crash_id, self.name, w.pid, w.started_at, self.emit)
            self._in_background(ips, f"ips {self.crash_id}")
        self.exited.set()
        if not self.stop_requested:
            self._schedule_restart(w)

    def _record_crash(
        self, w: WorkerProcess, signal_name: str | None, exit_code: int | None, detected_by: str
    ) -> None:
        self.crashes += 1
        self.crash_times.append(time.monotonic())
        self.state = CRASHED
        h = w.hello
        # The worker's own folder names the crash: one process, one crash, one set of files.
        self.crash_id = f"{w.artifacts.name}-{w.pid}"
        during = "stopping" if self.stop_requested else "run" if h is not None else "starting"
        self.emit(
            evidence.crash_event(
                w,
                self.name,
                self.config,
                crash_id=self.crash_id,
                signal_name=signal_name,
                exit_code=exit_code,
                detected_by=detected_by,
                crash_number=self.crashes,
                during=during,
                in_flight=self._in_flight,
            )
        )

    def _schedule_restart(self, w: WorkerProcess) -> None:
        d = backoff.decide(
            self.restart_policy,
            uptime=w.uptime,
            consecutive=self.consecutive_crashes,
            crashes=self.crashes,
            crash_times=list(self.crash_times),
            now=time.monotonic(),
        )
        self.consecutive_crashes = d.consecutive
        if not d.restart:
            if d.why_not:
                self._fail(d.why_not, "fix the cause, then press r to restart it")
            return
        self.state = RESTARTING
        self.emit(
            ev.PoolRestart(
                pool=self.name, attempt=self.attempt + 1, delay=d.delay, crashes=self.crashes
            )
        )

        async def later() -> None:
            await asyncio.sleep(d.delay)
            self._restart_task = None
            if self.state == RESTARTING:
                await self.start()

        self._restart_task = asyncio.create_task(later(), name=f"restart {self.name}")

    # ---- stalls --------------------------------------------------------------------
    def check_stall(self, after: float) -> None:
        w = self.worker
        if (
            w is None
            or w.hello is None
            or self.stalled
            or self.state not in (RUNNING, PAUSED)
            or w.proc.returncode is not None
        ):
            return
        silent = time.monotonic() - w.channel.last_msg
        if silent < after:
            return
        self.stalled = True
        stall_id = stall.report(w, self.name, self.config.threads, silent, self.emit)
        self._in_background(stall.gather(w, self.name, stall_id, self.emit), f"stall {stall_id}")

    def _in_background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
