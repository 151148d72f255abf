"""Regenerate the *real* faulthandler samples in tests/crash/samples/ with every CPython found.

Run by hand (not by pytest): `python tests/crash/make_faulthandler_samples.py python3.10 ...`.
Each interpreter really runs a child process and its faulthandler output is saved verbatim:
a SIGSEGV in a named worker thread (ctypes NULL read) with other threads alive, an abort()
raised while the garbage collector runs (faulthandler prints "Garbage-collecting"), an abort
with a line on stderr before the dump (stderr captured whole, as gpumon captures a worker's
stderr tail), a SIGSEGV with all_threads=False ("Stack (most recent call first):"), and a
dump_traceback_later() snapshot ("Timeout (0:00:00.200000)!", no crash).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent / "samples"

SEGV = r"""
import ctypes, faulthandler, sys, threading, time
faulthandler.enable(open(sys.argv[1], "w"), all_threads=True)
stop = threading.Event()
def idle():
    stop.wait()
def crash():
    time.sleep(0.2)
    ctypes.string_at(0)
threads = [threading.Thread(target=idle, name="mlx_worker-0"),
           threading.Thread(target=crash, name="fault_worker-1")]
for t in threads:
    t.start()
threads[1].join()
"""

GC_ABORT = r"""
import faulthandler, gc, os, sys, threading
faulthandler.enable(open(sys.argv[1], "w"), all_threads=True)
class Dies:
    def __del__(self):
        os.abort()
def work():
    a = Dies(); b = [a]; a.cycle = b  # only the cycle collector frees it
    del a, b
    gc.collect()
t = threading.Thread(target=work, name="mlx_worker-3")
t.start(); t.join()
"""

STDERR_ABORT = r"""
import faulthandler, os, sys, threading
faulthandler.enable(all_threads=True)
def work():
    print("worker 2: giving up, calling abort()", file=sys.stderr, flush=True)
    os.abort()
t = threading.Thread(target=work, name="torch_worker-2")
t.start(); t.join()
"""

CURRENT_ONLY = r"""
import ctypes, faulthandler, sys, threading
faulthandler.enable(open(sys.argv[1], "w"), all_threads=False)
ctypes.string_at(0)
"""

# Not a crash: the stall watchdog's kind of dump (dump_traceback_later), then a clean abort
# so the process still ends by a signal like the others.
TIMEOUT = r"""
import faulthandler, os, sys, threading, time
out = open(sys.argv[1], "w")
stop = threading.Event()
t = threading.Thread(target=stop.wait, name="torch_worker-0")
t.start()
faulthandler.dump_traceback_later(0.2, file=out)
time.sleep(1.0)
stop.set(); t.join(); out.flush()
os.kill(os.getpid(), 9)
"""


def run(python: str, tag: str, name: str, code: str, to_stderr: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, f"{name}.py")
        script.write_text(code)
        out = Path(tmp, "fault.txt")
        proc = subprocess.run(
            [python, str(script), str(out)], capture_output=True, text=True, timeout=60
        )
        text = proc.stderr if to_stderr else out.read_text()
    assert proc.returncode < 0, (python, name, proc.returncode, proc.stderr)
    (HERE / f"faulthandler-{tag}-{name}.txt").write_text(text)


def main(pythons: list[str]) -> None:
    HERE.mkdir(exist_ok=True)
    for python in pythons:
        version = subprocess.run(
            [python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        tag = f"py{version}"
        run(python, tag, "segv-named-thread", SEGV, to_stderr=False)
        run(python, tag, "abort-in-gc", GC_ABORT, to_stderr=False)
        run(python, tag, "abort-stderr", STDERR_ABORT, to_stderr=True)
        run(python, tag, "segv-current-thread-only", CURRENT_ONLY, to_stderr=False)
        run(python, tag, "timeout-snapshot", TIMEOUT, to_stderr=False)


if __name__ == "__main__":
    main(sys.argv[1:] or [sys.executable])
