"""Entry point of a pool's child process: `python -m gpumon.worker --fd N --config JSON`.

Order matters here: faulthandler first (so even an import crash leaves Python stacks), then
the parent-death signal, then the framework import (the slow, risky part), then Hello.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

import msgspec

from gpumon import protocol
from gpumon.control import Stop
from gpumon.spec import PoolConfig
from gpumon.worker.backends import load
from gpumon.worker.backends.base import Backend, BackendUnavailable, Workload
from gpumon.worker.proctitle import comm_name, set_title, title
from gpumon.worker.runtime import Channel, Runtime, exit_now
from gpumon.worker.threadname import set_current_thread_name, set_parent_death_signal


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpumon.worker")
    # First on the command line, so `ps -o args` and nvidia-smi name the pool even where
    # setproctitle is not installed (an isolated framework env); the config file is the truth.
    p.add_argument("--pool-label", default="", help="the pool's name, for people reading ps")
    p.add_argument("--fd", type=int, required=True, help="message socket inherited from parent")
    # A file, not an argument: gdb re-splits the inferior's arguments and eats JSON quotes.
    p.add_argument("--config-file", required=True, help="PoolConfig as JSON")
    p.add_argument("--faulthandler", default="", help="file for faulthandler dumps")
    return p.parse_args(argv)


def control_loop(chan: Channel, rt: Runtime, done: threading.Event) -> None:
    set_current_thread_name("gpumon_control")
    for line in chan.lines():
        try:
            req = protocol.decode_request(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            print(f"gpumon worker: ignored bad command line: {e}", file=sys.stderr, flush=True)
            continue
        rt.handle(req, chan.send)
        if isinstance(req.command, Stop):
            done.set()
            return
    # EOF: the monitor is gone. Nobody will read a crash record now, so leave at once.
    rt.stop()
    exit_now(0)


def resolve_policy(backend: Backend, requested: str | None) -> str:
    """None means the framework's own behaviour, which is never refused; a named policy must be
    available here, and the fix offered instead is one that is."""
    if requested is None:
        return backend.default_policy()
    why = backend.policies().get(requested, "")
    if why:
        raise BackendUnavailable(
            f"policy {requested} is unavailable: {why}",
            f"use --policy {backend.suggest_policy(requested)}, or leave --policy out for "
            f"{backend.name}'s own default ({backend.default_policy()})",
        )
    return requested


def run_on_own_thread(
    target: Callable[[threading.Event], None], done: threading.Event, name: str
) -> None:
    """Run `target(done)` on a new thread and wait for it, re-raising what it raised. The main
    thread keeps the pool's name, which on Linux is the process's name (gpumon.worker.proctitle);
    a loop that names its own thread must not run on it."""
    failed: list[BaseException] = []

    def body() -> None:
        try:
            target(done)
        except BaseException as e:
            failed.append(e)

    t = threading.Thread(target=body, name=name)
    t.start()
    t.join()
    if failed:
        raise failed[0]


def let_threads_end(timeout: float = 2.0) -> None:
    """Give joined worker threads time to finish at the OS level before finalisation.

    Thread.join returns before a thread's C++ thread-local destructors run. MLX >= 0.31.2 keeps
    each thread's default random key in one, and its destructor takes the GIL: if the
    interpreter is finalising by then, the thread is unwound and std::terminate aborts the
    worker (6-7 of 10 exits of 2 sampling threads, mlx 0.31.2 and 0.32.0 on CPU). That abort
    is gpumon's timing, not the pool's work, so wait, GIL released, until no thread ended in
    the last 20 ms (Linux counts them in /proc/self/task; elsewhere one short sleep).
    """
    task = "/proc/self/task"
    if not os.path.isdir(task):
        time.sleep(0.05)
        return
    deadline = time.monotonic() + timeout
    prev = len(os.listdir(task))
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = len(os.listdir(task))
        if now >= prev:
            return
        prev = now


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.faulthandler:
        fh = open(args.faulthandler, "a", buffering=1)  # noqa: SIM115 - lives as long as we do
        faulthandler.enable(file=fh, all_threads=True)
        if hasattr(faulthandler, "register"):  # stall snapshots on demand (not on Windows)
            faulthandler.register(signal.SIGUSR1, file=fh, all_threads=True, chain=False)
    set_parent_death_signal(signal.SIGKILL)
    chan = Channel(args.fd)
    try:
        with open(args.config_file, "rb") as f:
            config = msgspec.json.decode(f.read(), type=PoolConfig)
        comm = comm_name(config.name)
        set_current_thread_name(comm)  # named from the start: a framework import can take a while
        backend = load(config)
        choice = backend.setup()
        version = choice.versions.get(config.backend, "")
        set_title(title(config.name, config.backend, version, choice.device), comm)
        size = config.size or backend.default_size(config.workload)
        dtype = config.dtype or backend.default_dtype()
        policy = resolve_policy(backend, config.policy)
        workload = Workload(config.workload, size, dtype, policy, config.sync_every)
        backend.validate(workload, config.threads)
    except BackendUnavailable as e:
        chan.send(protocol.Fatal(message=e.message, fix=e.fix))
        return 2
    except Exception as e:
        traceback.print_exc()  # to the captured stderr file, for the record
        chan.send(
            protocol.Fatal(
                message=f"worker failed to start: {type(e).__name__}: {e}",
                fix="see the worker's stderr log",
            )
        )
        return 2

    rt = Runtime(config.name, backend, workload, config.threads, chan)
    chan.send(
        protocol.Hello(
            protocol=protocol.PROTOCOL_VERSION,
            pid=os.getpid(),
            backend=config.backend,
            device=choice.device,
            device_name=choice.device_name,
            device_reason=choice.reason,
            framework=choice.framework,
            versions=choice.versions,
            policies=backend.policies(),
            policy=policy,
            policy_meanings=backend.policy_meanings(),
            size=size,
            dtype=dtype,
            flop_per_op=rt.flop_per_op,
            threads=config.threads,
        )
    )
    rt.start()
    done = threading.Event()
    threading.Thread(
        target=control_loop, args=(chan, rt, done), daemon=True, name="gpumon_control"
    ).start()
    run_on_own_thread(rt.run_sampler, done, name="gpumon_sampler")
    chan.send(protocol.Bye(reason="stopped", ops_total=rt.ops_total))
    let_threads_end()
    # A normal return runs interpreter shutdown, where some frameworks crash (MLX on CUDA);
    # that death is real evidence, so it is not hidden behind os._exit.
    return 0


if __name__ == "__main__":
    sys.exit(main())
