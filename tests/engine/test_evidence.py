"""Evidence you can trust: one process, one set of artifacts; hangs, thread failures and deaths
while stopping are counted, each apart; the supervisor never confuses a failure with a crash.

Every test runs real worker processes (the synthetic `fault` backend's faults are real native
events: a NULL read, abort(), a thread holding the GIL forever, an atexit segfault).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpumon import events as ev
from gpumon import protocol
from gpumon.control import SetThreads, SetWorkload
from gpumon.session.log import load
from gpumon.spec import parse_pool
from gpumon.supervisor import capture
from gpumon.supervisor.channel import Channel
from gpumon.supervisor.pool import Pool, RestartPolicy, WorkerProcess
from tests.conftest import wait_for
from tests.engine.helpers import Session

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def gpumon(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
        **kw,  # type: ignore[arg-type]
    )


def _sweep(tmp: Path, *args: str, **kw: object) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp / "sweep.json"
    r = gpumon("sweep", *args, "--json", str(out), "--session-dir", str(tmp / "s"), **kw)
    data = json.loads(out.read_text()) if out.exists() else {}
    return r, data


def _log(tmp: Path) -> Path:
    (log,) = (tmp / "s").glob("*/session.jsonl")
    return log


def test_every_sweep_cell_keeps_its_own_artifacts(tmp_path: Path) -> None:
    """Once, every cell of a pool wrote artifacts/<pool>-1/: crash 2..N showed crash 1's
    stacks. Now each worker process has a folder, and each crash's files come from it."""
    r, data = _sweep(
        tmp_path,
        "--pool",
        "fault,native=off,fault-rate=5",
        "--threads",
        "2,4",
        "--repeat",
        "2",
        "--seconds",
        "2",
        "--warmup",
        "0.5",
    )
    assert r.returncode == 3, r.stderr
    s = load(_log(tmp_path))
    crashes = [e for e in s.events if isinstance(e, ev.Crash)]
    assert len(crashes) == 4 and sum(c["crashes"] for c in data["cells"]) == 4
    folders = {c.crash_id: Path(c.artifacts_dir) for c in crashes}
    assert len(set(folders.values())) == 4  # one folder per process
    for c in crashes:
        arts = [a for a in s.events if isinstance(a, ev.CrashArtifact) and a.crash_id == c.crash_id]
        files = [Path(a.path) for a in arts if a.path]
        assert files and all(f.parent == folders[c.crash_id] for f in files)
        fh = next(a for a in arts if a.kind == "faulthandler")
        assert fh.text.count("Fatal Python error") == 1  # its own dump, nobody else's
        stderr = next(a for a in arts if a.kind == "stderr").text
        # the fault backend names the thread it faults on: it is one of this crash's threads
        faulted = re.search(r"injecting segv on (fault_worker-\d+)", stderr)
        assert faulted and int(faulted.group(1).split("-")[1]) < c.threads


def test_a_hang_fails_the_sweep_with_its_own_status(tmp_path: Path) -> None:
    r, data = _sweep(
        tmp_path,
        "--pool",
        "fault,native=off,fault=hang,fault-rate=20",
        "--threads",
        "1,2",
        "--seconds",
        "4",
        "--warmup",
        "0.5",
    )
    assert r.returncode == 5, (r.stdout, r.stderr)  # hung, nothing crashed
    hangs = {c["threads"]: (c["hangs"], c["crashes"]) for c in data["cells"]}
    assert hangs == {1: (0, 0), 2: (1, 0)}
    assert data["hung"] is True and data["crashed"] is False
    assert "hangs" in r.stdout and "1/1" in r.stdout


def test_thread_failures_and_deaths_while_stopping_are_counted_apart(tmp_path: Path) -> None:
    r, data = _sweep(
        tmp_path,
        "--pool",
        "fault,native=off,fault=raise,fault-rate=20,name=raiser",
        "--pool",
        "fault,native=off,fault=teardown,fault-rate=50,name=teardown",
        "--threads",
        "2",
        "--seconds",
        "1",
        "--warmup",
        "0.3",
    )
    cells = {c["pool"]: c for c in data["cells"]}
    raiser, teardown = cells["raiser"], cells["teardown"]
    assert raiser["threads_failed"] >= 1 and raiser["crashes"] == 0
    assert teardown["crashes"] == 0  # measured without a death ...
    assert teardown["stop_crashes"] == 1 and teardown["stop_crash_signals"] == ["SIGSEGV"]
    assert r.returncode == 3  # ... but a worker did die: the exit status says so
    assert "after stop: 1 SIGSEGV" in r.stdout and "thread" in r.stdout
    crash = next(e for e in load(_log(tmp_path)).events if isinstance(e, ev.Crash))
    assert crash.during == "stopping"


def test_session_folders_and_files_are_private(tmp_path: Path) -> None:
    r, _ = _sweep(
        tmp_path, "--pool", "fault,native=off,fault-rate=50", "--threads", "2", "--seconds", "1"
    )
    assert r.returncode == 3
    folder = _log(tmp_path).parent
    paths = [folder, *folder.rglob("*")]
    assert len(paths) > 6
    for p in paths:
        mode = stat.S_IMODE(p.stat().st_mode)
        want = 0o700 if p.is_dir() else 0o600
        assert mode == want, f"{p.relative_to(folder)}: {oct(mode)}"


@pytest.mark.parametrize("make", ["file", "readonly"])
def test_an_unusable_session_dir_is_one_line(tmp_path: Path, make: str) -> None:
    target = tmp_path / "target"
    if make == "file":
        target.write_text("not a folder")
    else:
        target.mkdir(mode=0o500)
        if os.access(target, os.W_OK):
            pytest.skip("root writes into read-only folders")
    r = gpumon("sweep", "--pool", "fault", "--threads", "1", "--session-dir", str(target))
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert ("is not a folder" if make == "file" else "not writable") in r.stderr


def test_a_write_failure_stops_recording_loudly_and_keeps_what_was_written(
    tmp_path: Path,
) -> None:
    """A real write failure (RLIMIT_FSIZE: EFBIG at 16 KiB) part-way through a sweep."""
    import resource
    import signal

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    r, _ = _sweep(
        tmp_path,
        "--pool",
        "fault,native=off",
        "--threads",
        "1",
        "--seconds",
        "3",
        preexec_fn=limit,
    )
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "recording stopped: File too large" in r.stderr
    assert "Traceback" not in r.stderr
    s = load(_log(tmp_path))  # what was written stays loadable
    assert isinstance(s.events[0], ev.SessionStart) and len(s.events) > 3


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_is_reported(tmp_path: Path) -> None:
    """ENOSPC for real: a 64 KiB tmpfs."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)])
    if m.returncode != 0:
        pytest.skip("this sandbox does not allow mounting a tmpfs")
    try:
        # Leave about 12 KiB free: the session starts, then its samples fill the disk.
        (mnt / "filler").write_bytes(b"x" * (52 * 1024))
        r = gpumon(
            "sweep",
            "--pool",
            "fault,native=off",
            "--threads",
            "1",
            "--seconds",
            "4",
            "--session-dir",
            str(mnt),
        )
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "recording stopped: No space left on device" in r.stderr
        (log,) = mnt.glob("*/session.jsonl")
        assert load(log).events
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


async def test_export_csv_after_a_workload_change(tmp_path: Path) -> None:
    """A set_workload once crashed the CSV export (a variable rebound by a string parser)."""
    s = Session(["torch:cpu,size=64,native=off"], tmp_path, record=True)
    async with s:
        await wait_for(lambda: s.samples("torch:cpu"), 120, what="samples")
        ctl = await s.command("torch:cpu", SetWorkload(workload="mlp", size=96))
        assert (
            ctl.ok
            and ctl.config is not None
            and (ctl.config.workload, ctl.config.size)
            == (
                "mlp",
                96,
            )
        )
        await wait_for(lambda: s.samples("torch:cpu")[-1].workload == "mlp", 30)
        await asyncio.sleep(0.3)
    assert s.live is not None and s.live.log_path is not None
    r = gpumon("export", str(s.live.log_path), "-f", "csv")
    assert r.returncode == 0, r.stderr
    sizes = {row.split(",")[5] for row in r.stdout.splitlines()[1:]}
    assert {"64", "96"} <= sizes


async def test_a_debugger_that_cannot_start_is_a_failure_not_a_crash_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUMON_GDB", "/bin/false")
    s = Session(["fault,native=gdb"], tmp_path, restart=True)
    async with s:
        await wait_for(lambda: s.of(ev.PoolFailed), 30, what="the failure")
        await asyncio.sleep(1.0)  # a restart would come within 0.1 s
    assert not s.of(ev.Crash) and not s.of(ev.PoolRestart)
    (failed,) = s.of(ev.PoolFailed)
    assert failed.message.startswith("gdb could not start the worker")


def _fake_worker(lines: list[bytes], fd: int) -> str:
    return textwrap.dedent(f"""
        import os, time
        for line in {lines!r}:
            os.write({fd}, line)
        time.sleep(0.3)
    """)


async def _run_fake(pool: Pool, artifacts: Path, lines: list[bytes]) -> WorkerProcess:
    parent, child = socket.socketpair()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _fake_worker(lines, child.fileno()), pass_fds=[child.fileno()]
    )
    child.close()
    reader, writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
    w = WorkerProcess(
        proc,
        Channel(reader, writer, pool._noise),
        artifacts,
        capture.NativePlan("none", "off"),
        pid=proc.pid,
    )
    pool.worker, pool.state = w, "starting"
    await asyncio.wait_for(pool._supervise(w), 30)
    return w


def _hello(pid: int, version: int = protocol.PROTOCOL_VERSION) -> bytes:
    return protocol.encode(
        protocol.Hello(
            protocol=version,
            pid=pid,
            backend="fault",
            device="cpu",
            device_name="x",
            device_reason="x",
            framework="x",
            size=64,
            dtype="float32",
            flop_per_op=0.0,
            threads=1,
        )
    )


async def test_a_protocol_mismatch_is_one_failure(artifacts: Path) -> None:
    events: list[ev.Event] = []
    pool = Pool(parse_pool("fault"), events.append, artifacts, RestartPolicy(enabled=True))
    await _run_fake(pool, artifacts, [_hello(4242, version=1)])
    kinds = [type(e).__name__ for e in events if not isinstance(e, ev.Sample)]
    assert kinds == ["PoolFailed"], kinds
    assert "protocol 1" in events[0].message and pool.state == "failed"


async def test_the_pid_is_fixed_by_the_first_hello(artifacts: Path) -> None:
    events: list[ev.Event] = []
    pool = Pool(parse_pool("fault"), events.append, artifacts, RestartPolicy())
    w = await _run_fake(pool, artifacts, [_hello(4242), _hello(1)])
    assert w.pid == 4242
    assert any(isinstance(e, ev.Notice) and "second hello" in e.message for e in events)


async def test_a_crash_loop_gives_up(artifacts: Path) -> None:
    s = Session(
        ["fault,native=off,threads=2,fault-rate=100"], artifacts, restart=True, loop_crashes=3
    )
    async with s:
        await wait_for(lambda: s.of(ev.PoolFailed), 60, what="giving up")
        await asyncio.sleep(0.5)
    assert len(s.of(ev.Crash)) == 3 and len(s.of(ev.PoolRestart)) == 2
    assert "giving up after 3 crashes" in s.of(ev.PoolFailed)[0].message


async def test_a_crash_counts_its_own_workers_ops(artifacts: Path) -> None:
    s = Session(["fault,native=off,threads=1,fault-rate=3"], artifacts, restart=True)
    async with s:
        await wait_for(lambda: s.ready("fault"), 60)
        await asyncio.sleep(0.5)
        await s.command("fault", SetThreads(threads=2))
        await wait_for(lambda: len(s.of(ev.Crash)) >= 2, 60, what="two crashes")
    c1, c2 = s.of(ev.Crash)[:2]
    pids = [e.pid for e in s.of(ev.PoolReady)]
    assert c2.pid == pids[1]
    # The ops of the second process only: what its samples said, not the session's total.
    mine = sum(smp.total_ops for smp in s.samples("fault") if c1.t < smp.t <= c2.t)
    assert c2.ops_total == mine and c2.ops_total < c1.ops_total + mine
