"""Runs *inside gdb* (`gdb -batch -x gdb_driver.py --args python -m gpumon.worker ...`).

Why a debugger-supervised worker rather than a core file: it needs no root, no core_pattern
and no disk for a multi-GB core, and it sees every thread at the instant of the fault. It costs
nothing while the worker runs (ptrace only stops the process on signals), and start-up stays
fast because shared-library symbols are read only once a fatal signal arrives.

Protocol with the supervisor (which started gdb with the worker's message socket inherited):
  - on a fatal signal, before anything slow, write one `dying` line on the socket so the
    monitor shows the crash at once;
  - write all threads' backtraces to $GPUMON_NATIVE_OUT (format: header lines, blank line,
    then gdb's own `thread apply all bt` text), then let the signal through so faulthandler
    in the worker still writes the Python stacks;
  - SIGUSR2 from the supervisor (stall) writes a snapshot the same way and resumes the worker;
  - when the worker is gone, write one `exited` line with its real exit code / signal.
This file must not import gpumon: gdb's embedded Python may be a different interpreter.
"""

import contextlib
import json
import os
import time

import gdb

FATAL = {"SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE", "SIGTRAP", "SIGSYS"}
SNAPSHOT = "SIGUSR2"
OUT = os.environ.get("GPUMON_NATIVE_OUT", "native-stacks.txt")
# Each stall snapshot gets its own file ({k} = 1, 2, ...): a later fatal dump must not replace
# the evidence of an earlier stall, nor a stall's the crash's.
SNAPSHOT_OUT = os.environ.get("GPUMON_SNAPSHOT_OUT", "native-snapshot-{k}.txt")
FD = int(os.environ.get("GPUMON_MSG_FD", "-1"))


def send(obj):
    if FD < 0:
        return
    with contextlib.suppress(OSError):
        os.write(FD, (json.dumps(obj) + "\n").encode())


def signal_name():
    try:
        sig = gdb.selected_thread() and gdb.parse_and_eval("$_siginfo.si_signo")
        signo = int(sig)
    except gdb.error:
        return None, None
    names = {
        4: "SIGILL",
        5: "SIGTRAP",
        6: "SIGABRT",
        7: "SIGBUS",
        8: "SIGFPE",
        11: "SIGSEGV",
        12: "SIGUSR2",
        31: "SIGSYS",
        10: "SIGUSR1",
    }
    return signo, names.get(signo, f"SIG{signo}")


def process_name(pid, exe):
    """The worker's title (`gpumon: mlx@0.31.1 cpu`) or short name (`gm-mlx`), so the report
    says which pool died; the executable in brackets."""

    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read().split(b"\0")[0].decode(errors="replace").strip()
        except OSError:
            return ""

    title = read(f"/proc/{pid}/cmdline")
    if not title.startswith("gpumon:"):
        title = read(f"/proc/{pid}/comm")
    if not title.startswith(("gpumon:", "gm-")):
        return f"{exe} (gpumon worker)" if exe else "gpumon worker"
    return f"{title} ({exe})" if exe else title


def dump(kind, signo, name, out):
    t0 = time.monotonic()
    th = gdb.selected_thread()
    lwp = th.ptid[1] if th is not None else 0
    addr = ""
    if kind == "fatal":
        try:
            addr = hex(int(gdb.parse_and_eval("$_siginfo._sifields._sigfault.si_addr")))
        except (gdb.error, ValueError):
            addr = ""
    # Symbols were deferred at start-up; read them now that we need names.
    with contextlib.suppress(gdb.error):
        gdb.execute("sharedlibrary", to_string=True)
    try:
        text = gdb.execute("thread apply all -ascending bt", to_string=True)
    except gdb.error as e:
        text = f"(backtrace failed: {e})\n"
    inf = gdb.selected_inferior()
    exe = os.path.basename(inf.progspace.filename or "") if inf.progspace else ""
    head = [
        "gpumon-native-stacks 1",
        f"kind: {kind}",
        f"process: {process_name(inf.pid, exe)}",
        f"pid: {inf.pid}",
        f"signal: {name} ({signo})",
        f"lwp: {lwp}",
    ]
    if addr:
        head.append(f"si_addr: {addr}")
    head.append(f"captured_in: {time.monotonic() - t0:.3f}s")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(head) + "\n\n" + text)
    os.replace(tmp, out)


def main():
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    gdb.execute("set print thread-events off")
    gdb.execute("set print inferior-events off")
    gdb.execute("set auto-solib-add off")
    gdb.execute("set startup-with-shell off")
    for s in (
        "SIGPIPE",
        "SIGTERM",
        "SIGINT",
        "SIGUSR1",
        "SIGCHLD",
        "SIGALRM",
        "SIGHUP",
        "SIGWINCH",
        "SIGCONT",
        "SIGPROF",
        "SIGVTALRM",
        "SIGURG",
        "SIGIO",
        "SIG32",
        "SIG33",
        "SIG34",
        "SIG35",
        "SIG36",
    ):
        with contextlib.suppress(gdb.error):
            gdb.execute(f"handle {s} nostop noprint pass", to_string=True)
    # "noprint" would imply "nostop": a snapshot needs the stop (and so the print).
    gdb.execute(f"handle {SNAPSHOT} stop print nopass", to_string=True)
    try:
        gdb.execute("run", to_string=True)
    except gdb.error as e:
        send({"type": "debugger_error", "message": str(e)})
        return
    dumped_fatal = False
    snapshots = 0
    while gdb.selected_inferior().pid:
        signo, name = signal_name()
        if name == SNAPSHOT:
            snapshots += 1
            path = SNAPSHOT_OUT.replace("{k}", str(snapshots))
            dump("snapshot", signo, name, path)
            send({"type": "snapshot_ready", "path": path})
        elif name in FATAL and not dumped_fatal:
            send({"type": "dying", "signal": name, "signo": signo})
            dump("fatal", signo, name, OUT)
            dumped_fatal = True
            send({"type": "native_ready", "path": OUT})
        try:
            gdb.execute("continue", to_string=True)
        except gdb.error:
            break
    code = sig = None
    try:
        v = gdb.parse_and_eval("$_exitcode")
        code = None if str(v) == "void" else int(v)
    except gdb.error:
        pass
    try:
        v = gdb.parse_and_eval("$_exitsignal")
        sig = None if str(v) == "void" else int(v)
    except gdb.error:
        pass
    send({"type": "exited", "exit_code": code, "signo": sig})


main()
