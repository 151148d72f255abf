"""What users and broken workers can throw at the engine: each gets a clear answer."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpumon import events as ev
from gpumon.spec import parse_pool
from gpumon.supervisor import capture
from gpumon.supervisor.channel import Channel
from gpumon.supervisor.pool import Pool, RestartPolicy, WorkerProcess
from tests.conftest import wait_for
from tests.engine.helpers import Session

ROOT = Path(__file__).resolve().parents[2]


def gpumon(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["sweep", "--bogus"], "unrecognized arguments: --bogus"),
        (["sweep", "--pool", "cuda"], "unknown backend 'cuda'"),
        (["sweep", "--pool", "torch:tpu"], "torch has no device 'tpu'"),
        (["sweep", "--pool", "torch,threads=0"], "threads=0 is out of range"),
        (["sweep", "--pool", "torch,size=99999999"], "size=99999999 is out of range"),
        (["sweep", "--pool", "torch,fault=segv"], "only available on the synthetic 'fault'"),
        (["sweep", "--threads", "4-1"], "runs backwards"),
        (["sweep", "--threads", "0"], "thread count 0 is out of range"),
        (["sweep", "--policies", "yolo"], "unknown policy 'yolo'"),
        (["--pool", "fault", "--threads", "x"], "'x' is not a whole number"),
        (["nosuchcommand"], "invalid choice"),
        (["sweep", "--sync-every", "0"], "sync-every=0 is out of range"),
        (["sweep", "--seconds", "nan"], "must be a finite number of seconds"),
        (["sweep", "--seconds", "-1"], "must be a finite number of seconds"),
        (["sweep", "--warmup", "inf"], "must be a finite number of seconds"),
        (["sweep", "--repeat", "0"], "--repeat 0 is out of range"),
        (["--pool", "fault", "--stall-after", "0"], "must be a finite number of seconds"),
        (["--pool", "mlx@newest"], "not an exact release"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv: list[str], needle: str) -> None:
    r = gpumon(*argv)
    assert r.returncode == 2, r
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


async def test_unavailable_device_fails_the_pool_not_the_session(artifacts) -> None:
    # Devices this OS can never have, so the test means the same on a GPU host.
    if sys.platform == "darwin":
        specs, torch_msg, mlx_msg = ["torch:cuda", "mlx:cuda"], "cannot use CUDA", "no CUDA"
    else:
        specs, torch_msg, mlx_msg = ["torch:mps", "mlx:metal"], "cannot use MPS", "no Metal"
    async with Session([*specs, "fault,native=off"], artifacts) as s:
        await wait_for(lambda: len(s.of(ev.PoolFailed)) == 2 and s.samples("fault"), 120)
    failed = {f.pool: f for f in s.of(ev.PoolFailed)}
    assert torch_msg in failed[specs[0]].message and "use --pool torch:cpu" in failed[specs[0]].fix
    assert mlx_msg in failed[specs[1]].message and "mlx:cpu" in failed[specs[1]].fix
    assert len(s.samples("fault")) > 0  # the other pool carried on


async def test_absurd_size_is_refused_with_the_memory_it_needs(artifacts) -> None:
    async with Session(["torch:cpu,size=32768,threads=64"], artifacts) as s:
        await wait_for(lambda: s.of(ev.PoolFailed), 120)
    f = s.of(ev.PoolFailed)[0]
    assert "GiB" in f.message and "smaller --size" in f.fix


async def test_missing_framework_names_the_extra_to_install(
    artifacts, tmp_path, monkeypatch
) -> None:
    # Make `import torch` fail in the worker exactly as on a machine without torch: a
    # package earlier on the path whose import raises ModuleNotFoundError.
    shadow = tmp_path / "shadow" / "torch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
    )
    # prepend: on hosts whose packages come from PYTHONPATH, msgspec must still be found
    rest = os.environ.get("PYTHONPATH")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(tmp_path / "shadow"), rest) if p)
    )
    async with Session(["torch"], artifacts) as s:
        await wait_for(lambda: s.of(ev.PoolFailed), 60)
    f = s.of(ev.PoolFailed)[0]
    assert f.message.startswith("PyTorch is not installed")
    assert "gpumon[torch]" in f.fix and "torch==2.13.0" in f.fix


async def test_garbage_on_the_worker_pipe_is_reported_and_skipped(artifacts) -> None:
    """A real process writes garbage, a 2 MiB line, binary junk and valid messages to the
    message fd; the supervisor keeps every valid message and reports the rest."""
    events: list[ev.Event] = []
    pool = Pool(parse_pool("fault"), events.append, artifacts, RestartPolicy())
    parent, child = socket.socketpair()
    sample = ev.Sample(pool="fault", interval=0.1, threads=1, ops=[7], flop_per_op=0.0)
    script = textwrap.dedent(f"""
        import os
        fd = {child.fileno()}
        w = lambda b: os.write(fd, b)
        w(b"hello world, not json\\n")
        w(b"\\x00\\xff\\xfe binary junk\\n")
        w(b"x" * (2 << 20) + b"\\n")
        w(b'{{"type": "sample", "pool": "fault"}}\\n')   # valid JSON, invalid message
        w({ev.encode(sample)!r} + b"\\n")
        w(b'{{"type":"sam')                               # torn last line
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, pass_fds=[child.fileno()]
    )
    child.close()
    reader, writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
    channel = Channel(reader, writer, pool._noise)
    w = WorkerProcess(proc, channel, artifacts, capture.NativePlan("none", "off"), pid=proc.pid)
    pool.state = "running"

    async def read() -> None:
        async for msg in channel.messages():
            pool._handle(w, msg)

    await asyncio.wait_for(read(), 30)
    await proc.wait()
    notices = [e for e in events if isinstance(e, ev.Notice)]
    samples = [e for e in events if isinstance(e, ev.Sample)]
    assert [s.ops for s in samples] == [[7]]
    assert channel.noise.count == 5  # text, binary, over-long, invalid message, torn line
    # The first three in full, then the rest counted when the stream ends.
    assert len(notices) == 4
    assert "unreadable line #1" in notices[0].message and "hello world" in notices[0].message
    assert notices[-1].message.startswith("2 more unreadable lines") and "5 in all" in (
        notices[-1].message
    )


async def test_a_flood_of_garbage_makes_a_handful_of_notices(artifacts) -> None:
    """40,000 garbage lines in a burst (once ~40,000 notices in 5 s): a few notices, counted."""
    events: list[ev.Event] = []
    pool = Pool(parse_pool("fault"), events.append, artifacts, RestartPolicy())
    parent, child = socket.socketpair()
    script = textwrap.dedent(f"""
        import os
        fd = {child.fileno()}
        for i in range(40):
            os.write(fd, b"garbage line\\n" * 1000)
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, pass_fds=[child.fileno()]
    )
    child.close()
    reader, writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
    channel = Channel(reader, writer, pool._noise)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async for _msg in channel.messages():
        pass
    took = loop.time() - t0
    await proc.wait()
    notices = [e for e in events if isinstance(e, ev.Notice)]
    assert channel.noise.count == 40_000
    assert len(notices) <= 3 + took / 5 + 2, [n.message for n in notices]
    assert "40000 in all" in notices[-1].message


def test_workers_do_not_outlive_a_killed_monitor(tmp_path) -> None:
    """SIGKILL the monitor; its workers (plain and gdb-supervised) must go away by themselves."""
    import psutil

    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from gpumon.spec import parse_pool
        from gpumon.supervisor.supervisor import Supervisor
        async def main():
            seen = []
            specs = ['fault,native=off', 'torch:cpu,size=64,native=off']
            import shutil
            if shutil.which('gdb'):
                specs.append('fault,native=gdb,name=fg')
            sup = Supervisor([parse_pool(s) for s in specs],
                             artifacts_root=Path({str(tmp_path)!r}), emit=seen.append)
            await sup.start()
            def sampled():
                return {{e.pool for e in seen if type(e).__name__ == 'Sample'}}
            while len(sampled()) < len(specs):
                await asyncio.sleep(0.1)
            print('READY', flush=True)
            await asyncio.sleep(3600)
        asyncio.run(main())
    """)
    mon = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert mon.stdout is not None
        line = mon.stdout.readline()
        assert line.strip() == "READY"
        kids = psutil.Process(mon.pid).children(recursive=True)
        assert len(kids) >= 2
        os.kill(mon.pid, 9)
        mon.wait()
        _gone, alive = psutil.wait_procs(kids, timeout=15)
        assert not alive, [(p.pid, p.name()) for p in alive]
    finally:
        if mon.poll() is None:
            mon.kill()
