"""A real worker process under any interpreter, driven the way the supervisor drives it.

The supervisor always starts workers with its own `sys.executable`; until pools can name an
interpreter (a framework env), tests of other framework versions start `python -m
gpumon.worker` themselves: a socketpair, the config in a file, faulthandler to a file, and,
when asked, gdb supervising the worker with gpumon's own driver, exactly as
gpumon/supervisor/pool.py does. Messages are decoded with the real protocol.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon import protocol
from gpumon.spec import PoolConfig
from gpumon.supervisor import capture

STOP_TIMEOUT = 20.0


class WorkerRun:
    def __init__(self, python: Path | str, config: PoolConfig, workdir: Path, gdb: bool = False):
        self.python = str(python)
        self.config = config
        self.workdir = workdir
        self.gdb = gdb
        self.messages: list[msgspec.Struct] = []
        self.hello_at: float | None = None
        self.exit_at: float | None = None
        self._ids = 0

    # ---- life cycle ------------------------------------------------------------------------
    def start(self) -> WorkerRun:
        self.workdir.mkdir(parents=True, exist_ok=True)
        parent, child = socket.socketpair()
        fd = child.fileno()
        cfg = self.workdir / "pool-config.json"
        cfg.write_bytes(msgspec.json.encode(self.config))
        cmd = [
            self.python,
            "-m",
            "gpumon.worker",
            "--fd",
            str(fd),
            "--config-file",
            str(cfg),
            "--faulthandler",
            str(self.faulthandler_file),
        ]
        if self.gdb:
            plan = capture.native_plan("gdb")
            cmd = capture.gdb_command(plan, cmd)
        env = capture.env_for_worker(fd, self.native_file)  # PYTHONPATH -> this gpumon
        with (self.workdir / "stderr.log").open("ab") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=[fd],
                env=env,
                start_new_session=True,
            )
        child.close()
        self.sock = parent
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self.sock.makefile("rb"):
            try:
                msg = protocol.decode_worker(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if isinstance(msg, protocol.Hello):
                self.hello_at = time.monotonic()
            self.messages.append(msg)
        self.proc.wait()
        self.exit_at = time.monotonic()

    def command(self, op: str, **args: str | int | float | None) -> protocol.Ack:
        self._ids += 1
        cid = self._ids
        self.sock.sendall(protocol.encode(protocol.Command(id=cid, op=op, args=args)))
        self.wait_for(lambda: any(a.id == cid for a in self.of(protocol.Ack)) or self.dead, 30)
        acks = [a for a in self.of(protocol.Ack) if a.id == cid]
        assert acks, f"no answer to {op}; worker exit {self.proc.returncode}"
        return acks[0]

    def stop(self) -> None:
        if not self.dead:
            with contextlib.suppress(OSError):
                self.sock.sendall(protocol.encode(protocol.Command(id=0, op="stop")))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(STOP_TIMEOUT)
        self.sock.close()

    def __enter__(self) -> WorkerRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what happened ---------------------------------------------------------------------
    @property
    def faulthandler_file(self) -> Path:
        return self.workdir / "faulthandler.txt"

    @property
    def native_file(self) -> Path:
        return self.workdir / "native-stacks.txt"

    @property
    def dead(self) -> bool:
        return self.exit_at is not None

    def of(self, kind: type) -> list:
        return [m for m in list(self.messages) if isinstance(m, kind)]

    @property
    def hello(self) -> protocol.Hello | None:
        h = self.of(protocol.Hello)
        return h[0] if h else None

    @property
    def fatal(self) -> protocol.Fatal | None:
        f = self.of(protocol.Fatal)
        return f[0] if f else None

    def samples(self) -> list[ev.Sample]:
        return self.of(ev.Sample)

    def death_signal(self) -> str | None:
        """The signal that killed the worker: from gdb's `exited` line when gdb ran it, else
        from the process status."""
        for m in self.of(protocol.Exited):
            if m.signo:
                return capture.signal_name(m.signo)
        rc = self.proc.returncode
        return capture.signal_name(-rc) if rc is not None and rc < 0 else None

    def seconds_to_death(self) -> float | None:
        if self.exit_at is None or self.hello_at is None:
            return None
        return self.exit_at - self.hello_at

    def wait_for(self, pred: Callable[[], object], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def run_for(self, seconds: float) -> None:
        """Let the pool run, returning early if the worker dies."""
        self.wait_for(lambda: self.dead, seconds)

    def rate(self, skip: int = 3) -> float:
        """Ops per second over the samples after the first `skip` (model building, warm-up)."""
        s = self.samples()[skip:]
        secs = sum(x.interval for x in s)
        return sum(x.total_ops for x in s) / secs if secs else 0.0
