"""`kill -9` of the monitor while it records: every complete line of the log must load.

A real child process runs a real Supervisor (a fault pool that keeps crashing and restarting,
and a steady one) with a Recorder, writing samples, crashes, artifacts and host samples as
fast as a live session does; it is killed with SIGKILL mid-session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from gpumon import events as ev
from gpumon.session.export import render
from gpumon.session.log import load
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from gpumon.live_session import open_session
    from gpumon.spec import parse_pool
    from gpumon.supervisor.backoff import RestartPolicy

    async def main():
        pools = [parse_pool("fault,threads=2,native=off,fault-rate=5"),
                 parse_pool("fault,name=steady,threads=1,native=off")]
        async with open_session(
            pools, mode="test", argv=["gpumon", "--pool", "fault"], session_dir=Path(sys.argv[1]),
            restart=RestartPolicy(enabled=True, base_delay=0.05, max_delay=0.1, loop_crashes=None),
            host_every=0.02,
        ) as s:
            print(s.log_path, flush=True)
            while True:
                await asyncio.sleep(1)

    asyncio.run(main())
""")


def _reap(pids: list[int]) -> None:
    """Workers die with the monitor (parent-death signal); make sure none of ours lingers."""
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.wait(timeout=5)
        except psutil.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
        except psutil.Error:
            pass


def test_sigkill_mid_session_loses_no_complete_line(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # prepend, not replace: the interpreter's own packages may come from PYTHONPATH too
        env=dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        ),
    )
    try:
        log = Path(child.stdout.readline().strip())
        assert log.name == "session.jsonl", child.stderr.read()

        def enough() -> bool:
            data = log.read_bytes()
            return data.count(b'"type":"crash"') >= 2 and data.count(b'"crash_artifact"') >= 2

        wait_until(enough, 60, "two crashes in the log", step=0.02)
        child.send_signal(signal.SIGKILL)  # mid-session: samples arrive every few ms
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    data = log.read_bytes()
    session = load(log)
    _reap([e.pid for e in session.events if isinstance(e, ev.PoolReady)])

    complete = data.count(b"\n")
    tail = data[data.rfind(b"\n") + 1 :]
    assert len(session.events) == complete + (1 if tail and not session.warnings else 0)
    assert len(session.warnings) <= 1
    if session.warnings:
        assert "incomplete" in session.warnings[0] and "killed" in session.warnings[0]
    assert session.end is None
    kinds = {type(e) for e in session.events}
    assert {
        ev.SessionStart,
        ev.PoolReady,
        ev.Sample,
        ev.Crash,
        ev.CrashArtifact,
        ev.HostSample,
    } <= kinds
    # The killed session is exactly the one worth exporting.
    md = render(session, "md")
    assert "The log ends without a session_end event" in md and "### Signature 1: SIGSEGV" in md
