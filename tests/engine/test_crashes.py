"""Real native deaths of real worker processes, seen by the supervisor."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from gpumon import analysis
from gpumon import events as ev
from gpumon.control import SetThreads
from gpumon.state import SessionState
from tests.conftest import wait_for
from tests.engine.helpers import Session

pytestmark = pytest.mark.timeout(180)
needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")


def artifacts_of(s: Session, crash_id: str) -> dict[str, ev.CrashArtifact]:
    return {a.kind: a for a in s.of(ev.CrashArtifact) if a.crash_id == crash_id}


async def crash_once(spec: str, artifacts, threads: int = 2) -> Session:
    s = Session([spec], artifacts)
    async with s:
        name = s.sup.pools.__iter__().__next__()
        await wait_for(lambda: s.ready(name), 60, what="ready")
        await s.sup.command(name, SetThreads(threads=threads))
        await wait_for(lambda: s.of(ev.Crash), 30, what="the crash")
        await wait_for(lambda: s.sup.pools[name].exited.is_set(), 60, what="artifacts")
    return s


async def test_segv_in_a_worker_thread_is_reported_with_python_stacks(artifacts) -> None:
    s = await crash_once("fault,native=off,fault-rate=50", artifacts)
    (crash,) = s.of(ev.Crash)
    assert crash.signal == "SIGSEGV" and crash.exit_code is None
    assert crash.threads == 2 and crash.during == "run" and crash.detected_by == "exit"
    arts = artifacts_of(s, crash.crash_id)
    fh = arts["faulthandler"]
    assert "Segmentation fault" in fh.text and "segfault" in fh.text
    assert fh.report is not None and fh.report.crashed_thread is not None
    assert any(f.symbol == "segfault" for f in fh.report.crashed_thread.frames)
    assert "off" in arts["note"].note
    # Exactly one crash event, and no restart (none was asked for).
    assert len(s.of(ev.Crash)) == 1
    assert not s.of(ev.PoolRestart)


async def test_abort_is_reported_as_sigabrt(artifacts) -> None:
    s = await crash_once("fault,native=off,fault=abort,fault-rate=50", artifacts)
    (crash,) = s.of(ev.Crash)
    assert crash.signal == "SIGABRT"
    assert "Aborted" in artifacts_of(s, crash.crash_id)["faulthandler"].text


@needs_gdb
async def test_gdb_captures_native_stacks_of_every_named_thread(artifacts) -> None:
    # Three threads run (and are named) before the fault is armed by a fourth, so the
    # capture cannot race a thread that has not started yet.
    s = Session(["fault,native=gdb,fault-rate=50,fault-at-threads=4,threads=3"], artifacts)
    async with s:
        await wait_for(
            lambda: any(all(n > 0 for n in x.ops) and len(x.ops) == 3 for x in s.samples("fault")),
            60,
            what="three busy threads",
        )
        await s.sup.command("fault", SetThreads(threads=4))
        await wait_for(lambda: s.of(ev.Crash), 30, what="the crash")
        await wait_for(lambda: s.sup.pools["fault"].exited.is_set(), 60, what="artifacts")
    (crash,) = s.of(ev.Crash)
    assert crash.signal == "SIGSEGV" and crash.detected_by == "debugger"
    native = artifacts_of(s, crash.crash_id)["native"].report
    assert native is not None and native.format == "gdb"
    names = {t.name for t in native.threads}
    # every worker thread, the sampler and the control thread, named at OS level
    assert {
        "fault_worker-0",
        "fault_worker-1",
        "fault_worker-2",
        "gpumon_sampler",
        "gpumon_control",
    } <= names, names
    assert all(t.frames for t in native.threads), "every thread has native frames"
    crashed = native.crashed_thread
    assert crashed is not None and crashed.name.startswith("fault_worker-")
    assert any(
        "string_at" in (f.symbol or "") or "strlen" in (f.symbol or "") for f in crashed.frames[:12]
    ), [f.symbol for f in crashed.frames[:12]]
    # the state reducer joins it all into one record with a verdict
    st = SessionState()
    for e in s.events:
        st.apply(e)
    rec = st.crashes[crash.crash_id]
    assert rec.native is native and rec.python is not None
    # faulthandler (Python < 3.14) names no threads; gdb's names were put on its stacks
    assert rec.python.crashed_thread is not None
    assert rec.python.crashed_thread.name == crashed.name
    assert "SIGSEGV" in rec.verdict and crashed.name in rec.verdict


@needs_gdb
async def test_torch_pool_threads_are_named_in_native_stacks(artifacts) -> None:
    # A real torch pool next to the crash: gdb's capture must include its named threads.
    s = Session(["torch:cpu,size=64,threads=2,native=gdb"], artifacts)
    async with s:
        await wait_for(lambda: len(s.samples("torch:cpu")) > 3, 120)
        pid = s.of(ev.PoolReady)[0].pid
        import pathlib

        comms = {p.read_text().strip() for p in pathlib.Path(f"/proc/{pid}/task").glob("*/comm")}
        assert {"torch_worker-0", "torch_worker-1", "gpumon_sampler"} <= comms, comms


async def test_auto_restart_counts_every_crash_once(artifacts) -> None:
    s = Session(
        ["fault,native=off,threads=2,fault-rate=50"], artifacts, restart=True, max_restarts=3
    )
    async with s:
        await wait_for(lambda: len(s.of(ev.Crash)) >= 4, 60, what="four crashes")
        await wait_for(lambda: s.sup.pools["fault"].exited.is_set(), 30)
    crashes = s.of(ev.Crash)
    assert [c.crash_number for c in crashes] == [1, 2, 3, 4]
    assert len({c.crash_id for c in crashes}) == 4
    restarts = s.of(ev.PoolRestart)
    assert [r.attempt for r in restarts] == [2, 3, 4]
    assert [r.delay for r in restarts] == sorted(r.delay for r in restarts)  # backoff grows


async def test_hang_is_reported_as_a_stall_with_stacks(artifacts) -> None:
    s = Session(["fault,native=off,fault=hang,fault-rate=50"], artifacts, stall_after=1.0)
    async with s:
        await wait_for(lambda: s.ready("fault"), 60)
        await s.sup.command("fault", SetThreads(threads=2))
        await wait_for(lambda: s.of(ev.Stall), 30, what="the stall")
        stall = s.of(ev.Stall)[0]
        # Reported as soon as it is noticed (the watchdog looks 4 times a second) ...
        assert 1.0 <= stall.silent_for < 2.0 and stall.threads == 2
        assert s.sup.pools["fault"].stalled
        # ... and its stacks follow as artifacts of that stall.
        await wait_for(lambda: len(s.of(ev.StallArtifact)) >= 2, 30, what="the stall's stacks")
        arts = {a.kind: a for a in s.of(ev.StallArtifact) if a.stall_id == stall.stall_id}
        assert "hang_holding_gil" in arts["faulthandler"].text
        assert arts["faulthandler"].report is not None
        assert "native stacks" in arts["note"].note  # native=off says why there are none
    # stop() had to kill it: recorded as a stop, not as a crash
    assert not s.of(ev.Crash)
    assert "killed" in s.of(ev.PoolStopped)[-1].reason


async def test_a_crash_after_a_stall_shows_only_its_own_stacks(artifacts) -> None:
    """faulthandler.txt holds the stall's dump first; the crash must not be read from it."""
    s = Session(["fault,native=off,fault=hang,fault-rate=50"], artifacts, stall_after=1.0)
    async with s:
        await wait_for(lambda: s.ready("fault"), 60)
        await s.sup.command("fault", SetThreads(threads=2))
        await wait_for(lambda: s.of(ev.StallArtifact), 30, what="the stall's stacks")
        pid = s.of(ev.PoolReady)[0].pid
        os.kill(pid, signal.SIGSEGV)  # a real fatal signal to the hung worker
        await wait_for(lambda: s.of(ev.CrashArtifact), 30, what="the crash's artifacts")
    (crash,) = s.of(ev.Crash)
    assert crash.signal == "SIGSEGV" and crash.pid == pid
    fh = next(a for a in s.of(ev.CrashArtifact) if a.kind == "faulthandler")
    assert fh.text.count("Fatal Python error: Segmentation fault") == 1
    stall_dump = next(a for a in s.of(ev.StallArtifact) if a.kind == "faulthandler").text
    # The crash's dump starts at its own header: the stall's dump (the same threads, hung at
    # the same lines) is not in front of it.
    assert fh.text.lstrip().startswith("Fatal Python error: Segmentation fault")
    assert fh.text.count("hang_holding_gil") == stall_dump.count("hang_holding_gil") > 0
    # The whole file still holds both: nothing was lost, only not mixed up.
    whole = (Path(crash.artifacts_dir) / "faulthandler.txt").read_text()
    assert stall_dump.strip() in whole and "Fatal Python error" in whole


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed here")
async def test_a_stall_under_gdb_gets_a_native_snapshot(artifacts) -> None:
    s = Session(["fault,native=gdb,fault=hang,fault-rate=50"], artifacts, stall_after=1.0)
    async with s:
        await wait_for(lambda: s.ready("fault"), 60)
        await s.sup.command("fault", SetThreads(threads=2))
        await wait_for(lambda: s.of(ev.Stall), 30, what="the stall")
        stall = s.of(ev.Stall)[0]
        assert stall.silent_for < 2.5  # not ~12 s as when the snapshot came first
        await wait_for(
            lambda: any(
                a.kind in ("native", "note")
                and a.stall_id == stall.stall_id
                and (a.kind == "native" or "gdb" in a.note)
                for a in s.of(ev.StallArtifact)
            ),
            45,
            what="the native snapshot (or a note saying why not)",
        )
    native = [a for a in s.of(ev.StallArtifact) if a.kind == "native"]
    assert native, [a.note for a in s.of(ev.StallArtifact)]
    assert native[0].report is not None and len(native[0].report.threads) >= 3
    assert Path(native[0].path).name == "native-snapshot-1.txt"


@pytest.mark.parametrize("native", ["off", pytest.param("gdb", marks=needs_gdb)])
async def test_a_grow_that_kills_at_once_is_logged_before_its_crash(artifacts, native) -> None:
    # The fault fires on the first op after the pool grows to 2 threads: the worker's Ack and
    # its death are microseconds apart. The log must keep the worker's order (the command,
    # then the crash) and the crash must carry the thread count it died at.
    s = await crash_once(f"fault,native={native},fault-rate=1000000,fault-at-threads=2", artifacts)
    (crash_at,) = [i for i, e in enumerate(s.events) if isinstance(e, ev.Crash)]
    crash = s.events[crash_at]
    assert isinstance(crash, ev.Crash)
    acked = [
        i
        for i, e in enumerate(s.events)
        if isinstance(e, ev.Control) and isinstance(e.command, SetThreads) and e.ok
    ]
    if acked:  # the Ack came first: its Control is logged first, the crash at the new count
        assert acked[0] < crash_at and crash.threads == 2 and not crash.in_flight
    else:  # it died first: the crash says what was in flight, and when it was sent
        assert crash.in_flight == "threads 1→2" and 0 <= (crash.in_flight_for or -1) < 5
        runs = analysis.runs(s.events)
        assert analysis.attributions(runs)[crash.crash_id].endswith(
            "after threads 1→2 was sent, not yet acknowledged"
        )
